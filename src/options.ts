// User options and SESSION_* variables -> one frozen, validated settings object; every error names the option or variable at fault.
import type { Context } from 'koa';
import { SessionOptionError } from './errors.js';
import { DAY, describe, fail, LIFETIME_RANGE, lookup, MAX_TIMER, parseBoolean, parseChoice, parseDuration, parseDurationWithin, parseInteger, parseSize, parseString, type Source } from './parse.js';
import type { StoreSpec } from './store.js';
import { SCHEMES, schemeRow } from './backends/registry.js';
import { maskPassword, schemeOf } from './backends/url.js';
import { isKeyvAdapter, isKeyvInstance, type KeyvAdapterLike, type KeyvInstanceLike } from './backends/keyv.js';
import { CONTROL_MEMBERS } from './session.js';
import { MAX_USER_SESSIONS } from './users.js';

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
  /** `Secure` attribute; `'auto'` follows `ctx.secure` (mind `app.proxy` behind a proxy). Env `SESSION_COOKIE_SECURE`. Default `'auto'`. */
  secure?: boolean | 'auto';
  /** `SameSite` attribute, or `false` for none at all. Env `SESSION_COOKIE_SAMESITE`. Default `'lax'`. */
  sameSite?: 'lax' | 'strict' | 'none' | false;
  /** `Partitioned` attribute (CHIPS); needs a secure cookie. Env `SESSION_COOKIE_PARTITIONED`. Default `false`. */
  partitioned?: boolean;
  /** Sign the sid with `keys` (or `app.keys`). Env `SESSION_COOKIE_SIGNED`. Default `true`. */
  signed?: boolean;
  /** Replace a Set-Cookie of the same name set earlier in this response (as koa-session's `overwrite`). Env `SESSION_COOKIE_OVERWRITE`. Default `false`. */
  overwrite?: boolean;
}

/** Anything `store` accepts: a connection URL, a Keyv 5 or 6 instance, a bare Keyv 5 or 6 adapter, or a Map. */
export type StoreOption = string | KeyvInstanceLike | KeyvAdapterLike | Map<unknown, unknown>;

