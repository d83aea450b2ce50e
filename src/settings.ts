// The shapes of configuration: the options kvSession() takes (what autocompletes) and the frozen settings they resolve
// to (options.ts).
import type { Context } from 'koa';
import type { KeyvAdapterLike, KeyvInstanceLike } from './backends/keyv.js';
import type { CookieSettings } from './cookie.js';
import type { StoreSpec } from './store-types.js';
import type { UserKey } from './session-types.js';

/** Attributes of the sid cookie. */
export interface CookieOptions {
  /** Cookie name. Env `SESSION_COOKIE_NAME`. Default `session`. */
  name?: string;
  /** `Domain` attribute. Env `SESSION_COOKIE_DOMAIN`. Default: none (host-only cookie). */
  domain?: string;
  /** `Path` attribute. Env `SESSION_COOKIE_PATH`. Default `/`. */
  path?: string;
  /** `HttpOnly` attribute. Env `SESSION_COOKIE_HTTPONLY`. Default `true`. */
  httpOnly?: boolean;
  /**
   * `Secure` attribute; `'auto'` follows `ctx.secure` (mind `app.proxy` behind a proxy). Env `SESSION_COOKIE_SECURE`.
   * Default `'auto'`.
   */
  secure?: boolean | 'auto';
  /** `SameSite` attribute, or `false` for none at all. Env `SESSION_COOKIE_SAMESITE`. Default `'lax'`. */
  sameSite?: 'lax' | 'strict' | 'none' | false;
  /** `Partitioned` attribute (CHIPS); needs a secure cookie. Env `SESSION_COOKIE_PARTITIONED`. Default `false`. */
  partitioned?: boolean;
  /** Sign the sid with `keys` (or `app.keys`). Env `SESSION_COOKIE_SIGNED`. Default `true`. */
  signed?: boolean;
  /**
   * Replace a Set-Cookie of the same name set earlier in this response (as koa-session's `overwrite`). Env
   * `SESSION_COOKIE_OVERWRITE`. Default `false`.
   */
  overwrite?: boolean;
}

/** Anything `store` accepts: a connection URL, a Keyv 5 or 6 instance, a bare Keyv 5 or 6 adapter, or a Map. */
export type StoreOption = string | KeyvInstanceLike | KeyvAdapterLike | Map<unknown, unknown>;

