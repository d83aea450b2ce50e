// The middleware orders the steps: load -> await next() -> commit. Nothing else happens here.
import createDebug from 'debug';
import type { Context, Middleware, Next } from 'koa';
import { cookieValue, cookieValues, deletionCookie, serializeCookie, sidFromCookie, signerFor, type KeysLike } from './cookie.js';
import { type CommitEvent, Committer } from './commit.js';
import { SessionError } from './errors.js';
import type { Settings } from './options.js';
import type { CommitPlan } from './plan.js';
import type { SessionData as RecordData, StoredRecord } from './codec.js';
import { createdOf, pastAbsoluteLifetime, type Session, SessionState } from './session.js';
import { isWellFormedSid, sidFingerprint } from './sid.js';
import { SessionStore, type StoreAbilities } from './store.js';
import { UserIndex, type UserSession } from './users.js';

const debug = createDebug('koa-kv-session');

/** The middleware `kvSession()` returns, with a way to let go of the store. */
export interface KvSessionMiddleware extends Middleware {
  /**
   * Resolves once the store has answered a read, with what it can do; rejects with the error
   * otherwise. Called again after a failure, it tries again (a store that was down at start-up may
   * be up now).
   *
   * ```ts
   * const { atomic } = await sessions.ready();   // atomic: concurrent writes across processes all land
   * ```
   */
  ready(): Promise<StoreAbilities>;
  /** Closes the store connection this middleware opened (never one you passed in, never one shared with another instance still open). */
  close(): Promise<void>;
  /** Deletes expired session records (SQL, SQLite, memory; 0 on Redis, which expires keys itself) and resolves with how many. The `cleanupInterval` timer calls it for you. */
  purge(): Promise<number>;
  /**
   * The live sessions of a user (the value of the `userKey` field), latest expiry first. Reads the
   * user's index and each session it names: no scan, on every backend. Needs the `userKey` option.
   */
  listUserSessions(user: string | number): Promise<UserSession[]>;
  /**
   * Deletes every live session of a user ("log out everywhere") and resolves with how many; with
   * `except`, all but that session (after a password change: `{ except: ctx.session.sid }`). Needs
   * the `userKey` option.
   */
  revokeUserSessions(user: string | number, options?: { readonly except?: string }): Promise<number>;
  /**
   * Signs one session out, wherever it is used: deletes its record (and its entry in the user's
   * index) and resolves true, or false when there was no such live session. A request of that
   * session in flight cannot bring it back. Takes the sid, or `{ user, id }` with the safe `id` of a
   * `listUserSessions()` entry (a devices page never needs the sid; `{ user, id }` needs `userKey`).
   */
  revokeSession(session: string | { readonly user: string | number; readonly id: string }): Promise<boolean>;
  /**
   * The session a Cookie header names, read-only, or undefined: for a WebSocket upgrade
   * (`server.on('upgrade', (req) => sessions.load(req.headers.cookie))`) or an SSE stream. The
   * signature and the sid are checked exactly as for a request, before the store is read. Signing
   * keys come from the `keys` option, else from `app.keys` once the app has served a request.
   */
  load(cookieHeader: string | undefined): Promise<LoadedSession | undefined>;
  /**
   * Changes one session outside a request (an admin action, a background job) through the same
   * per-key merge and compare-and-set as a request, so requests of that session racing it lose
   * nothing. `change` gets the session as a handler gets `ctx.session` (set and delete keys, set
   * `permanent` or `lifetime`, `destroy()`); resolves false when the session is gone (destroyed,
   * revoked, expired), and writes nothing then.
   */
  update(sid: string, change: (session: Session) => void | Promise<void>): Promise<boolean>;
}

/**
 * What an audit event carries (`app.on('session:created', (event) => ...)`): never the sid.
 * Events: `session:created`, `session:regenerated`, `session:destroyed`, `session:revoked`,
 * `session:expired` (a cookie named a session that is gone or past its expiry).
 */
