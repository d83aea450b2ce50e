// Store calls as a node:diagnostics_channel tracing channel, for APMs and metrics: nothing is built or published while
// nobody subscribes.
import diagnosticsChannel from 'node:diagnostics_channel';

/** The name of the tracing channel: `diagnostics_channel.tracingChannel('koa-kv-session:store')`. */
export const STORE_CHANNEL = 'koa-kv-session:store';

/**
 * What a store call does: read a session or index (`load`), write one (`write`: a plain write or a
 * compare-and-set), delete one (`remove`), delete expired records (`purge`), page through records
 * (`list`), count them (`count`), or open the store (`connect`).
 */
export type StoreOperation = 'load' | 'write' | 'remove' | 'purge' | 'list' | 'count' | 'connect';

/** The context object of every event of the `koa-kv-session:store` tracing channel. */
export interface StoreTraceContext {
  readonly operation: StoreOperation;
  /** The backend, as the docs name it: `Redis`, `PostgreSQL`, `SQLite`, `memory`, `Keyv adapter`... */
  readonly backend: string;
  /**
   * The safe id of the session (the `id` of `listUserSessions()`), never a sid; undefined for a user index or a call
   * over many records.
   */
  readonly id: string | undefined;
  /** What the call is about: one session's record, one user's index, or many records. */
  readonly target: 'session' | 'user-index' | 'many';
  /** How many times the call was sent: more than 1 when failed attempts were retried (`storeRetries`). */
  attempts: number;
  /**
   * How it ended, when it did: `write` `saved`, or `conflict` (another write came first: the caller
   * decides again on the fresher record, and that retry is a call of its own), or `gone` (nothing
   * there to change); `load` `found` or `missing`. Also the channel's `result`: a record is never in it.
   */
  outcome?: 'saved' | 'conflict' | 'gone' | 'found' | 'missing' | undefined;
  /** Set by the channel when the call failed: the SessionStoreError (or SessionError) the caller gets. */
  error?: unknown;
}

const channel = diagnosticsChannel.tracingChannel<object, StoreTraceContext>(STORE_CHANNEL);

/** True when someone subscribed to the channel: only then is a context built. */
export function tracing(): boolean {
  return channel.hasSubscribers;
}

/**
 * Runs `run` as one traced store call with `context` (undefined: nobody listens, it just runs).
 * `outcome` tells how a value ended; the channel's `result` is that outcome, so that what the call
 * read or wrote (session data) never reaches a subscriber.
 */
export function traced<T>(
  context: StoreTraceContext | undefined,
  run: () => Promise<T>,
  outcome?: (value: T) => StoreTraceContext['outcome'],
): Promise<T> {
  // Not async: with nobody listening, the call's own promise is all there is.
  return context === undefined ? run() : publish(context, run, outcome);
}

async function publish<T>(
  context: StoreTraceContext,
  run: () => Promise<T>,
  outcome?: (value: T) => StoreTraceContext['outcome'],
): Promise<T> {
  let value: T | undefined;
  await channel.tracePromise(async () => {
    value = await run();
    context.outcome = outcome?.(value);
    return context.outcome;
  }, context);
  return value as T;
}
