// The public API beside the middleware, as kvSession()'s result autocompletes it: sessions outside a request,
// and what load() hands out.
import type { KeysLike } from './cookie.js';
import type { SessionFields, Session } from './session-types.js';
import type { StoreAbilities } from './store-types.js';
import type { UserSession } from './users.js';

/** What `kvSession()` offers beyond the middleware itself: sessions outside a request. */
export interface SessionsApi {
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
  /**
   * Closes the store connection this middleware opened (never one you passed in, never one shared with another instance
   * still open).
   */
  close(): Promise<void>;
  /**
   * Deletes expired session records (SQL, SQLite, memory; 0 on Redis, which expires keys itself) and resolves with how
   * many. The `cleanupInterval` timer calls it for you.
   */
  purge(): Promise<number>;
  /**
   * The live sessions of a user (the value of the `userKey` field), latest expiry first. Reads the
   * user's index and each session it names: no scan, on every backend. Needs the `userKey` option.
   */
  listUserSessions(user: string | number): Promise<UserSession[]>;
  /**
   * Signs out every live session of a user ("log out everywhere") and resolves with how many; with
   * `except`, all but that session (after a password change: `{ except: ctx.session.sid }`). Needs
   * the `userKey` option.
   */
  revokeUserSessions(user: string | number, options?: { readonly except?: string }): Promise<number>;
  /**
   * Signs one session out, wherever it is used, and resolves true, or false when there was no such
   * live session: a session a racing `regenerate()` moved is followed to its new sid. A request of
   * that session in flight cannot bring it back. Takes the sid, or `{ user, id }` with the safe `id`
   * of a `listUserSessions()` entry (a devices page never needs the sid; `{ user, id }` needs `userKey`).
   */
  revokeSession(session: string | { readonly user: string | number; readonly id: string }): Promise<boolean>;
  /**
   * The session a Cookie header names, read-only, or undefined: for a WebSocket upgrade
   * (`server.on('upgrade', (req) => sessions.load(req.headers.cookie))`) or an SSE stream. The
   * signature and the sid are checked exactly as for a request, before the store is read. Signing
   * keys come from the `keys` option, else from `app.keys`: pass the app (`load(header, app)`) for an
   * upgrade that may come before the app has served any request.
   */
  load(
    cookieHeader: string | undefined,
    app?: { readonly keys?: KeysLike | undefined },
  ): Promise<LoadedSession | undefined>;
  /**
   * Changes one session outside a request (an admin action, a background job) through the same
   * per-key merge and compare-and-set as a request, so requests of that session racing it lose
   * nothing. `change` gets the session as a handler gets `ctx.session` (set and delete keys, set
   * `permanent` or `lifetime`, `destroy()`); resolves false when the session is gone (destroyed,
   * revoked, expired), and writes nothing then.
   */
  update(sid: string, change: (session: Session) => void | Promise<void>): Promise<boolean>;
}

/** A session as `load()` reads it: a copy of its data (changing it changes nothing stored). */
export interface LoadedSession {
  /** The session id: a bearer secret, as `UserSession.sid`. */
  readonly sid: string;
  /** Its safe fingerprint, as `UserSession.id` and `sessionId(ctx)`. */
  readonly id: string;
  readonly data: SessionFields;
  readonly permanent: boolean;
  readonly expires: Date;
  /** When it was created or last regenerated; undefined for a record whose header does not say. */
  readonly createdAt: Date | undefined;
}