export interface SessionEvent {
  /** The request it happened in; undefined for `revokeSession()`, `revokeUserSessions()`, `update()`. */
  readonly ctx?: Context | undefined;
  /** The session's safe id (as `listUserSessions()` entries and `sessionId(ctx)` give it). */
  readonly id: string;
  /** The user (the `userKey` field) where known. */
  readonly user?: string | undefined;
  /** `session:regenerated`: the id of the session before the new sid. */
  readonly previousId?: string | undefined;
}

/** A session as `load()` reads it: a copy of its data (changing it changes nothing stored). */
export interface LoadedSession {
  /** The session id: a bearer secret, as `UserSession.sid`. */
  readonly sid: string;
  /** Its safe fingerprint, as `UserSession.id` and `sessionId(ctx)`. */
  readonly id: string;
  readonly data: Record<string, unknown>;
  readonly permanent: boolean;
  readonly expires: Date;
  /** When it was created or last regenerated; undefined for a record written before 0.2. */
  readonly createdAt: Date | undefined;
}

const STATE = Symbol('koa-kv-session');
// Most requests carry at most one session cookie; a client cannot make us read the store more often than this.
const MAX_CANDIDATES = 2;

/** What a request's session cookie led to: the live session it names, and whether it named one that is gone. */
interface Found {
  readonly session: { readonly sid: string; readonly stale: boolean; readonly record: StoredRecord; readonly data: RecordData } | undefined;
  readonly dead: boolean;
}
const NOTHING_FOUND: Found = { session: undefined, dead: false };

/** An error that is an HTTP response below 500, as `ctx.throw(401)` makes. */
interface HttpClientError {
  status: number;
  headers?: Record<string, unknown>;
}

function isClientError(error: unknown): error is HttpClientError {
  if (typeof error !== 'object' || error === null) return false;
  const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
  const code = status ?? statusCode;
  return typeof code === 'number' && Number.isInteger(code) && code >= 400 && code < 500;
}

/** Adds the response's `names` headers to the error's own, which Koa's error handler sets on the response it renders. */
function carryHeaders(error: HttpClientError, ctx: Context, names: readonly string[]): void {
  const headers: Record<string, unknown> = { ...(error.headers ?? {}) };
  let carried = false;
  for (const name of names) {
    const value = ctx.response.get(name) as unknown;
    if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) continue;
    headers[name] = value;
    carried = true;
  }
  if (!carried) return;
  try {
    error.headers = headers;
  } catch {
    // A frozen error keeps its headers: an upstream handler that renders it still sees ours on ctx.
  }
}

/** Removes the Set-Cookie headers of cookie `name` set earlier in this response (`cookie.overwrite`). */
function dropSetCookie(ctx: Context, name: string): void {
  const prior = ctx.response.get('Set-Cookie') as unknown;
  const list = Array.isArray(prior) ? (prior as string[]) : typeof prior === 'string' && prior !== '' ? [prior] : [];
  const kept = list.filter((header) => !header.startsWith(`${name}=`));
  if (kept.length === list.length) return;
  if (kept.length === 0) ctx.remove('Set-Cookie');
  else ctx.set('Set-Cookie', kept);
}

/**
 * What a request holds: its session once there is one, or the settings to make a new one on first
 * use. A request without a session cookie that never touches ctx.session allocates nothing.
 */
interface SessionHolder {
  [STATE]?: SessionState | Settings;
}

/**
 * When the session of this request expires if the request ends now: its stored expiry, or a lifetime
 * from now when this request writes or refreshes it, whichever limit ends it first (its idle
 * lifetime, its own lifetime, the absolute lifetime). Undefined when there is no session to store.
 *
 * ```ts
 * ctx.body = `Your session ends ${sessionExpires(ctx)?.toISOString() ?? 'with this request'}`;
 * ```
 */
