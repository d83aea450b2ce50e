// The object handlers see as ctx.session: user data behind a Proxy, plus the status the commit is planned from.
import { StoredMap } from './cbor.js';
import { DataChanges } from './changes.js';
import { checkSize } from './codec.js';
import { frameRecord, type StoredData as RecordData, type StoredRecord } from './record.js';
import { createdOf, expiryFrom, idleLifetime } from './lifetime.js';
import type { CommitPlan, Taker } from './plan.js';
import { expiryAt, isModified, planWrite, type SessionStatus } from './planning.js';
import { type ProxiedSession, SessionProxyHandler } from './session-proxy.js';
import {
  assignedEntries,
  booleanControl,
  controlError,
  controlMethods,
  type Methods,
  ownLifetimeOf,
  type Session,
  type SessionConfig,
} from './session-types.js';

import { generateSid } from './sid.js';
import { storedUserOf, userField, userIdOf, withIndexChanges } from './user-id.js';

/**
 * One request's session: its data behind `proxy` (session-proxy.ts), its status, and the plan made from it at commit.
 */
export class SessionState implements ProxiedSession {
  /** What ctx.session is: a new object after an express-style regenerate(callback). */
  get proxy(): Session {
    return this.#proxy;
  }
  #proxy: Session;
  /** ctx.session was read or assigned: the response depends on the cookie (Vary: Cookie). */
  accessed = false;

  /** The store time this request has spent so far (loading, take()): the commit gets what is left of storeTimeout. */
  get storeSpent(): number {
    return this.#storeSpent;
  }
  #storeSpent: number;

  /** The sid of this session if it has one yet (reading ctx.session.sid would make one). */
  get knownSid(): string | undefined {
    return this.#sid;
  }
  readonly #config: SessionConfig;
  #data: RecordData;
  #changes: DataChanges;
  readonly #taker: Taker | undefined;
  #sid: string | undefined;
  /** The record stored under #sid when loaded; undefined once the sid is new, rotated or destroyed. */
  #stored: StoredRecord | undefined;
  /** After regenerate(): the loaded sid and record, retired at commit only if still stored then. */
  #rotatedFrom: { readonly sid: string; readonly record: StoredRecord } | undefined;
  readonly #loadedPermanent: boolean;
  #permanent: boolean;
  /** The session's own idle lifetime (ms), when it has one; as loaded, and as the handler set it. */
  readonly #loadedLifetime: number | undefined;
  #ownLifetime: number | undefined;
  /**
   * When the session was created (or last regenerated); undefined for one not stored yet: its creation is this
   * request's commit.
   */
  #created: number | undefined;
  #isNew: boolean;
  readonly #retired: string[] = [];
  #forced = false;
  /** The cookie was signed with an older key and should be re-signed. */
  readonly #staleCookie: boolean;
  /** With `userKey`: the loaded sid and the user it belonged to when loaded. */
  readonly #loadedUser: { readonly sid: string; readonly user: string } | undefined;

  /** `taker`: take() of a stored session, by the committer. `loaded.storeSpent`: the store time loading took. */
  constructor(
    config: SessionConfig,
    loaded?: {
      sid: string;
      record: StoredRecord;
      data: RecordData | StoredMap;
      staleCookie: boolean;
      storeSpent?: number;
    },
    taker?: Taker,
  ) {
    this.#config = config;
    this.#taker = taker;
    this.#storeSpent = loaded?.storeSpent ?? 0;
    const data = loaded?.data;
    const unread = data instanceof StoredMap ? data : undefined;
    this.#data = data === undefined || data instanceof StoredMap ? {} : data;
    this.#changes = new DataChanges(this.#data, config.maxSize, unread);
    if (loaded) {
      this.#sid = loaded.sid;
      this.#stored = loaded.record;
      this.#permanent = loaded.record.permanent;
      this.#ownLifetime = loaded.record.lifetime;
      this.#created = createdOf(loaded.record, config);
      this.#isNew = false;
      this.#staleCookie = loaded.staleCookie;
      // A stored value that cannot be a user id: this session belongs to no one's index.
      const user = config.userKey === undefined ? undefined : this.#storedUser(config.userKey);
      this.#loadedUser = user === undefined ? undefined : { sid: loaded.sid, user };
    } else {
      this.#permanent = config.permanent;
      this.#isNew = true;
      this.#staleCookie = false;
    }
    this.#loadedPermanent = this.#permanent;
    this.#loadedLifetime = this.#ownLifetime;
    this.#proxy = new Proxy(this.#data, new SessionProxyHandler(this)) as unknown as Session;
  }

  // --- What the Proxy asks (session-proxy.ts) ----------------------------------------------
  // A target other than #data is the data of a session this request left with regenerate(callback):
  // a plain object from then on (passport reads it back), whose changes are not this session's.

