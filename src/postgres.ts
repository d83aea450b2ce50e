// A Keyv store adapter for PostgreSQL with its own pool: errors reported, never thrown at the process; conditional writes in SQL.
//
// Why not @keyv/postgres for URLs: its pool is one per process and URL, so closing one instance
// breaks the others, and a pool whose server goes away emits an 'error' nobody listens to, which
// crashes the process. The table layout is the same (key VARCHAR(255) PRIMARY KEY, value TEXT),
// so a KeyvPostgres instance you pass as `store` reads and writes the same rows.
import pg from 'pg';
import { QuietEmitter } from './wrappers.js';
import { likePrefix, missed, postgresPurgeStatement, PURGE_BATCH, purgeInBatches, sqlCompareAndSetMany, sqlCount, sqlScan, type CasResult, type CountUnder, type CompareAndSetMany, type ScanPage } from './adapters.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export interface PostgresAdapterOptions {
  readonly table?: string;
  readonly schema?: string;
  /** Connection and statement timeout, ms. */
  readonly timeout: number;
}

export class PostgresAdapter extends QuietEmitter {
  readonly opts: { readonly dialect: 'postgres'; readonly table: string; readonly schema: string; readonly url: string };
  namespace: string | undefined;
  readonly #pool: pg.Pool;
  readonly #table: string;
  #ready: Promise<void> | undefined;

  constructor(url: string, options: PostgresAdapterOptions) {
    super();
    const table = options.table ?? 'keyv';
    const schema = options.schema ?? 'public';
    for (const [name, value] of [['table', table], ['schema', schema]] as const) {
      if (!IDENTIFIER.test(value)) throw new TypeError(`koa-kv-session: the ${name} parameter of a postgres:// URL must be a plain SQL identifier, got ${JSON.stringify(value)}`);
    }
    this.opts = { dialect: 'postgres', table, schema, url };
    this.#table = `"${schema}"."${table}"`;
    this.#pool = new pg.Pool({
      connectionString: url,
      connectionTimeoutMillis: options.timeout,
      query_timeout: options.timeout,
      max: 10,
      idleTimeoutMillis: 30_000,
    });
    // An idle connection dropped by the server (restart, failover) is reported, not thrown.
    this.#pool.on('error', this.report);
  }

  /** Creates the table once; a failure (server down) is retried on the next call. */
  #prepare(): Promise<void> {
    this.#ready ??= (async () => {
      const schema = this.opts.schema === 'public' ? '' : `CREATE SCHEMA IF NOT EXISTS "${this.opts.schema}"; `;
      try {
        await this.#pool.query(`${schema}CREATE TABLE IF NOT EXISTS ${this.#table} (key VARCHAR(255) PRIMARY KEY, value TEXT)`);
      } catch (error) {
        // Two processes creating the table at once: one loses the race, the table exists.
        const code = (error as { code?: string }).code;
        if (code !== '23505' && code !== '42P07') throw error;
      }
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  /** Runs a statement on the sessions table; `{table}` in the text is replaced by its quoted name. */
  async query(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
    await this.#prepare();
    return this.#pool.query(sql.replaceAll('{table}', this.#table), params);
  }

  async get(key: string): Promise<string | undefined> {
    const result = await this.query('SELECT value FROM {table} WHERE key = $1', [key]);
    return result.rows[0]?.value ?? undefined;
  }

  async set(key: string, value: string): Promise<boolean> {
    await this.query('INSERT INTO {table} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const result = await this.query('DELETE FROM {table} WHERE key = $1', [key]);
    return (result.rowCount ?? 0) > 0;
  }

  /** Deletes the keys of this adapter's namespace only; without a namespace it refuses, rather than empty a shared table. */
  async clear(): Promise<void> {
    if (!this.namespace) throw new Error('koa-kv-session: refusing to clear a PostgreSQL table without a namespace');
    await this.query("DELETE FROM {table} WHERE key LIKE $1 ESCAPE '\\'", [likePrefix(`${this.namespace}:`)]);
  }

  /** One conditional UPDATE (or INSERT when no value is expected), atomic in the database; a read tells "gone" from "changed" when it updated nothing. */
  async compareAndSet(key: string, expected: string | undefined, next: string): Promise<CasResult> {
    const updated = expected === undefined
      ? await this.query('INSERT INTO {table} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, next])
      : await this.query('UPDATE {table} SET value = $1 WHERE key = $2 AND value = $3', [next, key, expected]);
    if ((updated.rowCount ?? 0) > 0) return { status: 'saved' };
    return missed(await this.get(key));
  }

  /** Deletes expired records under `prefix`, one statement per batch of rows: bounded memory for any number of rows. */
  purgeExpired(prefix: string, now: number): Promise<number> {
    const sql = postgresPurgeStatement('{table}', false);
    return purgeInBatches(async () => (await this.query(sql, [likePrefix(prefix), now, PURGE_BATCH])).rowCount ?? 0);
  }

  /** Pages of records under a prefix, in key order (keyset pagination: no OFFSET, however deep). */
  readonly scanPage: ScanPage = sqlScan(async (sql, params) => (await this.query(sql, params)).rows, '{table}', 'postgres');

  readonly countUnder: CountUnder = sqlCount(async (sql, params) => (await this.query(sql, params)).rows, '{table}', 'postgres');

  /** A batch of conditional rewrites in one UPDATE statement. */
  readonly compareAndSetMany: CompareAndSetMany = sqlCompareAndSetMany(async (sql, params) => (await this.query(sql, params)).rows, '{table}', 'postgres');

  async disconnect(): Promise<void> {
    await this.#pool.end();
  }
}
