// Reading one option or SESSION_* variable: booleans, durations, sizes, integers, choices; every error names its
// source.
import { SessionOptionError } from './errors.js';

export const DAY = 86_400_000;
/**
 * The longest lifetime a session can have: browsers cap a cookie's Expires / Max-Age at 400 days
 * (RFC 6265bis), and every backend's TTL and the record header carry it.
 */
export const MAX_LIFETIME = 400 * DAY;
/** The longest timer Node keeps (2^31 - 1 ms, about 24.8 days): a longer interval would fire at once. */
export const MAX_TIMER = 2 ** 31 - 1;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY, w: 7 * DAY };
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/i;
const SIZE = /^(\d+)\s*(b|kb|kib|mb|mib)?$/i;
const SIZE_UNIT: Record<string, number> = { b: 1, kb: 1000, kib: 1024, mb: 1_000_000, mib: 1_048_576 };
/** One source of a value: the option, or else the first environment variable that is set. */
export interface Source {
  readonly name: string;
  readonly fromEnv: boolean;
}

export function fail(source: Source, message: string): never {
  throw new SessionOptionError(source.name, message);
}

export function parseBoolean(value: unknown, source: Source): boolean {
  if (typeof value === 'boolean') return value;
  if (source.fromEnv && typeof value === 'string') {
    const word = value.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(word)) return true;
    if (['false', '0', 'no', 'off'].includes(word)) return false;
    fail(source, `expected true or false (also 1/0, yes/no, on/off), got ${JSON.stringify(value)}`);
  }
  return fail(source, `expected a boolean, got ${describe(value)}`);
}

/**
 * Durations: an option number is milliseconds, an environment number is whole seconds (as Flask's
 * PERMANENT_SESSION_LIFETIME); both take a string with a unit (`500ms`, `30s`, `30m`, `12h`, `31d`, `2w`).
 */
export function parseDuration(value: unknown, source: Source): number {
  let ms: number;
  if (typeof value === 'number') {
    if (source.fromEnv) ms = value * 1000;
    else ms = value;
  } else if (typeof value === 'string') {
    const text = value.trim();
    const match = DURATION.exec(text);
    if (match) ms = Number(match[1]) * (UNIT_MS[(match[2] as string).toLowerCase()] as number);
    else if (source.fromEnv && /^\d+$/.test(text)) ms = Number(text) * 1000;
    else {
      return fail(
        source,
        `expected ${source.fromEnv ? 'whole seconds or ' : 'milliseconds or '}a duration such as "30m", "12h" or ` +
          `"31d", got ${JSON.stringify(value)}`,
      );
    }
  } else {
    return fail(source, `expected milliseconds or a duration string, got ${describe(value)}`);
  }
  if (!Number.isFinite(ms) || ms < 0) fail(source, `must be a finite, non-negative duration, got ${describe(value)}`);
  return Math.round(ms);
}

/** A variable's bare number (no unit): read as seconds. */
function bareSeconds(value: unknown, source: Source): boolean {
  return source.fromEnv && typeof value === 'string' && /^\s*\d+\s*$/.test(value);
}

/** How a refused bare number was read, and how to write what was meant: `2000` is 2000 seconds; `2000ms`. */
function readAs(value: unknown, source: Source): string {
  if (!bareSeconds(value, source)) return '';
  const n = String(value).trim();
  return (
    ` (${source.name}=${n} is read as ${n} seconds: a bare number in a variable is seconds, as Flask's; write ` +
    `${n}ms for milliseconds)`
  );
}

/**
 * A duration between `min` and `max` ms (inclusive), each named in the error with `what` it means.
 * `bareAtMost`: the longest a variable's bare number (seconds) may plausibly mean; longer, it was
 * meant as milliseconds and is refused, saying so (a storeTimeout of 500 seconds is a typo of 500ms).
 */
export function parseDurationWithin(
  value: unknown,
  source: Source,
  min: { ms: number; text: string },
  max: { ms: number; text: string },
  bareAtMost?: number,
): number {
  const ms = parseDuration(value, source);
  if (ms < min.ms) fail(source, `must be at least ${min.text}, got ${ms} ms${readAs(value, source)}`);
  if (ms > max.ms) fail(source, `must be at most ${max.text}, got ${describe(value)}${readAs(value, source)}`);
  if (bareAtMost !== undefined && ms > bareAtMost && bareSeconds(value, source)) {
    fail(
      source,
      `${String(value).trim()} seconds is surely not what was meant${readAs(value, source)}; write ` +
        `${String(value).trim()}s to mean seconds`,
    );
  }
  return ms;
}

/** A session lifetime: at least one second, at most 400 days (what a cookie and every backend can carry). */
export const LIFETIME_RANGE = [
  { ms: 1000, text: 'one second' },
  { ms: MAX_LIFETIME, text: '400 days (browsers cap cookie lifetimes there, RFC 6265bis)' },
] as const;

export function parseInteger(value: unknown, source: Source): number {
  const n = typeof value === 'string' && source.fromEnv && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n))
    fail(source, `expected a whole number, got ${describe(value)}`);
  return n;
}

export function parseSize(value: unknown, source: Source): number {
  if (typeof value === 'string' && source.fromEnv) {
    const match = SIZE.exec(value.trim());
    if (!match) return fail(source, `expected a size in bytes such as 65536 or "64KiB", got ${JSON.stringify(value)}`);
    return Number(match[1]) * (SIZE_UNIT[(match[2] ?? 'b').toLowerCase()] as number);
  }
  return parseInteger(value, source);
}

export function parseString(value: unknown, source: Source): string {
  if (typeof value !== 'string') fail(source, `expected a string, got ${describe(value)}`);
  return value;
}

export function parseChoice<T extends string>(choices: readonly T[], value: unknown, source: Source): T {
  const word = typeof value === 'string' ? value.trim().toLowerCase() : value;
  if (!choices.includes(word as T)) {
    fail(source, `expected one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${describe(value)}`);
  }
  return word as T;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return `${typeof value} ${String(value)}`;
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** Looks a value up: explicit option, then the environment (first variable set and not empty), then none. */
export function lookup(
  options: object,
  option: string,
  env: Readonly<Record<string, string | undefined>>,
  variables: readonly string[],
): { value: unknown; source: Source } | undefined {
  const value = (options as Record<string, unknown>)[option];
  if (value !== undefined) return { value, source: { name: option, fromEnv: false } };
  for (const variable of variables) {
    const text = env[variable];
    if (text !== undefined && text !== '') return { value: text, source: { name: variable, fromEnv: true } };
  }
  return undefined;
}
