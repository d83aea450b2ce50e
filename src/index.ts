// The public surface: kvSession(), its option, session and error types, and the ctx.session typing for Koa.
import { createMiddleware, type KvSessionMiddleware } from './middleware.js';
import { RequestSessions } from './requests.js';
import { Sessions } from './sessions.js';
import { maskPassword, missingDriver } from './backends/registry.js';
import { SessionError } from './errors.js';
import { resolveSettings } from './options.js';
import type { KvSessionOptions } from './settings.js';
import { DEFAULT_STORE, startupNotices } from './store-option.js';
import type { Session, SessionAssignment } from './session-types.js';
import { warnOnce } from './warnings.js';

export type { CookieOptions, KvSessionOptions, StoreOption } from './settings.js';
export type { StoreAbilities } from './store-types.js';
export type { KeyvAdapterLike, KeyvInstanceLike } from './backends/keyv.js';
export { sessionExpires, sessionId, type KvSessionMiddleware } from './middleware.js';
export type { SessionEvent } from './audit.js';
export type { LoadedSession } from './sessions-api.js';
export type { UserSession } from './users.js';
export { STORE_CHANNEL, type StoreOperation, type StoreTraceContext } from './tracing.js';
export type {
  LooseSessionData,
  Session,
  SessionAssignment,
  SessionCallback,
  SessionControls,
  SessionData,
  SessionFields,
  UserKey,
} from './session-types.js';
export {
  isSessionError,
  SessionError,
  SessionOptionError,
  SessionStoreError,
  type SessionErrorCode,
} from './errors.js';

/**
 * Server-side sessions for Koa: only a random, signed session id travels in the cookie; the data
 * lives in a Keyv store. Options left out come from `SESSION_*` environment variables, then defaults.
 *
 * ```ts
 * app.keys = ['a long random secret'];
 * app.use(kvSession({ store: 'redis://127.0.0.1:6379' }));
 * app.use((ctx) => { ctx.session.views = (ctx.session.views ?? 0) + 1; ctx.body = ctx.session.views; });
 * ```
 * Throws SessionOptionError (code `SESSION_INVALID_OPTION`) naming the option or variable at fault.
 */
export function kvSession(options?: KvSessionOptions): KvSessionMiddleware {
  const settings = resolveSettings(options);
  const { store } = settings;
  // A store whose driver is not there fails here, once, not as a 500 on every request.
  const missing = store.kind === 'url' ? missingDriver(store.url) : undefined;
  if (missing !== undefined) {
    const named =
      store.kind === 'url' && store.url !== DEFAULT_STORE
        ? `the store ${maskPassword(store.url)}`
        : `the default store (${DEFAULT_STORE}: no store option, no SESSION_STORE)`;
    throw new SessionError(
      'SESSION_ADAPTER_MISSING',
      `koa-kv-session: ${named} ${missing}; or pass another store (the store option or SESSION_STORE)`,
    );
  }
  for (const notice of startupNotices(store)) warnOnce(notice.code, notice.message);
  const requests = new RequestSessions(settings);
  return Object.assign(createMiddleware(requests), new Sessions(requests).bound());
}

export default kvSession;

declare module 'koa' {
  interface ExtendableContext {
    /** The session: plain object of your data plus control members (`sid`, `regenerate()`, `destroy()`...). */
    get session(): Session;
    /** Assign an object to replace the data, or `null` to destroy the session. */
    set session(value: SessionAssignment);
  }
}
