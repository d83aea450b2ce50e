// Every store step of a commit, in order (index track, write, removals, untrack): a request's changes go onto the
// freshest record, never over a logout, and a regenerate only moves a session that still exists.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Format } from './record.js';
import { applyOnto, type Conditional, mergeWrites, takeFrom, ttlOf } from './merge.js';
import { TOMBSTONE_LIFETIME, recordStatus, movedTombstone, type NoSession } from './tombstone.js';
import { conflictPause, Lanes } from './lanes.js';
import type { CommitEvent, CommitPlan, TakeResult, Write } from './plan.js';

export type { CommitEvent } from './plan.js';
import type { Revoker, RevokerConfig } from './revoke.js';
import type { SessionStore } from './store.js';
import type { UserIndex } from './users.js';

/**
 * What became of a write: stored; not needed (someone else already wrote newer data); the session is
 * gone (destroyed, revoked or expired meanwhile); or it moved to a new sid (another request's
 * regenerate()), whose cookie the browser may hold already.
 */
export type WriteOutcome = 'saved' | 'skipped' | NoSession;

export interface CommitConfig extends RevokerConfig {
  readonly serialization: Format;
  readonly maxSize: number;
  /** Records are stored under the hash of the sid (and say so in their header). */
  readonly hashSids?: boolean;
}

type Rotate = Extract<Write, { kind: 'rotate' }>;
/** A take(): `key` out of the record of `sid`, which this request loaded as `base`. */
interface Take {
  readonly kind: 'take';
  readonly sid: string;
  readonly base: string;
  readonly key: string;
}
type LaneItem = Conditional | Take;

/** What a sid's lane remembers between batches: the record this process wrote last, the freshest one we know. */
interface LaneState {
  latest: string | undefined;
}