export function sessionExpires(ctx: object): Date | undefined {
  const state = stateOf(ctx as SessionHolder);
  const at = state?.expiresAt(Date.now());
  return at === undefined ? undefined : new Date(at);
}

/**
 * The safe id of this request's session (the `id` of its `listUserSessions()` entry), or undefined
 * when it has no sid yet: what a devices page marks "this device" with, without handling sids.
 */
export function sessionId(ctx: object): string | undefined {
  const sid = stateOf(ctx as SessionHolder)?.knownSid;
  return sid === undefined ? undefined : sidFingerprint(sid);
}

function stateOf(holder: SessionHolder): SessionState | undefined {
  const held = holder[STATE];
  if (held === undefined || held instanceof SessionState) return held;
  const state = new SessionState(held);
  holder[STATE] = state;
  return state;
}

const installed = new WeakSet<object>();

/**
 * Defines ctx.session once per application, on its context prototype: no per-request property
 * definition. A `session` the application already defined there (a test's mock, say) is left
 * alone, and looked at again on the next request, for when the mock is gone.
 */
function installAccessor(context: object): void {
  if (installed.has(context)) return;
  if (Object.getOwnPropertyDescriptor(context, 'session') !== undefined) {
    debug('ctx.session is already defined on the app context (a mock?): left alone');
    return;
  }
  installed.add(context);
  Object.defineProperty(context, 'session', {
    configurable: true,
    enumerable: false,
    get(this: SessionHolder) {
      const state = stateOf(this);
      if (state === undefined) return undefined;
      state.accessed = true;
      return state.proxy;
    },
    set(this: SessionHolder, value: unknown) {
      const state = stateOf(this);
      if (state === undefined) throw new TypeError('ctx.session was assigned outside the kvSession() middleware: app.use(kvSession()) must come before this middleware');
      state.accessed = true;
      state.assign(value);
    },
  });
}

