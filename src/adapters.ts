// Connection URL -> Keyv adapter (imported lazily), and what each adapter can do: atomic compare-and-set, purge. Adapters whose own quirks break sessions are wrapped in wrappers.ts, postgres.ts and mysql.ts.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { KeyvStoreAdapter } from 'keyv';
import { recordExpiry } from './codec.js';
import { SessionError } from './errors.js';

/** URL schemes `store` accepts, with the npm package each one needs. */
export const STORE_SCHEMES: Readonly<Record<string, string | undefined>> = Object.freeze({
  memory: undefined,
  sqlite: 'sqlite3',
  redis: '@keyv/redis',
  rediss: '@keyv/redis',
  postgres: 'pg',
  postgresql: 'pg',
  mysql: 'mysql2',
  mongodb: '@keyv/mongo',
  'mongodb+srv': '@keyv/mongo',
  memcache: '@keyv/memcache',
  'redis+cluster': '@keyv/redis',
  valkey: '@keyv/valkey',
  etcd: '@keyv/etcd',
  dynamodb: '@keyv/dynamo',
});

/** The scheme of a connection URL, lower-cased, or undefined when it has none. */
export function schemeOf(url: string): string | undefined {
  const match = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  return match ? (match[1] as string).toLowerCase() : undefined;
}

/** An adapter plus how to let go of it without breaking other users of the same connection. */
export interface OpenedAdapter {
  readonly adapter: KeyvStoreAdapter | Map<unknown, unknown>;
  readonly release: () => Promise<void>;
}

/**
 * The in-memory store for `memory://`: a Map whose entries expire. Keyv's plain Map never forgets
 * an entry, so a long-running test server would grow without bound.
 */
export class MemoryAdapter extends EventEmitter {
  readonly opts = { dialect: 'memory' };
  namespace: string | undefined;
  readonly #entries = new Map<string, { value: unknown; expires: number }>();
  #writes = 0;

