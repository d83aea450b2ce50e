// User options and SESSION_* variables -> one frozen, validated settings object, from one table of options; every error
// names the option or variable at fault.
import { SessionOptionError } from './errors.js';
import { describe, lookup } from './parse.js';
import { OPTIONS, type Resolved } from './option-table.js';
import type { KvSessionOptions, Settings } from './settings.js';
import { COOKIE_OPTIONS, cookiePerRequest, resolveCookie } from './cookie-options.js';
import { checkVariables } from './warnings.js';

/** The SESSION_* variables read, by any option or cookie attribute. */
export const KNOWN_VARIABLES: readonly string[] = [
  ...OPTIONS.flatMap((option) => option.variables),
  ...COOKIE_OPTIONS.map((key) => `SESSION_COOKIE_${key.toUpperCase()}`),
];

/** The options `kvSession()` takes. */
export const KNOWN_OPTIONS: readonly string[] = [
  ...OPTIONS.map((option) => option.name),
  'cookie',
  'describe',
  'onError',
  'env',
];

/**
 * Resolves options, then `SESSION_*` variables, then defaults, into frozen settings; throws `SessionOptionError` naming
 * the option or variable.
 */
export function resolveSettings(input: KvSessionOptions | undefined = {}): Settings {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SessionOptionError('options', `kvSession() takes an options object, got ${describe(input)}`);
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN_OPTIONS.includes(key))
      throw new SessionOptionError(key, `unknown option; known options: ${KNOWN_OPTIONS.join(', ')}`);
  }
  const env = input.env ?? process.env;
  // Set but empty reads as unset everywhere else; for the keys that would mean app.keys, or a 500 on
  // every request when the app has none: said here instead.
  if (input.keys === undefined && env.SESSION_SECRET_KEYS !== undefined && env.SESSION_SECRET_KEYS.trim() === '') {
    throw new SessionOptionError(
      'SESSION_SECRET_KEYS',
      'is set but empty: set it to comma-separated secret keys (the first signs), or unset it to sign with app.keys',
    );
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
    throw new SessionOptionError(
      'describe',
      `expected a function of ctx that returns a label, got ${describe(input.describe)}`,
    );
  }
  if (input.onError !== undefined && typeof input.onError !== 'function') {
    throw new SessionOptionError('onError', `expected a function, got ${describe(input.onError)}`);
  }
  return Object.freeze({
    ...(resolved as Resolved),
    cookie,
    cookieFor,
    describe: input.describe,
    onError: input.onError,
  });
}
