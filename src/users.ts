// The sessions of a user: an index from user id to sids, kept in the same store under the same key
// prefix, so that every backend (memcached and DynamoDB included) can list and revoke them without a scan.
//
// One index record per user, at `<keyPrefix>~user~<sha256(id), base64url>` (its format: user-entries.ts).
// Every change is a compare-and-set onto the freshest index, so concurrent logins never drop a sid;
// changes queued in this process for one user go out together in one compare-and-set.
// An index never needs the sessions it names to be read to stay bounded: an entry leaves when its
// session ends here (logout, revocation, a new user), or once `covered` has passed, and a user
// never has more than MAX_USER_SESSIONS (the login past it signs the oldest out). Only listing
// reads the sessions.
import { setTimeout as sleep } from 'node:timers/promises';
import { sameRecord } from './record.js';
import { EARLIER_IDS, type Entry, labelOf, newestFirst, readEntries, writeEntries } from './user-entries.js';
import type { SessionConfig, SessionFields } from './session-types.js';
import { createdOf, lastSeenOf } from './lifetime.js';
import { conflictPause, Lanes } from './lanes.js';
import { mapConcurrently } from './concurrently.js';
import type { SessionStore } from './store.js';
import { decodeSession } from './stored-session.js';
import { storedUserOf } from './user-id.js';
import { userIndexName } from './names.js';

/** One session of a user, as `listUserSessions()` returns it. */
export interface UserSession {
  /**
   * The session id: what the user's cookie carries. A bearer secret: whoever has it is signed in as
   * this user. Never put it in a page or a log; use `id`.
   */
  readonly sid: string;
  /**
   * A short fingerprint of the sid (16 characters) that is safe to render: a devices page lists
   * sessions by it, `revokeSession({ user, id })` takes it, `sessionId(ctx)` gives the current one.
   */
  readonly id: string;
  /** When the session was created, or last regenerated (a login); undefined for a record whose header does not say. */
  readonly createdAt: Date | undefined;
  /**
   * When the session was last used, to within `refreshInterval` (an unchanged session is only rewritten that often).
   */
  readonly lastSeenAt: Date;
  /** What the `describe(ctx)` option said of it at login (e.g. "Firefox on Linux"); undefined without one. */
  readonly label: string | undefined;
  /** When the session expires unless it is used again. */
  readonly expires: Date;
  /** Persistent cookie ("remember me") or browser-session cookie. */
  readonly permanent: boolean;
  /** The session data, decoded. */
  readonly data: SessionFields;
}

type Change = (entries: Map<string, Entry>, now: number) => void;

interface Queued {
  readonly name: string;
  readonly user: string;
  readonly change: Change;
}

export interface UserIndexConfig extends SessionConfig {
  readonly userKey: string;
  readonly storeTimeout: number;
}

// A login signs out at most this many sessions past the limit (more only after the limit was lowered: later logins go
// on).
const SURPLUS_PER_LOGIN = 64;
// The most sids whose index coverage this process remembers (to skip reading the index on a refresh).
const REMEMBERED = 10_000;

