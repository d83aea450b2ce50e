// The one place that calls a backend: load / save / remove / compare-and-set under the key prefix, with TTL, codec, one deadline per request, retries and error mapping.
import { setTimeout as sleep } from 'node:timers/promises';
import { debugLog } from './debug.js';
import { missed, type Backend, type BatchRow, type CasResult } from './backends/contract.js';
import { openBackend } from './backends/registry.js';
import { closeBackend } from './backends/closing.js';
import { CorruptRecordError, decodePayload, holdsWrite, parseRecord, type StoredData, type StoredRecord } from './codec.js';
import { movedTo, type NoSession, recordStatus } from './tombstone.js';
import { bounded } from './deadline.js';
import { corruptRecordError, messageOf, SessionError, SessionStoreError } from './errors.js';
import { StoreNames } from './names.js';
import { type StoreOperation, type StoreTraceContext, traced, tracing } from './tracing.js';
import { isUserIndexName } from './user-id.js';
import { mapConcurrently } from './concurrently.js';
import { backendName, describeStore, type ListedRecord, notAtomicError, type StoreAbilities, type StoreConfig } from './store-types.js';

export type { ListedRecord, StoreAbilities, StoreConfig, StoreSpec } from './store-types.js';

type Operation = SessionStoreError['operation'];
/** A live session record and its data. */
type Loaded = { readonly record: StoredRecord; readonly data: StoredData };

const debug = debugLog('koa-kv-session:store');
const SAVED: CasResult = { status: 'saved' };

export class SessionStore {
  readonly #config: StoreConfig;
  readonly #report: (error: Error) => void;
  /** The backend's name in tracing contexts. */
  readonly #backend: string;
  #opening: Promise<Backend> | undefined;
  #opened: Backend | undefined;
  #closed = false;
  #warned = false;
  /** Store keys of sids and names (names.ts). */
  readonly names: StoreNames;

  constructor(config: StoreConfig, report: (error: Error) => void) {
    this.#config = config;
    this.names = new StoreNames(config.keyPrefix, config.hashSids);
    this.#report = report;
    this.#backend = backendName(config.store);
  }

  /** How long one operation may take (storeTimeout), in ms. */
  get timeoutMs(): number {
    return this.#config.storeTimeout;
  }

  /** What the backend can do (connecting first, bounded by storeTimeout). */
  async abilities(): Promise<StoreAbilities> {
    const backend = await this.#connected();
    return { atomic: backend.compareAndSet !== undefined, list: backend.scanPage !== undefined, purge: backend.purgeExpired !== undefined, ownExpiry: backend.expiresKeys === true };
  }

  #open(): Promise<Backend> {
    if (this.#opening === undefined) {
      const opening = this.#connect();
      this.#opening = opening;
      // A failed open is never kept: the next call tries again, and finds the store once it is back.
      opening.catch(() => {
        if (this.#opening === opening) this.#opening = undefined;
      });
    }
    return this.#opening;
  }

  /**
   * A URL opens a backend of ours (closed by close()); a Keyv instance, an adapter or a Map handed in
   * is wrapped (and left open). Either way the backend is called directly, not through Keyv: the
   * record string is already what should be stored, the key is already ours, and Keyv's hooks,
   * statistics and envelope cost more per request than the rest of the library together.
   */
  async #connect(): Promise<Backend> {
    const spec = this.#config.store;
    const backend = spec.kind === 'url' ? await openBackend(spec.url, this.#config.storeTimeout) : await spec.handed.open();
    // Failures of calls reach us as exceptions; what a backend emits besides (a dropped idle
    // connection, say) is worth a debug line, and without a listener an emitter's 'error' would crash the process.
    backend.on?.('error', (error: unknown) => debug('store emitted an error: %s', messageOf(error)));
    // Said once, not on every write: it is a property of the store, not of a request.
    if (backend.compareAndSet === undefined && !this.#warned) this.#report(notAtomicError(spec));
    this.#warned = true;
    this.#opened = backend;
    return backend;
  }

  /** The opened backend; connecting (bounded by the deadline, or storeTimeout) on first use. */
  async #connected(deadline?: number): Promise<Backend> {
    return this.#opened ?? this.#call('connect', async (backend) => backend, deadline);
  }

