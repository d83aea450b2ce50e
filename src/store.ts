// The one place that calls a backend: read / save / remove / compare-and-set under the key prefix, with TTL, one
// deadline per request, retries, tracing and error mapping. What a value read means is stored-session.ts's.
import { setTimeout as sleep } from 'node:timers/promises';
import { debugLog } from './debug.js';
import { missed, type Backend, type CasResult } from './backends/contract.js';
import { maskPassword, openBackend, schemeRow } from './backends/registry.js';
import { closeBackend } from './backends/closing.js';
import { holdsWrite } from './record.js';
import { bounded } from './deadline.js';
import { messageOf, SessionError, SessionStoreError } from './errors.js';
import { isUserIndexName, LAYOUT_NAME, StoreNames } from './names.js';
import { type StoreOperation, type StoreTraceContext, traced, tracing } from './tracing.js';
import type { Reading, StoreAbilities, StoreConfig, StoreSpec } from './store-types.js';

type Operation = SessionStoreError['operation'];

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
  /** What a decode of a value read here needs (stored-session.ts). */
  readonly reading: Reading;

  constructor(config: StoreConfig, report: (error: Error) => void) {
    this.#config = config;
    this.names = new StoreNames(config.keyPrefix, config.hashSids);
    this.#report = report;
    this.reading = { keyPrefix: config.keyPrefix, maxSize: config.maxSize, report };
    this.#backend = backendName(config.store);
  }

  /** How long one operation may take (storeTimeout), in ms. */
  get timeoutMs(): number {
    return this.#config.storeTimeout;
  }

  /** What the backend can do (connecting first, bounded by storeTimeout). */
  async abilities(): Promise<StoreAbilities> {
    const backend = await this.connected();
    return {
      atomic: backend.compareAndSet !== undefined,
      list: backend.scanPage !== undefined,
      purge: backend.purgeExpired !== undefined,
      ownExpiry: backend.expiresKeys === true,
    };
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
    const backend =
      spec.kind === 'url' ? await openBackend(spec.url, this.#config.storeTimeout) : await spec.handed.open();
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
  async connected(deadline?: number): Promise<Backend> {
    return this.#opened ?? this.call('connect', async (backend) => backend, deadline);
  }

  /** The key prefix every key of this store starts with. */
  get keyPrefix(): string {
    return this.#config.keyPrefix;
  }

  /** The store as error messages name it. */
  describe(): string {
    return describeStore(this.#config.store);
  }

  /** Checks the store answers, for start-up: a read of a key that is never written. */
  async probe(): Promise<void> {
    const context = this.traceContext('connect', undefined);
    await traced(context, () =>
      this.call(
        'connect',
        (backend) => backend.get(`${this.#config.keyPrefix}koa-kv-session-probe`),
        undefined,
        context,
      ),
    );
  }

  /** The stored string under a name (a sid, or a user index), undecoded; undefined when there is none. */
  async loadRaw(name: string, deadline?: number): Promise<string | undefined> {
    const raw = await this.read(name, deadline);
    if (raw === undefined || raw === null) return undefined;
    return typeof raw === 'string' ? raw : String(raw);
  }

  /** The value stored under a name, as the backend gives it (undefined or null: none). */
  read(name: string, deadline: number | undefined): Promise<unknown> {
    const key = this.names.key(name);
    const get = (backend: Backend): Promise<unknown> => backend.get(key);
    const context = this.traceContext('load', name);
    // The read of every request: with nobody tracing, the call alone.
    if (context === undefined) return this.call('get', get, deadline);
    return traced(
      context,
      () => this.call('get', get, deadline, context),
      (raw) => (raw === undefined || raw === null ? 'missing' : 'found'),
    );
  }

  async save(sid: string, raw: string, ttl: number, deadline?: number): Promise<void> {
    const context = this.traceContext('write', sid);
    await traced(
      context,
      () => this.call('set', (backend) => backend.set(this.names.key(sid), raw, ttl), deadline, context),
      () => 'saved',
    );
  }

  async remove(sid: string, deadline?: number): Promise<void> {
    const context = this.traceContext('remove', sid);
    await traced(context, () =>
      this.call('delete', (backend) => backend.delete(this.names.key(sid)), deadline, context),
    );
  }

  /**
   * Writes `next` only if the record still is `expected` (undefined: only if there is none). Atomic
   * where the backend allows it (Redis: one script); elsewhere a read right before the write, so the
   * race window is one round trip.
   */
  compareAndSet(
    sid: string,
    expected: string | undefined,
    next: string,
    ttl: number,
    deadline?: number,
  ): Promise<CasResult> {
    const context = this.traceContext('write', sid);
    const key = this.names.key(sid);
    // The write of every request: with nobody tracing, the call alone.
    if (context === undefined) return this.#compareAndSet(key, expected, next, ttl, deadline, undefined);
    return traced(
      context,
      () => this.#compareAndSet(key, expected, next, ttl, deadline, context),
      (result) => result.status,
    );
  }

  async #compareAndSet(
    key: string,
    expected: string | undefined,
    next: string,
    ttl: number,
    deadline: number | undefined,
    context: StoreTraceContext | undefined,
  ): Promise<CasResult> {
    const backend = this.#opened ?? (await this.connected(deadline));
    const atomic = backend.compareAndSet?.bind(backend);
    let result: CasResult;
    if (atomic !== undefined)
      result = await this.call('set', () => atomic(key, expected, next, ttl), deadline, context);
    else {
      const current: unknown = (await this.call('get', (open) => open.get(key), deadline, context)) ?? undefined;
      if (current !== expected) result = missed(current);
      else {
        await this.call('set', (open) => open.set(key, next, ttl), deadline, context);
        result = SAVED;
      }
    }
    // A retry after a lost reply finds this very write stored (or under writes made on top of
    // it): it landed. Taken for another writer's, it would be decided again: applied twice.
    return result.status === 'conflict' && holdsWrite(result.current, next) ? SAVED : result;
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
  call<T>(
    operation: Operation,
    run: (backend: Backend) => Promise<T>,
    deadline = Date.now() + this.#config.storeTimeout,
    context?: StoreTraceContext,
  ): Promise<T> {
    const backend = this.#opened;
    // The usual call, on an open store with time left: its first attempt without a frame of its own around it.
    if (backend === undefined || this.#closed || Date.now() >= deadline || context !== undefined)
      return this.#attempts(operation, run, deadline, context);
    let sent: Promise<T>;
    try {
      sent = run(backend);
    } catch (error) {
      sent = Promise.reject(error);
    }
    return bounded(sent, deadline, () => this.timeout(operation)).catch(async (error: unknown) => {
      await sleep(this.#backoff(error, 0, operation, deadline));
      return this.#attempts(operation, run, deadline, context, 1);
    });
  }

  /** The attempts of a call from `first` on, with backoff between them, until one succeeds or time is up. */
  async #attempts<T>(
    operation: Operation,
    run: (backend: Backend) => Promise<T>,
    deadline: number,
    context: StoreTraceContext | undefined,
    first = 0,
  ): Promise<T> {
    if (this.#closed) {
      throw new SessionStoreError(
        'SESSION_STORE_UNAVAILABLE',
        operation,
        'koa-kv-session: the session store was closed',
      );
    }
    for (let attempt = first; ; attempt++) {
      // A request whose time is up sends nothing more to the store.
      if (Date.now() >= deadline) throw this.timeout(operation);
      if (context !== undefined) context.attempts = attempt + 1;
      try {
        return await bounded(this.#opened ? run(this.#opened) : this.#open().then(run), deadline, () =>
          this.timeout(operation),
        );
      } catch (error) {
        await sleep(this.#backoff(error, attempt, operation, deadline));
      }
    }
  }

  /** How long to wait before trying a failed attempt again; throws when it is not tried again. */
  #backoff(error: unknown, attempt: number, operation: Operation, deadline: number): number {
    if (error instanceof SessionError) throw error;
    const backoff = 20 * 2 ** attempt;
    if (attempt >= this.#config.storeRetries || Date.now() + backoff >= deadline) {
      throw new SessionStoreError(
        'SESSION_STORE_UNAVAILABLE',
        operation,
        `koa-kv-session: the session store (${describeStore(this.#config.store)}) failed a ${operation}: ` +
          `${messageOf(error)}`,
        error,
      );
    }
    return backoff;
  }

  /**
   * The tracing context of a call on the record `name` (undefined: many records), when someone subscribed to the
   * channel.
   */
  traceContext(operation: StoreOperation, name: string | undefined): StoreTraceContext | undefined {
    // The layout record (layout-switch.ts) is read about once a second at most, and is no session: not traced.
    if (!tracing() || name === LAYOUT_NAME) return undefined;
    const target = name === undefined ? 'many' : isUserIndexName(name) ? 'user-index' : 'session';
    return {
      operation,
      backend: this.#backend,
      id: target === 'session' ? this.names.safeId(name as string) : undefined,
      target,
      attempts: 0,
    };
  }

  /** The error of a store call, or a wait for one, that ran out of time. */
  timeout(operation: Operation): SessionStoreError {
    return new SessionStoreError(
      'SESSION_STORE_TIMEOUT',
      operation,
      `koa-kv-session: the session store (${describeStore(this.#config.store)}) did not answer a ${operation} within ` +
        `${this.#config.storeTimeout} ms`,
    );
  }
}

/** Where the store was opened from, for messages: a masked URL or the adapter's kind. */
function describeStore(spec: StoreSpec): string {
  if (spec.kind === 'url') return maskPassword(spec.shown ?? spec.url);
  return spec.handed.name;
}

/** The backend as tracing names it: the registry's name for a URL, else what was handed in. */
function backendName(spec: StoreSpec): string {
  if (spec.kind === 'url') return schemeRow(spec.scheme)?.name ?? spec.scheme;
  return spec.handed.kind;
}

/** What onError hears, once, of a store without atomic compare-and-set (besides the start-up warning). */
function notAtomicError(spec: StoreSpec): SessionError {
  return new SessionError(
    'SESSION_STORE_NOT_ATOMIC',
    `koa-kv-session: the store (${describeStore(spec)}) has no atomic compare-and-set, so a write reads the session ` +
      `right before it writes: two processes writing one session at the same moment can lose one change. Within one ` +
      `process nothing is lost. Use a store with compare-and-set (see docs/guarantees.md) if several processes share ` +
      `sessions.`,
  );
}
