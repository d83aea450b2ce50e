// The table of options: for each, the SESSION_* variables that set it, how a value is read and checked, its
// default, and what it means (options.ts resolves it).
import {
  DAY,
  describe,
  fail,
  LIFETIME_RANGE,
  MAX_TIMER,
  parseBoolean,
  parseChoice,
  parseDuration,
  parseDurationWithin,
  parseInteger,
  parseSize,
  parseString,
  type Source,
} from './parse.js';
import { DEFAULT_STORE, parseStore } from './store-option.js';
import type { Settings } from './settings.js';

import { CONTROL_MEMBERS } from './session-types.js';
import { COOKIE_NAME } from './cookie-options.js';
import { checkKeyLengths } from './warnings.js';
import { MAX_USER_SESSIONS } from './user-entries.js';

/** What the table resolves: every setting but the cookie's (resolveCookie) and the hooks. */
export type Resolved = Omit<Settings, 'cookie' | 'cookieFor' | 'describe' | 'onError'>;

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

/**
 * Every option of kvSession() but `cookie` (its own table in resolveCookie), `describe`, `onError` and `env`, in the
 * order they resolve.
 */
export const OPTIONS: readonly AnyOptionRow[] = [
  row({
    name: 'store',
    variables: ['SESSION_STORE'],
    parse: parseStore,
    fallback: () => parseStore(DEFAULT_STORE, { name: 'store', fromEnv: false }),
    doc: 'a connection URL, a Keyv instance or adapter, or a Map',
  }),
  row({
    name: 'permanent',
    variables: ['SESSION_PERMANENT'],
    parse: parseBoolean,
    fallback: () => true,
    doc: 'new sessions get a persistent cookie, or a browser-session one',
  }),
  row({
    name: 'lifetime',
    variables: ['SESSION_LIFETIME', 'PERMANENT_SESSION_LIFETIME'],
    parse: aLifetime,
    fallback: () => 31 * DAY,
    doc: 'the idle lifetime: server TTL and cookie',
  }),
  row({
    name: 'nonPermanentLifetime',
    variables: ['SESSION_NON_PERMANENT_LIFETIME'],
    parse: aLifetime,
    fallback: (before) => before.lifetime as number,
    doc: 'the idle lifetime of browser-session sessions',
  }),
  row({
    name: 'absoluteLifetime',
    variables: ['SESSION_ABSOLUTE_LIFETIME'],
    parse: aLifetime,
    fallback: () => undefined,
    doc: 'a session ends this long after its login, however active',
  }),
  row({
    name: 'cleanupInterval',
    variables: ['SESSION_CLEANUP_INTERVAL'],
    parse: (value, source) => {
      const ms = parseDuration(value, source);
      if (ms !== 0 && ms < 1000) fail(source, `must be 0 (no background cleanup) or at least one second, got ${ms} ms`);
      if (ms > MAX_TIMER)
        fail(source, `must be at most 24 days (the longest timer Node keeps), got ${describe(value)}`);
      return ms;
    },
    fallback: () => 3_600_000,
    doc: 'how often a background purge runs where the store keeps expired records (0: off)',
  }),
  row({
    name: 'refreshEachRequest',
    variables: ['SESSION_REFRESH_EACH_REQUEST'],
    parse: parseBoolean,
    fallback: () => true,
    doc: 'an active session keeps living',
  }),
  row({
    name: 'refreshInterval',
    variables: ['SESSION_REFRESH_INTERVAL'],
    parse: (value, source, before) => {
      const ms = parseDuration(value, source);
      if (ms > (before.lifetime as number))
        fail(source, `must not be longer than the lifetime (${before.lifetime} ms), got ${ms} ms`);
      return ms;
    },
    fallback: (before) =>
      Math.min(60_000, Math.floor(Math.min(before.lifetime as number, before.nonPermanentLifetime as number) / 10)),
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
      if (text.length > 128 || /[\s\0]/.test(text))
        fail(source, `must be at most 128 characters without whitespace, got ${JSON.stringify(text)}`);
      return text;
    },
    fallback: () => 'session:',
    doc: 'the store key is exactly <keyPrefix><sid> (with hashSids, <keyPrefix><SHA-256 of the sid>)',
  }),
  row({
    name: 'hashSids',
    variables: ['SESSION_HASH_SIDS'],
    parse: parseBoolean,
    fallback: () => false,
    doc: 'store a hash of the sid, never the sid: a copy of the store signs nobody in',
  }),
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
        fail(
          source,
          source.fromEnv
            ? 'expected a comma-separated list of non-empty keys'
            : `expected a non-empty array of non-empty strings, got ${describe(value)}`,
        );
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
    parse: (value, source) =>
      parseDurationWithin(
        value,
        source,
        { ms: 1, text: '1 ms' },
        { ms: 600_000, text: '10 minutes (no request should wait longer for its session)' },
        60_000,
      ),
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
      if (text === '')
        fail(source, 'must name a session field, such as "userId", or a dotted path such as "passport.user"');
      if (text.split('.').includes(''))
        fail(source, `must be a field name or a dotted path such as "passport.user", got ${JSON.stringify(text)}`);
      const field = text.split('.')[0] as string;
      if (CONTROL_MEMBERS.has(field))
        fail(
          source,
          `"${field}" is a control member of ctx.session, not a data field; name the field that holds the user id`,
        );
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
      if (before.userKey === undefined)
        fail(
          source,
          'needs userKey (or SESSION_USER_KEY): the session field that holds the user id, so that the sessions of a ' +
            'user can be counted',
        );
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
      if (!COOKIE_NAME.test(text))
        fail(source, `must be an HTTP header name such as "x-session", got ${JSON.stringify(text)}`);
      if (text === 'cookie' || text === 'set-cookie')
        fail(source, 'must be a header of its own, not Cookie or Set-Cookie');
      return text;
    },
    fallback: () => undefined,
    doc: 'a header API clients may carry the session in',
  }),
];
