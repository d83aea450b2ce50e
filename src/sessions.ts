// The sessions service: what works on sessions beyond one request (ready, close, purge, list, revoke, load, update),
// through the same store and committer as requests.
import { debugLog } from './debug.js';
import type { Context } from 'koa';
import { CleanupScheduler } from './cleanup.js';
import type { StoredData as RecordData, StoredRecord } from './codec.js';
import { AuditEvents, type EventTarget } from './audit.js';
import type { StoredMap } from './cbor.js';
import { dataOf } from './unread.js';
import { Committer } from './commit.js';
import { cookieValues, type KeysLike, type Signer, sidFromCookie, signerFor } from './cookie.js';
import { messageOf, SessionError } from './errors.js';
import type { Settings } from './settings.js';
import type { CommitPlan, Taker } from './plan.js';
import { createdOf, pastAbsoluteLifetime } from './lifetime.js';
import { SessionState } from './session.js';
import type { Session } from './session-types.js';
import type { LayoutSwitch } from './layout-switch.js';
import { LayoutFinder } from './relayout.js';
import { checkKeyLengths } from './warnings.js';
import { isWellFormedSid, sidFingerprint } from './sid.js';
import type { SessionStore, StoreAbilities } from './store.js';
import type { UserIndex, UserSession } from './users.js';
import type { LoadedSession, SessionsApi } from './sessions-api.js';
import { purgeExpired } from './store-scan.js';
import type { Revoker } from './revoke.js';
import { wire } from './wiring.js';

export type { LoadedSession, SessionEvent, SessionsApi } from './sessions-api.js';

const debug = debugLog('koa-kv-session');

/** What a request's session cookie led to: the live session it names, and whether it named one that is gone. */
export interface Found {
  readonly session:
    | {
        readonly sid: string;
        readonly stale: boolean;
        readonly record: StoredRecord;
        /** The data, or (CBOR) its payload, read key by key as the request asks (SessionState). */
        readonly data: RecordData | StoredMap;
      }
    | undefined;
  readonly dead: boolean;
}
export const NOTHING_FOUND: Found = { session: undefined, dead: false };

// Most requests carry at most one session cookie; a client cannot make us read the store more often than this.
const MAX_CANDIDATES = 2;