/** Options of `kvSession()`. Each one can also come from a `SESSION_*` environment variable. */
export interface KvSessionOptions {
  /** Connection URL, Keyv instance or Keyv adapter. Env `SESSION_STORE`. Default `sqlite://./sessions.sqlite`. */
  store?: StoreOption;
  /** New sessions are permanent (cookie with Expires) or browser-session cookies. Env `SESSION_PERMANENT`. Default `true`. */
  permanent?: boolean;
  /** Session lifetime: milliseconds or a duration (`'30m'`, `'12h'`, `'31d'`). Env `SESSION_LIFETIME` / `PERMANENT_SESSION_LIFETIME` (seconds or a duration). Default 31 days. */
  lifetime?: number | string;
  /** Server-side lifetime of a non-permanent (browser-session) session: milliseconds or a duration. Env `SESSION_NON_PERMANENT_LIFETIME` (seconds or a duration). Default: `lifetime`, as in Flask. */
  nonPermanentLifetime?: number | string;
  /** A session ends this long after it was created (or last regenerated), however active it is: milliseconds or a duration. Env `SESSION_ABSOLUTE_LIFETIME` (seconds or a duration). Default: none. */
  absoluteLifetime?: number | string;
  /** An active session keeps living: its expiry moves forward on use. Env `SESSION_REFRESH_EACH_REQUEST`. Default `true`. */
  refreshEachRequest?: boolean;
  /** An unmodified session is rewritten to extend its expiry at most once per this interval (`0`: every request, as Flask). Env `SESSION_REFRESH_INTERVAL`. Default min(60 s, lifetime / 10). */
  refreshInterval?: number | string;
  /** Bytes of entropy in a session id (base64url encoded). At least 16. Env `SESSION_ID_LENGTH`. Default 32. */
  sidLength?: number;
  /** Prefix of every store key: the key is exactly `<keyPrefix><sid>`. Env `SESSION_KEY_PREFIX`. Default `session:`. */
  keyPrefix?: string;
  /** Encoding of stored records; records in the other encoding are still read. Env `SESSION_SERIALIZATION_FORMAT`. Default `'cbor'`. */
  serialization?: 'cbor' | 'json';
  /** Largest encoded record, in bytes. Env `SESSION_MAX_SIZE`. Default 65536. */
  maxSize?: number;
  /** Keys that sign the cookie; the first signs, all verify. Env `SESSION_SECRET_KEYS` (comma-separated). Default `app.keys`. */
  keys?: readonly string[];
  /** Attributes of the sid cookie. */
  cookie?: CookieOptions;
  /** Longest wait for one store call, retries included, in ms or a duration. Env `SESSION_STORE_TIMEOUT`. Default 2 s. */
  storeTimeout?: number | string;
  /** How many times a failed store call is retried (with backoff, within storeTimeout). Env `SESSION_STORE_RETRIES`. Default 2. */
  storeRetries?: number;
  /** On average one request in N starts a purge of expired records in the background (0: never). Env `SESSION_CLEANUP_N_REQUESTS`. Default 0. */
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
  userKey?: string;
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

export interface CookieSettings {
  readonly name: string;
  readonly domain: string | undefined;
  readonly path: string;
  readonly httpOnly: boolean;
  readonly secure: boolean | 'auto';
  readonly sameSite: 'lax' | 'strict' | 'none' | false;
  readonly partitioned: boolean;
  readonly signed: boolean;
  readonly overwrite: boolean;
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
  readonly serialization: 'cbor' | 'json';
  readonly maxSize: number;
  readonly keys: readonly string[] | undefined;
  readonly cookie: CookieSettings;
  readonly storeTimeout: number;
  readonly storeRetries: number;
  readonly cleanupEveryNRequests: number;
  /** Milliseconds between background purges (0: none); they run only on stores that keep expired records. */
  readonly cleanupInterval: number;
  readonly userKey: string | undefined;
  /** Live sessions a user may have at once (with userKey); undefined: no limit. */
  readonly maxSessionsPerUser: number | undefined;
  readonly describe: ((ctx: Context) => string | undefined) | undefined;
  /** The request and response header that carries the session for clients that opt in, lower-cased; undefined: cookies only. */
  readonly header: string | undefined;
  readonly onError: ((error: Error, ctx?: Context) => void) | undefined;
}

export const DEFAULT_STORE = 'sqlite://./sessions.sqlite';
// RFC 6265 token characters: what a cookie name may hold.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Attribute values must not end the attribute early or smuggle another one in.
const COOKIE_ATTRIBUTE = /^[\x21-\x3a\x3c-\x7e]+$/;

function parseStore(value: unknown, source: Source): StoreSpec {
  if (typeof value === 'string') {
    const url = value.trim();
    const scheme = schemeOf(url);
    if (schemeRow(scheme) === undefined) {
      fail(
        source,
        `unsupported store URL ${JSON.stringify(maskPassword(url))}: expected one of ${Object.keys(SCHEMES)
          .map((s) => `${s}://`)
          .join(', ')}`,
      );
    }
    return { kind: 'url', url, scheme: scheme as string };
  }
  if (value instanceof Map) return { kind: 'adapter', adapter: value };
  if (typeof value === 'object' && value !== null) {
    if (isKeyvInstance(value)) return { kind: 'keyv', keyv: value };
    if (isKeyvAdapter(value)) return { kind: 'adapter', adapter: value };
  }
  return fail(source, `expected a connection URL, a Keyv instance or a Keyv adapter, got ${describe(value)}`);
}

function cookieAttribute(value: string, source: Source): string {
  if (!COOKIE_ATTRIBUTE.test(value)) fail(source, `must be printable ASCII without spaces or ";", got ${JSON.stringify(value)}`);
  return value;
}

function resolveCookie(input: unknown, env: Readonly<Record<string, string | undefined>>): CookieSettings {
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    throw new SessionOptionError('cookie', `expected an object of cookie attributes, got ${describe(input)}`);
  }
  const options = (input ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!COOKIE_OPTIONS.includes(key)) throw new SessionOptionError(`cookie.${key}`, `unknown cookie option; known: ${COOKIE_OPTIONS.join(', ')}`);
  }
  const get = <T>(key: string, variable: string, parse: (value: unknown, source: Source) => T, fallback: T): T => {
    const found = lookup(options, key, env, [variable]);
    if (!found) return fallback;
    const source = found.source.fromEnv ? found.source : { name: `cookie.${key}`, fromEnv: false };
    return parse(found.value, source);
  };
  const name = get(
    'name',
    'SESSION_COOKIE_NAME',
    (value, source) => {
      const text = parseString(value, source);
      if (!COOKIE_NAME.test(text)) fail(source, `must be a cookie token (letters, digits and !#$%&'*+-.^_\`|~), got ${JSON.stringify(text)}`);
      return text;
    },
    'session',
  );
  const domain = get('domain', 'SESSION_COOKIE_DOMAIN', (v, s) => cookieAttribute(parseString(v, s), s), undefined as string | undefined);
  const path = get(
    'path',
    'SESSION_COOKIE_PATH',
    (value, source) => {
      const text = cookieAttribute(parseString(value, source), source);
      if (!text.startsWith('/')) fail(source, `must start with "/", got ${JSON.stringify(text)}`);
      return text;
    },
    '/',
  );
  const httpOnly = get('httpOnly', 'SESSION_COOKIE_HTTPONLY', parseBoolean, true);
  const secure = get(
    'secure',
    'SESSION_COOKIE_SECURE',
    (value, source): boolean | 'auto' => (value === 'auto' || (typeof value === 'string' && value.trim().toLowerCase() === 'auto') ? 'auto' : parseBoolean(value, source)),
    'auto',
  );
  const sameSite = get(
    'sameSite',
    'SESSION_COOKIE_SAMESITE',
    (value, source): CookieSettings['sameSite'] => {
      if (value === false || (source.fromEnv && typeof value === 'string' && ['false', 'off', 'no'].includes(value.trim().toLowerCase()))) {
        return false;
      }
      return parseChoice(['lax', 'strict', 'none'] as const, value, source);
    },
    'lax' as CookieSettings['sameSite'],
  );
  const partitioned = get('partitioned', 'SESSION_COOKIE_PARTITIONED', parseBoolean, false);
  const signed = get('signed', 'SESSION_COOKIE_SIGNED', parseBoolean, true);
  const overwrite = get('overwrite', 'SESSION_COOKIE_OVERWRITE', parseBoolean, false);
  if (sameSite === 'none' && secure === false) {
    throw new SessionOptionError('cookie.sameSite', 'SameSite=None needs a Secure cookie (browsers drop it otherwise): set cookie.secure to true or "auto"');
  }
  if (partitioned && secure === false) {
    throw new SessionOptionError('cookie.partitioned', 'a Partitioned cookie must be Secure: set cookie.secure to true or "auto"');
  }
  return Object.freeze({ name, domain, path, httpOnly, secure, sameSite, partitioned, signed, overwrite });
}

/** The attributes `cookie` takes. */
export const COOKIE_OPTIONS = ['name', 'domain', 'path', 'httpOnly', 'secure', 'sameSite', 'partitioned', 'signed', 'overwrite'];

/** The options `kvSession()` takes. */
export const KNOWN_OPTIONS = [
  'store',
  'permanent',
  'lifetime',
  'nonPermanentLifetime',
  'absoluteLifetime',
  'cleanupInterval',
  'refreshEachRequest',
  'refreshInterval',
  'sidLength',
  'keyPrefix',
  'serialization',
  'maxSize',
  'keys',
  'cookie',
  'storeTimeout',
  'storeRetries',
  'cleanupEveryNRequests',
  'userKey',
  'maxSessionsPerUser',
  'describe',
  'header',
  'onError',
  'env',
];

/** Resolves options, then `SESSION_*` variables, then defaults, into frozen settings; throws `SessionOptionError`. */
export function resolveSettings(input: KvSessionOptions | undefined = {}): Settings {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SessionOptionError('options', `kvSession() takes an options object, got ${describe(input)}`);
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN_OPTIONS.includes(key)) {
      throw new SessionOptionError(key, `unknown option; known options: ${KNOWN_OPTIONS.join(', ')}`);
    }
  }
  const env = input.env ?? process.env;
  const get = <T>(option: string, variables: readonly string[], parse: (value: unknown, source: Source) => T, fallback: T): T => {
    const found = lookup(input, option, env, variables);
    return found ? parse(found.value, found.source) : fallback;
  };

