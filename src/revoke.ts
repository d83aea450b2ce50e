// Revocation, for every caller (the API, maxSessionsPerUser at a login, the operator command): a live session is
// swapped for a revocation's tombstone by the same compare-and-set as every write, following it through any
// regenerate() that races it.
import { setTimeout as sleep } from 'node:timers/promises';
import { decodePayload } from './codec.js';
import { isHashedRecord, parseRecord } from './record.js';
import { TOMBSTONE_LIFETIME, movedTo, recordStatus, revokedTombstone } from './tombstone.js';
import { conflictPause } from './lanes.js';
import { mapConcurrently } from './concurrently.js';
import type { SessionStore } from './store.js';
import { storedUserOf } from './user-id.js';
import { MAX_USER_SESSIONS } from './user-entries.js';

/** What revocation needs of the settings. */
export interface RevokerConfig {
  readonly maxSessionsPerUser?: number | undefined;
  /** The session field that holds the user id, with the `userKey` option. */
  readonly userKey?: string | undefined;
}

/**
 * What a revocation asks of the index of each user's sessions (users.ts's UserIndex, kept with the `userKey` option).
 * Declared here, not imported: the index reads sessions, and revocation sits beside it, not above it.
 */
export interface IndexedSessions {
  /** The sids the index of `user` holds, newest login first. */
  sids(user: string, deadline?: number): Promise<string[]>;
  /** Those past the `max` newest, oldest login first: what a login must sign out (a bounded number at a time). */
  surplus(user: string, max: number, deadline?: number): Promise<string[]>;
  /** Takes `sids` out of the index of `user`. */
  untrack(user: string, sids: readonly string[], deadline?: number): Promise<void>;
  /** Takes out those of `sids` whose entries are past their grace time (a young one may be a login on its way). */
  dropIfOld(user: string, sids: readonly string[], deadline?: number): Promise<void>;
}

/**
 * How revoke() is asked: only a session of `user`; store calls end by `deadline`; index clean-up failures go to
 * `report`.
 */
export interface RevokeOptions {
  readonly user?: string | undefined;
  readonly deadline?: number | undefined;
  readonly report?: ((error: Error) => void) | undefined;
}

/**
 * A session a revocation ended: the sid it was found live under (a racing regenerate() may have moved it), and its
 * user.
 */
export interface Revoked {
  readonly sid: string;
  /** Its safe id. */
  readonly id: string;
  readonly user: string | undefined;
}

// A revocation follows a session through at most this many regenerate()s that raced it.
const MAX_MOVES = 8;

export class Revoker {
  readonly #store: SessionStore;
  readonly #config: RevokerConfig;
  readonly #users: IndexedSessions | undefined;
  /** The revocation of each sid under way in this process (settled, never rejecting): the next one waits for it. */
  readonly #revoking = new Map<string, Promise<void>>();

  /** `users`: the index of each user's sessions, with the `userKey` option. */
  constructor(store: SessionStore, config: RevokerConfig, users: IndexedSessions | undefined) {
    this.#store = store;
    this.#config = config;
    this.#users = users;
  }