  /** Checks the store answers, for start-up: a read of a key that is never written. */
  async probe(): Promise<void> {
    const context = this.#context('connect', undefined);
    await traced(context, () => this.#call('connect', (backend) => backend.get(`${this.#config.keyPrefix}koa-kv-session-probe`), undefined, context));
  }

  /** The record of a sid and its data, or undefined when there is none, it has expired, or it cannot be read (reported). */
  async load(name: string, now: number, deadline?: number): Promise<Loaded | undefined> {
    const loaded = this.#decode(name, await this.#read(name, deadline), now);
    return typeof loaded === 'string' ? undefined : loaded;
  }

  /**
   * The session a cookie's sid names, or why not: 'moved' when a regenerate() retired it (its browser
   * may hold the new sid), else 'gone'. Found in the other key layout (before hashSids was switched):
   * `from` names it there. A record answers only in the layout its header names: a key is no sid.
   */
  async loadOrFate(sid: string, now: number, deadline?: number): Promise<(Loaded & { readonly from?: string }) | NoSession> {
    const hashed = this.names.hashed;
    const raw = await this.#read(sid, deadline);
    // A tombstone of a move to the other layout (by a process with the other setting) sends us there, as
    // nothing here does; anything else here is the answer. (A live session found costs no hashing.)
    let other: string | undefined;
    if (raw !== undefined && raw !== null) {
      const to = movedTo(raw);
      other = to === undefined ? undefined : (this.names.otherName(sid) as string);
      if (other === undefined || to !== this.names.storedName(other)) {
        const loaded = this.#decode(sid, raw, now);
        if (typeof loaded === 'string' || loaded.record.hashed === hashed) return loaded;
      }
    }
    other ??= this.names.otherName(sid) as string;
    const otherRaw = await this.#read(other, deadline);
    // Nothing there either, or the tombstone of a move here: a request of the same browser may have
    // just moved it (between our two reads), so what is here now is the answer.
    if (otherRaw === undefined || otherRaw === null || movedTo(otherRaw) === this.names.storedName(sid)) {
      const again = this.#decode(sid, await this.#read(sid, deadline), now);
      return typeof again === 'string' || again.record.hashed === hashed ? again : 'gone';
    }
    const moved = this.#decode(sid, otherRaw, now);
    if (typeof moved === 'string') return moved;
    if (moved.record.hashed === hashed) return 'gone';
    return { ...moved, from: other };
  }

  /** The session in `raw` (read under `name`), or why there is none. */
  #decode(name: string, raw: unknown, now: number): Loaded | NoSession {
    if (raw === undefined || raw === null) return 'gone';
    try {
      // A record larger than we would ever write is not decoded: a planted or stale giant costs nothing.
      if (typeof raw === 'string' && raw.length > this.#config.maxSize) {
        throw new CorruptRecordError(`session record is ${raw.length} characters, over maxSize (${this.#config.maxSize})`);
      }
      const record = parseRecord(raw);
      // Backends without native TTL keep expired rows until a purge: expiry is checked here.
      if (record.expires <= now) return recordStatus(raw, now) === 'moved' ? 'moved' : 'gone';
      return { record, data: decodePayload(record.payload, record.format) };
    } catch (error) {
      if (!(error instanceof CorruptRecordError)) throw error;
      this.#report(corruptRecordError(name, this.#config.keyPrefix, error));
      return 'gone';
    }
  }

  /** The stored string under a name (a sid, or a user index), undecoded; undefined when there is none. */
  async loadRaw(name: string, deadline?: number): Promise<string | undefined> {
    const raw = await this.#read(name, deadline);
    if (raw === undefined || raw === null) return undefined;
    return typeof raw === 'string' ? raw : String(raw);
  }

