// Who a session belongs to: the user id a session field holds, and the index changes a commit's write needs (the
// store name of a user's index is names.ts's).
import type { StoredData } from './record.js';
import { SessionError } from './errors.js';
import type { CommitPlan } from './plan.js';

/**
 * The value at `userKey` in `data`: a top-level field, or with dots a path into nested objects
 * (`'passport.user'`, where passport keeps its user). Undefined where the path ends early.
 */
export function userValueOf(data: StoredData, userKey: string): unknown {
  if (!userKey.includes('.')) return Object.hasOwn(data, userKey) ? data[userKey] : undefined;
  let value: unknown = data;
  for (const part of userKey.split('.')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** The top-level field a `userKey` path starts at: what a handler assigns to set the user. */
export function userField(userKey: string): string {
  const dot = userKey.indexOf('.');
  return dot === -1 ? userKey : userKey.slice(0, dot);
}

/**
 * The user id `userKey` names in `data`: a non-empty string, or a number (compared as its decimal
 * string). Anything else cannot index a session; `undefined`/`null`/`''` mean "no user".
 */
export function userIdOf(data: StoredData, userKey: string): string | undefined {
  const value = userValueOf(data, userKey);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'bigint') return String(value);
  // passport keeps { user } under `passport`: the option names the object, not the id inside it.
  const inside = typeof value === 'object' && !Array.isArray(value) ? Object.keys(value).slice(0, 3) : [];
  const hint =
    inside.length > 0 ? `; to index by a field inside it, name its path, e.g. userKey: '${userKey}.${inside[0]}'` : '';
  throw new SessionError(
    'SESSION_INVALID_USER',
    `koa-kv-session: ctx.session.${userKey} (the userKey option) must be a string or a number to index the user's ` +
      `sessions, got ${Array.isArray(value) ? 'an array' : typeof value}${hint}`,
  );
}

/** userIdOf() for data read from the store: something unusable there means "no user", never a failure. */
export function storedUserOf(data: StoredData, userKey: string): string | undefined {
  try {
    return userIdOf(data, userKey);
  } catch {
    return undefined;
  }
}

/**
 * `plan` with the index changes its write needs: the sid tracked for `user` (the user the data names
 * now), and the loaded sid untracked from the user it was loaded as, unless it stays theirs.
 */
export function withIndexChanges(
  plan: CommitPlan,
  user: string | undefined,
  loaded: { readonly sid: string; readonly user: string } | undefined,
  now: number,
): CommitPlan {
  const write = plan.write;
  const from = write?.kind === 'rotate' ? write.from : undefined;
  const track =
    user !== undefined && write !== undefined ? { user, sid: write.sid, expires: now + write.ttl, from } : undefined;
  const kept =
    loaded !== undefined &&
    loaded.user === user &&
    write?.kind !== 'rotate' &&
    !plan.remove.includes(loaded.sid) &&
    plan.cookie !== 'clear';
  const untrack = loaded !== undefined && !kept ? loaded : undefined;
  return track === undefined && untrack === undefined ? plan : { ...plan, track, untrack };
}
