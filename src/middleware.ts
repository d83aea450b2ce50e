// The middleware orders the steps of a request: load -> await next() -> commit -> response headers. Nothing else
// happens here.
import type { Context, Middleware, Next } from 'koa';
import { debugLog } from './debug.js';
import { cookieValues } from './cookie.js';
import type { Settings } from './settings.js';
import { carryHeaders, type Channel, type HttpClientError, isClientError, writeSession } from './respond.js';
import { SessionState } from './session.js';
import { NOTHING_FOUND, type RequestSessions } from './requests.js';
import type { SessionsApi } from './sessions-api.js';
import type { CommitPlan } from './plan.js';
import { sidFingerprint } from './sid.js';

const debug = debugLog('koa-kv-session');

/**
 * The middleware `kvSession()` returns, with the sessions service beside it (`ready()`, `close()`,
 * `revokeSession()`...).
 */
export interface KvSessionMiddleware extends Middleware, SessionsApi {}

const STATE = Symbol('koa-kv-session');

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
      if (state === undefined)
        throw new TypeError(
          'ctx.session was assigned outside the kvSession() middleware: app.use(kvSession()) must come before this ' +
            'middleware',
        );
      state.accessed = true;
      state.assign(value);
    },
  });
}

/** The middleware of kvSession(), on the sessions service its requests go through (index.ts puts the API beside it). */
export function createMiddleware(sessions: RequestSessions): Middleware {
  const { settings } = sessions;

  const middleware = async function kvSession(ctx: Context, next: Next): Promise<void> {
    installAccessor(ctx.app.context);
    sessions.onRequest(ctx.app);
    const signer = sessions.signer(ctx.app.keys, 'request');
    const { channel, values } = channelOf(ctx, settings, signer);

    // One storeTimeout is all the store time a request gets: loading, queueing and committing together.
    const loadStarted = Date.now();
    const { session: found, dead } =
      values.length === 0
        ? NOTHING_FOUND
        : await sessions.loadFromValues(values, signer, loadStarted + settings.storeTimeout, ctx);
    // What loading spent comes off the commit's time: the handler's own time does not count.
    const loadSpent = values.length === 0 ? 0 : Date.now() - loadStarted;
    const holder = ctx as SessionHolder;
    holder[STATE] =
      found === undefined
        ? settings
        : new SessionState(
            settings,
            { sid: found.sid, record: found.record, data: found.data, staleCookie: found.stale, storeSpent: loadSpent },
            sessions.taker,
          );

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

    try {
      // What loading and take() spent comes off the commit's time: the handler's own time does not count.
      const spent = holder[STATE] instanceof SessionState ? holder[STATE].storeSpent : loadSpent;
      const storing = commit(sessions, ctx, holder[STATE], dead, channel, Date.now() + settings.storeTimeout - spent);
      if (storing !== undefined) await storing;
    } catch (error) {
      // A failed commit never masks the handler's own error.
      if (thrown === undefined) throw error;
      sessions.report(error as Error, ctx);
    }
    if (thrown !== undefined) {
      // Koa's own error handler drops the headers set so far and sets the error's: the session's go there too.
      carryHeaders(thrown, ctx, ['Set-Cookie', 'Vary', ...(channel.header === undefined ? [] : [channel.header])]);
      throw thrown;
    }
  };
  return middleware;
}

/** Where this request's session travels (the cookie, or the session header) and the values it carries there. */
function channelOf(
  ctx: Context,
  settings: Settings,
  signer: Channel['signer'],
): { channel: Channel; values: string[] } {
  // A client that sends the session header (empty at first) carries its session there, not in a cookie.
  const sent = settings.header === undefined ? undefined : ctx.request.headers[settings.header];
  const channel: Channel = {
    cookie: settings.cookie,
    header: sent === undefined ? undefined : settings.header,
    signer,
  };
  const values =
    sent !== undefined
      ? [String(sent)].filter((value) => value !== '')
      : cookieValues(ctx.request.headers.cookie, settings.cookie.name);
  return { channel, values };
}

/**
 * The store steps of the commit, then what the response says of the session; with no session, only a dead cookie to
 * clear. Undefined when there is no store step (a read): the response is written at once, with no promise to wait for.
 */
function commit(
  sessions: RequestSessions,
  ctx: Context,
  used: SessionHolder[typeof STATE],
  dead: boolean,
  channel: Channel,
  deadline: number,
): Promise<void> | undefined {
  const { settings } = sessions;
  const state = used instanceof SessionState ? used : undefined;
  const plan = state?.plan(Date.now());
  if (plan === undefined && !dead) return undefined; // no session, never touched: nothing to do
  // A cookie function's attributes are settled before anything is stored: a bad result fails the request with nothing
  // written.
  const cookieMayChange =
    dead || (plan !== undefined && (plan.write !== undefined || plan.cookie !== undefined || plan.remove.length > 0));
  const sent =
    settings.cookieFor === undefined || channel.header !== undefined || !cookieMayChange
      ? channel
      : { ...channel, cookie: settings.cookieFor(ctx) };
  // A read-only request has no store step: no commit to wait for.
  const idle =
    plan === undefined ||
    (plan.write === undefined && plan.remove.length === 0 && plan.track === undefined && plan.untrack === undefined);
  if (idle) {
    respond(sessions, ctx, plan?.cookie, dead, state?.accessed === true, sent);
    return undefined;
  }
  return sessions.commit(plan, deadline, ctx).then((committed) => {
    respond(sessions, ctx, committed, dead, state?.accessed === true, sent);
  });
}

/** What the response says of the session: a cookie naming a session that is gone is cleared, unless one is sent. */
function respond(
  sessions: RequestSessions,
  ctx: Context,
  committed: CommitPlan['cookie'],
  dead: boolean,
  accessed: boolean,
  channel: Channel,
): void {
  writeSession(ctx, committed ?? (dead ? 'clear' : undefined), accessed, channel, (error) =>
    sessions.report(error, ctx),
  );
}