export class UserIndex {
  readonly #store: SessionStore;
  readonly #config: UserIndexConfig;
  /** Changes queued per index name; the changes of one lane all concern one user. */
  readonly #lanes = new Lanes<Queued, undefined, undefined>(
    () => undefined,
    async (batch, _state, deadline) => {
      await this.#apply(
        batch[0] as Queued,
        batch.map((queued) => queued.change),
        deadline,
      );
      return batch.map(() => undefined);
    },
  );
  /** `<index name> <sid>` -> until when this process knows the index covers that sid. */
  readonly #covered = new Map<string, number>();
  /** Entries this young are never dropped as dead: their session may still be on its way to the store. */
  readonly #grace: number;

  constructor(store: SessionStore, config: UserIndexConfig) {
    this.#store = store;
    this.#config = config;
    this.#grace = Math.max(10_000, 3 * config.storeTimeout);
  }

  /**
   * Makes the index of `user` hold `sid` until after `expires`: call it before the session record is
   * written. Index changes end by `deadline` (a request's), or storeTimeout from now. Resolves with
   * `added` true when the index did not hold `sid` before (a login: `describe` then labels the
   * entry), and how many entries the index holds then.
   */
  async track(
    user: string,
    given: string,
    expires: number,
    deadline?: number,
    describe?: () => string | undefined,
    from?: string,
  ): Promise<{ added: boolean; entries: number }> {
    const name = userIndexName(user);
    const sid = this.#store.names.nameOf(given);
    const known = this.#covered.get(`${name} ${sid}`);
    if (known !== undefined && known > expires) return { added: false, entries: 0 };
    const covered = expires + this.#config.lifetime;
    // Only a session this process has not indexed yet may be new to the index: only then is a label made.
    const label = known === undefined && describe !== undefined ? labelOf(describe, given) : undefined;
    let added = false;
    let size = 0;
    await this.#change(
      name,
      user,
      (entries, now) => {
        const entry = entries.get(sid);
        // Set on every attempt of the compare-and-set: the last one is the one that was written.
        added = entry === undefined;
        // A regenerate's new sid keeps the safe ids the session had.
        const before = from === undefined ? undefined : entries.get(this.#store.names.nameOf(from));
        const was =
          from === undefined
            ? undefined
            : [this.#store.names.safeId(from), ...(before?.was ?? [])].slice(0, EARLIER_IDS);
        if (entry === undefined)
          entries.set(sid, {
            covered,
            added: now,
            ...(label === undefined ? {} : { label }),
            ...(was === undefined ? {} : { was }),
          });
        else entry.covered = Math.max(entry.covered, covered);
        size = entries.size;
      },
      deadline,
    );
    this.#remember(`${name} ${sid}`, covered);
    return { added, entries: size };
  }

  /**
   * Makes the index of `user` name the session `from` also as `to`, keeping its label and login time: a session moving
   * to the other key layout (relayout.ts).
   */
  async alias(user: string, from: string, to: string, expires: number, deadline?: number): Promise<void> {
    const name = userIndexName(user);
    const [source, target] = [this.#store.names.nameOf(from), this.#store.names.nameOf(to)];
    const covered = expires + this.#config.lifetime;
    await this.#change(
      name,
      user,
      (entries, now) => entries.set(target, { ...(entries.get(source) ?? { added: now }), covered }),
      deadline,
    );
    this.#remember(`${name} ${target}`, covered);
  }

  /** Drops `sids` from the index of `user`: call it after their records were deleted or changed hands. */
  async untrack(user: string, given: readonly string[], deadline?: number): Promise<void> {
    const name = userIndexName(user);
    const sids = given.map((sid) => this.#store.names.nameOf(sid));
    for (const sid of sids) this.#covered.delete(`${name} ${sid}`);
    await this.#change(
      name,
      user,
      (entries) => {
        for (const sid of sids) entries.delete(sid);
      },
      deadline,
    );
  }

  /** The live sessions of `user`, soonest expiry last; entries whose session is gone are dropped from the index. */
  async list(user: string): Promise<UserSession[]> {
    const { sessions, dead } = await this.#read(user, Date.now());
    if (dead.length > 0) await this.untrack(user, dead);
    return sessions.sort((a, b) => b.expires.getTime() - a.expires.getTime());
  }

  /**
   * The index of `user` and the sessions it names: those still live and still that user's, and the
   * entries past their grace time whose session is gone (`dead`).
   */
  async #read(user: string, now: number, deadline?: number): Promise<{ sessions: UserSession[]; dead: string[] }> {
    const entries = this.#entries(await this.#store.loadRaw(userIndexName(user), deadline), now);
    const found = await mapConcurrently([...entries], 16, async ([sid, entry]) => ({
      sid,
      entry,
      loaded: decodeSession(await this.#store.read(sid, deadline), now, sid, this.#store.reading),
    }));
    const sessions: UserSession[] = [];
    const dead: string[] = [];
    for (const { sid, entry, loaded } of found) {
      if (typeof loaded !== 'string' && storedUserOf(loaded.data, this.#config.userKey) === user) {
        const { record } = loaded;
        sessions.push({
          sid: this.#store.names.keyOf(sid),
          id: this.#store.names.idOf(sid, record.hashed),
          createdAt: record.created === undefined ? undefined : new Date(createdOf(record, this.#config)),
          lastSeenAt: new Date(lastSeenOf(record, this.#config)),
          label: entry.label,
          expires: new Date(record.expires),
          permanent: record.permanent,
          data: loaded.data,
        });
      } else if (this.#pastGrace(entry.added, now)) {
        dead.push(sid);
      }
    }
    return { sessions, dead };
  }

  /** The sids the index of `user` holds (one store read; no session is read), newest login first. */
  async sids(user: string, deadline?: number): Promise<string[]> {
    const entries = this.#entries(await this.#store.loadRaw(userIndexName(user), deadline), Date.now());
    return newestFirst(entries);
  }

  /** The session of `user` whose safe id is `id`, now or before a regenerate() (a devices page listed it then). */
  async withId(user: string, id: string): Promise<string | undefined> {
    const entries = this.#entries(await this.#store.loadRaw(userIndexName(user)), Date.now());
    for (const sid of entries.keys()) if (this.#store.names.idsOf(sid).includes(id)) return sid;
    for (const [sid, entry] of entries) if (entry.was?.includes(id) === true) return sid;
    return undefined;
  }

  /**
   * The sessions of `user` past `max`, oldest login first out: what a login must sign out to keep the
   * user at `max` sessions (at most SURPLUS_PER_LOGIN of them). One store read, no session read.
   * Every concurrent login ranks the entries the same way (by login time, then sid), so together
   * they keep exactly the `max` newest, whatever order they run in.
   */
  async surplus(user: string, max: number, deadline?: number): Promise<string[]> {
    return (await this.sids(user, deadline)).slice(max, max + SURPLUS_PER_LOGIN);
  }

  /**
   * Drops the entries of `sids` that are past their grace time (a young one may be a login whose record is still on its
   * way).
   */
  async dropIfOld(user: string, given: readonly string[], deadline?: number): Promise<void> {
    if (given.length === 0) return;
    const name = userIndexName(user);
    const sids = given.map((sid) => this.#store.names.nameOf(sid));
    await this.#change(
      name,
      user,
      (entries, now) => {
        for (const sid of sids) {
          if (this.#pastGrace(entries.get(sid)?.added ?? now, now)) {
            entries.delete(sid);
            this.#covered.delete(`${name} ${sid}`);
          }
        }
      },
      deadline,
    );
  }

  /**
   * An entry added at `added` is old enough that a missing record means a dead session, not a login whose record is on
   * its way.
   */
  #pastGrace(added: number, now: number): boolean {
    return added < now - this.#grace;
  }

  /** The unexpired entries of a stored index, by session name (what the store kept, as its methods take it). */
  #entries(raw: string | undefined, now: number): Map<string, Entry> {
    return readEntries(raw, now, (stored) => this.#store.names.fromStored(stored));
  }

  #remember(key: string, covered: number): void {
    this.#covered.delete(key);
    this.#covered.set(key, covered);
    if (this.#covered.size > REMEMBERED) this.#covered.delete(this.#covered.keys().next().value as string);
  }

  /** Queues a change of the index `name` of `user`; changes queued while a write is in flight go out together. */
  async #change(
    name: string,
    user: string,
    change: Change,
    deadline = Date.now() + this.#config.storeTimeout,
  ): Promise<void> {
    await this.#lanes.push(name, { name, user, change }, deadline, () => this.#store.timeout('set'));
  }

  /** Applies `changes` onto the freshest index with compare-and-set, re-reading on conflict. */
  async #apply({ name, user }: Queued, changes: readonly Change[], deadline: number): Promise<void> {
    let current = await this.#store.loadRaw(name, deadline);
    for (let attempt = 1; ; attempt++) {
      const now = Date.now();
      const entries = this.#entries(current, now);
      for (const change of changes) change(entries, now);
      if (entries.size === 0 && current === undefined) return;
      const next = writeEntries(user, entries, now, (sid) => this.#store.names.storedName(sid));
      if (sameRecord(next.raw, current)) return;
      const result = await this.#store.compareAndSet(name, current, next.raw, next.ttl, deadline);
      if (result.status === 'saved') return;
      current = result.status === 'gone' ? undefined : result.current;
      const pause = conflictPause(
        attempt,
        deadline,
        (n) => `koa-kv-session: the session index of a user kept changing during ${n} attempts to update it`,
      );
      if (attempt > 1) await sleep(pause);
    }
  }
}
