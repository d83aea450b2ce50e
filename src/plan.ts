// What a request's session asks of the store: its change set, the write, the removals and index changes; made by
// session.ts, carried out by commit.ts.
import type { StoredRecord } from './record.js';

/**
 * A change of one key made from its value: run on the value the request saw, and again on the freshest stored one at
 * commit.
 */
export type Updater = (value: unknown) => unknown;

/** What a request changed, to be applied onto the freshest stored record at commit. */
export interface ChangeSet {
  /** The data was replaced or cleared as a whole: ours wins over whatever is stored. */
  readonly replaced: boolean;
  /** Keys set (or mutated in place), with their values now. */
  readonly set: ReadonlyMap<string, unknown>;
  /** Keys deleted. */
  readonly deleted: readonly string[];
  /**
   * Keys changed only through `ctx.session.update()`: their functions, in order, run on the freshest value (after `set`
   * and `deleted`).
   */
  readonly updates: ReadonlyMap<string, readonly Updater[]>;
  /** The new permanent flag, when the request changed it. */
  readonly permanent: boolean | undefined;
}

/**
 * A store write the commit makes:
 * - `put`: a record under a sid that has none yet (a new session, or one started after destroy());
 * - `rotate`: a loaded session moved to a new sid by regenerate(), only if its record (`from`) is
 *   still there: the request's changes onto the freshest copy under `sid`, `from` retired;
 * - `merge`: the request's changes onto the freshest record of an existing session;
 * - `refresh`: the same data with a later expiry, only if nobody wrote meanwhile.
 * `base` is the stored string the request loaded; `raw` the record as this request would write it.
 */
export type Write =
  | { readonly kind: 'put'; readonly sid: string; readonly raw: string; readonly ttl: number }
  | {
      readonly kind: 'rotate';
      readonly sid: string;
      readonly from: string;
      readonly base: string;
      readonly raw: string;
      readonly ttl: number;
      readonly changes: ChangeSet;
    }
  | {
      readonly kind: 'merge';
      readonly sid: string;
      readonly base: string;
      readonly raw: string;
      readonly ttl: number;
      readonly changes: ChangeSet;
    }
  | {
      readonly kind: 'refresh';
      readonly sid: string;
      readonly base: string;
      readonly raw: string;
      readonly ttl: number;
    };

/**
 * What a `take()` found, at once (not at commit): the key's value, removed from the record by this
 * call's compare-and-set (`record`: the record now stored); no such key (`record`: the freshest, if readable); or
 * no live session under the sid any more.
 */
export type TakeResult =
  | { readonly outcome: 'taken'; readonly value: unknown; readonly record: StoredRecord }
  | { readonly outcome: 'absent'; readonly record: StoredRecord | undefined }
  | { readonly outcome: 'gone' }
  | { readonly outcome: 'moved' };

/** How the session state was left by the handler; what the commit turns into store operations. */
export interface CommitPlan {
  readonly write: Write | undefined;
  /** Sids whose records must be deleted (after the write). */
  readonly remove: readonly string[];
  /** Cookie to send: a sid (with its expiry for permanent sessions), `clear`, or nothing. */
  readonly cookie: { readonly sid: string; readonly expires: number | undefined } | 'clear' | undefined;
  /** With `userKey`: the user whose index must hold the written sid (before the write) ... */
  readonly track?:
    | { readonly user: string; readonly sid: string; readonly expires: number; readonly from?: string | undefined }
    | undefined;
  /** ... and the user whose index must let go of the loaded sid (after the write and removals). */
  readonly untrack?: { readonly user: string; readonly sid: string } | undefined;
}

/**
 * Takes `key` out of the record of `sid` (loaded as `base`) at once, its store calls ending by
 * `deadline`; see Committer.take(); what a SessionState is given to take with.
 */
export type Taker = (sid: string, base: string, key: string, deadline: number) => Promise<TakeResult>;

/** What the commit tells the audit events: what happened to which sid, and whose it was. */
export type CommitEvent =
  | { readonly kind: 'created'; readonly sid: string; readonly user: string | undefined }
  | { readonly kind: 'regenerated'; readonly sid: string; readonly from: string; readonly user: string | undefined }
  | { readonly kind: 'destroyed'; readonly sid: string; readonly user: string | undefined }
  | { readonly kind: 'revoked'; readonly sid: string; readonly id: string; readonly user: string };
