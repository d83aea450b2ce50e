// User options and SESSION_* variables -> one frozen, validated settings object, from one table of options; every error names the option or variable at fault.
import { SessionOptionError } from './errors.js';
import { DAY, describe, fail, LIFETIME_RANGE, lookup, MAX_TIMER, parseBoolean, parseChoice, parseDuration, parseDurationWithin, parseInteger, parseSize, parseString, type Source } from './parse.js';
import type { StoreSpec } from './store.js';
import { SCHEMES, schemeRow } from './backends/registry.js';
import { maskPassword, schemeOf } from './backends/url.js';
import { handedIn } from './backends/handed-in.js';
import type { KvSessionOptions, Settings } from './settings.js';

export type { CookieOptions, CookieSettings, KvSessionOptions, Settings, StoreOption } from './settings.js';
export { COOKIE_OPTIONS } from './cookie-options.js';
import { CONTROL_MEMBERS } from './session-types.js';
import { COOKIE_NAME, COOKIE_OPTIONS, cookiePerRequest, resolveCookie } from './cookie-options.js';
import { checkKeyLengths, checkVariables, distance } from './warnings.js';
import { MAX_USER_SESSIONS } from './users.js';

export const DEFAULT_STORE = 'sqlite://./sessions.sqlite';
/** Refuses a query parameter a store URL's scheme does not take: any other one where all go to us, a near miss of ours elsewhere. */
function checkParameters(url: string, scheme: string, source: Source): void {
  const row = schemeRow(scheme);
  const query = url.indexOf('?');
  if (row === undefined || query === -1) return;
  const ours = row.parameters ?? [];
  for (const name of new URLSearchParams(url.slice(query + 1)).keys()) {
    if (ours.includes(name)) continue;
    const near = ours.find((candidate) => distance(name, candidate) <= 2);
    const known = ours.length === 0 ? 'it takes none' : `it takes ${ours.join(', ')}`;
    if (near !== undefined) fail(source, `unknown parameter ?${name}= in a ${scheme}:// URL: did you mean ?${near}=? (${known})`);
    if (row.strict === true) fail(source, `unknown parameter ?${name}= in a ${scheme}:// URL (${known})`);
  }
}

