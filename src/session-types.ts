// What handlers see of ctx.session: the types of the data users declare and of the control members beside it, the
// control members' names, and the checks of what handlers pass them.
import type { Format } from './record.js';
import type { LifetimeConfig } from './lifetime.js';
import type { Updater } from './plan.js';
import { SessionOptionError } from './errors.js';
import { LIFETIME_RANGE, parseDurationWithin } from './parse.js';

/**
 * The shape of your session data. Describe it once by declaration merging and `ctx.session`
 * type-checks and autocompletes everywhere:
 *
 * ```ts
 * declare module 'koa-kv-session' {
 *   interface SessionData { userId: string; cart: { items: string[] } }
 * }
 * ```
 * While it is left empty, `ctx.session` accepts any key.
 */
// Deliberately empty: filled in by users through declaration merging.
// biome-ignore lint/suspicious/noEmptyInterface: the empty interface is what users merge their session fields into
export interface SessionData {}

/** Members of `ctx.session` that control the session itself. They are never stored and never enumerated. */
export interface SessionControls {
  /** The session id (read-only). A new session gets its id on first read. */
  readonly sid: string;
  /** True when no stored session existed for this request (or it was destroyed). */
  readonly isNew: boolean;
  /** Persistent cookie (with Expires) when true, browser-session cookie when false: Flask's "remember me". */
  permanent: boolean;
  /** True when this request changed the session; set to true to force a save. */
  modified: boolean;
  /**
   * This session's idle lifetime in ms. Set a number of ms or a duration (`'2h'`) to give this
   * session its own lifetime from now on (server TTL, refresh and a permanent cookie's Expires);
   * set `null` to return to the configured one. Kept in the record, and through `regenerate()`.
   */
  get lifetime(): number;
  set lifetime(value: number | string | null);
  /**
   * Moves the data to a new sid and deletes the old record at commit. Call it at login. The
   * session's creation time (what `absoluteLifetime` counts from) stays, unless this is a new login:
   * the `userKey` field set or changed, or `{ login: true }`.
   */
  regenerate(options?: { readonly login?: boolean }): Promise<void>;
  /**
   * express-session's form, which passport and other express-style code call: a new, empty session
   * (new sid, the configured `permanent` and lifetime) replaces this one, whose record is deleted
   * at commit; `ctx.session` is a new object from then on, and the one it was keeps the old data.
   * `callback` is called once that is done.
   */
  regenerate(callback: SessionCallback): Promise<void>;
  /**
   * Makes sure the session is written at commit, even unchanged (as koa-session's `save()`). The
   * commit happens after your handler, before the response is sent, as always; `callback`
   * (express-session's form, which passport calls) is called at once.
   */
  save(callback?: SessionCallback): Promise<void>;
  /**
   * Takes the value of `key` out of the session and resolves with it: removed from the stored
   * session at once (its own compare-and-set, not at commit), so that of any number of overlapping
   * requests that see the value, exactly one gets it and the others get `undefined`, across
   * processes on a store with atomic compare-and-set. For one-time values: an OAuth `state`, a
   * one-time token, a flash message. Afterwards `ctx.session[key]` is undefined in this request too.
   *
   * ```ts
   * if (ctx.query.state !== (await ctx.session.take('oauthState'))) ctx.throw(403);
   * ```
   */
  take<K extends DataKey>(key: K): Promise<UserFields[K] | undefined>;
  /**
   * Changes `key` from its value: `fn(value)` returns the new one. It runs at once on the value this
   * request sees (and returns the result), then again at commit on the freshest stored value, and on
   * every conflict, so overlapping requests that each append an item keep every item. `fn` must be
   * synchronous and free of side effects; a plain assignment of the key in the same request wins.
   *
   * ```ts
   * ctx.session.update('cart', (cart = []) => [...cart, sku]);
   * ```
   */
  update<K extends DataKey>(key: K, fn: (value: UserFields[K] | undefined) => UserFields[K]): UserFields[K];
  /**
   * Deletes the record and clears the cookie at commit: logout. Data set afterwards starts a new session. `callback`:
   * express-session's form.
   */
  destroy(callback?: SessionCallback): Promise<void>;
  /** Removes every user key (a stored session left empty is deleted at commit). */
  clear(): void;
}

/** The callback of express-session's `regenerate()`, `save()` and `destroy()`: called with null, or the error. */
export type SessionCallback = (error: unknown) => void;

/** Any key goes while `SessionData` is not declared. */
export interface LooseSessionData {
  // biome-ignore lint/suspicious/noExplicitAny: session data nobody has declared is untyped
  [key: string]: any;
}

/**
 * Session data as your code sees it: your declared `SessionData` (every field optional: a new session has none), or any
 * key while it is not declared. What `load()`, `listUserSessions()` and `update()` give too.
 */
export type SessionFields = [keyof SessionData] extends [never] ? LooseSessionData : Partial<SessionData>;
type UserFields = SessionFields;

/**
 * The `userKey` option: a field of your declared `SessionData`, or a dotted path into one
 * (`'passport.user'`); any string while it is not declared.
 */
export type UserKey = [keyof SessionData] extends [never]
  ? string
  : Extract<keyof SessionData, string> | `${Extract<keyof SessionData, string>}.${string}`;