  #read(name: string, deadline: number | undefined): Promise<unknown> {
    const context = this.#context('load', name);
    return traced(
      context,
      () => this.#call('get', (backend) => backend.get(this.names.key(name)), deadline, context),
      (raw) => (raw === undefined || raw === null ? 'missing' : 'found'),
    );
  }

  async save(sid: string, raw: string, ttl: number, deadline?: number): Promise<void> {
    const context = this.#context('write', sid);
    await traced(
      context,
      () => this.#call('set', (backend) => backend.set(this.names.key(sid), raw, ttl), deadline, context),
      () => 'saved',
    );
  }

  async remove(sid: string, deadline?: number): Promise<void> {
    const context = this.#context('remove', sid);
    await traced(context, () => this.#call('delete', (backend) => backend.delete(this.names.key(sid)), deadline, context));
  }

  /**
   * Writes `next` only if the record still is `expected` (undefined: only if there is none). Atomic
   * where the backend allows it (Redis: one script); elsewhere a read right before the write, so the
   * race window is one round trip.
   */
  compareAndSet(sid: string, expected: string | undefined, next: string, ttl: number, deadline?: number): Promise<CasResult> {
    const context = this.#context('write', sid);
    return traced(
      context,
      async () => {
        const result = await this.#compareAndSet(this.names.key(sid), expected, next, ttl, deadline, context);
        // A retry after a lost reply finds this very write stored (or under writes made on top of
        // it): it landed. Taken for another writer's, it would be decided again: applied twice.
        return result.status === 'conflict' && holdsWrite(result.current, next) ? SAVED : result;
      },
      (result) => result.status,
    );
  }

  async #compareAndSet(key: string, expected: string | undefined, next: string, ttl: number, deadline: number | undefined, context: StoreTraceContext | undefined): Promise<CasResult> {
    const backend = await this.#connected(deadline);
    const atomic = backend.compareAndSet?.bind(backend);
    if (atomic !== undefined) return this.#call('set', () => atomic(key, expected, next, ttl), deadline, context);
    const current: unknown = (await this.#call('get', (backend) => backend.get(key), deadline, context)) ?? undefined;
    if (current !== expected) return missed(current);
    await this.#call('set', (backend) => backend.set(key, next, ttl), deadline, context);
    return { status: 'saved' };
  }

  /**
   * Deletes the expired records under the key prefix, one statement per batch on SQL backends, and
   * resolves with how many. Backends that expire keys themselves (Redis) have nothing to purge: 0.
   * Not bounded by storeTimeout: a purge of a million rows takes as long as it takes.
   */
  async purge(now = Date.now()): Promise<number> {
    const backend = await this.#connected();
    const purge = backend.purgeExpired?.bind(backend);
    if (purge === undefined) {
      throw new SessionError(
        'SESSION_UNSUPPORTED',
        `koa-kv-session: the store (${describeStore(this.#config.store)}) cannot list or purge expired sessions; records expire only if the backend expires them`,
      );
    }
    try {
      return await traced(this.#context('purge', undefined), () => purge(this.#config.keyPrefix, now));
    } catch (error) {
      if (error instanceof SessionError) throw error;
      throw new SessionStoreError('SESSION_STORE_UNAVAILABLE', 'purge', `koa-kv-session: purging expired sessions failed: ${messageOf(error)}`, error);
    }
  }

  /** True when the backend can list its keys (what `scanPage` needs). */
  async canList(): Promise<boolean> {
    return (await this.#connected()).scanPage !== undefined;
  }

  /** True when the backend's pages are in key order and resume after any string (see `Backend.scansInKeyOrder`). */
  async scansInKeyOrder(): Promise<boolean> {
    return (await this.#connected()).scansInKeyOrder === true;
  }

  /** A page of the records under the key prefix, and the cursor of the next (undefined: that was the last). */
  async scanPage(cursor: string | undefined, count: number): Promise<{ records: ListedRecord[]; cursor: string | undefined }> {
    const backend = await this.#connected();
    const scan = backend.scanPage?.bind(backend);
    if (scan === undefined) {
      throw new SessionError('SESSION_UNSUPPORTED', `koa-kv-session: the store (${describeStore(this.#config.store)}) cannot list its keys`);
    }
    const prefix = this.#config.keyPrefix;
    const context = this.#context('list', undefined);
    const page = await traced(context, () => this.#call('get', () => scan(prefix, cursor, count), undefined, context));
    return { records: page.entries.map(([key, raw]) => ({ name: key.slice(prefix.length), raw })), cursor: page.cursor };
  }

  /** How many records are under the key prefix, where one statement can tell (SQL); undefined elsewhere. */
  async countRecords(): Promise<number | undefined> {
    const backend = await this.#connected();
    const count = backend.countUnder?.bind(backend);
    const context = this.#context('count', undefined);
    return count === undefined ? undefined : traced(context, () => this.#call('get', () => count(this.#config.keyPrefix), undefined, context));
  }

  /**
   * Rewrites many records, each only if it still holds its expected value: one statement per batch
   * on SQL, concurrent compare-and-sets elsewhere. Resolves with the names written.
   */
  async compareAndSetMany(rows: ReadonlyArray<{ name: string; expected: string; next: string; ttl: number }>): Promise<Set<string>> {
    const backend = await this.#connected();
    const many = backend.compareAndSetMany?.bind(backend);
    if (many !== undefined) {
      const batch: BatchRow[] = rows.map((row) => ({ key: this.names.key(row.name), expected: row.expected, next: row.next }));
      const context = this.#context('write', undefined);
      const written = new Set(await traced(context, () => this.#call('set', () => many(batch), undefined, context)));
      return new Set(rows.filter((_, i) => written.has((batch[i] as BatchRow).key)).map((row) => row.name));
    }
    const saved = new Set<string>();
    await mapConcurrently(rows, 32, async (row) => {
      if ((await this.compareAndSet(row.name, row.expected, row.next, row.ttl)).status === 'saved') saved.add(row.name);
    });
    return saved;
  }

  /** Closes what this store opened; an adapter or Keyv instance given by the user is left open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Within storeTimeout: a server that does not answer gets its connections dropped.
    if (this.#opening !== undefined) await closeBackend(this.#opening, this.#config.storeTimeout);
  }

  /**
   * Runs one store call with every failure mapped to a SessionStoreError. The whole call, retries
   * included, ends by `deadline` (a request's own: what it already waited for counts), or
   * storeTimeout from now; failed attempts are retried with backoff (every write we make is
   * idempotent: a full value, a delete, or a compare-and-set that re-checks).
   */
  async #call<T>(operation: Operation, run: (backend: Backend) => Promise<T>, deadline = Date.now() + this.#config.storeTimeout, context?: StoreTraceContext): Promise<T> {
    if (this.#closed) {
      throw new SessionStoreError('SESSION_STORE_UNAVAILABLE', operation, 'koa-kv-session: the session store was closed');
    }
    for (let attempt = 0; ; attempt++) {
      // A request whose time is up sends nothing more to the store.
      if (Date.now() >= deadline) throw this.timeout(operation);
      if (context !== undefined) context.attempts = attempt + 1;
      try {
        return await bounded(this.#opened ? run(this.#opened) : this.#open().then(run), deadline, () => this.timeout(operation));
      } catch (error) {
        if (error instanceof SessionError) throw error;
        const backoff = 20 * 2 ** attempt;
        if (attempt >= this.#config.storeRetries || Date.now() + backoff >= deadline) {
          throw new SessionStoreError(
            'SESSION_STORE_UNAVAILABLE',
            operation,
            `koa-kv-session: the session store (${describeStore(this.#config.store)}) failed a ${operation}: ${messageOf(error)}`,
            error,
          );
        }
        await sleep(backoff);
      }
    }
  }

  /** The tracing context of a call on the record `name` (undefined: many records), when someone subscribed to the channel. */
  #context(operation: StoreOperation, name: string | undefined): StoreTraceContext | undefined {
    if (!tracing()) return undefined;
    const target = name === undefined ? 'many' : isUserIndexName(name) ? 'user-index' : 'session';
    return { operation, backend: this.#backend, id: target === 'session' ? this.names.safeId(name as string) : undefined, target, attempts: 0 };
  }

  /** The error of a store call, or a wait for one, that ran out of time. */
  timeout(operation: Operation): SessionStoreError {
    return new SessionStoreError(
      'SESSION_STORE_TIMEOUT',
      operation,
      `koa-kv-session: the session store (${describeStore(this.#config.store)}) did not answer a ${operation} within ${this.#config.storeTimeout} ms`,
    );
  }
}
