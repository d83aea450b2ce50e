// The middleware orders the steps: load -> await next() -> commit. Nothing else happens here.
import createDebug from 'debug';
import type { Context, Middleware, Next } from 'koa';
import { cookieValue, cookieValues, deletionCookie, serializeCookie, sidFromCookie, signerFor, type KeysLike } from './cookie.js';
import { Committer } from './commit.js';
import { SessionError } from './errors.js';
import type { Settings } from './options.js';
import type { CommitPlan } from './plan.js';
import { pastAbsoluteLifetime, SessionState } from './session.js';
import { isWellFormedSid } from './sid.js';
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
  /** Deletes every live session of a user ("log out everywhere") and resolves with how many. Needs the `userKey` option. */
  revokeUserSessions(user: string | number): Promise<number>;
}

const STATE = Symbol('koa-kv-session');
// Most requests carry at most one session cookie; a client cannot make us read the store more often than this.
const MAX_CANDIDATES = 2;

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

function stateOf(holder: SessionHolder): SessionState | undefined {
  const held = holder[STATE];
  if (held === undefined || held instanceof SessionState) return held;
  const state = new SessionState(held);
  holder[STATE] = state;
  return state;
}

const installed = new WeakSet<object>();

/** Defines ctx.session once per application, on its context prototype: no per-request property definition. */
function installAccessor(context: object): void {
  if (installed.has(context)) return;
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
    const signer = cookie.signed ? signerFor((settings.keys ?? ctx.app.keys) as KeysLike | undefined) : undefined;
    if (cookie.signed && signer === undefined) {
      throw new SessionError(
        'SESSION_NO_KEYS',
        "koa-kv-session: signed session cookies need secret keys: set app.keys = ['a long random secret'], pass kvSession({ keys: [...] }), or set SESSION_SECRET_KEYS (or turn signing off with cookie.signed: false)",
      );
    }

    let state: SessionState | undefined;
    const values = cookieValues(ctx.request.headers.cookie, cookie.name);
    // One storeTimeout is all the store time a request gets: loading, queueing and committing together.
    const loadStarted = Date.now();
    const loadDeadline = loadStarted + settings.storeTimeout;
    let reads = 0;
    for (const value of values) {
      const found = sidFromCookie(value, cookie, signer, isWellFormed);
      if (found === undefined) continue;
      const now = Date.now();
      const loaded = await store.load(found.sid, now, loadDeadline);
      // Past absoluteLifetime, however active: as if gone (its stored expiry never reaches past that either).
      if (loaded !== undefined && !pastAbsoluteLifetime(loaded.record, settings, now)) {
        state = new SessionState(settings, { sid: found.sid, record: loaded.record, data: loaded.data, staleCookie: found.stale });
        break;
      }
      if (++reads >= MAX_CANDIDATES) break;
    }
    const loadSpent = values.length === 0 ? 0 : Date.now() - loadStarted;
    const holder = ctx as SessionHolder;
    holder[STATE] = state ?? settings;

    await next();

    // A failed request may hold half-done session state: keep what is stored.
    if (ctx.status >= 500) return;
    const used = holder[STATE];
    if (!(used instanceof SessionState)) return; // no session, never touched: nothing to do
    const now = Date.now();
    await commit(ctx, used.plan(now), used.accessed, signer, now + settings.storeTimeout - loadSpent);
  } as KvSessionMiddleware;

  /** The store steps of the commit (commit.ts), then what the response says of the session: Set-Cookie and Vary. */
  async function commit(ctx: Context, plan: CommitPlan, accessed: boolean, signer: ReturnType<typeof signerFor>, deadline: number): Promise<void> {
    const cookieToSend = await committer.commit(plan, deadline, (error) => report(error, ctx));
    if (cookieToSend !== undefined || accessed) {
      if (ctx.headerSent) {
        if (cookieToSend !== undefined) {
          report(new SessionError('SESSION_HEADERS_SENT', 'koa-kv-session: the response headers were already sent, so the session cookie could not be set'), ctx);
        }
        return;
      }
      ctx.vary('Cookie');
    }
    if (cookieToSend === undefined) return;
    const secure = cookie.secure === 'auto' ? ctx.secure : cookie.secure;
    const header = cookieToSend === 'clear' ? deletionCookie(cookie, secure) : serializeCookie(cookieValue(cookieToSend.sid, cookie, signer), cookie, secure, cookieToSend.expires);
    ctx.append('Set-Cookie', header);
  }

  middleware.ready = async () => {
    startup = startup.catch(() => store.probe());
    await startup;
    return store.abilities();
  };
  middleware.purge = () => store.purge();
  middleware.listUserSessions = async (user) => indexOf('listUserSessions').list(userArgument('listUserSessions', user));
  middleware.revokeUserSessions = async (user) => indexOf('revokeUserSessions').revoke(userArgument('revokeUserSessions', user));
  middleware.close = async () => {
    stopCleanup();
    await settled;
    await purging;
    await store.close();
  };
  return middleware;
}