  async get(key: string): Promise<unknown> {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    // Sweep expired entries now and then, so memory follows the live sessions.
    if (++this.#writes % 1000 === 0) this.sweep();
    this.#entries.set(key, { value, expires: ttl ? Date.now() + ttl : Number.POSITIVE_INFINITY });
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return this.#entries.delete(key);
  }

  async clear(): Promise<void> {
    this.#entries.clear();
  }

  /** Atomic by construction: nothing else runs between the check and the write. */
  async compareAndSet(key: string, expected: string | undefined, next: string, ttl: number): Promise<CasResult> {
    const entry = this.#entries.get(key);
    const current = entry !== undefined && entry.expires > Date.now() ? entry.value : undefined;
    if (current !== expected) return missed(current);
    this.#entries.set(key, { value: next, expires: Date.now() + ttl });
    return { status: 'saved' };
  }

  /** Removes the expired entries under `prefix` (by TTL, or by the expiry in a record's header); returns how many. */
  async purgeExpired(prefix: string, now: number): Promise<number> {
    let removed = 0;
    for (const [key, entry] of this.#entries) {
      if (key.startsWith(prefix) && (entry.expires <= now || recordExpiry(entry.value) <= now)) {
        this.#entries.delete(key);
        removed++;
      }
    }
    return removed;
  }

  /** A page of the live entries under `prefix`, in key order. */
  async scanPage(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage> {
    const now = Date.now();
    const live = [...this.#entries].filter(([, entry]) => entry.expires > now).map(([key]) => key);
    const { page, cursor: next } = pageOfKeys(live, prefix, cursor, count);
    return { entries: page.map((key) => [key, String(this.#entries.get(key)?.value)] as const), cursor: next };
  }

  /** Removes expired entries; returns how many. */
  sweep(now = Date.now()): number {
    let removed = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.expires <= now) {
        this.#entries.delete(key);
        removed++;
      }
    }
    return removed;
  }

  get size(): number {
    return this.#entries.size;
  }
}

function owned(adapter: KeyvStoreAdapter): OpenedAdapter {
  let released = false;
  return {
    adapter,
    release: async () => {
      if (released) return;
      released = true;
      await adapter.disconnect?.();
    },
  };
}

// Optional peers are loaded by name at run time; their types are not available at build time.
// biome-ignore lint/suspicious/noExplicitAny: untyped third-party boundary
type AnyModule = any;

/** An optional package, or SESSION_ADAPTER_MISSING with the exact command that installs it. */
export async function importOptional(pkg: string, scheme: string): Promise<AnyModule> {
  try {
    return await import(pkg);
  } catch (error) {
    const code = (error as { code?: string }).code;
    // Node says so with a code; bundlers and test runners that resolve imports themselves, in words.
    const missing =
      code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || /(cannot find|could not resolve)[^\n]*\bpackage|could not resolve "/i.test(String((error as Error)?.message));
    if (missing) {
      const install = pkg.split('/').slice(0, pkg.startsWith('@') ? 2 : 1).join('/');
      throw new SessionError(
        'SESSION_ADAPTER_MISSING',
        `koa-kv-session: the store URL ${scheme}:// needs the ${install} package, which is not installed: run \`npm install ${install}\``,
        500,
        { cause: error },
      );
    }
    throw error;
  }
}

/** The adapter class a package exports, by name or as its default export (ESM and CommonJS builds differ). */
async function load(pkg: string, scheme: string, name: string): Promise<AnyModule> {
  const mod = await importOptional(pkg, scheme);
  return mod[name] ?? mod.default?.[name] ?? mod.default?.default ?? mod.default;
}

/** Splits `?table=...` and the like off a URL: our parameters, not the driver's. */
function takeParameters(url: string, names: readonly string[]): { url: string; params: Record<string, string> } {
  const query = url.indexOf('?');
  if (query === -1) return { url, params: {} };
  const search = new URLSearchParams(url.slice(query + 1));
  const params: Record<string, string> = {};
  for (const name of names) {
    const value = search.get(name);
    if (value !== null) params[name] = value;
    search.delete(name);
  }
  const rest = search.toString();
  return { url: url.slice(0, query) + (rest ? `?${rest}` : ''), params };
}

/** `host:port[,host:port]` of a URL, without scheme, credentials, path or query. */
function hostsOf(url: string): string {
  return url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/^[^@/]*@/, '').replace(/[/?].*$/, '');
}

/**
 * `dynamodb://[key:secret@]host:port?region=...&table=...&tls=false`. Without credentials in the URL
 * or the environment, a loopback endpoint (dynalite, DynamoDB Local) gets placeholder ones, so the
 * SDK never goes looking for instance credentials over the network.
 */
function dynamoOptions(url: string): { endpoint: string; region: string; tableName: string; credentials?: { accessKeyId: string; secretAccessKey: string } } {
  const parsed = new URL(url.replace(/^dynamodb:/i, 'http:'));
  const tls = parsed.searchParams.get('tls');
  const host = parsed.host;
  const loopback = /^(127\.|localhost|\[::1\])/i.test(parsed.hostname);
  const endpoint = `${tls === 'true' || (tls === null && !loopback) ? 'https' : 'http'}://${host}`;
  const region = parsed.searchParams.get('region') ?? process.env.AWS_REGION ?? 'us-east-1';
  const tableName = parsed.searchParams.get('table') ?? 'keyv';
  if (parsed.username) {
    return { endpoint, region, tableName, credentials: { accessKeyId: decodeURIComponent(parsed.username), secretAccessKey: decodeURIComponent(parsed.password) } };
  }
  if (loopback && !process.env.AWS_ACCESS_KEY_ID) {
    return { endpoint, region, tableName, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
  }
  return { endpoint, region, tableName };
}

/** Reconnection delays of every Redis-protocol client: 50 ms doubling, at most 2 s, for ever. */
export const reconnectDelay = (retries: number): number => Math.min(50 * 2 ** retries, 2000);

/**
 * Options of a node-redis client (or of each node of a cluster): fail commands at once while
 * disconnected instead of queueing them for ever, and keep reconnecting in the background so the
 * app recovers when Redis returns.
 */
function redisClientOptions(timeout: number) {
  return { disableOfflineQueue: true, socket: { connectTimeout: timeout, reconnectStrategy: reconnectDelay } };
}

/** @keyv/redis must throw, not swallow: Keyv's own option alone is not enough. */
function keyvRedisOptions(timeout: number) {
  return { throwOnErrors: true, throwOnConnectError: true, connectionTimeout: timeout };
}

/**
 * Connects before the first command: without the offline queue, a command sent while the first
 * connection is still being made fails. If Redis is down now, the client keeps reconnecting and
 * commands fail fast (503) until it is back.
 */
async function connectedRedis(adapter: AnyModule): Promise<OpenedAdapter> {
  await adapter.getClient().catch(() => {});
  return owned(adapter);
}

/**
 * @keyv/mongo connects once, in its constructor, and when that fails its connection promise never
 * settles: every later call would hang until our timeout, for ever. The open waits for it instead
 * (bounded), so a failure fails the open, which the next request tries again.
 */
async function mongoConnected(adapter: AnyModule, timeout: number): Promise<void> {
  let onError: ((error: unknown) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      adapter.connect,
      new Promise((_, reject) => {
        onError = reject;
        adapter.on('error', onError);
        timer = setTimeout(() => reject(new Error(`MongoDB did not connect within ${timeout} ms`)), timeout + 1000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    adapter.off('error', onError);
  }
}

/** Opens the adapter for a connection URL; `timeout` bounds connection attempts of drivers that take one. */
export async function openAdapter(url: string, scheme: string, timeout: number): Promise<OpenedAdapter> {
  switch (scheme) {
    case 'memory':
      return owned(new MemoryAdapter() as unknown as KeyvStoreAdapter);
    case 'sqlite': {
      const sqlite3 = await importOptional('sqlite3', scheme);
      const { SqliteAdapter } = await import('./sqlite.js');
      const { url: uri, params } = takeParameters(url, ['table']);
      return owned(new SqliteAdapter(sqlite3.default ?? sqlite3, uri, { ...params, busyTimeout: timeout }) as unknown as KeyvStoreAdapter);
    }
    case 'redis':
    case 'rediss': {
      const KeyvRedis = await load('@keyv/redis', scheme, 'KeyvRedis');
      return connectedRedis(new KeyvRedis({ url, ...redisClientOptions(timeout) }, keyvRedisOptions(timeout)));
    }
    case 'postgres':
    case 'postgresql': {
      const { PostgresAdapter } = await import('./postgres.js');
      const { url: uri, params } = takeParameters(url, ['table', 'schema']);
      return owned(new PostgresAdapter(uri, { ...params, timeout }) as unknown as KeyvStoreAdapter);
    }
    case 'mysql': {
      const mysql = await importOptional('mysql2/promise', scheme);
      const { MysqlAdapter } = await import('./mysql.js');
      const { url: uri, params } = takeParameters(url, ['table']);
      return owned(new MysqlAdapter(mysql.default ?? mysql, uri, { ...params, timeout }) as unknown as KeyvStoreAdapter);
    }
    case 'mongodb':
    case 'mongodb+srv': {
      const KeyvMongo = await load('@keyv/mongo', scheme, 'KeyvMongo');
      const { url: uri, params } = takeParameters(url, ['collection']);
      const adapter = new KeyvMongo(uri, { serverSelectionTimeoutMS: timeout, ...params });
      await mongoConnected(adapter, timeout);
      return owned(adapter);
    }
    case 'memcache': {
      const KeyvMemcache = await load('@keyv/memcache', scheme, 'KeyvMemcache');
      const { MemcacheAdapter } = await import('./wrappers.js');
      return owned(new MemcacheAdapter(KeyvMemcache, hostsOf(url), timeout) as unknown as KeyvStoreAdapter);
    }
    case 'redis+cluster': {
      const redis = await importOptional('@keyv/redis', scheme);
      const KeyvRedis = redis.default?.default ?? redis.default;
      const createCluster = redis.createCluster ?? redis.default?.createCluster;
      const cluster = createCluster({
        rootNodes: hostsOf(url).split(',').map((host) => ({ url: `redis://${host}` })),
        defaults: redisClientOptions(timeout),
      });
      return connectedRedis(new KeyvRedis(cluster, keyvRedisOptions(timeout)));
    }
    case 'valkey': {
      const KeyvValkey = await load('@keyv/valkey', scheme, 'KeyvValkey');
      const { ValkeyAdapter } = await import('./wrappers.js');
      const adapter = new ValkeyAdapter(KeyvValkey, url, timeout);
      await adapter.connected(timeout);
      return owned(adapter as unknown as KeyvStoreAdapter);
    }
    case 'etcd': {
      const KeyvEtcd = await load('@keyv/etcd', scheme, 'KeyvEtcd');
      const { EtcdAdapter } = await import('./wrappers.js');
      return owned(new EtcdAdapter(KeyvEtcd, hostsOf(url), timeout) as unknown as KeyvStoreAdapter);
    }
    case 'dynamodb': {
      const KeyvDynamo = await load('@keyv/dynamo', scheme, 'KeyvDynamo');
      const { DynamoAdapter } = await import('./wrappers.js');
      return owned(new DynamoAdapter(KeyvDynamo, dynamoOptions(url)) as unknown as KeyvStoreAdapter);
    }
    default:
      throw new SessionError('SESSION_INVALID_OPTION', `koa-kv-session: unsupported store URL scheme ${scheme}://`);
  }
}

/** Makes an adapter the user handed us report errors instead of swallowing them (Keyv's option alone is not enough). */
export function makeAdapterThrow(adapter: object): void {
  const candidate = adapter as { throwOnErrors?: unknown };
  if (typeof candidate.throwOnErrors === 'boolean') candidate.throwOnErrors = true;
}

/** Outcome of a compare-and-set: written, the record is gone (destroyed, regenerated, expired), or it holds `current`. */
export type CasResult = { readonly status: 'saved' } | { readonly status: 'gone' } | { readonly status: 'conflict'; readonly current: string };

/**
 * Writes `next` under `key` only if the stored value is still `expected` (or, with `expected`
 * undefined, only if there is no value at all), in one atomic step.
 */
export type CompareAndSet = (key: string, expected: string | undefined, next: string, ttl: number) => Promise<CasResult>;

// Compares by SHA-1 so a large record is not sent twice (an empty ARGV[1]: the key must be absent);
// returns 1 (written), 0 (no record) or the current value.
export const CAS_SCRIPT = `local current = redis.call('GET', KEYS[1])
if not current then
  if ARGV[1] ~= '' then return 0 end
elseif redis.sha1hex(current) ~= ARGV[1] then return current end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;
/** What CAS_SCRIPT compares against: the SHA-1 of the expected value, or '' for "no value". */
export const casDigest = (expected: string | undefined): string => (expected === undefined ? '' : sha1(expected));
export const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex');
const CAS_SHA = sha1(CAS_SCRIPT);

interface RedisScripting {
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

interface RedisLikeAdapter {
  getClient(): Promise<RedisScripting>;
  createKeyPrefix(key: string, namespace?: string): string;
  namespace?: string | undefined;
}

function isRedisAdapter(adapter: object): adapter is RedisLikeAdapter {
  const candidate = adapter as Partial<RedisLikeAdapter>;
  return typeof candidate.getClient === 'function' && typeof candidate.createKeyPrefix === 'function';
}

interface SqlAdapter {
  opts: { dialect?: string; table?: string; schema?: string };
  query(sql: string, ...params: unknown[]): Promise<Array<Record<string, unknown>>>;
}

function isSqlAdapter(adapter: object, dialect: string): adapter is SqlAdapter {
  const candidate = adapter as Partial<SqlAdapter>;
  return typeof candidate.query === 'function' && candidate.opts?.dialect === dialect && typeof candidate.opts.table === 'string';
}

/** What a compare-and-set that did not write found instead: no record (gone), or another one. */
export function missed(current: unknown): CasResult {
  return current === undefined || current === null ? { status: 'gone' } : { status: 'conflict', current: String(current) };
}

/** The reply of CAS_SCRIPT: 1 written, 0 no record, or the record it holds. */
export function casScriptResult(reply: unknown): CasResult {
  return reply === 1 ? { status: 'saved' } : missed(reply === 0 ? undefined : reply);
}

/** Runs one batch of a purge after another until a batch comes back short; resolves with the total removed. */
export async function purgeInBatches(deleteBatch: () => Promise<number>): Promise<number> {
  let total = 0;
  for (;;) {
    const removed = await deleteBatch();
    total += removed;
    if (removed < PURGE_BATCH) return total;
  }
}

/**
 * One conditional UPDATE: it changes the row only if it still holds the expected value, atomically
 * in the database. When nothing was updated, a read tells "gone" from "changed".
 */
function sqlCompareAndSet(adapter: SqlAdapter, table: string, placeholders: [string, string, string], spread: boolean): CompareAndSet {
  const [p1, p2, p3] = placeholders;
  const update = `UPDATE ${table} SET value = ${p1} WHERE key = ${p2} AND value = ${p3} RETURNING key`;
  const insert = `INSERT INTO ${table} (key, value) VALUES (${p1}, ${p2}) ON CONFLICT (key) DO NOTHING RETURNING key`;
  const select = `SELECT value FROM ${table} WHERE key = ${p1}`;
  const query = (sql: string, params: unknown[]) => (spread ? adapter.query(sql, ...params) : adapter.query(sql, params));
  return async (key, expected, next) => {
    const updated = expected === undefined ? await query(insert, [key, next]) : await query(update, [next, key, expected]);
    if (updated.length > 0) return { status: 'saved' };
    return missed((await query(select, [key]))[0]?.value);
  };
}

/**
 * An atomic compare-and-set where the backend can do one, or undefined: an adapter's own
 * `compareAndSet` method (MemoryAdapter, or yours), a Redis script, or a conditional SQL UPDATE on
 * PostgreSQL and SQLite.
 */
export function atomicCompareAndSet(adapter: object): CompareAndSet | undefined {
  const own = (adapter as { compareAndSet?: unknown }).compareAndSet;
  if (typeof own === 'function') return own.bind(adapter) as CompareAndSet;
  if (isSqlAdapter(adapter, 'postgres')) {
    return sqlCompareAndSet(adapter, `${adapter.opts.schema ?? 'public'}.${adapter.opts.table}`, ['$1', '$2', '$3'], false);
  }
  if (isSqlAdapter(adapter, 'sqlite')) return sqlCompareAndSet(adapter, adapter.opts.table as string, ['?', '?', '?'], true);
  if (!isRedisAdapter(adapter)) return undefined;
  return async (key, expected, next, ttl) => {
    const client = await adapter.getClient();
    const options = { keys: [adapter.createKeyPrefix(key, adapter.namespace)], arguments: [casDigest(expected), next, String(ttl)] };
    let reply: unknown;
    try {
      reply = await client.evalSha(CAS_SHA, options);
    } catch (error) {
      if (!String((error as Error)?.message).includes('NOSCRIPT')) throw error;
      reply = await client.eval(CAS_SCRIPT, options);
    }
    return casScriptResult(reply);
  };
}

/** Deletes the expired session records under a key prefix; resolves with how many it removed. */
export type PurgeExpired = (prefix: string, now: number) => Promise<number>;

/** Rows purged per statement: bounded memory and short locks, however many rows have expired. */
export const PURGE_BATCH = 10_000;

/** A LIKE pattern matching every key that starts with `prefix` (with `\` as the escape character). */
export function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, '\\$&')}%`;
}

/**
 * How to purge expired records on this adapter: its own `purgeExpired` method (the memory store,
 * the built-in PostgreSQL adapter, or yours), one DELETE per batch on a KeyvSqlite or KeyvPostgres
 * instance, `'native'` where the server expires keys itself (Redis), or undefined.
 */
export function purgerFor(adapter: object): PurgeExpired | 'native' | undefined {
  if (adapter instanceof Map) {
    // A plain Map never forgets an entry: expired records are found by the expiry in their header.
    return async (prefix, now) => {
      let removed = 0;
      for (const [key, value] of adapter) {
        if (typeof key === 'string' && key.startsWith(prefix) && recordExpiry(value) <= now) {
          adapter.delete(key);
          removed++;
        }
      }
      return removed;
    };
  }
  const own = (adapter as { purgeExpired?: unknown }).purgeExpired;
  if (typeof own === 'function') return own.bind(adapter) as PurgeExpired;
  if (isRedisAdapter(adapter)) return 'native';
  if (isSqlAdapter(adapter, 'sqlite')) {
    const table = adapter.opts.table as string;
    // The record header is "<tag>:<expires>:": the expiry is read without decoding the payload.
    const sql = `DELETE FROM ${table} WHERE key IN (SELECT key FROM ${table} WHERE key LIKE ? ESCAPE '\\' AND value GLOB '[cj][0-9]*:[0-9]*:*' AND CAST(substr(value, instr(value, ':') + 1, instr(substr(value, instr(value, ':') + 1), ':') - 1) AS INTEGER) <= ? LIMIT ?) RETURNING key`;
    return (prefix, now) => purgeInBatches(async () => (await adapter.query(sql, likePrefix(prefix), now, PURGE_BATCH)).length);
  }
  if (isSqlAdapter(adapter, 'postgres')) {
    const table = `${adapter.opts.schema ?? 'public'}.${adapter.opts.table}`;
    const sql = postgresPurgeStatement(table, true);
    return (prefix, now) => purgeInBatches(async () => (await adapter.query(sql, [likePrefix(prefix), now, PURGE_BATCH])).length);
  }
  return undefined;
}

/** One batch of expired rows deleted in one statement; the CASE keeps rows of other shapes out of the cast. */
export function postgresPurgeStatement(table: string, returning: boolean): string {
  return `DELETE FROM ${table} WHERE key IN (SELECT key FROM ${table} WHERE key LIKE $1 ESCAPE '\\' AND (CASE WHEN value ~ '^[cj][0-9]+:[0-9]{1,16}:' THEN split_part(value, ':', 2)::bigint END) <= $2 LIMIT $3)${returning ? ' RETURNING key' : ''}`;
}

/** One page of the records under a prefix, in key order where the backend has one; `cursor` resumes after it (undefined: no more). */
export interface ScannedPage {
  readonly entries: ReadonlyArray<readonly [key: string, value: string]>;
  readonly cursor: string | undefined;
}

/** Reads the page of records under `prefix` that follows `cursor` (undefined: the first page), about `count` of them. */
export type ScanPage = (prefix: string, cursor: string | undefined, count: number) => Promise<ScannedPage>;

/** Conditional rewrites of many records in one step where the backend allows it; resolves with the keys it wrote. */
export type CompareAndSetMany = (rows: ReadonlyArray<{ readonly key: string; readonly expected: string; readonly next: string }>) => Promise<ReadonlySet<string>>;

/** The keys after `cursor` under `prefix`, sorted, at most `count`: a page of any sorted key list held in memory. */
export function pageOfKeys(keys: Iterable<unknown>, prefix: string, cursor: string | undefined, count: number): { page: string[]; cursor: string | undefined } {
  const after = cursor ?? '';
  const matching: string[] = [];
  for (const key of keys) if (typeof key === 'string' && key.startsWith(prefix) && key > after) matching.push(key);
  matching.sort();
  const page = matching.slice(0, count);
  return { page, cursor: matching.length > count ? page[page.length - 1] : undefined };
}

/** A keyset page from a SQL table: `WHERE key LIKE prefix% AND key > cursor ORDER BY key LIMIT count`. */
function sqlPages(run: (after: string, pattern: string, count: number) => Promise<Array<Record<string, unknown>>>, keyColumn: string): ScanPage {
  return async (prefix, cursor, count) => {
    const rows = await run(cursor ?? '', likePrefix(prefix), count);
    const entries = rows.map((row) => [String(row[keyColumn]), String(row.value)] as const);
    return { entries, cursor: entries.length === count ? entries[entries.length - 1]?.[0] : undefined };
  };
}

/** The key column of a dialect's sessions table, and "the key starts with the LIKE pattern of the first parameter". */
function keyUnderPrefix(dialect: 'postgres' | 'sqlite' | 'mysql'): { column: string; condition: string } {
  const column = dialect === 'mysql' ? 'id' : 'key';
  const escape = dialect === 'mysql' ? "'\\\\'" : "'\\'";
  return { column, condition: `${column} LIKE ${dialect === 'postgres' ? '$1' : '?'} ESCAPE ${escape}` };
}

/** Keyset pages of a SQL table under a prefix: `{table}` may stand for the table, as the built-in adapters' query() expects. */
export function sqlScan(query: SqlQuery, table: string, dialect: 'postgres' | 'sqlite' | 'mysql'): ScanPage {
  const { column, condition } = keyUnderPrefix(dialect);
  const [after, limit] = dialect === 'postgres' ? ['$2', '$3'] : ['?', '?'];
  const sql = `SELECT ${column}, value FROM ${table} WHERE ${condition} AND ${column} > ${after} ORDER BY ${column} LIMIT ${limit}`;
  return sqlPages((after, pattern, count) => query(sql, [pattern, after, count]), column);
}

/**
 * One UPDATE for a whole batch, joined to a VALUES list: each row changes only if it still holds
 * its expected value (PostgreSQL and SQLite). One statement is one transaction: one disk sync per
 * batch instead of one per record.
 */
export function sqlCompareAndSetMany(query: SqlQuery, table: string, dialect: 'postgres' | 'sqlite'): CompareAndSetMany {
  return async (rows) => {
    if (rows.length === 0) return new Set();
    const params: unknown[] = [];
    const tuples = rows.map((row) => {
      params.push(row.key, row.expected, row.next);
      const n = params.length;
      return dialect === 'postgres' ? `($${n - 2}, $${n - 1}, $${n})` : '(?, ?, ?)';
    });
    // PostgreSQL joins a VALUES list; SQLite (3.33+) the same list as a CTE. Both update through the key's index.
    const sql = dialect === 'postgres'
      ? `UPDATE ${table} AS t SET value = v.next FROM (VALUES ${tuples.join(', ')}) AS v(key, expected, next) WHERE t.key = v.key AND t.value = v.expected RETURNING t.key`
      : `WITH v(key, expected, next) AS (VALUES ${tuples.join(', ')}) UPDATE ${table} AS t SET value = v.next FROM v WHERE t.key = v.key AND t.value = v.expected RETURNING key`;
    const written = await query(sql, params);
    return new Set(written.map((row) => String(row.key)));
  };
}

interface RedisScanning {
  scan(cursor: string, options: { MATCH: string; COUNT: number }): Promise<{ cursor: string; keys: string[] }>;
  mGet(keys: string[]): Promise<Array<string | null>>;
  get(key: string): Promise<string | null>;
}

interface RedisClusterScanning {
  masters: unknown[];
  nodeClient(node: unknown): Promise<RedisScanning>;
  get(key: string): Promise<string | null>;
}

/** A MATCH pattern for every key starting with `prefix`. */
export function globPrefix(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
}

/** SCAN pages of a Redis server, or of each master of a cluster in turn (cursor `<master>:<cursor>`). */
function redisPages(adapter: RedisLikeAdapter): ScanPage {
  return async (prefix, cursor, count) => {
    const client = (await adapter.getClient()) as unknown as RedisScanning | RedisClusterScanning;
    const [nodeText, position] = (cursor ?? '0:0').split(':') as [string, string];
    let node = Number(nodeText);
    const isCluster = 'masters' in client && Array.isArray(client.masters);
    const scanner = isCluster ? await client.nodeClient(client.masters[node]) : (client as RedisScanning);
    const reply = await scanner.scan(position, { MATCH: globPrefix(prefix), COUNT: count });
    // Keys of one cluster node may sit in different slots: read them one by one (the client pipelines them).
    const values = reply.keys.length === 0 ? [] : isCluster ? await Promise.all(reply.keys.map((key) => client.get(key))) : await scanner.mGet(reply.keys);
    const entries: Array<readonly [string, string]> = [];
    reply.keys.forEach((key, i) => {
      const value = values[i];
      if (typeof value === 'string') entries.push([key, value]);
    });
    let next: string | undefined = `${node}:${reply.cursor}`;
    if (String(reply.cursor) === '0') {
      node++;
      next = isCluster && node < (client as RedisClusterScanning).masters.length ? `${node}:0` : undefined;
    }
    return { entries, cursor: next };
  };
}

type SqlQuery = (sql: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>;

/** A KeyvSqlite or KeyvPostgres instance as one query function, its table and its dialect; undefined for anything else. */
function keyvSql(adapter: object): { query: SqlQuery; table: string; dialect: 'sqlite' | 'postgres' } | undefined {
  if (isSqlAdapter(adapter, 'sqlite')) return { query: (sql, params) => adapter.query(sql, ...params), table: adapter.opts.table as string, dialect: 'sqlite' };
  if (isSqlAdapter(adapter, 'postgres')) {
    return { query: (sql, params) => adapter.query(sql, params), table: `${adapter.opts.schema ?? 'public'}.${adapter.opts.table}`, dialect: 'postgres' };
  }
  return undefined;
}

/** An adapter's own method `name` (bound), else what `fromSql` builds on a Keyv SQL adapter, else undefined. */
function ability<T>(adapter: object, name: string, fromSql: (sql: NonNullable<ReturnType<typeof keyvSql>>) => T): T | undefined {
  const own = (adapter as Record<string, unknown>)[name];
  if (typeof own === 'function') return own.bind(adapter) as T;
  const sql = keyvSql(adapter);
  return sql === undefined ? undefined : fromSql(sql);
}

/**
 * How to read the records under a prefix page by page: an adapter's own `scanPage` (memory, the
 * built-in SQL adapters, Valkey, etcd, DynamoDB), SCAN on Redis, keyset SQL on KeyvSqlite and
 * KeyvPostgres; undefined where the backend cannot list its keys (memcached, MongoDB).
 */
export function scannerFor(adapter: object): ScanPage | undefined {
  if (adapter instanceof Map) {
    return async (prefix, cursor, count) => {
      const { page, cursor: next } = pageOfKeys(adapter.keys(), prefix, cursor, count);
      return { entries: page.map((key) => [key, String(adapter.get(key))] as const), cursor: next };
    };
  }
  if (typeof (adapter as { scanPage?: unknown }).scanPage !== 'function' && isRedisAdapter(adapter)) return redisPages(adapter);
  return ability(adapter, 'scanPage', (sql) => sqlScan(sql.query, sql.table, sql.dialect));
}

/** Batched compare-and-set where one statement can do a batch (SQL); undefined elsewhere (one compare-and-set per record). */
export function batchCompareAndSetFor(adapter: object): CompareAndSetMany | undefined {
  return ability(adapter, 'compareAndSetMany', (sql) => sqlCompareAndSetMany(sql.query, sql.table, sql.dialect));
}

/** Counts the records under a prefix in one statement (SQL), for progress bars; undefined where that would mean a scan. */
export type CountUnder = (prefix: string) => Promise<number>;

export function sqlCount(query: SqlQuery, table: string, dialect: 'postgres' | 'sqlite' | 'mysql'): CountUnder {
  const sql = `SELECT COUNT(*) AS n FROM ${table} WHERE ${keyUnderPrefix(dialect).condition}`;
  return async (prefix) => Number((await query(sql, [likePrefix(prefix)]))[0]?.n ?? 0);
}

/** Counting by prefix where one statement can (SQL); undefined elsewhere. */
export function counterFor(adapter: object): CountUnder | undefined {
  return ability(adapter, 'countUnder', (sql) => sqlCount(sql.query, sql.table, sql.dialect));
}
