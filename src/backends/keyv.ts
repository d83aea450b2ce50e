// A Keyv adapter as a backend (ours from a URL, or one a user hands in), Keyv 5 or 6, and how Keyv instances and
// adapters are told apart.
import type { Backend } from './contract.js';
import { sqlAbilities, type SqlClient } from './sql.js';

/**
 * The calls of a Keyv adapter this wrapper uses, Keyv 5 or 6; everything else is looked for, not
 * required. Calls may be synchronous. The third argument of `set` is a TTL in ms for a Keyv 5
 * adapter and an absolute expiry time (ms since the epoch) for a Keyv 6 one.
 */
export interface KeyvAdapterLike {
  get(key: string): unknown;
  set(key: string, value: string, ttlOrExpires?: number): unknown;
  delete(key: string): unknown;
  namespace?: string | undefined;
  disconnect?(): Promise<void> | void;
  on?(event: 'error', listener: (error: unknown) => void): unknown;
}

/** A Keyv instance, version 5 or 6: a front with hooks and statistics over an adapter in `store`. */
export interface KeyvInstanceLike {
  readonly store: unknown;
  readonly stats: unknown;
  readonly hooks: unknown;
  get(key: string): unknown;
  set(key: string, value: string, ttl?: number): unknown;
}

/**
 * True for a Keyv 5 or 6 instance. Told by what it is (adapters have neither `stats` nor a `store` adapter), not by
 * version-specific fields such as Keyv 5's `opts`.
 */
export function isKeyvInstance(value: object): value is KeyvInstanceLike {
  const candidate = value as Partial<Record<keyof KeyvInstanceLike, unknown>>;
  return (
    typeof candidate.get === 'function' &&
    typeof candidate.set === 'function' &&
    candidate.stats !== undefined &&
    candidate.hooks !== undefined &&
    typeof candidate.store === 'object' &&
    candidate.store !== null
  );
}

/** True for anything with the get/set/delete calls of a Keyv adapter (Keyv 5 or 6, sync or async). */
export function isKeyvAdapter(value: object): value is KeyvAdapterLike {
  return ['get', 'set', 'delete'].every((method) => typeof Reflect.get(value, method) === 'function');
}

/**
 * True when `adapter.set()` takes an absolute expiry time: the Keyv 6 storage contract, which its adapters declare as
 * `capabilities.expires`.
 */
function takesAbsoluteExpiry(adapter: object): boolean {
  const { capabilities } = adapter as { capabilities?: { expires?: unknown } };
  return typeof capabilities === 'object' && capabilities !== null && capabilities.expires === true;
}

/**
 * What a Keyv 6 instance wraps a store in, unwrapped: `new Keyv(map)` holds the Map inside a
 * KeyvMemoryAdapter and `new Keyv(keyv5Adapter)` the adapter inside a KeyvBridgeAdapter. Using the
 * store itself keeps its abilities (the Map's compare-and-set, the Keyv 5 Redis script and SQL).
 */
export function unwrapped(adapter: object): object {
  if (!takesAbsoluteExpiry(adapter)) return adapter;
  const inner: unknown = Reflect.get(adapter, 'store');
  if (inner instanceof Map) return inner;
  if (typeof inner === 'object' && inner !== null && (isKeyvAdapter(inner) || isMapLikeObject(inner))) return inner;
  return adapter;
}

/** A synchronous Map-like store (a BigMap) inside a KeyvMemoryAdapter. */
function isMapLikeObject(value: object): boolean {
  return typeof Reflect.get(value, 'entries') === 'function' && typeof Reflect.get(value, 'size') === 'number';
}

const ABILITIES = ['compareAndSet', 'scanPage', 'purgeExpired', 'compareAndSetMany', 'countUnder'] as const;

const MYSQL_ESCAPES: Readonly<Record<string, string>> = {
  '\0': '\\0',
  '\b': '\\b',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\x1a': '\\Z',
  '"': '\\"',
  "'": "\\'",
  '\\': '\\\\',
};

/**
 * `sql` with each `?` replaced by its value as a MySQL literal (strings quoted and escaped as mysql2's
 * own format does, numbers as they are): KeyvMysql takes one statement with its values in it.
 */
export function formatMysql(sql: string, values: readonly unknown[]): string {
  let at = 0;
  return sql.replace(/\?/g, () => {
    const value = values[at++];
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    if (typeof value === 'string') {
      // NUL and SUB (\x1a) are exactly what MySQL string literals escape.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: see the line above
      return `'${value.replace(/[\0\b\t\n\r\x1a"'\\]/g, (c) => MYSQL_ESCAPES[c] as string)}'`;
    }
    throw new TypeError(`koa-kv-session: no MySQL literal for ${typeof value}`);
  });
}