  const store = get('store', ['SESSION_STORE'], parseStore, parseStore(DEFAULT_STORE, { name: 'store', fromEnv: false }));
  const permanent = get('permanent', ['SESSION_PERMANENT'], parseBoolean, true);
  const lifetimeSource = lookup(input, 'lifetime', env, ['SESSION_LIFETIME', 'PERMANENT_SESSION_LIFETIME']);
  const aLifetime = (value: unknown, source: Source): number => parseDurationWithin(value, source, ...LIFETIME_RANGE);
  const lifetime = lifetimeSource ? aLifetime(lifetimeSource.value, lifetimeSource.source) : 31 * DAY;
  const nonPermanentLifetime = get('nonPermanentLifetime', ['SESSION_NON_PERMANENT_LIFETIME'], aLifetime, lifetime);
  const absoluteLifetime = get('absoluteLifetime', ['SESSION_ABSOLUTE_LIFETIME'], aLifetime, undefined as number | undefined);
  const cleanupInterval = get(
    'cleanupInterval',
    ['SESSION_CLEANUP_INTERVAL'],
    (value, source) => {
      const ms = parseDuration(value, source);
      if (ms !== 0 && ms < 1000) fail(source, `must be 0 (no background cleanup) or at least one second, got ${ms} ms`);
      if (ms > MAX_TIMER) fail(source, `must be at most 24 days (the longest timer Node keeps), got ${describe(value)}`);
      return ms;
    },
    3_600_000,
  );
  const refreshEachRequest = get('refreshEachRequest', ['SESSION_REFRESH_EACH_REQUEST'], parseBoolean, true);
  const intervalSource = lookup(input, 'refreshInterval', env, ['SESSION_REFRESH_INTERVAL']);
  const refreshInterval = intervalSource ? parseDuration(intervalSource.value, intervalSource.source) : Math.min(60_000, Math.floor(Math.min(lifetime, nonPermanentLifetime) / 10));
  if (intervalSource && refreshInterval > lifetime) {
    fail(intervalSource.source, `must not be longer than the lifetime (${lifetime} ms), got ${refreshInterval} ms`);
  }
  const sidLength = get(
    'sidLength',
    ['SESSION_ID_LENGTH'],
    (value, source) => {
      const n = parseInteger(value, source);
      if (n < 16) fail(source, `must be at least 16 bytes of entropy (128 bits), got ${n}`);
      if (n > 256) fail(source, `must be at most 256 bytes, got ${n}`);
      return n;
    },
    32,
  );
  const keyPrefix = get(
    'keyPrefix',
    ['SESSION_KEY_PREFIX'],
    (value, source) => {
      const text = parseString(value, source);
      if (text.length > 128 || /[\s\0]/.test(text)) fail(source, `must be at most 128 characters without whitespace, got ${JSON.stringify(text)}`);
      return text;
    },
    'session:',
  );
  const serialization = get('serialization', ['SESSION_SERIALIZATION_FORMAT'], (v, s) => parseChoice(['cbor', 'json'] as const, v, s), 'cbor' as const);
  const maxSize = get(
    'maxSize',
    ['SESSION_MAX_SIZE'],
    (value, source) => {
      const n = parseSize(value, source);
      if (n < 64) fail(source, `must be at least 64 bytes, got ${n}`);
      return n;
    },
    65_536,
  );
  const keys = get(
    'keys',
    ['SESSION_SECRET_KEYS'],
    (value, source): readonly string[] => {
      const list = source.fromEnv && typeof value === 'string' ? value.split(',').map((k) => k.trim()) : value;
      if (!Array.isArray(list) || list.length === 0 || !list.every((k) => typeof k === 'string' && k.length > 0)) {
        fail(source, source.fromEnv ? 'expected a comma-separated list of non-empty keys' : `expected a non-empty array of non-empty strings, got ${describe(value)}`);
      }
      return Object.freeze([...(list as string[])]);
    },
    undefined as readonly string[] | undefined,
  );
  const cookie = resolveCookie(input.cookie, env);
  const storeTimeout = get(
    'storeTimeout',
    ['SESSION_STORE_TIMEOUT'],
    (value, source) => {
      return parseDurationWithin(value, source, { ms: 1, text: '1 ms' }, { ms: 600_000, text: '10 minutes (no request should wait longer for its session)' });
    },
    2000,
  );
  const storeRetries = get(
    'storeRetries',
    ['SESSION_STORE_RETRIES'],
    (value, source) => {
      const n = parseInteger(value, source);
      if (n < 0 || n > 10) fail(source, `must be between 0 and 10, got ${n}`);
      return n;
    },
    2,
  );
  const cleanupEveryNRequests = get(
    'cleanupEveryNRequests',
    ['SESSION_CLEANUP_N_REQUESTS'],
    (value, source) => {
      const n = parseInteger(value, source);
      if (n < 0) fail(source, `must be 0 (never) or a positive number of requests, got ${n}`);
      return n;
    },
    0,
  );
  const userKey = get(
    'userKey',
    ['SESSION_USER_KEY'],
    (value, source) => {
      const text = parseString(value, source).trim();
      if (text === '') fail(source, 'must name a session field, such as "userId"');
      if (CONTROL_MEMBERS.has(text)) fail(source, `"${text}" is a control member of ctx.session, not a data field; name the field that holds the user id`);
      return text;
    },
    undefined as string | undefined,
  );
  const maxSessionsPerUser = get(
    'maxSessionsPerUser',
    ['SESSION_MAX_SESSIONS_PER_USER'],
    (value, source) => {
      const n = parseInteger(value, source);
      if (n < 1) fail(source, `must be at least 1 session, got ${n}`);
      if (n > MAX_USER_SESSIONS) fail(source, `must be at most ${MAX_USER_SESSIONS} sessions (the most one user can have), got ${n}`);
      return n;
    },
    undefined as number | undefined,
  );
  if (maxSessionsPerUser !== undefined && userKey === undefined) {
    const source = lookup(input, 'maxSessionsPerUser', env, ['SESSION_MAX_SESSIONS_PER_USER'])?.source ?? { name: 'maxSessionsPerUser', fromEnv: false };
    fail(source, 'needs userKey (or SESSION_USER_KEY): the session field that holds the user id, so that the sessions of a user can be counted');
  }
  const header = get(
    'header',
    ['SESSION_HEADER'],
    (value, source) => {
      const text = parseString(value, source).trim().toLowerCase();
      if (!COOKIE_NAME.test(text)) fail(source, `must be an HTTP header name such as "x-session", got ${JSON.stringify(text)}`);
      if (text === 'cookie' || text === 'set-cookie') fail(source, 'must be a header of its own, not Cookie or Set-Cookie');
      return text;
    },
    undefined as string | undefined,
  );
  if (input.describe !== undefined && typeof input.describe !== 'function') {
    throw new SessionOptionError('describe', `expected a function of ctx that returns a label, got ${describe(input.describe)}`);
  }
  if (input.onError !== undefined && typeof input.onError !== 'function') {
    throw new SessionOptionError('onError', `expected a function, got ${describe(input.onError)}`);
  }

  return Object.freeze({
    store,
    permanent,
    lifetime,
    nonPermanentLifetime,
    absoluteLifetime,
    refreshEachRequest,
    refreshInterval,
    sidLength,
    keyPrefix,
    serialization,
    maxSize,
    keys,
    cookie,
    storeTimeout,
    storeRetries,
    cleanupEveryNRequests,
    cleanupInterval,
    userKey,
    maxSessionsPerUser,
    describe: input.describe,
    header,
    onError: input.onError,
  });
}