export class Committer {
  readonly #store: SessionStore;
  readonly #config: CommitConfig;
  readonly #users: UserIndex | undefined;
  /** Revocations, the committer's peer: a login past the user's limit (maxSessionsPerUser) revokes through it. */
  readonly #revoker: Revoker;
  readonly #lanes = new Lanes<LaneItem, WriteOutcome | TakeResult, LaneState>(
    () => ({ latest: undefined }),
    (items, lane, deadline) => this.#flush(items, lane, deadline),
  );

  /** `users`: the index of each user's sessions, with the `userKey` option. */
  constructor(store: SessionStore, config: CommitConfig, users: UserIndex | undefined, revoker: Revoker) {
    this.#store = store;
    this.#config = config;
    this.#users = users;
    this.#revoker = revoker;
  }

  /**
   * Carries out `plan` and resolves with the cookie to send. Every store call and every wait in a
   * queue ends by `deadline` (epoch ms). Index clean-up that fails goes to `report`: the session
   * itself is already right, and an entry left behind is dropped by the next listing.
   */
  async commit(
    plan: CommitPlan,
    deadline: number,
    report: (error: Error) => void,
    describe?: () => string | undefined,
    emit?: (event: CommitEvent) => void,
  ): Promise<CommitPlan['cookie']> {
    let cookie = plan.cookie;
    const untrack = plan.untrack === undefined ? [] : [plan.untrack];
    // The index learns of a sid before its record exists, so revoking a user never misses one.
    const tracked =
      plan.track === undefined
        ? undefined
        : await this.#index().track(
            plan.track.user,
            plan.track.sid,
            plan.track.expires,
            deadline,
            describe,
            plan.track.from,
          );
    if (plan.write !== undefined) {
      const outcome = await this.#write(plan.write, deadline);
      const write = plan.write;
      if (outcome === 'saved' && write.kind === 'put')
        emit?.({ kind: 'created', sid: write.sid, user: plan.track?.user });
      if (outcome === 'saved' && write.kind === 'rotate')
        emit?.({ kind: 'regenerated', sid: write.sid, from: write.from, user: plan.track?.user ?? plan.untrack?.user });
      // A login is stored: past the user's limit, the oldest other sessions go.
      if (
        outcome === 'saved' &&
        tracked?.added === true &&
        plan.track !== undefined &&
        tracked.entries > this.#revoker.limit
      ) {
        const { user } = plan.track;
        const ended = await this.#revoker.revokeSurplus(user, deadline, report).catch((error: Error) => {
          report(error);
          return [];
        });
        for (const gone of ended) emit?.({ kind: 'revoked', sid: gone.sid, id: gone.id, user });
      }
      if (outcome === 'gone' || outcome === 'moved') {
        // Destroyed or revoked meanwhile: it stays gone, and this browser's cookie for it is cleared.
        // Moved by another request's regenerate(): the browser may hold the new cookie already, and
        // a deletion would log it out, so no cookie at all.
        cookie = outcome === 'gone' ? 'clear' : undefined;
        // The sid was indexed for this write (for its user, maybe a new one): it must not stay there.
        const { track } = plan;
        if (track !== undefined && (track.sid !== plan.untrack?.sid || track.user !== plan.untrack.user))
          untrack.push(track);
      }
    }
    if (plan.remove.length === 1) await this.#store.remove(plan.remove[0] as string, deadline);
    else if (plan.remove.length > 1) await Promise.all(plan.remove.map((sid) => this.#store.remove(sid, deadline)));
    for (const sid of plan.remove)
      emit?.({ kind: 'destroyed', sid, user: plan.untrack?.sid === sid ? plan.untrack.user : undefined });
    for (const entry of untrack) await this.#index().untrack(entry.user, [entry.sid], deadline).catch(report);
    return cookie;
  }

  /** The user index: a plan tracks or untracks sessions only with the userKey option, which makes one. */
  #index(): UserIndex {
    if (this.#users === undefined) throw new Error('koa-kv-session: a plan tracks users without the userKey option');
    return this.#users;
  }

  /** Makes `write`; every store call and every wait in a queue ends by `deadline` (epoch ms). */
  async #write(write: Write, deadline: number): Promise<WriteOutcome> {
    if (write.kind === 'put') {
      await this.#store.save(write.sid, write.raw, write.ttl, deadline);
      return 'saved';
    }
    if (write.kind === 'rotate') return this.#rotate(write, deadline);
    // A write's lane item resolves with a write's outcome.
    return this.#lanes.push(write.sid, write, deadline, () => this.#store.timeout('set')) as Promise<WriteOutcome>;
  }

  /**
   * take(): removes `key` from the record of `sid` by its own compare-and-set, at once, in the
   * lane of that sid (after the writes this process queued before it): of any number of concurrent
   * takes, exactly one finds the key there, in this process and, on a store with atomic
   * compare-and-set, across processes.
   */
  take(sid: string, base: string, key: string, deadline: number): Promise<TakeResult> {
    // A take's lane item resolves with a take's result.
    return this.#lanes.push(sid, { kind: 'take', sid, base, key }, deadline, () =>
      this.#store.timeout('set'),
    ) as Promise<TakeResult>;
  }

  /** A lane's batch: runs of writes go out as one compare-and-set each; a take runs in its place between them. */
  async #flush(items: LaneItem[], lane: LaneState, deadline: number): Promise<Array<WriteOutcome | TakeResult>> {
    if (!items.some((item) => item.kind === 'take')) return this.#saveBatch(items as Conditional[], lane, deadline);
    const outcomes: Array<WriteOutcome | TakeResult> = [];
    let run: Conditional[] = [];
    const saveRun = async () => {
      if (run.length > 0) outcomes.push(...(await this.#saveBatch(run, lane, deadline)));
      run = [];
    };
    for (const item of items) {
      if (item.kind !== 'take') run.push(item);
      else {
        await saveRun();
        outcomes.push(await this.#takeNow(item, lane, deadline));
      }
    }
    await saveRun();
    return outcomes;
  }

  async #takeNow(take: Take, lane: LaneState, deadline: number): Promise<TakeResult> {
    let current = lane.latest ?? take.base;
    for (let attempt = 1; ; attempt++) {
      const fate = recordStatus(current, Date.now());
      if (fate !== 'live') return { outcome: fate };
      const found = takeFrom(current, take.key, this.#config.maxSize);
      const taken = found?.taken;
      if (taken === undefined) return { outcome: 'absent', record: found?.record };
      const result = await this.#store.compareAndSet(
        take.sid,
        current,
        taken.record.raw,
        ttlOf(taken.record.raw, 1),
        deadline,
      );
      if (result.status === 'saved') {
        lane.latest = taken.record.raw;
        return { outcome: 'taken', value: taken.value, record: taken.record };
      }
      if (result.status === 'gone') return { outcome: 'gone' };
      // Changed meanwhile (another take, a write): decide again on what is there now.
      current = result.current as string;
      if (recordStatus(current, Date.now()) === 'live')
        await sleep(
          conflictPause(
            attempt,
            deadline,
            (n) =>
              `koa-kv-session: other processes kept changing the session during ${n} attempts to take a value from ` +
              `it; nothing was taken`,
          ),
        );
    }
  }

  /** One compare-and-set for every write of the batch, in order; refreshes made moot by a newer write are skipped. */
  async #saveBatch(writes: Conditional[], lane: LaneState, deadline: number): Promise<WriteOutcome[]> {
    let expected = lane.latest ?? (writes[0] as Conditional).base;
    const merges = writes.filter((w) => w.kind === 'merge');
    // A refresh only makes sense on the record it read: anything newer already moved the expiry.
    const outcomes: WriteOutcome[] = writes.map((w) =>
      w.kind === 'refresh' && (merges.length > 0 || w.base !== expected) ? 'skipped' : 'saved',
    );
    const active = merges.length > 0 ? merges : writes.filter((_, i) => outcomes[i] === 'saved');
    if (active.length === 0) return outcomes;

    const first = active[0] as Conditional;
    const only = active.length === 1 ? first : undefined;
    let next = only !== undefined && only.base === expected ? only.raw : mergeWrites(expected, active, this.#config);
    for (let attempt = 1; ; attempt++) {
      if (next === 'gone' || next === 'moved') return writes.map(() => next as WriteOutcome);
      // The record's own expiry: a merge onto a fresher record may have kept that one's later expiry.
      const result = await this.#store.compareAndSet(
        first.sid,
        expected,
        next,
        next === first.raw ? first.ttl : ttlOf(next, first.ttl),
        deadline,
      );
      if (result.status === 'saved') {
        lane.latest = next;
        return outcomes;
      }
      if (result.status === 'gone') return writes.map(() => 'gone');
      const fate = recordStatus(result.current, Date.now());
      if (fate !== 'live') return writes.map(() => fate);
      if (merges.length === 0) return writes.map(() => 'skipped'); // refreshes only: someone else wrote
      await sleep(
        conflictPause(
          attempt,
          deadline,
          (n) =>
            `koa-kv-session: other processes kept changing the session during ${n} attempts to save it; nothing was ` +
            `saved by this request`,
        ),
      );
      expected = result.current;
      next = mergeWrites(expected, active, this.#config);
    }
  }

  /**
   * regenerate(): the new record first, then the old one retired by compare-and-set, so the move
   * takes effect only if the loaded session still exists. Destroyed or revoked meanwhile (a logout
   * that came first): the new record is deleted again and the outcome is "gone". Retired by another
   * regenerate(): "moved". Changed meanwhile: the request's changes go onto the freshest copy.
   */
  async #rotate(write: Rotate, deadline: number): Promise<WriteOutcome> {
    let expected = write.base;
    let raw = write.raw;
    for (let attempt = 1; ; attempt++) {
      await this.#store.save(write.sid, raw, raw === write.raw ? write.ttl : ttlOf(raw, write.ttl), deadline);
      // A retirement that fails may still have landed (its reply lost): the new record is then the
      // session, so a failure leaves it to expire rather than deleting it. No cookie names it.
      const result = await this.#store.compareAndSet(
        write.from,
        expected,
        movedTombstone(this.#store.names.storedName(write.sid), this.#store.names.isHashed(write.from)),
        Math.min(write.ttl, TOMBSTONE_LIFETIME),
        deadline,
      );
      if (result.status === 'saved') return 'saved';
      const fate = result.status === 'gone' ? 'gone' : recordStatus(result.current, Date.now());
      if (fate === 'live' && result.status === 'conflict') {
        await sleep(
          conflictPause(
            attempt,
            deadline,
            (n) =>
              `koa-kv-session: other processes kept changing the session during ${n} attempts to regenerate it; ` +
              `nothing was saved by this request`,
          ),
        );
        expected = result.current;
        raw = applyOnto(expected, [write.changes], raw, this.#config);
        continue;
      }
      await this.#store.remove(write.sid, deadline);
      return fate === 'moved' ? 'moved' : 'gone';
    }
  }
}
