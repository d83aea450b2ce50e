// A Keyv adapter (ours, or one a user hands in, bare or inside a Keyv instance) or a Map as a backend: wrapped once, in one order of precedence.
import { mapBackend } from './memory.js';
import type { Backend } from './contract.js';
import { isKeyvRedis, keyvRedisAbilities } from './redis-family.js';
import { sqlAbilities, type SqlClient } from './sql.js';

/** The calls of a Keyv adapter this wrapper uses; everything else is looked for, not required. */
export interface KeyvAdapterLike {
  get(key: string): unknown;
  set(key: string, value: string, ttl?: number): unknown;
  delete(key: string): unknown;
  namespace?: string | undefined;
  disconnect?(): Promise<void> | void;
  on?(event: 'error', listener: (error: unknown) => void): unknown;
}

const ABILITIES = ['compareAndSet', 'scanPage', 'purgeExpired', 'compareAndSetMany', 'countUnder'] as const;

/** A KeyvSqlite or KeyvPostgres instance as a SQL client of its table; undefined for anything else. */
function keyvSqlClient(adapter: object): SqlClient | undefined {
  const candidate = adapter as { opts?: { dialect?: unknown; table?: unknown; schema?: unknown }; query?: unknown };
  const { opts, query } = candidate;
  if (typeof query !== 'function' || typeof opts?.table !== 'string') return undefined;
  // KeyvSqlite spreads parameters; KeyvPostgres takes an array. Both resolve with rows only, so
  // statements that change rows report them with RETURNING.
  const run = query.bind(adapter) as (sql: string, ...params: unknown[]) => Promise<Array<Record<string, unknown>>>;
  if (opts.dialect === 'sqlite') {
    return { dialect: 'sqlite', table: opts.table, query: async (sql, params) => rowsOnly(await run(sql, ...params)) };
  }
  if (opts.dialect === 'postgres') {
    const table = `${typeof opts.schema === 'string' ? opts.schema : 'public'}.${opts.table}`;
    return { dialect: 'postgres', table, query: async (sql, params) => rowsOnly(await run(sql, params)) };
  }
  return undefined;
}

/** The SQL abilities of a KeyvSqlite or KeyvPostgres instance; none for anything else. */
function sqlAbilitiesOf(adapter: object): Partial<Backend> {
  const client = keyvSqlClient(adapter);
  return client === undefined ? {} : sqlAbilities(client);
}

function rowsOnly(rows: Array<Record<string, unknown>>) {
  return { rows, changed: rows.length };
}

/**
 * `adapter` as a backend. Its get/set/delete are called directly, under our exact keys (no Keyv
 * namespace, no Keyv envelope), and it is made to throw rather than swallow errors. Abilities, in
 * order of precedence: its own methods of the contract's names (the memory store, yours); then what
 * its kind allows: a @keyv/redis adapter gets the script and SCAN, a KeyvSqlite or KeyvPostgres
 * instance the SQL of its table; anything else has get/set/delete only. `owned`: close() disconnects it.
 */
export function adapterBackend(adapter: KeyvAdapterLike, owned: boolean): Backend {
  // Keyv's own option alone is not enough: @keyv/redis swallows errors unless told otherwise.
  const errors = adapter as { throwOnErrors?: unknown };
  if (typeof errors.throwOnErrors === 'boolean') errors.throwOnErrors = true;
  // As `new Keyv(adapter)` would, but with no namespace: the key is exactly <keyPrefix><sid>.
  adapter.namespace = undefined;
  const kind = isKeyvRedis(adapter) ? keyvRedisAbilities(adapter) : sqlAbilitiesOf(adapter);
  const backend: Backend = {
    // Through an async function, so an adapter whose calls are synchronous works too.
    get: async (key) => adapter.get(key),
    set: async (key, value, ttl) => adapter.set(key, value, ttl),
    delete: async (key) => adapter.delete(key),
    ...kind,
  };
  for (const name of ABILITIES) {
    const method: unknown = Reflect.get(adapter, name);
    if (typeof method === 'function') Object.assign(backend, { [name]: method.bind(adapter) });
  }
  if (typeof adapter.on === 'function') backend.on = (event, listener) => adapter.on?.(event, listener);
  if (owned) {
    let closed = false;
    backend.close = async () => {
      if (closed) return;
      closed = true;
      await adapter.disconnect?.();
    };
  }
  return backend;
}

/** What the `store` option can hand in, once options.ts has told a Keyv instance from a bare adapter. */
export type HandedIn = { readonly kind: 'keyv'; readonly keyv: { readonly store: unknown } } | { readonly kind: 'adapter'; readonly adapter: object };

/** The backend for what a user handed in: a Map, a Keyv instance (its adapter is used) or a bare adapter. Left open by close(). */
export function handedInBackend(spec: HandedIn): Backend {
  const adapter = spec.kind === 'keyv' ? spec.keyv.store : spec.adapter;
  if (adapter instanceof Map) return mapBackend(adapter);
  return adapterBackend(adapter as KeyvAdapterLike, false);
}