  /**
   * Signs the session stored under `sid` out, through the same compare-and-set as every write: the
   * record it reads is swapped for a revocation's tombstone only if it is still that record. A racing write
   * makes it read again; a racing regenerate() that moved the session makes it follow the session
   * to its new sid. So a revocation that resolves with the session leaves it dead under every sid
   * it has, and a request of that session still in flight finds it gone. With `user`, only a session
   * of that user is ended. Resolves undefined when there was no live session (or it was someone
   * else's); only the call that ended a session resolves with it, so concurrent revocations of one
   * session report it once. Its index entries are dropped afterwards.
   */
  revoke(sid: string, options: RevokeOptions = {}): Promise<Revoked | undefined> {
    // Revocations of one session in this process run one after the other: the second finds it
    // gone, even on a store whose compare-and-set is a read and a write. A sid and the name an index
    // gave for it are one session.
    const name = this.#store.names.nameOf(sid);
    const before = this.#revoking.get(name);
    const other = this.#store.names.otherName(sid);
    const run = (
      before === undefined
        ? this.#revokeNow(name, other, options)
        : before.then(() => this.#revokeNow(name, other, options))
    ).finally(() => {
      if (this.#revoking.get(name) === settled) this.#revoking.delete(name);
    });
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.#revoking.set(name, settled);
    return run;
  }

  /** `other`: where a session of this sid stored before hashSids was switched would be. */
  async #revokeNow(sid: string, other: string | undefined, options: RevokeOptions): Promise<Revoked | undefined> {
    const deadline = options.deadline ?? Date.now() + this.#store.timeoutMs;
    const visited: string[] = [];
    let name = sid;
    let raw = await this.#store.loadRaw(name, deadline);
    if (raw === undefined && other !== undefined) {
      name = other;
      raw = await this.#store.loadRaw(name, deadline);
      // Nothing there either: a request may have moved the session under its hash between the two
      // reads (created it there, then dropped the old key, the sid itself), so what is under `sid` now
      // is the answer. (Moving the other way leaves a tombstone under the old key, which is followed.)
      if (raw === undefined && this.#store.names.hashed) {
        name = sid;
        raw = await this.#store.loadRaw(name, deadline);
      }
    }
    for (let attempt = 1; ; ) {
      visited.push(name);
      const fate = recordStatus(raw, Date.now());
      if (fate === 'gone') return undefined;
      if (fate === 'moved') {
        const to = movedTo(raw);
        if (to === undefined || visited.length > MAX_MOVES) return undefined;
        name = this.#store.names.fromStored(to);
        raw = await this.#store.loadRaw(name, deadline);
        continue;
      }
      const user = this.#userOf(raw as string);
      if (options.user !== undefined && user !== options.user) return undefined;
      const result = await this.#store.compareAndSet(
        name,
        raw,
        revokedTombstone(this.#store.names.isHashed(name)),
        TOMBSTONE_LIFETIME,
        deadline,
      );
      if (result.status === 'saved') {
        // The session is already ended: an index entry left behind is dropped by the next listing.
        if (user !== undefined)
          await this.#users?.untrack(user, visited, deadline).catch((error: Error) => options.report?.(error));
        return { sid: name, id: this.#store.names.idOf(name, isHashedRecord(raw as string)), user };
      }
      if (result.status === 'gone') return undefined;
      // Changed meanwhile (a write, a regenerate, another revocation): decide again on what is there now.
      raw = result.current;
      visited.pop();
      if (recordStatus(raw, Date.now()) === 'live')
        await sleep(
          conflictPause(
            attempt++,
            deadline,
            (n) => `koa-kv-session: a session kept changing during ${n} attempts to revoke it; it was not revoked`,
          ),
        );
    }
  }

  /**
   * Signs out every session of `user` but `except` and resolves with those this call ended: each one
   * through revoke(), so a session a racing regenerate() moves is followed to its new sid. One read
   * of the index, then one revocation per session it names. A session that logs in while this runs
   * may survive it; it is in the index by then, so the next call ends it.
   */
  async revokeUser(user: string, except: string | undefined, report: (error: Error) => void): Promise<Revoked[]> {
    const skip = except === undefined ? undefined : this.#store.names.nameOf(except);
    const sids = (await this.#index().sids(user)).filter((name) => name !== skip);
    return this.#revokeAll(user, sids, undefined, report);
  }

  /** The most sessions a user may have: maxSessionsPerUser, never more than MAX_USER_SESSIONS. */
  get limit(): number {
    return this.#config.maxSessionsPerUser ?? MAX_USER_SESSIONS;
  }

  /** Signs out the sessions of `user` past the limit, oldest login first; resolves with those this call ended. */
  async revokeSurplus(user: string, deadline: number, report: (error: Error) => void): Promise<Revoked[]> {
    const surplus = await this.#index().surplus(user, this.limit, deadline);
    return this.#revokeAll(user, surplus, deadline, report);
  }

  /** Revokes each of `sids` as a session of `user`; entries that named no live session of theirs leave the index. */
  async #revokeAll(
    user: string,
    sids: readonly string[],
    deadline: number | undefined,
    report: (error: Error) => void,
  ): Promise<Revoked[]> {
    const results = await mapConcurrently(sids, 16, (sid) => this.revoke(sid, { user, deadline, report }));
    const ended = results.filter((result): result is Revoked => result !== undefined);
    const notEnded = sids.filter((_, i) => results[i] === undefined);
    await this.#index().dropIfOld(user, notEnded, deadline).catch(report);
    return ended;
  }

  /** The index of users' sessions: what revokeUser() and revokeSurplus() need, with the userKey option only. */
  #index(): IndexedSessions {
    if (this.#users === undefined) throw new Error('koa-kv-session: revoking by user needs the userKey option');
    return this.#users;
  }

  /** The user a stored record belongs to (the `userKey` field), if it can be read and has one. */
  #userOf(raw: string): string | undefined {
    const userKey = this.#config.userKey;
    if (userKey === undefined) return undefined;
    try {
      const record = parseRecord(raw);
      return storedUserOf(decodePayload(record.payload, record.format), userKey);
    } catch {
      return undefined;
    }
  }
}