/** A KeyvSqlite, KeyvPostgres or KeyvMysql instance as a SQL client of its table; undefined for anything else. */
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
  // KeyvMysql takes one statement with its values in it, and answers a statement that changes rows
  // with mysql2's header (affectedRows) instead of rows.
  if (opts.dialect === 'mysql' && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(opts.table)) {
    return {
      dialect: 'mysql',
      table: `\`${opts.table}\``,
      query: async (sql, params) => {
        const result: unknown = await run(formatMysql(sql, params));
        if (Array.isArray(result)) return rowsOnly(result);
        return { rows: [], changed: Number((result as { affectedRows?: unknown } | undefined)?.affectedRows ?? 0) };
      },
    };
  }
  return undefined;
}

/** The SQL abilities of a KeyvSqlite, KeyvPostgres or KeyvMysql instance; none for anything else. */
function sqlAbilitiesOf(adapter: object): Partial<Backend> {
  const client = keyvSqlClient(adapter);
  return client === undefined ? {} : sqlAbilities(client);
}

function rowsOnly(rows: Array<Record<string, unknown>>) {
  return { rows, changed: rows.length };
}

/**
 * `adapter` as a backend. Its get/set/delete are called directly, under our keys (no Keyv envelope).
 * Abilities, in order of precedence: its own methods of the contract's names (the memory store,
 * yours); then what its kind allows: a KeyvSqlite, KeyvPostgres or KeyvMysql instance the SQL of its
 * table; anything else has get/set/delete only. A write it answers `false` failed.
 * `owned` (we opened it from a URL): made to throw rather than swallow errors, with no namespace, its
 * errors heard, and closed by close(). One handed in is never changed: its namespace stays (where
 * the adapter prefixes keys itself, the key is `<namespace>:<keyPrefix><sid>`).
 */
export function adapterBackend(adapter: KeyvAdapterLike, owned: boolean): Backend {
  const absolute = takesAbsoluteExpiry(adapter);
  if (owned) {
    // Keyv's own option alone is not enough: @keyv/redis swallows errors unless told otherwise.
    const errors = adapter as { throwOnErrors?: unknown };
    if (typeof errors.throwOnErrors === 'boolean') errors.throwOnErrors = true;
    // As `new Keyv(adapter)` would, but with no namespace: the key is exactly <keyPrefix><sid>.
    adapter.namespace = undefined;
  }
  // The SQL of a Keyv 6 adapter's table (namespace and expires columns) is not the one sql.ts speaks.
  const kind = absolute ? {} : sqlAbilitiesOf(adapter);
  const backend: Backend = {
    // Through an async function, so an adapter whose calls are synchronous works too.
    get: async (key) => adapter.get(key),
    // A Keyv 6 adapter given a TTL would store every record already expired.
    set: async (key, value, ttl) => {
      const done: unknown = await adapter.set(key, value, absolute ? Date.now() + ttl : ttl);
      if (done === false) throw new Error('the store refused the write (its set() answered false)');
      return done;
    },
    delete: async (key) => adapter.delete(key),
    ...kind,
  };
  // A Keyv 6 adapter keeps each entry's expiry beside it and never returns an expired one: it
  // expires keys itself; its clearExpired() (SQLite, PostgreSQL) deletes the dead rows, without a count.
  const clearExpired: unknown = Reflect.get(adapter, 'clearExpired');
  if (absolute && typeof clearExpired === 'function') {
    backend.purgeExpired = async () => {
      await clearExpired.call(adapter);
      return 0;
    };
  }
  for (const name of ABILITIES) {
    const method: unknown = Reflect.get(adapter, name);
    if (typeof method === 'function') Object.assign(backend, { [name]: method.bind(adapter) });
  }
  for (const flag of ['expiresKeys', 'scansInKeyOrder'] as const)
    if (Reflect.get(adapter, flag) === true) Object.assign(backend, { [flag]: true });
  // A Keyv 5 adapter that says it expires keys (memcached, MongoDB, etcd): nothing to purge.
  if (Reflect.get(adapter, 'ttlSupport') === true && backend.purgeExpired === undefined)
    Object.assign(backend, { expiresKeys: true });
  if (owned) {
    if (typeof adapter.on === 'function') backend.on = (event, listener) => adapter.on?.(event, listener);
    let closed = false;
    backend.close = async () => {
      if (closed) return;
      closed = true;
      await adapter.disconnect?.();
    };
  }
  return backend;
}
