// What the operator command and the cleanup do to many records at once, beside the key-level I/O of SessionStore:
// purge the expired ones, list and count them a page at a time, rewrite them in batches.
import type { BatchRow } from './backends/contract.js';
import { mapConcurrently } from './concurrently.js';
import { messageOf, SessionError, SessionStoreError } from './errors.js';
import { LAYOUT_NAME } from './names.js';
import type { SessionStore } from './store.js';
import type { ListedRecord } from './store-types.js';
import { traced } from './tracing.js';

/**
 * Deletes the expired records under the key prefix, one statement per batch on SQL backends, and
 * resolves with how many. Backends that expire keys themselves (Redis) have nothing to purge: 0.
 * Not bounded by storeTimeout: a purge of a million rows takes as long as it takes.
 */
export async function purgeExpired(store: SessionStore, now = Date.now()): Promise<number> {
  const backend = await store.connected();
  const purge = backend.purgeExpired?.bind(backend);
  if (purge === undefined) {
    throw new SessionError(
      'SESSION_UNSUPPORTED',
      `koa-kv-session: the store (${store.describe()}) cannot list or purge expired sessions; ` +
        `records expire only if the backend expires them`,
    );
  }
  try {
    return await traced(store.traceContext('purge', undefined), () => purge(store.keyPrefix, now));
  } catch (error) {
    if (error instanceof SessionError) throw error;
    throw new SessionStoreError(
      'SESSION_STORE_UNAVAILABLE',
      'purge',
      `koa-kv-session: purging expired sessions failed: ${messageOf(error)}`,
      error,
    );
  }
}

/** True when the backend can list its keys (what `scanPage` needs). */
export async function canList(store: SessionStore): Promise<boolean> {
  return (await store.connected()).scanPage !== undefined;
}

/** True when the backend's pages are in key order and resume after any string (see `Backend.scansInKeyOrder`). */
export async function scansInKeyOrder(store: SessionStore): Promise<boolean> {
  return (await store.connected()).scansInKeyOrder === true;
}

/** A page of the records under the key prefix, and the cursor of the next (undefined: that was the last). */
export async function scanPage(
  store: SessionStore,
  cursor: string | undefined,
  count: number,
): Promise<{ records: ListedRecord[]; cursor: string | undefined }> {
  const backend = await store.connected();
  const scan = backend.scanPage?.bind(backend);
  if (scan === undefined) {
    throw new SessionError(
      'SESSION_UNSUPPORTED',
      `koa-kv-session: the store (${store.describe()}) cannot list its keys`,
    );
  }
  const prefix = store.keyPrefix;
  const context = store.traceContext('list', undefined);
  const page = await traced(context, () => store.call('get', () => scan(prefix, cursor, count), undefined, context));
  return {
    // The layout record (layout-switch.ts) is no session: the operator command never sees it.
    records: page.entries
      .map(([key, raw]) => ({ name: key.slice(prefix.length), raw }))
      .filter((record) => record.name !== LAYOUT_NAME),
    cursor: page.cursor,
  };
}

/** How many records are under the key prefix, where one statement can tell (SQL); undefined elsewhere. */
export async function countRecords(store: SessionStore): Promise<number | undefined> {
  const backend = await store.connected();
  const count = backend.countUnder?.bind(backend);
  const context = store.traceContext('count', undefined);
  return count === undefined
    ? undefined
    : traced(context, () => store.call('get', () => count(store.keyPrefix), undefined, context));
}

/**
 * Rewrites many records, each only if it still holds its expected value: one statement per batch
 * on SQL, concurrent compare-and-sets elsewhere. Resolves with the names written.
 */
export async function compareAndSetMany(
  store: SessionStore,
  rows: ReadonlyArray<{ name: string; expected: string; next: string; ttl: number }>,
): Promise<Set<string>> {
  const backend = await store.connected();
  const many = backend.compareAndSetMany?.bind(backend);
  if (many !== undefined) {
    const batch: BatchRow[] = rows.map((row) => ({
      key: store.names.key(row.name),
      expected: row.expected,
      next: row.next,
    }));
    const context = store.traceContext('write', undefined);
    const written = new Set(await traced(context, () => store.call('set', () => many(batch), undefined, context)));
    return new Set(rows.filter((_, i) => written.has((batch[i] as BatchRow).key)).map((row) => row.name));
  }
  const saved = new Set<string>();
  await mapConcurrently(rows, 32, async (row) => {
    if ((await store.compareAndSet(row.name, row.expected, row.next, row.ttl)).status === 'saved') saved.add(row.name);
  });
  return saved;
}