function parseStore(value: unknown, source: Source): StoreSpec {
  if (typeof value === 'string') {
    const url = value.trim();
    const scheme = schemeOf(url);
    // A path where a URL was expected: the SQLite file it surely means.
    if (scheme === undefined && /(^[./~]|\.(sqlite3?|db)$)/i.test(url)) {
      fail(source, `expected a store URL, got the path ${JSON.stringify(url)}: for a SQLite file there, write sqlite://${url}`);
    }
    if (schemeRow(scheme) === undefined) {
      fail(
        source,
        `unsupported store URL ${JSON.stringify(maskPassword(url))}: expected one of ${Object.keys(SCHEMES)
          .map((s) => `${s}://`)
          .join(', ')}`,
      );
    }
    checkParameters(url, scheme as string, source);
    return { kind: 'url', url, scheme: scheme as string };
  }
  if (typeof value === 'object' && value !== null) return { kind: 'given', value, handed: handedIn(value) };
  return fail(source, `expected a connection URL, a Keyv instance or adapter, a Map or a Redis client, got ${describe(value)}`);
}

/** What the table resolves: every setting but the cookie's (resolveCookie) and the hooks. */
type Resolved = Omit<Settings, 'cookie' | 'cookieFor' | 'describe' | 'onError'>;

/**
 * One option: its name, the variables that set it when the option is not given, how a value is
 * read (with the settings resolved before it), its default, and what it means. Adding an option is
 * a row here and its use.
 */
interface OptionRow<K extends keyof Resolved> {
  readonly name: K;
  readonly variables: readonly string[];
  readonly parse: (value: unknown, source: Source, before: Partial<Resolved>) => Resolved[K];
  readonly fallback: (before: Partial<Resolved>) => Resolved[K];
  readonly doc: string;
}
type AnyOptionRow = { [K in keyof Resolved]: OptionRow<K> }[keyof Resolved];

const row = <K extends keyof Resolved>(option: OptionRow<K>): OptionRow<K> => option;
const aLifetime = (value: unknown, source: Source): number => parseDurationWithin(value, source, ...LIFETIME_RANGE);
const integerWithin =
  (min: number, max: number, tooSmall: (n: number) => string, tooLarge: (n: number) => string) =>
  (value: unknown, source: Source): number => {
    const n = parseInteger(value, source);
    if (n < min) fail(source, tooSmall(n));
    if (n > max) fail(source, tooLarge(n));
    return n;
  };

/** Every option of kvSession() but `cookie` (its own table in resolveCookie), `describe`, `onError` and `env`, in the order they resolve. */
export const OPTIONS: readonly AnyOptionRow[] = [
  row({
    name: 'store',
    variables: ['SESSION_STORE'],
    parse: parseStore,
    fallback: () => parseStore(DEFAULT_STORE, { name: 'store', fromEnv: false }),
    doc: 'a connection URL, a Keyv instance or adapter, or a Map',
  }),
  row({ name: 'permanent', variables: ['SESSION_PERMANENT'], parse: parseBoolean, fallback: () => true, doc: 'new sessions get a persistent cookie, or a browser-session one' }),
  row({ name: 'lifetime', variables: ['SESSION_LIFETIME', 'PERMANENT_SESSION_LIFETIME'], parse: aLifetime, fallback: () => 31 * DAY, doc: 'the idle lifetime: server TTL and cookie' }),
  row({
    name: 'nonPermanentLifetime',
    variables: ['SESSION_NON_PERMANENT_LIFETIME'],
    parse: aLifetime,
    fallback: (before) => before.lifetime as number,
    doc: 'the idle lifetime of browser-session sessions',
  }),
  row({ name: 'absoluteLifetime', variables: ['SESSION_ABSOLUTE_LIFETIME'], parse: aLifetime, fallback: () => undefined, doc: 'a session ends this long after its login, however active' }),
  row({
    name: 'cleanupInterval',
    variables: ['SESSION_CLEANUP_INTERVAL'],
    parse: (value, source) => {
      const ms = parseDuration(value, source);
      if (ms !== 0 && ms < 1000) fail(source, `must be 0 (no background cleanup) or at least one second, got ${ms} ms`);
      if (ms > MAX_TIMER) fail(source, `must be at most 24 days (the longest timer Node keeps), got ${describe(value)}`);
      return ms;
    },
    fallback: () => 3_600_000,
    doc: 'how often a background purge runs where the store keeps expired records (0: off)',
  }),
  row({ name: 'refreshEachRequest', variables: ['SESSION_REFRESH_EACH_REQUEST'], parse: parseBoolean, fallback: () => true, doc: 'an active session keeps living' }),
  row({
    name: 'refreshInterval',
    variables: ['SESSION_REFRESH_INTERVAL'],
    parse: (value, source, before) => {
      const ms = parseDuration(value, source);
      if (ms > (before.lifetime as number)) fail(source, `must not be longer than the lifetime (${before.lifetime} ms), got ${ms} ms`);
      return ms;
    },
    fallback: (before) => Math.min(60_000, Math.floor(Math.min(before.lifetime as number, before.nonPermanentLifetime as number) / 10)),
    doc: 'an unchanged session is rewritten at most this often to extend its expiry',
  }),
  row({
    name: 'sidLength',
    variables: ['SESSION_ID_LENGTH'],
    parse: integerWithin(
      16,
      256,
      (n) => `must be at least 16 bytes of entropy (128 bits), got ${n}`,
      (n) => `must be at most 256 bytes, got ${n}`,
    ),
    fallback: () => 32,
    doc: 'bytes of entropy in a sid',
  }),
  row({
    name: 'keyPrefix',
    variables: ['SESSION_KEY_PREFIX'],
    parse: (value, source) => {
      const text = parseString(value, source);
      if (text.length > 128 || /[\s\0]/.test(text)) fail(source, `must be at most 128 characters without whitespace, got ${JSON.stringify(text)}`);
      return text;
    },
    fallback: () => 'session:',
    doc: 'the store key is exactly <keyPrefix><sid> (with hashSids, <keyPrefix><SHA-256 of the sid>)',
  }),
  row({ name: 'hashSids', variables: ['SESSION_HASH_SIDS'], parse: parseBoolean, fallback: () => false, doc: 'store a hash of the sid, never the sid: a copy of the store signs nobody in' }),
  row({
    name: 'serialization',
    variables: ['SESSION_SERIALIZATION_FORMAT'],
    parse: (v, s) => parseChoice(['cbor', 'json'] as const, v, s),
    fallback: () => 'cbor' as const,
    doc: 'how records are encoded',
  }),
  row({
    name: 'maxSize',
    variables: ['SESSION_MAX_SIZE'],
    parse: (value, source) => {
      const n = parseSize(value, source);
      if (n < 64) fail(source, `must be at least 64 bytes, got ${n}`);
      return n;
    },
    fallback: () => 65_536,
    doc: 'the largest encoded record, in bytes',
  }),
  row({
    name: 'keys',
    variables: ['SESSION_SECRET_KEYS'],
    parse: (value, source) => {
      const list = source.fromEnv && typeof value === 'string' ? value.split(',').map((k) => k.trim()) : value;
      if (!Array.isArray(list) || list.length === 0 || !list.every((k) => typeof k === 'string' && k.length > 0)) {
        fail(source, source.fromEnv ? 'expected a comma-separated list of non-empty keys' : `expected a non-empty array of non-empty strings, got ${describe(value)}`);
      }
      checkKeyLengths(list as string[], source.name);
      return Object.freeze([...(list as string[])]);
    },
    fallback: () => undefined,
    doc: 'keys that sign the cookie, the first signs',
  }),
  row({
    name: 'storeTimeout',
    variables: ['SESSION_STORE_TIMEOUT'],
    // A bare number over a minute was meant as milliseconds (SESSION_STORE_TIMEOUT=500): refused, saying so.
    parse: (value, source) => parseDurationWithin(value, source, { ms: 1, text: '1 ms' }, { ms: 600_000, text: '10 minutes (no request should wait longer for its session)' }, 60_000),
    fallback: () => 2000,
    doc: 'all the store time a request gets',
  }),
  row({
    name: 'storeRetries',
    variables: ['SESSION_STORE_RETRIES'],
    parse: integerWithin(
      0,
      10,
      (n) => `must be between 0 and 10, got ${n}`,
      (n) => `must be between 0 and 10, got ${n}`,
    ),
    fallback: () => 2,
    doc: 'retries of a failed store call, within storeTimeout',
  }),
  row({
    name: 'cleanupEveryNRequests',
    variables: ['SESSION_CLEANUP_N_REQUESTS'],
    parse: integerWithin(
      0,
      Number.MAX_SAFE_INTEGER,
      (n) => `must be 0 (never) or a positive number of requests, got ${n}`,
      (n) => `got ${n}`,
    ),
    fallback: () => 0,
    doc: 'one request in N starts a background purge (0: never)',
  }),
  row({
    name: 'userKey',
    variables: ['SESSION_USER_KEY'],
    parse: (value, source) => {
      const text = parseString(value, source).trim();
      if (text === '') fail(source, 'must name a session field, such as "userId", or a dotted path such as "passport.user"');
      if (text.split('.').includes('')) fail(source, `must be a field name or a dotted path such as "passport.user", got ${JSON.stringify(text)}`);
      const field = text.split('.')[0] as string;
      if (CONTROL_MEMBERS.has(field)) fail(source, `"${field}" is a control member of ctx.session, not a data field; name the field that holds the user id`);
      return text;
    },
    fallback: () => undefined,
    doc: 'the session field that holds the user id, or a dotted path to it (passport: "passport.user")',
  }),
  row({
    name: 'maxSessionsPerUser',
    variables: ['SESSION_MAX_SESSIONS_PER_USER'],
    parse: (value, source, before) => {
      const n = integerWithin(
        1,
        MAX_USER_SESSIONS,
        (got) => `must be at least 1 session, got ${got}`,
        (got) => `must be at most ${MAX_USER_SESSIONS} sessions (the most one user can have), got ${got}`,
      )(value, source);
      if (before.userKey === undefined) fail(source, 'needs userKey (or SESSION_USER_KEY): the session field that holds the user id, so that the sessions of a user can be counted');
      return n;
    },
    fallback: () => undefined,
    doc: 'the most sessions one user may have',
  }),
  row({
    name: 'header',
    variables: ['SESSION_HEADER'],
    parse: (value, source) => {
      const text = parseString(value, source).trim().toLowerCase();
      if (!COOKIE_NAME.test(text)) fail(source, `must be an HTTP header name such as "x-session", got ${JSON.stringify(text)}`);
      if (text === 'cookie' || text === 'set-cookie') fail(source, 'must be a header of its own, not Cookie or Set-Cookie');
      return text;
    },
    fallback: () => undefined,
    doc: 'a header API clients may carry the session in',
  }),
];

/** The SESSION_* variables read, by any option or cookie attribute. */
export const KNOWN_VARIABLES: readonly string[] = [...OPTIONS.flatMap((option) => option.variables), ...COOKIE_OPTIONS.map((key) => `SESSION_COOKIE_${key.toUpperCase()}`)];

/** The options `kvSession()` takes. */
export const KNOWN_OPTIONS: readonly string[] = [...OPTIONS.map((option) => option.name), 'cookie', 'describe', 'onError', 'env'];

/** Resolves options, then `SESSION_*` variables, then defaults, into frozen settings; throws `SessionOptionError` naming the option or variable. */
export function resolveSettings(input: KvSessionOptions | undefined = {}): Settings {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SessionOptionError('options', `kvSession() takes an options object, got ${describe(input)}`);
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN_OPTIONS.includes(key)) throw new SessionOptionError(key, `unknown option; known options: ${KNOWN_OPTIONS.join(', ')}`);
  }
  const env = input.env ?? process.env;
  // Set but empty reads as unset everywhere else; for the keys that would mean app.keys, or a 500 on
  // every request when the app has none: said here instead.
  if (input.keys === undefined && env.SESSION_SECRET_KEYS !== undefined && env.SESSION_SECRET_KEYS.trim() === '') {
    throw new SessionOptionError('SESSION_SECRET_KEYS', 'is set but empty: set it to comma-separated secret keys (the first signs), or unset it to sign with app.keys');
  }
  checkVariables(env, KNOWN_VARIABLES);
  const resolved: Partial<Record<keyof Resolved, unknown>> = {};
  for (const option of OPTIONS) {
    const found = lookup(input, option.name, env, option.variables);
    const before = resolved as Partial<Resolved>;
    resolved[option.name] = found ? option.parse(found.value, found.source, before) : option.fallback(before);
  }
  const perRequest = typeof input.cookie === 'function' ? input.cookie : undefined;
  const cookie = resolveCookie(perRequest === undefined ? input.cookie : undefined, env);
  const cookieFor = perRequest === undefined ? undefined : cookiePerRequest(perRequest, env);
  if (input.describe !== undefined && typeof input.describe !== 'function') {
    throw new SessionOptionError('describe', `expected a function of ctx that returns a label, got ${describe(input.describe)}`);
  }
  if (input.onError !== undefined && typeof input.onError !== 'function') {
    throw new SessionOptionError('onError', `expected a function, got ${describe(input.onError)}`);
  }
  return Object.freeze({ ...(resolved as Resolved), cookie, cookieFor, describe: input.describe, onError: input.onError });
}
