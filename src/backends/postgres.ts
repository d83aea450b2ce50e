// PostgreSQL on pg (`postgres://`, `postgresql://`), with a pool of its own: errors reported, never thrown at the
// process.
//
// Why not @keyv/postgres for URLs: its pool is one per process and URL, so closing one instance
// breaks the others, and a pool whose server goes away emits an 'error' nobody listens to, which
// crashes the process. The table layout is the same (key VARCHAR(255) PRIMARY KEY, value TEXT),
// so a KeyvPostgres instance you pass as `store` reads and writes the same rows.
import { createHash } from 'node:crypto';
import { Socket } from 'node:net';
import { Sockets } from './closing.js';
import { QuietEmitter, type Backend } from './contract.js';
import { expiryIndex, sqlBackend, type SqlClient, type SqlResult } from './sql.js';
import { createParameter, importOptional, storeMissing, takeParameters } from './url.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** The part of a pg Pool this backend uses. */
interface Pool {
  query(
    sql: string | { name: string; text: string; values: readonly unknown[] },
    params?: readonly unknown[],
  ): Promise<{ rows: Array<Record<string, unknown>>; rowCount: number | null }>;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  end(): Promise<void>;
}

// What sqlBackend() assigns in the constructor is declared by the interface below.
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: see the line above
export class PostgresBackend extends QuietEmitter implements Backend {
  /** The sessions table, as the SQL of sql.ts reaches it. */
  readonly sql: SqlClient;
  readonly #pool: Pool;
  readonly #schema: string;
  readonly #table: string;
  readonly #create: boolean;
  #ready: Promise<void> | undefined;
  #closed = false;

  /** The pool's sockets, when it opens them through ours: what destroy() drops. */
  readonly #sockets: Sockets | undefined;

  constructor(pool: Pool, table: string, schema: string, create = true, sockets?: Sockets) {
    super();
    this.#sockets = sockets;
    this.#create = create;
    for (const [name, value] of [
      ['table', table],
      ['schema', schema],
    ] as const) {
      if (!IDENTIFIER.test(value))
        throw new TypeError(
          `koa-kv-session: the ${name} parameter of a postgres:// URL must be a plain SQL identifier, got ` +
            `${JSON.stringify(value)}`,
        );
    }
    this.#pool = pool;
    this.#schema = schema;
    this.#table = table;
    // An idle connection dropped by the server (restart, failover) is reported, not thrown.
    this.#pool.on('error', this.report);
    this.sql = {
      dialect: 'postgres',
      table: `"${schema}"."${table}"`,
      query: (sql, params) => this.#query(sql, params),
    };
    Object.assign(this, sqlBackend(this.sql));
  }

  /** Creates the table once; a failure (server down) is retried on the next call. */
  #prepare(): Promise<void> {
    this.#ready ??= (async () => {
      if (!this.#create) {
        const { rows } = await this.#pool.query('SELECT to_regclass($1) AS found', [this.sql.table]);
        if (rows[0]?.found === null || rows[0]?.found === undefined)
          throw storeMissing(`the PostgreSQL table ${this.sql.table}`);
        return;
      }
      const schema = this.#schema === 'public' ? '' : `CREATE SCHEMA IF NOT EXISTS "${this.#schema}"; `;
      try {
        await this.#pool.query(
          `${schema}CREATE TABLE IF NOT EXISTS ${this.sql.table} (key VARCHAR(255) PRIMARY KEY, value TEXT)`,
        );
        // What a purge finds expired rows by (an index on the expiry in the record header).
        await this.#pool.query(expiryIndex('postgres', this.sql.table, `"${this.#table}_kvs_expires"`) as string);
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

  async #query(sql: string, params: readonly unknown[]): Promise<SqlResult> {
    await this.#prepare();
    // A named statement is parsed once per connection; an unnamed one is parsed, and its messages
    // written to the socket, on every call (measured: about half of a session read's CPU).
    const result = await this.#pool.query({ name: this.#statementName(sql), text: sql, values: params });
    return { rows: result.rows, changed: result.rowCount ?? result.rows.length };
  }

  readonly #names = new Map<string, string>();

  /** The statement name of `sql`: stable, and short enough for PostgreSQL's 63-character limit. */
  #statementName(sql: string): string {
    let name = this.#names.get(sql);
    if (name === undefined) {
      name = `kvs_${createHash('sha1').update(sql).digest('hex').slice(0, 24)}`;
      this.#names.set(sql, name);
    }
    return name;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  destroy(): void {
    this.#closed = true;
    this.#sockets?.destroyAll();
  }
}

// The members sqlBackend() assigns in the constructor.
export interface PostgresBackend extends ReturnType<typeof sqlBackend> {}

/** `postgres://user@host/db` (`?table=`, `?schema=`); `timeout` bounds connecting and each statement. */
export async function openPostgres(url: string, scheme: string, timeout: number): Promise<Backend> {
  const pg = await importOptional('pg', scheme);
  const { url: uri, params } = takeParameters(url, ['table', 'schema', 'create']);
  const create = createParameter(params.create, scheme);
  const Pool = (pg.default ?? pg).Pool;
  // Its sockets are made here (pg connects them, and wraps them for TLS), so that destroy() can drop them.
  const sockets = new Sockets();
  const stream = () => sockets.track(new Socket());
  const pool = new Pool({
    connectionString: uri,
    connectionTimeoutMillis: timeout,
    query_timeout: timeout,
    max: 10,
    idleTimeoutMillis: 30_000,
    stream,
  });
  return new PostgresBackend(pool, params.table ?? 'keyv', params.schema ?? 'public', create, sockets);
}
