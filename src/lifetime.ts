// The lifetime policy: given the settings and a session's record, when it expires, whether a refresh is due, what its
// cookie's Expires is. Pure functions.
import type { StoredRecord } from './record.js';

/** What the policy needs of the settings. */
export interface LifetimeConfig {
  readonly lifetime: number;
  readonly nonPermanentLifetime: number;
  readonly absoluteLifetime: number | undefined;
  readonly refreshEachRequest: boolean;
  readonly refreshInterval: number;
}

/** A session's idle lifetime: its own (`ctx.session.lifetime`), or the configured one for its kind. */
export function idleLifetime(permanent: boolean, own: number | undefined, config: LifetimeConfig): number {
  return own ?? (permanent ? config.lifetime : config.nonPermanentLifetime);
}

/**
 * When a session created at `created` ends however active it is (absoluteLifetime after it); Infinity without that
 * limit.
 */
export function absoluteEnd(created: number, config: LifetimeConfig): number {
  return config.absoluteLifetime === undefined ? Number.POSITIVE_INFINITY : created + config.absoluteLifetime;
}

/** The expiry a write made `now` gives a session: its idle lifetime from now, never past its absolute end. */
export function expiryFrom(now: number, idle: number, created: number, config: LifetimeConfig): number {
  return Math.min(now + idle, absoluteEnd(created, config));
}

/**
 * A refresh is due: refreshEachRequest is on, `refreshInterval` has passed since the stored expiry
 * last moved, and moving it would gain something (it is not at the absolute end already).
 */
export function refreshDue(stored: StoredRecord, now: number, created: number, config: LifetimeConfig): boolean {
  if (!config.refreshEachRequest) return false;
  if (stored.expires >= absoluteEnd(created, config)) return false;
  const lifetime = idleLifetime(stored.permanent, stored.lifetime, config);
  return now - (stored.expires - lifetime) >= config.refreshInterval;
}

/**
 * A write moves the expiry (and a permanent cookie's Expires with it) only when a refresh is due,
 * so a session written on every request does not re-send its cookie on every response. Without
 * refreshEachRequest, as in Flask, every write moves it.
 */
export function expiryMoves(stored: StoredRecord, now: number, created: number, config: LifetimeConfig): boolean {
  return !config.refreshEachRequest || refreshDue(stored, now, created, config);
}

/** The cookie's Expires: the session's expiry for a permanent session; none (a browser-session cookie) otherwise. */
export function cookieExpires(permanent: boolean, expires: number): number | undefined {
  return permanent ? expires : undefined;
}

/** When a stored session was created; for a record whose header does not say, its last refresh is the best known. */
export function createdOf(record: StoredRecord, config: LifetimeConfig): number {
  return record.created ?? record.expires - idleLifetime(record.permanent, record.lifetime, config);
}

/**
 * When a stored session was last refreshed or written (its expiry less the idle lifetime it was
 * given then): the last time it was used, to within `refreshInterval`.
 */
export function lastSeenOf(record: StoredRecord, config: LifetimeConfig): number {
  return Math.max(createdOf(record, config), record.expires - idleLifetime(record.permanent, record.lifetime, config));
}

/** True when a loaded session has outlived `absoluteLifetime`: it loads as no session. */
export function pastAbsoluteLifetime(record: StoredRecord, config: LifetimeConfig, now: number): boolean {
  return absoluteEnd(createdOf(record, config), config) <= now;
}
