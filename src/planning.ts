// The commit plan of a session, decided from its status as the handler left it: what to write, what to remove,
// what cookie to send. A pure function of that status (spec/plan.spec.ts is its decision table).
import type { StoredRecord } from './record.js';
import { cookieExpires, expiryMoves, type LifetimeConfig, refreshDue } from './lifetime.js';
import type { ChangeSet, CommitPlan } from './plan.js';

/** A session as the handler left it. The functions encode or draw only when planning needs them. */
export interface SessionStatus {
  /** The record stored under `sid`, as loaded; undefined for a new, regenerated or destroyed session. */
  readonly stored: StoredRecord | undefined;
  /** After regenerate(): the sid and record it moves away from (only if that record still exists then). */
  readonly rotatedFrom: { readonly sid: string; readonly record: StoredRecord } | undefined;
  /** Sids whose records go at commit (destroyed, or left by a regenerate that was then destroyed). */
  readonly retired: readonly string[];
  /** No data at all. */
  readonly empty: boolean;
  /** `modified = true` or `save()`: written even unchanged. */
  readonly forced: boolean;
  readonly permanent: boolean;
  /** The permanent flag changed in this request. */
  readonly permanentChanged: boolean;
  /** The permanent flag or the session's own lifetime changed: its expiry and cookie follow. */
  readonly settingsChanged: boolean;
  /** The cookie was signed with an older key: send it again. */
  readonly staleCookie: boolean;
  /** When it was created, as the absolute lifetime counts (now for a new session or a new login). */
  readonly created: number;
  /** The expiry a write made now gives it. */
  readonly expiryFromNow: number;
  /** The data differs from the stored record's (encodings compared: nested mutation counts). */
  dataChanged(): boolean;
  /** The record to write, expiring at `expires`. Throws SESSION_TOO_LARGE / SESSION_UNENCODABLE. */
  record(expires: number): string;
  /** What the request changed, key by key, for a merge onto the freshest record. */
  changeSet(): ChangeSet;
  /** Its sid, drawn now if it has none yet. */
  drawSid(): string;
}

/** Did this request change the session (what `ctx.session.modified` reads)? */
export function isModified(status: SessionStatus): boolean {
  if (status.forced || status.retired.length > 0 || status.rotatedFrom !== undefined || status.settingsChanged)
    return true;
  return status.dataChanged();
}

/** The cookie naming `sid` until `expires` (a browser-session cookie for a session that is not permanent). */
function cookieFor(status: SessionStatus, sid: string, expires: number): CommitPlan['cookie'] {
  return { sid, expires: cookieExpires(status.permanent, expires) };
}

/**
 * What the commit does, from what the handler left: a new or regenerated session is put or moved
 * (with its cookie); a changed one is merged onto the freshest record (a cookie when its expiry or
 * kind changed); an unchanged one is refreshed when due; an emptied one is removed (cookie cleared).
 */
export function planWrite(status: SessionStatus, config: LifetimeConfig, now: number): CommitPlan {
  const remove = status.retired;
  const stored = status.stored;
  if (stored === undefined) {
    // New, regenerated or destroyed: nothing is stored under the current sid yet.
    const from = status.rotatedFrom;
    if (status.empty) {
      // Regenerated and then emptied is a logout: the old record goes, unconditionally.
      const gone = from === undefined ? remove : [...remove, from.sid];
      return { write: undefined, remove: gone, cookie: gone.length > 0 ? 'clear' : undefined };
    }
    const sid = status.drawSid();
    const expires = status.expiryFromNow;
    const raw = status.record(expires);
    const ttl = expires - now;
    const write: CommitPlan['write'] =
      from === undefined
        ? { kind: 'put', sid, raw, ttl }
        : { kind: 'rotate', sid, from: from.sid, base: from.record.raw, raw, ttl, changes: status.changeSet() };
    return { write, remove, cookie: cookieFor(status, sid, expires) };
  }

  const sid = status.drawSid();
  if (status.forced || status.settingsChanged || status.dataChanged()) {
    if (status.empty) return { write: undefined, remove: [sid], cookie: 'clear' };
    const moves = status.settingsChanged || expiryMoves(stored, now, status.created, config);
    const expires = moves ? status.expiryFromNow : stored.expires;
    const raw = status.record(expires);
    const sendCookie = (moves && status.permanent) || status.permanentChanged || status.staleCookie;
    return {
      write: { kind: 'merge', sid, base: stored.raw, raw, ttl: expires - now, changes: status.changeSet() },
      remove,
      cookie: sendCookie ? cookieFor(status, sid, expires) : undefined,
    };
  }

  if (refreshDue(stored, now, status.created, config)) {
    const expires = status.expiryFromNow;
    const raw = status.record(expires);
    return {
      write: { kind: 'refresh', sid, base: stored.raw, raw, ttl: expires - now },
      remove,
      cookie: status.permanent || status.staleCookie ? cookieFor(status, sid, expires) : undefined,
    };
  }
  return { write: undefined, remove, cookie: status.staleCookie ? cookieFor(status, sid, stored.expires) : undefined };
}

/** When the session expires if this request ends now: undefined for a session that will not be stored. */
export function expiryAt(status: SessionStatus, config: LifetimeConfig, now: number): number | undefined {
  const stored = status.stored;
  if (status.empty) return undefined;
  if (stored === undefined || status.settingsChanged) return status.expiryFromNow;
  const written = isModified(status) || refreshDue(stored, now, status.created, config);
  return written && expiryMoves(stored, now, status.created, config) ? status.expiryFromNow : stored.expires;
}