export function createMiddleware(settings: Settings): KvSessionMiddleware {
  const { cookie } = settings;
  const report = (error: Error, ctx?: Context): void => {
    debug('%s', error.message);
    try {
      settings.onError?.(error, ctx);
    } catch (hookError) {
      debug('onError hook threw: %s', (hookError as Error).message);
    }
  };
  const store = new SessionStore(settings, report);
  const users = settings.userKey === undefined ? undefined : new UserIndex(store, { ...settings, userKey: settings.userKey });
  const committer = new Committer(store, settings, users);
  const indexOf = (method: string): UserIndex => {
    if (users === undefined) {
      throw new SessionError('SESSION_INVALID_OPTION', `koa-kv-session: ${method}() needs the userKey option (or SESSION_USER_KEY): the session field that holds the user id`);
    }
    return users;
  };
  const userArgument = (method: string, user: unknown): string => {
    const usable = (typeof user === 'string' && user !== '') || (typeof user === 'number' && Number.isFinite(user));
    if (!usable) throw new TypeError(`koa-kv-session: ${method}() takes a user id (a non-empty string or a number), got ${typeof user === 'string' ? '""' : typeof user}`);
    return String(user);
  };
  const isWellFormed = (sid: string): boolean => isWellFormedSid(sid, settings.sidLength);
  // The app of the latest request: where events outside a request (revokeSession()...) are emitted,
  // and whose keys load() checks signatures with.
  let lastApp: { readonly keys?: unknown; listenerCount(name: string): number; emit(name: string, event: SessionEvent): unknown } | undefined;
  /** Emits an audit event on the app; it is made (a SHA-256 of the sid, at least) only when someone listens. */
  const emit = (name: string, ctx: Context | undefined, make: () => Omit<SessionEvent, 'ctx'>): void => {
    const app = ctx?.app ?? lastApp;
    if (app === undefined || app.listenerCount(name) === 0) return;
    try {
      app.emit(name, { ctx, ...make() });
    } catch (error) {
      report(error as Error, ctx);
    }
  };
  const emitCommit = (event: CommitEvent, ctx: Context | undefined): void =>
    emit(`session:${event.kind}`, ctx, () => {
      const made = { id: sidFingerprint(event.sid), user: event.user };
      return event.kind === 'regenerated' ? { ...made, previousId: sidFingerprint(event.from) } : made;
    });
  const signerNow = (keys: unknown, method: string): ReturnType<typeof signerFor> => {
    const signer = cookie.signed ? signerFor((settings.keys ?? keys) as KeysLike | undefined) : undefined;
    if (cookie.signed && signer === undefined) {
      throw new SessionError(
        'SESSION_NO_KEYS',
        method === 'request'
          ? "koa-kv-session: signed session cookies need secret keys: set app.keys = ['a long random secret'], pass kvSession({ keys: [...] }), or set SESSION_SECRET_KEYS (or turn signing off with cookie.signed: false)"
          : `koa-kv-session: ${method}() checks signed cookies and needs the keys: pass kvSession({ keys: [...] }) or set SESSION_SECRET_KEYS (app.keys is known only once the app has served a request)`,
      );
    }
    return signer;
  };
  /**
   * The first live session the values of the session cookie name, as a request would load it, and
   * whether a verified value named a session that is gone (expired, destroyed, revoked; not one a
   * regenerate() moved): that cookie is dead, and the response clears it.
   */
  const loadFromValues = async (values: readonly string[], signer: ReturnType<typeof signerFor>, deadline: number, missing?: (sid: string) => void): Promise<Found> => {
    let reads = 0;
    let dead = false;
    for (const value of values) {
      const found = sidFromCookie(value, cookie, signer, isWellFormed);
      if (found === undefined) continue;
      const now = Date.now();
      const loaded = await store.loadOrFate(found.sid, now, deadline);
      // Past absoluteLifetime, however active: as if gone (its stored expiry never reaches past that either).
      if (typeof loaded !== 'string' && !pastAbsoluteLifetime(loaded.record, settings, now)) {
        return { session: { sid: found.sid, stale: found.stale, record: loaded.record, data: loaded.data }, dead: false };
      }
      if (loaded !== 'moved') dead = true;
      missing?.(found.sid);
      if (++reads >= MAX_CANDIDATES) break;
    }
    return { session: undefined, dead };
  };
  /** Signs a live session out (following it through a racing regenerate()); false when there was none. */
  const revokeSid = async (sid: string, user?: string): Promise<boolean> => {
    if (typeof sid !== 'string' || !isWellFormed(sid)) return false;
    const ended = await committer.revoke(sid, { user, report });
    if (ended !== undefined) emit('session:revoked', undefined, () => ({ id: sidFingerprint(ended.sid), user: ended.user }));
    return ended !== undefined;
  };
  let startup = store.probe();
  const settled = startup.then(
    () => undefined,
    (error: Error) => report(error),
  );

  // Background cleanup: never more than one purge at a time, never awaited by a request.
  let purging: Promise<unknown> | undefined;
  const purgeInBackground = (): void => {
    if (purging !== undefined) return;
    purging = store
      .purge()
      .then((removed) => debug('background purge removed %d expired sessions', removed))
      .catch((error: Error) => report(error))
      .finally(() => {
        purging = undefined;
      });
  };
  const maybePurge = (): void => {
    const n = settings.cleanupEveryNRequests;
    if (n !== 0 && Math.random() * n < 1) purgeInBackground();
  };
  // On a timer, where the store keeps expired records until purged. The timer never keeps the
  // process alive, and stops for good on a store that expires keys itself or cannot purge.
  let cleanup: NodeJS.Timeout | undefined;
  if (settings.cleanupInterval > 0) {
    cleanup = setInterval(() => {
      store.abilities().then(
        ({ purge, ownExpiry }) => {
          if (purge && !ownExpiry) purgeInBackground();
          else stopCleanup();
        },
        (error: Error) => report(error),
      );
    }, settings.cleanupInterval);
    cleanup.unref();
  }
  const stopCleanup = (): void => {
    clearInterval(cleanup);
    cleanup = undefined;
  };

  const middleware = async function kvSession(ctx: Context, next: Next): Promise<void> {
    installAccessor(ctx.app.context);
    maybePurge();
    lastApp = ctx.app;
    const signer = signerNow(ctx.app.keys, 'request');

    // A client that sends the session header (empty at first) carries its session there, not in a cookie.
    const sent = settings.header === undefined ? undefined : ctx.request.headers[settings.header];
    const viaHeader = sent !== undefined;
    const values = viaHeader ? [String(sent)].filter((value) => value !== '') : cookieValues(ctx.request.headers.cookie, cookie.name);
    // One storeTimeout is all the store time a request gets: loading, queueing and committing together.
    const loadStarted = Date.now();
    const expired = (sid: string): void => emit('session:expired', ctx, () => ({ id: sidFingerprint(sid) }));
    const { session: found, dead } = values.length === 0 ? NOTHING_FOUND : await loadFromValues(values, signer, loadStarted + settings.storeTimeout, expired);
    const state = found === undefined ? undefined : new SessionState(settings, { sid: found.sid, record: found.record, data: found.data, staleCookie: found.stale });
    const loadSpent = values.length === 0 ? 0 : Date.now() - loadStarted;
    const holder = ctx as SessionHolder;
    holder[STATE] = state ?? settings;

    // An HTTP error below 500 (ctx.throw(401)) is a response: what the handler saved is committed,
    // as for any response of that status. Anything else that is thrown keeps what is stored.
    let thrown: HttpClientError | undefined;
    try {
      await next();
    } catch (error) {
      if (!isClientError(error)) throw error;
      thrown = error;
    }

    // A failed request may hold half-done session state: keep what is stored.
    if (thrown === undefined && ctx.status >= 500) return;
    const used = holder[STATE];
    const now = Date.now();
    try {
      // No session, never touched: nothing to do but clear a dead cookie.
      const plan = used instanceof SessionState ? used.plan(now) : undefined;
      if (plan !== undefined || dead) await commit(ctx, plan, used instanceof SessionState && used.accessed, signer, now + settings.storeTimeout - loadSpent, viaHeader, dead);
    } catch (error) {
      // A failed commit never masks the handler's own error.
      if (thrown === undefined) throw error;
      report(error as Error, ctx);
    }
    if (thrown !== undefined) {
      // Koa's own error handler drops the headers set so far and sets the error's: the session's go there too.
      carryHeaders(thrown, ctx, ['Set-Cookie', 'Vary', ...(settings.header === undefined ? [] : [settings.header])]);
      throw thrown;
    }
  } as KvSessionMiddleware;

  /** The store steps of the commit (commit.ts), then what the response says of the session: Set-Cookie and Vary. */
  async function commit(ctx: Context, plan: CommitPlan | undefined, accessed: boolean, signer: ReturnType<typeof signerFor>, deadline: number, viaHeader: boolean, dead: boolean): Promise<void> {
    const describe = settings.describe;
    const label =
      describe === undefined
        ? undefined
        : () => {
            try {
              return describe(ctx);
            } catch (error) {
              report(error as Error, ctx);
              return undefined;
            }
          };
    const committed =
      plan === undefined
        ? undefined
        : await committer.commit(
            plan,
            deadline,
            (error) => report(error, ctx),
            label,
            (event) => emitCommit(event, ctx),
          );
    // A cookie naming a session that is gone is cleared once, unless this response sets a new one.
    const cookieToSend = committed ?? (dead ? 'clear' : undefined);
    if (cookieToSend !== undefined || accessed) {
      if (ctx.headerSent) {
        if (cookieToSend !== undefined) {
          report(new SessionError('SESSION_HEADERS_SENT', 'koa-kv-session: the response headers were already sent, so the session cookie could not be set'), ctx);
        }
        return;
      }
      ctx.vary(viaHeader ? (settings.header as string) : 'Cookie');
    }
    if (cookieToSend === undefined) return;
    if (viaHeader) {
      ctx.set(settings.header as string, cookieToSend === 'clear' ? '' : cookieValue(cookieToSend.sid, cookie, signer));
      return;
    }
    const secure = cookie.secure === 'auto' ? ctx.secure : cookie.secure;
    const header = cookieToSend === 'clear' ? deletionCookie(cookie, secure) : serializeCookie(cookieValue(cookieToSend.sid, cookie, signer), cookie, secure, cookieToSend.expires);
    if (cookie.overwrite) dropSetCookie(ctx, cookie.name);
    ctx.append('Set-Cookie', header);
  }

  middleware.ready = async () => {
    startup = startup.catch(() => store.probe());
    await startup;
    return store.abilities();
  };
  middleware.purge = () => store.purge();
  middleware.listUserSessions = async (user) => indexOf('listUserSessions').list(userArgument('listUserSessions', user));
  middleware.revokeUserSessions = async (user, options) => {
    const id = userArgument('revokeUserSessions', user);
    indexOf('revokeUserSessions');
    const revoked = await committer.revokeUser(id, options?.except, report);
    for (const ended of revoked) emit('session:revoked', undefined, () => ({ id: sidFingerprint(ended.sid), user: id }));
    return revoked.length;
  };
  middleware.revokeSession = async (session) => {
    if (typeof session === 'string') return revokeSid(session);
    if (typeof session !== 'object' || session === null || typeof session.id !== 'string') {
      throw new TypeError('koa-kv-session: revokeSession() takes a sid, or { user, id } with the id of a listUserSessions() entry');
    }
    const user = userArgument('revokeSession', session.user);
    // The index names the sids: the safe id is matched against them without reading any session.
    const sid = (await indexOf('revokeSession').sids(user)).find((candidate) => sidFingerprint(candidate) === session.id);
    return sid === undefined ? false : revokeSid(sid, user);
  };
  middleware.load = async (header) => {
    if (header !== undefined && typeof header !== 'string') throw new TypeError('koa-kv-session: load() takes the Cookie header (a string), or undefined');
    const { session: found } = await loadFromValues(cookieValues(header, cookie.name), signerNow(lastApp?.keys, 'load'), Date.now() + settings.storeTimeout);
    if (found === undefined) return undefined;
    const { sid, record, data } = found;
    return {
      sid,
      id: sidFingerprint(sid),
      data,
      permanent: record.permanent,
      expires: new Date(record.expires),
      createdAt: record.created === undefined ? undefined : new Date(createdOf(record, settings)),
    };
  };
  middleware.update = async (sid, change) => {
    if (typeof change !== 'function') throw new TypeError('koa-kv-session: update(sid, change) takes a function that changes the session');
    if (typeof sid !== 'string' || !isWellFormed(sid)) return false;
    const started = Date.now();
    const deadline = started + settings.storeTimeout;
    const loaded = await store.load(sid, started, deadline);
    if (loaded === undefined || pastAbsoluteLifetime(loaded.record, settings, started)) return false;
    const state = new SessionState(settings, { sid, record: loaded.record, data: loaded.data, staleCookie: false });
    await change(state.proxy);
    const plan = state.plan(Date.now());
    const cookieAfter = await committer.commit(
      plan,
      deadline,
      (error) => report(error),
      undefined,
      (event) => emitCommit(event, undefined),
    );
    // A write that found the record gone clears the cookie: the session was destroyed or revoked meanwhile.
    return !(plan.write !== undefined && cookieAfter === 'clear');
  };
  middleware.close = async () => {
    stopCleanup();
    await settled;
    await purging;
    await store.close();
  };
  return middleware;
}
