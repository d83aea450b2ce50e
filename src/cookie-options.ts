// The cookie option: its attributes from the option, the SESSION_COOKIE_* variables and defaults, checked once; or,
// given as a function, for each request.
import type { Context } from 'koa';
import { SessionOptionError } from './errors.js';
import { describe, fail, lookup, parseBoolean, parseChoice, parseString, type Source } from './parse.js';
import type { CookieSettings } from './cookie.js';

// RFC 6265 token characters: what a cookie name may hold.
export const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Attribute values must not end the attribute early or smuggle another one in.
const COOKIE_ATTRIBUTE = /^[\x21-\x3a\x3c-\x7e]+$/;

function cookieAttribute(value: string, source: Source): string {
  if (!COOKIE_ATTRIBUTE.test(value))
    fail(source, `must be printable ASCII without spaces or ";", got ${JSON.stringify(value)}`);
  return value;
}

function parseName(value: unknown, source: Source): string {
  const text = parseString(value, source);
  if (!COOKIE_NAME.test(text))
    fail(source, `must be a cookie token (letters, digits and !#$%&'*+-.^_\`|~), got ${JSON.stringify(text)}`);
  return text;
}

function parsePath(value: unknown, source: Source): string {
  const text = cookieAttribute(parseString(value, source), source);
  if (!text.startsWith('/')) fail(source, `must start with "/", got ${JSON.stringify(text)}`);
  return text;
}

function parseSecure(value: unknown, source: Source): boolean | 'auto' {
  const auto = value === 'auto' || (typeof value === 'string' && value.trim().toLowerCase() === 'auto');
  return auto ? 'auto' : parseBoolean(value, source);
}

/** lax, strict or none; false (and in a variable false, off, no) for no SameSite attribute. */
function parseSameSite(value: unknown, source: Source): CookieSettings['sameSite'] {
  const off =
    source.fromEnv && typeof value === 'string' && ['false', 'off', 'no'].includes(value.trim().toLowerCase());
  if (value === false || off) return false;
  return parseChoice(['lax', 'strict', 'none'] as const, value, source);
}

export function resolveCookie(input: unknown, env: Readonly<Record<string, string | undefined>>): CookieSettings {
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    throw new SessionOptionError('cookie', `expected an object of cookie attributes, got ${describe(input)}`);
  }
  const options = (input ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!COOKIE_OPTIONS.includes(key))
      throw new SessionOptionError(`cookie.${key}`, `unknown cookie option; known: ${COOKIE_OPTIONS.join(', ')}`);
  }
  // Where each attribute came from, so that an error names what the user set: the option or the variable.
  const from = new Map<string, string>();
  const get = <T>(key: string, variable: string, parse: (value: unknown, source: Source) => T, fallback: T): T => {
    const found = lookup(options, key, env, [variable]);
    if (!found) return fallback;
    const source = found.source.fromEnv ? found.source : { name: `cookie.${key}`, fromEnv: false };
    from.set(key, source.name);
    return parse(found.value, source);
  };
  const named = (key: string): string => from.get(key) ?? `cookie.${key}`;
  const name = get('name', 'SESSION_COOKIE_NAME', parseName, 'session');
  const domain = get(
    'domain',
    'SESSION_COOKIE_DOMAIN',
    (v, s) => cookieAttribute(parseString(v, s), s),
    undefined as string | undefined,
  );
  const path = get('path', 'SESSION_COOKIE_PATH', parsePath, '/');
  const httpOnly = get('httpOnly', 'SESSION_COOKIE_HTTPONLY', parseBoolean, true);
  const secure = get('secure', 'SESSION_COOKIE_SECURE', parseSecure, 'auto');
  const sameSite = get('sameSite', 'SESSION_COOKIE_SAMESITE', parseSameSite, 'lax' as CookieSettings['sameSite']);
  const partitioned = get('partitioned', 'SESSION_COOKIE_PARTITIONED', parseBoolean, false);
  const signed = get('signed', 'SESSION_COOKIE_SIGNED', parseBoolean, true);
  const overwrite = get('overwrite', 'SESSION_COOKIE_OVERWRITE', parseBoolean, false);
  if (sameSite === 'none' && secure === false) {
    throw new SessionOptionError(
      named('sameSite'),
      `SameSite=None needs a Secure cookie (browsers drop it otherwise): set ${named('secure')} to true or "auto"`,
    );
  }
  if (partitioned && secure === false) {
    throw new SessionOptionError(
      named('partitioned'),
      `a Partitioned cookie must be Secure: set ${named('secure')} to true or "auto"`,
    );
  }
  return Object.freeze({ name, domain, path, httpOnly, secure, sameSite, partitioned, signed, overwrite });
}

/** The attributes `cookie` takes. */
export const COOKIE_OPTIONS = [
  'name',
  'domain',
  'path',
  'httpOnly',
  'secure',
  'sameSite',
  'partitioned',
  'signed',
  'overwrite',
];

/**
 * Cookie attributes that cannot come from a function of the request: they are needed to read the cookie, before any
 * handler ran.
 */
const READ_ATTRIBUTES = ['name', 'signed'];

/**
 * The `cookie` option as a function of the request: its result resolved as the static option is
 * (over the variables and defaults), each distinct result object once. A bad result fails the
 * request with the SessionOptionError a bad static option would give.
 */
/**
 * An object literal (or one made with Object.create(null)): what attributes come in, never a Date or a class instance.
 */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function cookiePerRequest(
  fn: (ctx: Context) => unknown,
  env: Readonly<Record<string, string | undefined>>,
): (ctx: Context) => CookieSettings {
  // The attributes are needed when the response is written: a Promise would come too late.
  if (fn.constructor?.name === 'AsyncFunction') {
    throw new SessionOptionError(
      'cookie',
      'the cookie function must be synchronous (an async function returns a Promise): return the attributes themselves',
    );
  }
  const resolvedFor = new WeakMap<object, CookieSettings>();
  return (ctx) => {
    const given = fn(ctx);
    if (typeof (given as PromiseLike<unknown> | undefined)?.then === 'function') {
      throw new SessionOptionError(
        'cookie',
        'the cookie function returned a Promise: it must be synchronous and return the attributes themselves',
      );
    }
    if (!isPlainObject(given)) {
      throw new SessionOptionError(
        'cookie',
        `the cookie function must return an object of cookie attributes, got ` +
          `${given instanceof Date ? 'a Date' : describe(given)}`,
      );
    }
    let settings = resolvedFor.get(given);
    if (settings === undefined) {
      const fixed = READ_ATTRIBUTES.find((key) => (given as Record<string, unknown>)[key] !== undefined);
      if (fixed !== undefined) {
        throw new SessionOptionError(
          `cookie.${fixed}`,
          'cannot come from the cookie function: it is needed to read the cookie before any handler runs; set it as ' +
            'an option or a variable',
        );
      }
      settings = resolveCookie(given, env);
      resolvedFor.set(given, settings);
    }
    return settings;
  };
}
