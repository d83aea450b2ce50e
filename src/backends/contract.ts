// The contract every backend implements: three calls, plus abilities a backend has or has not, found by their presence.
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

/** Outcome of a compare-and-set: written, the record is gone (or was never there), or it holds `current`. */
export type CasResult =
  | { readonly status: 'saved' }
  | { readonly status: 'gone' }
  | { readonly status: 'conflict'; readonly current: string };

/**
 * One page of the records under a prefix, in key order where the backend has one; `cursor` resumes after it (undefined:
 * no more).
 */
export interface ScannedPage {
  readonly entries: ReadonlyArray<readonly [key: string, value: string]>;
  readonly cursor: string | undefined;
}

/** One conditional rewrite of a batch: `next` replaces the value under `key` only if it is still `expected`. */
export interface BatchRow {
  readonly key: string;
  readonly expected: string;
  readonly next: string;
}

/**
 * A session store. Keys are exactly what koa-kv-session passes (`<keyPrefix><sid>`), values are
 * whole record strings, `ttl` is in milliseconds from now. The optional members are abilities:
 * the store uses each one when it is there, and does without (or says it cannot) when it is not.
 */
export interface Backend {
  get(key: string): Promise<unknown>;
  set(key: string, value: string, ttl: number): Promise<unknown>;
  delete(key: string): Promise<unknown>;
  /**
   * Writes `next` only if the stored value is still `expected` (with `expected` undefined: only if
   * there is none), in one atomic step. Without it, koa-kv-session reads right before writing.
   */
  compareAndSet?(key: string, expected: string | undefined, next: string, ttl: number): Promise<CasResult>;
  /**
   * Reads the page of records under `prefix` that follows `cursor` (undefined: the first page), about `count` of them.
   */
  scanPage?(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage>;
  /** Deletes the expired records under `prefix` and resolves with how many (0 where the server expires keys itself). */
  purgeExpired?(prefix: string, now: number): Promise<number>;
  /** Conditional rewrites of many records in one step; resolves with the keys written. */
  compareAndSetMany?(rows: readonly BatchRow[]): Promise<ReadonlySet<string>>;
  /**
   * `scanPage` lists keys in order and resumes after any string given as its cursor, a key or not
   * (SQL, etcd, memory): the operator command's cursor then needs no whole session id.
   */
  readonly scansInKeyOrder?: boolean;
  /** How many records are under `prefix`, in one statement (not a scan). */
  countUnder?(prefix: string): Promise<number>;
  /**
   * The store deletes expired keys itself (Redis, Valkey, memcached, MongoDB): a purge has nothing to do, and no
   * background cleanup runs.
   */
  readonly expiresKeys?: boolean;
  /** Lets go of what the backend opened; a backend wrapping something the user handed in leaves it open. */
  close?(): Promise<void>;
  /**
   * Drops every connection at once, saying nothing to the server: what close() falls back on when
   * the server is up but does not answer (a goodbye would wait for a reply for ever).
   */
  destroy?(): void;
  /** Background errors (a dropped idle connection) go here; a backend must never throw them at the process. */
  on?(event: 'error', listener: (error: unknown) => void): unknown;
}

/** What a compare-and-set that did not write found instead: no record (gone), or another one. */
export function missed(current: unknown): CasResult {
  return current === undefined || current === null
    ? { status: 'gone' }
    : { status: 'conflict', current: String(current) };
}

/**
 * An EventEmitter that only emits 'error' when someone listens: a backend's background errors (a
 * dropped connection, a table option the server does not support) must never crash the process.
 */
export class QuietEmitter extends EventEmitter {
  report = (error: unknown): void => {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  };
}

/**
 * Rows purged per statement or page: bounded memory, and locks short enough (a few ms) that the
 * requests of this process and others' writes slip in between, however many rows have expired.
 */
export const PURGE_BATCH = 500;
/**
 * The pause between two batches of a purge: at least this long, and at least as long as the batch
 * took, so a purge never holds the database (or, on node:sqlite, the event loop) more than half the
 * time, and requests and other processes' writes get in between.
 */
const PURGE_PAUSE_MS = 5;

/**
 * Runs one batch of a purge after another, pausing between them, until a batch comes back short; resolves with the
 * total removed.
 */
export async function purgeInBatches(deleteBatch: () => Promise<number>, batch = PURGE_BATCH): Promise<number> {
  let total = 0;
  for (;;) {
    const started = performance.now();
    const removed = await deleteBatch();
    total += removed;
    if (removed < batch) return total;
    await sleep(Math.max(PURGE_PAUSE_MS, performance.now() - started));
  }
}

/** The keys after `cursor` under `prefix`, sorted, at most `count`: a page of any key list held in memory. */
export function pageOfKeys(
  keys: Iterable<unknown>,
  prefix: string,
  cursor: string | undefined,
  count: number,
): { page: string[]; cursor: string | undefined } {
  const after = cursor ?? '';
  const matching: string[] = [];
  for (const key of keys) if (typeof key === 'string' && key.startsWith(prefix) && key > after) matching.push(key);
  matching.sort();
  const page = matching.slice(0, count);
  return { page, cursor: matching.length > count ? page[page.length - 1] : undefined };
}

/**
 * A purge for backends that can list but not delete by expiry in one statement: walks the pages of
 * records under `prefix` and deletes those of each page that `expired` picks (bounded memory); resolves with how many.
 */
export async function purgePages(
  backend: Required<Pick<Backend, 'scanPage'>>,
  prefix: string,
  expired: (value: string) => boolean,
  deleteKeys: (keys: string[]) => Promise<void>,
): Promise<number> {
  let removed = 0;
  let cursor: string | undefined;
  do {
    const page = await backend.scanPage(prefix, cursor, 1000);
    const keys = page.entries.filter(([, value]) => expired(value)).map(([key]) => key);
    await deleteKeys(keys);
    removed += keys.length;
    cursor = page.cursor;
  } while (cursor !== undefined);
  return removed;
}

/** Something a user should know about the store at start-up: said once, as a KvSessionWarning. */
export interface StoreNotice {
  readonly code: 'KV_SESSION_NOT_ATOMIC' | 'KV_SESSION_PER_PROCESS' | 'KV_SESSION_NO_EXPIRY' | 'KV_SESSION_EVICTS';
  readonly message: string;
}

/** A store handed in, classified: what it is (for messages), how to open its backend, what to tell. */
export interface HandedIn {
  /** What it is, as messages name it: "the @keyv/redis adapter given as store". */
  readonly name: string;
  /** What it is, in a word, as tracing contexts name the backend: "Map", "Redis", "Keyv adapter". */
  readonly kind: string;
  /** Its backend; connects where the store needs it (a @keyv/redis adapter's client). */
  open(): Promise<Backend>;
  readonly notices: readonly StoreNotice[];
}

/** The notice of a store without atomic compare-and-set (also reported to onError at its first connection). */
export function notAtomic(name: string): StoreNotice {
  return {
    code: 'KV_SESSION_NOT_ATOMIC',
    message:
      `koa-kv-session: ${name} has no atomic compare-and-set: a write reads the session right before it ` +
      `writes, so two processes writing one session at the same moment can lose one change (one process loses ` +
      `nothing). See docs/guarantees.md.`,
  };
}