type DataKey = keyof UserFields & string;

/** The type of `ctx.session`. */
export type Session = SessionControls & UserFields;

/** What `ctx.session` can be assigned: an object of data replaces the data, `null` destroys the session. */
export type SessionAssignment = UserFields | null;

/** The names of the control members: never stored, never enumerated, refused as data keys. */
export const CONTROL_MEMBERS: ReadonlySet<string> = new Set([
  'sid',
  'isNew',
  'permanent',
  'modified',
  'lifetime',
  'take',
  'update',
  'regenerate',
  'save',
  'destroy',
  'clear',
]);

/** The control methods of ctx.session. */
export interface Methods {
  take(key: string): Promise<unknown>;
  update(key: string, fn: Updater): unknown;
  regenerate(options?: { readonly login?: boolean } | SessionCallback): Promise<void>;
  save(callback?: unknown): Promise<void>;
  destroy(callback?: unknown): Promise<void>;
  clear(): void;
}

/** What `ctx.session = value` stores: the entries of an object, none of them named as a control member. */
export function assignedEntries(value: object): [string, unknown][] {
  if (Array.isArray(value))
    throw new TypeError('ctx.session can be assigned an object of session data or null, got an array');
  const entries = Object.entries(value);
  for (const [key] of entries) if (CONTROL_MEMBERS.has(key)) throw controlError(key);
  return entries;
}

/** `key` as a data key of take() or update(): a string that is not a control member's name. */
export function dataKey(key: unknown, method: string): string {
  if (typeof key !== 'string')
    throw new TypeError(`ctx.session.${method}(key): key must be a string, got ${typeof key}`);
  if (CONTROL_MEMBERS.has(key)) throw controlError(key);
  return key;
}

export function updaterOf(key: string, fn: unknown): Updater {
  if (typeof fn !== 'function')
    throw new TypeError(
      `ctx.session.update('${key}', fn): fn must be a function of the current value that returns the new one, got ` +
        `${typeof fn}`,
    );
  return fn as Updater;
}

export function controlError(key: string): TypeError {
  return new TypeError(
    `ctx.session.${key} is a control member of koa-kv-session and cannot be used as a session data key; choose ` +
      `another name`,
  );
}

/** The value given to a boolean control member (`permanent`, `modified`). */
export function booleanControl(key: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`ctx.session.${key} must be a boolean, got ${typeof value}`);
  return value;
}

/**
 * Runs `run` and, in express-session's form, calls `callback` once it settles (with null, or the
 * error). A callback that is not a function is refused before anything runs; one that throws hands
 * its error to `thrown`, never to the process.
 */
export function calling(callback: unknown, run: () => Promise<void>, thrown: (error: unknown) => void): Promise<void> {
  if (callback !== undefined && typeof callback !== 'function')
    throw new TypeError(`ctx.session: the callback must be a function, got ${typeof callback}`);
  const done = run();
  if (callback === undefined) return done;
  done
    .then(
      () => callback(null),
      (error: unknown) => callback(error),
    )
    .catch(thrown);
  return done;
}

/** What the control methods do to a session (session.ts), given a checked key and function. */
export interface SessionOperations {
  take(key: string): Promise<unknown>;
  update(key: string, fn: Updater): unknown;
  regenerate(options?: { readonly login?: boolean }): Promise<void>;
  /** regenerate(callback): a new, empty session, as express-session's. */
  renew(): Promise<void>;
  save(): Promise<void>;
  destroy(): Promise<void>;
  clear(): void;
  /** What an express-style callback threw: the commit fails with it. */
  failed(error: unknown): void;
}

/** The control methods of ctx.session: arguments checked, express-session's callback forms included. */
export function controlMethods(session: SessionOperations): Methods {
  return {
    take: (name) => session.take(dataKey(name, 'take')),
    update: (name, fn) => session.update(dataKey(name, 'update'), updaterOf(name, fn)),
    // A callback is express-session's form (passport calls it so): a new, empty session.
    regenerate: (options) =>
      typeof options === 'function' ? calling(options, session.renew, session.failed) : session.regenerate(options),
    save: (callback) => calling(callback, session.save, session.failed),
    destroy: (callback) => calling(callback, session.destroy, session.failed),
    clear: () => session.clear(),
  };
}

/** What a session needs of the settings. */
export interface SessionConfig extends LifetimeConfig {
  readonly permanent: boolean;
  readonly sidLength: number;
  readonly serialization: Format;
  readonly maxSize: number;
  readonly userKey: string | undefined;
  /** Records are stored under the hash of the sid (and say so in their header). */
  readonly hashSids?: boolean;
  /** All the store time a request gets: loading, take() and the commit share it. */
  readonly storeTimeout: number;
}

/**
 * A value assigned to ctx.session.lifetime, as ms; undefined for null (the configured lifetime). Throws a TypeError
 * naming it.
 */
export function ownLifetimeOf(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  try {
    return parseDurationWithin(value, { name: 'ctx.session.lifetime', fromEnv: false }, ...LIFETIME_RANGE);
  } catch (error) {
    if (error instanceof SessionOptionError) throw new TypeError(error.message);
    throw error;
  }
}