/** Options of `kvSession()`. Each one can also come from a `SESSION_*` environment variable. */
export interface KvSessionOptions {
  /** Connection URL, Keyv instance or Keyv adapter. Env `SESSION_STORE`. Default `sqlite://./sessions.sqlite`. */
  store?: StoreOption;
  /**
   * New sessions are permanent (cookie with Expires) or browser-session cookies. Env `SESSION_PERMANENT`. Default
   * `true`.
   */
  permanent?: boolean;
  /**
   * Session lifetime: milliseconds or a duration (`'30m'`, `'12h'`, `'31d'`). Env `SESSION_LIFETIME` /
   * `PERMANENT_SESSION_LIFETIME` (seconds or a duration). Default 31 days.
   */
  lifetime?: number | string;
  /**
   * Server-side lifetime of a non-permanent (browser-session) session: milliseconds or a duration. Env
   * `SESSION_NON_PERMANENT_LIFETIME` (seconds or a duration). Default: `lifetime`, as in Flask.
   */
  nonPermanentLifetime?: number | string;
  /**
   * A session ends this long after it was created (or last regenerated), however active it is: milliseconds or a
   * duration. Env `SESSION_ABSOLUTE_LIFETIME` (seconds or a duration). Default: none.
   */
  absoluteLifetime?: number | string;
  /**
   * An active session keeps living: its expiry moves forward on use. Env `SESSION_REFRESH_EACH_REQUEST`. Default
   * `true`.
   */
  refreshEachRequest?: boolean;
  /**
   * An unmodified session is rewritten to extend its expiry at most once per this interval (`0`: every request, as
   * Flask). Env `SESSION_REFRESH_INTERVAL`. Default min(60 s, lifetime / 10).
   */
  refreshInterval?: number | string;
  /** Bytes of entropy in a session id (base64url encoded). At least 16. Env `SESSION_ID_LENGTH`. Default 32. */
  sidLength?: number;
  /** Prefix of every store key: the key is exactly `<keyPrefix><sid>`. Env `SESSION_KEY_PREFIX`. Default `session:`. */
  keyPrefix?: string;
  /**
   * Store the SHA-256 of each sid instead of the sid (keys, tombstones, user indexes): whoever
   * reads the store (a backup, a replica, `MONITOR`) cannot sign in with what they read. Env
   * `SESSION_HASH_SIDS`. Default `false` (Flask-Session's layout, `<keyPrefix><sid>`).
   */
  hashSids?: boolean;
  /**
   * Encoding of stored records; records in the other encoding are still read. Env `SESSION_SERIALIZATION_FORMAT`.
   * Default `'cbor'`.
   */
  serialization?: 'cbor' | 'json';
  /** Largest encoded record, in bytes. Env `SESSION_MAX_SIZE`. Default 65536. */
  maxSize?: number;
  /**
   * Keys that sign the cookie; the first signs, all verify. Env `SESSION_SECRET_KEYS` (comma-separated). Default
   * `app.keys`.
   */
  keys?: readonly string[];
  /**
   * Attributes of the sid cookie; or a function of the request that returns them (a `Domain` per
   * tenant host, say), its result merged over the `SESSION_COOKIE_*` variables and defaults. It is
   * called once in a request whose session is stored, changed or ended, or whose cookie is cleared,
   * before anything is stored: a bad result fails that request with nothing written. It cannot set
   * `name` or `signed`: both are needed to read the cookie, before any handler runs.
   *
   * ```ts
   * kvSession({ cookie: (ctx) => ({ domain: ctx.hostname.endsWith('b.example') ? 'b.example' : 'a.example' }) });
   * ```
   */
  cookie?: CookieOptions | ((ctx: Context) => CookieOptions);
  /**
   * Longest wait for one store call, retries included, in ms or a duration. Env `SESSION_STORE_TIMEOUT`. Default 2 s.
   */
  storeTimeout?: number | string;
  /**
   * How many times a failed store call is retried (with backoff, within storeTimeout). Env `SESSION_STORE_RETRIES`.
   * Default 2.
   */
  storeRetries?: number;
  /**
   * On average one request in N starts a purge of expired records in the background (0: never). Env
   * `SESSION_CLEANUP_N_REQUESTS`. Default 0.
   */
  cleanupEveryNRequests?: number;
  /**
   * A purge of expired records runs in the background this often: milliseconds or a duration (`0`
   * turns it off). Only on stores that keep expired records until purged (SQLite, PostgreSQL,
   * MySQL, memory, etcd, DynamoDB); never on Redis, Valkey or memcached, which expire keys
   * themselves. The timer never keeps the process alive; `close()` stops it. Env
   * `SESSION_CLEANUP_INTERVAL` (seconds or a duration). Default one hour.
   */
  cleanupInterval?: number | string;
  /**
   * The session field that identifies the user (e.g. `'userId'`). When set, the store also keeps an
   * index from each user to their sessions, for `listUserSessions(id)` and `revokeUserSessions(id)`
   * ("log out everywhere"). Env `SESSION_USER_KEY`. Default: none (no index, no extra store calls).
   */
  userKey?: UserKey;
  /**
   * With `userKey`: at most this many sessions per user (1 to 1000). A login past it signs out the
   * user's sessions that logged in longest ago. Env `SESSION_MAX_SESSIONS_PER_USER`. Default: 1000,
   * the hard cap per user.
   */
  maxSessionsPerUser?: number;
  /**
   * With `userKey`: a label for a session, made once, when it is first indexed (a login), and shown
   * as `label` by `listUserSessions()`: e.g. browser and OS from the User-Agent. At most 200
   * characters are kept; a label that contains the sid is dropped (a sid is a secret).
   */
  describe?: (ctx: Context) => string | undefined;
  /**
   * A request header (e.g. `'x-session'`) that API and mobile clients may carry the signed session
   * value in instead of a cookie. A client opts in by sending it (empty on its first request);
   * responses to it carry the value in the same header whenever the sid is issued or changes
   * (empty: the session ended), and no Set-Cookie. Cookie clients are unaffected and never get
   * the value in a header. Env `SESSION_HEADER`. Default: none.
   */
  header?: string;
  /** Called with errors the library handles without failing the request (corrupt records, start-up failures). */
  onError?: (error: Error, ctx?: Context) => void;
  /** Where `SESSION_*` variables are read from. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The resolved, validated configuration: built once by `kvSession()`, never re-checked per request. */
export interface Settings {
  readonly store: StoreSpec;
  readonly permanent: boolean;
  readonly lifetime: number;
  /** The idle lifetime of non-permanent sessions (equal to `lifetime` unless set). */
  readonly nonPermanentLifetime: number;
  /** How long after its creation a session ends at the latest; undefined: no such limit. */
  readonly absoluteLifetime: number | undefined;
  readonly refreshEachRequest: boolean;
  readonly refreshInterval: number;
  readonly sidLength: number;
  readonly keyPrefix: string;
  readonly hashSids: boolean;
  readonly serialization: 'cbor' | 'json';
  readonly maxSize: number;
  readonly keys: readonly string[] | undefined;
  readonly cookie: CookieSettings;
  /**
   * With a function as the `cookie` option: the attributes for one request (its result over `cookie`); undefined:
   * always `cookie`.
   */
  readonly cookieFor: ((ctx: Context) => CookieSettings) | undefined;
  readonly storeTimeout: number;
  readonly storeRetries: number;
  readonly cleanupEveryNRequests: number;
  /** Milliseconds between background purges (0: none); they run only on stores that keep expired records. */
  readonly cleanupInterval: number;
  readonly userKey: string | undefined;
  /** Live sessions a user may have at once (with userKey); undefined: no limit. */
  readonly maxSessionsPerUser: number | undefined;
  readonly describe: ((ctx: Context) => string | undefined) | undefined;
  /**
   * The request and response header that carries the session for clients that opt in, lower-cased; undefined: cookies
   * only.
   */
  readonly header: string | undefined;
  readonly onError: ((error: Error, ctx?: Context) => void) | undefined;
}