  readControl(key: string): unknown {
    return this.#control(key);
  }

  writeControl(key: string, value: unknown): void {
    if (key === 'permanent') this.#permanent = booleanControl(key, value);
    else if (key === 'modified') this.#forced = booleanControl(key, value);
    else if (key === 'lifetime') this.#ownLifetime = ownLifetimeOf(value);
    else throw controlError(key);
  }

  handedOut(target: RecordData, key: string, value: object): void {
    // Only a stored object can change behind our back (nested mutation); a new session's data is all the handler's own.
    if (target === this.#data && (this.#stored ?? this.#rotatedFrom) !== undefined) this.#changes.handedOut(key, value);
  }

  changesOf(target: RecordData): DataChanges | undefined {
    return target === this.#data ? this.#changes : undefined;
  }

  /** The user the data names under `userKey`, reading that one field. */
  #storedUser(userKey: string): string | undefined {
    this.#changes.read(userField(userKey));
    return storedUserOf(this.#data, userKey);
  }

  // --- Control members ---------------------------------------------------------------------

  #control(key: string): unknown {
    switch (key) {
      case 'sid':
        this.#sid ??= generateSid(this.#config.sidLength);
        return this.#sid;
      case 'isNew':
        return this.#isNew;
      case 'permanent':
        return this.#permanent;
      case 'modified':
        return isModified(this.#status(Date.now()));
      case 'lifetime':
        return this.#idleLifetime();
      default:
        this.#methods ??= controlMethods({
          take: (name) => this.#take(name),
          update: (name, fn) => this.#changes.update(name, fn),
          regenerate: (options) => this.#regenerate(options),
          renew: () => this.#renew(),
          save: () => this.#save(),
          destroy: () => this.#destroy(),
          clear: () => this.#changes.clear(),
          failed: (error) => this.#failed(error),
        });
        return this.#methods[key as keyof Methods];
    }
  }

  /** The control methods, bound on first use: most requests never call one. */
  #methods: Methods | undefined;
  /** What an express-style callback threw: the commit fails with it (never the process). */
  #callbackError: { readonly error: unknown } | undefined;
  #failed(error: unknown): void {
    this.#callbackError ??= { error };
  }

  /**
   * take(): the stored session's value of `key`, out of the store at once by compare-and-set, so that
   * exactly one of the requests that see it gets it. A value only this request has (a new session's,
   * or one the handler set itself) is simply taken out of the data.
   */
  async #take(key: string): Promise<unknown> {
    const from = this.#stored !== undefined ? { sid: this.#sid as string, record: this.#stored } : this.#rotatedFrom;
    this.#changes.read(key);
    if (!Object.hasOwn(this.#data, key)) return undefined;
    const value = this.#data[key];
    if (from === undefined || this.#taker === undefined || this.#changes.setByHandler(key)) {
      Reflect.deleteProperty(this.proxy, key);
      return value;
    }
    const started = Date.now();
    let result: Awaited<ReturnType<Taker>>;
    try {
      result = await this.#taker(
        from.sid,
        from.record.raw,
        key,
        started + this.#config.storeTimeout - this.#storeSpent,
      );
    } finally {
      this.#storeSpent += Date.now() - started;
    }
    this.#changes.forget(key);
    // The record as stored now (without the key) is what this request's commit builds on.
    const record = result.outcome === 'taken' || result.outcome === 'absent' ? result.record : undefined;
    if (record !== undefined && this.#stored !== undefined) this.#stored = record;
    else if (record !== undefined) this.#rotatedFrom = { sid: from.sid, record };
    return result.outcome === 'taken' ? result.value : undefined;
  }

  #regenerate(options?: { readonly login?: boolean }): Promise<void> {
    if (this.#stored !== undefined && this.#sid !== undefined)
      this.#rotatedFrom = { sid: this.#sid, record: this.#stored };
    this.#stored = undefined;
    this.#sid = undefined;
    // A new sid alone does not restart the absolute lifetime (a route could renew a session for
    // ever by calling regenerate()); a login does. Its own lifetime stays either way.
    if (options?.login === true) this.#created = undefined;
    return Promise.resolve();
  }

  /**
   * When this session was created, as the absolute lifetime counts: now for a session not stored
   * yet, and for a new login (the userKey field set or changed since the load).
   */
  #creation(now: number): number {
    if (this.#created === undefined) return now;
    const userKey = this.#config.userKey;
    if (userKey !== undefined) {
      const user = this.#storedUser(userKey);
      if (user !== undefined && user !== this.#loadedUser?.user) return now;
    }
    return this.#created;
  }

  /**
   * regenerate(callback), as express-session's: a new, empty session (the configured permanent and
   * lifetime) under a new sid. At commit it replaces the loaded one as regenerate() moves it: only
   * if that record still exists (a logout or revocation that came first wins), none of the old data
   * coming back. The object ctx.session was before keeps the old data: passport's `keepSessionInfo`
   * copies it back.
   */
  #renew(): Promise<void> {
    // The object ctx.session was keeps the old data, all of it.
    this.#changes.whole();
    this.#data = {};
    this.#changes = new DataChanges(this.#data, this.#config.maxSize);
    this.#changes.clear();
    this.#proxy = new Proxy(this.#data, new SessionProxyHandler(this)) as unknown as Session;
    this.#isNew = true;
    this.#permanent = this.#config.permanent;
    this.#ownLifetime = undefined;
    this.#forced = false;
    return this.#regenerate();
  }

  /** save(callback): written at commit even if unchanged. The commit is before the response, as always. */
  #save(): Promise<void> {
    this.#forced = true;
    return Promise.resolve();
  }

  /** The records under the current sid (and the one regenerate() left) stop being this session's: deleted at commit. */
  #destroy(): Promise<void> {
    if (this.#stored !== undefined && this.#sid !== undefined) this.#retired.push(this.#sid);
    if (this.#rotatedFrom !== undefined) this.#retired.push(this.#rotatedFrom.sid);
    this.#stored = undefined;
    this.#sid = undefined;
    this.#rotatedFrom = undefined;
    this.#changes.reset();
    this.#isNew = true;
    this.#permanent = this.#config.permanent;
    this.#ownLifetime = undefined;
    this.#created = undefined;
    this.#forced = false;
    return Promise.resolve();
  }

  /** Replaces the data (`ctx.session = {...}`); `null` destroys the session. */
  assign(value: unknown): void {
    if (value === null || value === undefined) void this.#destroy();
    else if (typeof value === 'object') this.#changes.replace(assignedEntries(value));
    else throw new TypeError(`ctx.session can be assigned an object of session data or null, got ${typeof value}`);
  }

  // --- Commit planning (planning.ts) -------------------------------------------------------

  /** This session as the handler left it, for planning at `now`. */
  #status(now: number): SessionStatus {
    const created = this.#creation(now);
    return {
      stored: this.#stored,
      rotatedFrom: this.#rotatedFrom,
      retired: this.#retired,
      empty: this.#changes.empty,
      forced: this.#forced,
      permanent: this.#permanent,
      permanentChanged: this.#permanent !== this.#loadedPermanent,
      settingsChanged: this.#permanent !== this.#loadedPermanent || this.#ownLifetime !== this.#loadedLifetime,
      staleCookie: this.#staleCookie,
      created,
      expiryFromNow: expiryFrom(now, this.#idleLifetime(), created, this.#config),
      dataChanged: () => this.#changes.differFrom(this.#stored),
      record: (expires) => {
        const meta = { created, lifetime: this.#ownLifetime, hashed: this.#config.hashSids, after: this.#stored };
        const format = this.#config.serialization;
        const raw = frameRecord(this.#changes.encode(format, this.#stored), format, expires, this.#permanent, meta);
        checkSize(raw, this.#config.maxSize);
        return raw;
      },
      changeSet: () => this.#changes.changeSet(this.#permanent !== this.#loadedPermanent ? this.#permanent : undefined),
      drawSid: () => (this.#sid ??= generateSid(this.#config.sidLength)),
    };
  }

  /** This session's idle lifetime: its own, or the configured one for its kind (permanent or not). */
  #idleLifetime(): number {
    return idleLifetime(this.#permanent, this.#ownLifetime, this.#config);
  }

  /**
   * Decides what the commit does. Throws SESSION_TOO_LARGE / SESSION_UNENCODABLE / SESSION_INVALID_USER before anything
   * is written.
   */
  plan(now: number): CommitPlan {
    if (this.#callbackError !== undefined) throw this.#callbackError.error;
    const plan = planWrite(this.#status(now), this.#config, now);
    const userKey = this.#config.userKey;
    if (userKey === undefined) return plan;
    let user: string | undefined;
    this.#changes.read(userField(userKey));
    try {
      user = userIdOf(this.#data, userKey);
    } catch (error) {
      // The handler's own value fails the request; a stored one (from before userKey was set) is no user.
      if (this.#stored === undefined || this.#changes.changedByHandler(userField(userKey))) throw error;
    }
    return withIndexChanges(plan, user, this.#loadedUser, now);
  }

  /** When the session expires if this request ends now: undefined for a session that will not be stored. */
  expiresAt(now: number): number | undefined {
    return expiryAt(this.#status(now), this.#config, now);
  }
}