export class Sessions implements SessionsApi {
  readonly settings: Settings;
  readonly store: SessionStore;
  readonly #users: UserIndex | undefined;
  readonly #committer: Committer;
  /** Revocations (revokeSession, revokeUserSessions), beside the committer, which revokes through it too. */
  readonly #revoker: Revoker;
  /** Finds the session of a sid, in either key layout (relayout.ts). */
  readonly #finder: LayoutFinder;
  readonly #layout: LayoutSwitch;
  /** ctx.session.take() of a loaded session: its own compare-and-set, within the request's storeTimeout. */
  readonly taker: Taker;
  readonly #cleanup: CleanupScheduler;
  /** The audit events, on the app of the request (outside one, of the latest request). */
  readonly events: AuditEvents;
  #startup: Promise<void>;
  /** The latest probe failed: the next ready() probes again (the store may be back). */
  #startupFailed = false;
  readonly #settled: Promise<void>;
  constructor(settings: Settings) {
    this.settings = settings;
    const wired = wire(settings, (error) => this.report(error));
    this.store = wired.store;
    this.#users = wired.users;
    this.#revoker = wired.revoker;
    this.#layout = wired.layout;
    this.events = new AuditEvents((error, ctx) => this.report(error, ctx));
    this.#committer = new Committer(this.store, settings, this.#users, this.#revoker);
    this.#finder = new LayoutFinder({
      store: this.store,
      users: this.#users,
      userKey: settings.userKey,
      report: (error) => this.report(error),
      layout: this.#layout,
    });
    this.taker = (sid, base, key, deadline) => this.#committer.take(sid, base, key, deadline);
    this.#cleanup = new CleanupScheduler(this.store, settings, (error) => this.report(error));
    this.#startup = this.#probe();
    this.#settled = this.#startup.then(
      () => undefined,
      (error: Error) => this.report(error),
    );
  }

  /** Hands an error the library handles without failing the request to onError (and the debug log). */
  report(error: Error, ctx?: Context): void {
    debug('%s', error.message);
    try {
      this.settings.onError?.(error, ctx);
    } catch (hookError) {
      debug('onError hook threw: %s', messageOf(hookError));
    }
  }

  /** A request arrived on `app`: events outside requests go there from now on, and a background purge may start. */
  onRequest(app: EventTarget): void {
    this.#cleanup.onRequest();
    this.#layout.tick(Date.now());
    this.events.onRequest(app);
  }

  /**
   * The signer of session cookies: the `keys` option, else `keys` (the app's); throws SESSION_NO_KEYS when cookies are
   * signed and there are none.
   */
  signer(keys: unknown, method: string): Signer | undefined {
    const { cookie } = this.settings;
    const signer = cookie.signed ? signerFor((this.settings.keys ?? keys) as KeysLike | undefined) : undefined;
    if (signer !== undefined && this.settings.keys === undefined && Array.isArray(keys))
      checkKeyLengths(keys, 'app.keys');
    if (cookie.signed && signer === undefined) {
      throw new SessionError(
        'SESSION_NO_KEYS',
        method === 'request'
          ? "koa-kv-session: signed session cookies need secret keys: set app.keys = ['a long random secret'], pass " +
              'kvSession({ keys: [...] }), or set SESSION_SECRET_KEYS (or turn signing off with cookie.signed: false)'
          : `koa-kv-session: ${method}() checks signed cookies and needs the keys: pass the app, ${method}(header, ` +
              `app), or kvSession({ keys: [...] }), or set SESSION_SECRET_KEYS (app.keys is known only once the app ` +
              `has served a request)`,
      );
    }
    return signer;
  }

  #isWellFormed = (sid: string): boolean => isWellFormedSid(sid, this.settings.sidLength);

  /**
   * The first live session the values of the session cookie name, as a request would load it, and
   * whether a verified value named a session that is gone (expired, destroyed, revoked; not one a
   * regenerate() moved): that cookie is dead, and the response clears it.
   */
  async loadFromValues(
    values: readonly string[],
    signer: Signer | undefined,
    deadline: number,
    missing?: (sid: string) => void,
  ): Promise<Found> {
    let dead = false;
    const tried: string[] = [];
    for (const value of values) {
      const found = sidFromCookie(value, this.settings.cookie, signer, this.#isWellFormed);
      // A sid already looked up (copies of one cookie) costs nothing more.
      if (found === undefined || tried.includes(found.sid)) continue;
      tried.push(found.sid);
      const now = Date.now();
      const loaded = await this.#finder.load(found.sid, now, deadline);
      // Past absoluteLifetime, however active: as if gone (its stored expiry never reaches past that either).
      if (typeof loaded !== 'string' && !pastAbsoluteLifetime(loaded.record, this.settings, now)) {
        return {
          session: { sid: found.sid, stale: found.stale, record: loaded.record, data: loaded.data },
          dead: false,
        };
      }
      if (loaded !== 'moved') dead = true;
      missing?.(found.sid);
      if (tried.length >= MAX_CANDIDATES) break;
    }
    return { session: undefined, dead };
  }

  /** The store steps of a commit (commit.ts) for a request, with its events; resolves with the cookie to send. */
  commit(plan: CommitPlan, deadline: number, ctx: Context | undefined): Promise<CommitPlan['cookie']> {
    // No session is written before the layout record is read (and GRACE has passed after a switch to this layout):
    // what that waits for GRACE is no store time.
    const ready = this.#layout.ready(deadline);
    if (ready !== 0) return Promise.resolve(ready).then((waited) => this.commit(plan, deadline + waited, ctx));
    const describe = this.settings.describe;
    const label =
      describe === undefined || ctx === undefined
        ? undefined
        : () => {
            try {
              return describe(ctx);
            } catch (error) {
              this.report(error as Error, ctx);
              return undefined;
            }
          };
    return this.#committer.commit(
      plan,
      deadline,
      (error) => this.report(error, ctx),
      label,
      (event) => this.events.commit(event, ctx),
    );
  }

  // --- Beyond a request ----------------------------------------------------------------------

  /** A read of a key that is never written, bounded by storeTimeout; remembers a failure for the next ready(). */
  #probe(): Promise<void> {
    this.#startupFailed = false;
    const probe = this.store.probe();
    probe.catch(() => {
      this.#startupFailed = true;
    });
    // Then whether a switch of hashSids is under way (this process's own setting may start one).
    return probe.then(() => this.#layout.check());
  }

  async ready(): Promise<StoreAbilities> {
    if (this.#startupFailed) this.#startup = this.#probe();
    // The deadline sweeper never keeps a process alive (a request does): awaited at start-up with
    // nothing else running, ready() would otherwise end the process instead of settling.
    const hold = setInterval(() => {}, 60_000);
    try {
      await this.#startup;
      return await this.store.abilities();
    } finally {
      clearInterval(hold);
    }
  }

  purge(): Promise<number> {
    return purgeExpired(this.store);
  }

  async listUserSessions(user: string | number): Promise<UserSession[]> {
    return this.#index('listUserSessions').list(userArgument('listUserSessions', user));
  }

  async revokeUserSessions(user: string | number, options?: { readonly except?: string }): Promise<number> {
    const id = userArgument('revokeUserSessions', user);
    this.#index('revokeUserSessions');
    const revoked = await this.#revoker.revokeUser(id, options?.except, (error) => this.report(error));
    for (const ended of revoked) this.events.emit('session:revoked', undefined, () => ({ id: ended.id, user: id }));
    return revoked.length;
  }

  async revokeSession(session: string | { readonly user: string | number; readonly id: string }): Promise<boolean> {
    if (typeof session === 'string') return this.#revokeSid(session);
    if (typeof session !== 'object' || session === null || typeof session.id !== 'string') {
      throw new TypeError(
        'koa-kv-session: revokeSession() takes a sid, or { user, id } with the id of a listUserSessions() entry',
      );
    }
    const user = userArgument('revokeSession', session.user);
    // The index names the sessions, and the safe ids they had before a regenerate(): no session is read.
    const name = await this.#index('revokeSession').withId(user, session.id);
    return name === undefined ? false : this.#revoke(name, user);
  }

  /** A sid from the caller: one that could not have been made is no session, and costs no store call. */
  #revokeSid(sid: string): Promise<boolean> {
    return typeof sid !== 'string' || !this.#isWellFormed(sid) ? Promise.resolve(false) : this.#revoke(sid);
  }

  /**
   * Signs a live session out (following it through a racing regenerate()); false when there was none. `name`: a sid, or
   * a name the index gave.
   */
  async #revoke(name: string, user?: string): Promise<boolean> {
    const ended = await this.#revoker.revoke(name, { user, report: (error) => this.report(error) });
    if (ended !== undefined) this.events.emit('session:revoked', undefined, () => ({ id: ended.id, user: ended.user }));
    return ended !== undefined;
  }

  async load(
    header: string | undefined,
    app?: { readonly keys?: KeysLike | undefined },
  ): Promise<LoadedSession | undefined> {
    if (header !== undefined && typeof header !== 'string')
      throw new TypeError('koa-kv-session: load() takes the Cookie header (a string), or undefined');
    if (app !== undefined && (app === null || typeof app !== 'object'))
      throw new TypeError(
        'koa-kv-session: load(header, app) takes the Koa app (or an object with its keys) as second argument',
      );
    const signer = this.signer(app?.keys ?? this.events.lastApp?.keys, 'load');
    const { session: found } = await this.loadFromValues(
      cookieValues(header, this.settings.cookie.name),
      signer,
      Date.now() + this.settings.storeTimeout,
    );
    if (found === undefined) return undefined;
    const { sid, record, data } = found;
    return {
      sid,
      id: sidFingerprint(sid),
      data: dataOf(data),
      permanent: record.permanent,
      expires: new Date(record.expires),
      createdAt: record.created === undefined ? undefined : new Date(createdOf(record, this.settings)),
    };
  }

  async update(sid: string, change: (session: Session) => void | Promise<void>): Promise<boolean> {
    if (typeof change !== 'function')
      throw new TypeError('koa-kv-session: update(sid, change) takes a function that changes the session');
    if (typeof sid !== 'string' || !this.#isWellFormed(sid)) return false;
    const started = Date.now();
    const deadline = started + this.settings.storeTimeout;
    const loaded = await this.#finder.load(sid, started, deadline);
    if (typeof loaded === 'string' || pastAbsoluteLifetime(loaded.record, this.settings, started)) return false;
    const loadSpent = Date.now() - started;
    const state = new SessionState(
      this.settings,
      { sid, record: loaded.record, data: loaded.data, staleCookie: false, storeSpent: loadSpent },
      this.taker,
    );
    await change(state.proxy);
    const plan = state.plan(Date.now());
    // The time change() took is not the store's: the commit has what loading and takes left.
    const cookieAfter = await this.commit(plan, Date.now() + this.settings.storeTimeout - state.storeSpent, undefined);
    // A write that found the record gone clears the cookie: the session was destroyed or revoked meanwhile.
    return !(plan.write !== undefined && cookieAfter === 'clear');
  }

  async close(): Promise<void> {
    // The timer stops at once; a purge under way is waited for.
    const stopped = this.#cleanup.stop();
    await this.#settled;
    await stopped;
    await this.store.close();
  }

  #index(method: string): UserIndex {
    if (this.#users === undefined) {
      throw new SessionError(
        'SESSION_INVALID_OPTION',
        `koa-kv-session: ${method}() needs the userKey option (or SESSION_USER_KEY): the session field that holds ` +
          `the user id`,
      );
    }
    return this.#users;
  }
}

/** A user id as the API takes it: a non-empty string or a finite number, as a string. */
function userArgument(method: string, user: unknown): string {
  const usable = (typeof user === 'string' && user !== '') || (typeof user === 'number' && Number.isFinite(user));
  if (!usable)
    throw new TypeError(
      `koa-kv-session: ${method}() takes a user id (a non-empty string or a number), got ` +
        `${typeof user === 'string' ? '""' : typeof user}`,
    );
  return String(user);
}
