// What handlers see of ctx.session, as types: the data users declare, the control members beside it, and their names.

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
  /** Deletes the record and clears the cookie at commit: logout. Data set afterwards starts a new session. */
  destroy(): Promise<void>;
  /** Removes every user key (a stored session left empty is deleted at commit). */
  clear(): void;
}

/** Any key goes while `SessionData` is not declared. */
export interface LooseSessionData {
  // biome-ignore lint/suspicious/noExplicitAny: session data nobody has declared is untyped
  [key: string]: any;
}

type UserFields = [keyof SessionData] extends [never] ? LooseSessionData : Partial<SessionData>;

/** The type of `ctx.session`. */
export type Session = SessionControls & UserFields;

/** What `ctx.session` can be assigned: an object of data replaces the data, `null` destroys the session. */
export type SessionAssignment = UserFields | null;

/** The names of the control members: never stored, never enumerated, refused as data keys. */
export const CONTROL_MEMBERS: ReadonlySet<string> = new Set(['sid', 'isNew', 'permanent', 'modified', 'lifetime', 'regenerate', 'destroy', 'clear']);
