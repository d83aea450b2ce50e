// Who a session belongs to: the user id a session field holds, the store name of a user's index, and the index changes a commit's write needs.
import { createHash } from 'node:crypto';
import type { StoredData } from './codec.js';
import { SessionError } from './errors.js';
import type { CommitPlan } from './plan.js';

/** Starts the store name of every index: "~" is not base64url, so no sid looks like this. */
export const USER_INDEX_MARK = '~user~';

/** The store name (key without prefix) of a user's index. */
export function userIndexName(user: string): string {
  return USER_INDEX_MARK + createHash('sha256').update(user).digest('base64url');
}

/** True for a store name that is a user index, not a session. */
export function isUserIndexName(name: string): boolean {
  return name.startsWith(USER_INDEX_MARK);
}

/**
 * The user id a session field holds: a non-empty string, or a number (compared as its decimal
 * string). Anything else cannot index a session; `undefined`/`null`/`''` mean "no user".
 */
export function userIdOf(value: unknown, userKey: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'bigint') return String(value);
  throw new SessionError(
    'SESSION_INVALID_USER',
    `koa-kv-session: ctx.session.${userKey} (the userKey option) must be a string or a number to index the user's sessions, got ${Array.isArray(value) ? 'an array' : typeof value}`,
  );
}

/** userIdOf() for data read from the store: something unusable there means "no user", never a failure. */
export function storedUserOf(data: StoredData, userKey: string): string | undefined {
  try {
    return userIdOf(data[userKey], userKey);
  } catch {
    return undefined;
  }
}

/**
 * `plan` with the index changes its write needs: the sid tracked for `user` (the user the data names
 * now), and the loaded sid untracked from the user it was loaded as, unless it stays theirs.
 */
export function withIndexChanges(plan: CommitPlan, user: string | undefined, loaded: { readonly sid: string; readonly user: string } | undefined, now: number): CommitPlan {
  const write = plan.write;
  const track = user !== undefined && write !== undefined ? { user, sid: write.sid, expires: now + write.ttl } : undefined;
  const kept = loaded !== undefined && loaded.user === user && write?.kind !== 'rotate' && !plan.remove.includes(loaded.sid) && plan.cookie !== 'clear';
  const untrack = loaded !== undefined && !kept ? loaded : undefined;
  return track === undefined && untrack === undefined ? plan : { ...plan, track, untrack };
}
