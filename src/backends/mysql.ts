// MySQL and MariaDB on mysql2 (`mysql://`), with a pool of its own.
//
// Why not @keyv/mysql for URLs: like @keyv/postgres it keeps one pool per process and URL, so closing
// one instance breaks the others. The table layout is the same (id VARCHAR(255) PRIMARY KEY, value),
// except that a table created here uses MEDIUMTEXT (a TEXT column holds at most 65 535 bytes, less
// than the default maxSize) and a binary collation (see #prepare).
import { connect } from 'node:net';
import { Sockets } from './closing.js';
import { QuietEmitter, type Backend } from './contract.js';
import { sqlBackend, type SqlClient, type SqlResult } from './sql.js';
import { createParameter, importOptional, storeMissing, takeParameters } from './url.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** The part of a mysql2/promise Pool this backend uses: rows for a SELECT, a header with affectedRows otherwise. */
interface Pool {
  query(sql: string, params?: readonly unknown[]): Promise<[unknown, unknown]>;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  end(): Promise<void>;
}

// What sqlBackend() assigns in the constructor is declared by the interface below.
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: see the line above
export class MysqlBackend extends QuietEmitter implements Backend {
  /** The sessions table, as the SQL of sql.ts reaches it. */
  readonly sql: SqlClient;
  readonly #pool: Pool;
  readonly #table: string;
  readonly #create: boolean;
  #ready: Promise<void> | undefined;
  #closed = false;

  /** The pool's sockets, made by our factory: what destroy() drops. */
  readonly #sockets: Sockets | undefined;

  constructor(pool: Pool, table: string, create = true, sockets?: Sockets) {
    super();
    this.#table = table;
    this.#create = create;
    this.#sockets = sockets;
    if (!IDENTIFIER.test(table))
      throw new TypeError(
        `koa-kv-session: the table parameter of a mysql:// URL must be a plain SQL identifier, got ` +
          `${JSON.stringify(table)}`,
      );
    this.#pool = pool;
    // A connection dropped by the server is reported, not thrown at the process.
    this.#pool.on('error', this.report);
    this.sql = { dialect: 'mysql', table: `\`${table}\``, query: (sql, params) => this.#query(sql, params) };
    Object.assign(this, sqlBackend(this.sql));
  }

  #prepare(): Promise<void> {
    this.#ready ??= (this.#create ? this.#createTable() : this.#findTable()).then(
      () => undefined,
      (error: unknown) => {
        this.#ready = undefined; // the server may be down now: try again on the next call
        throw error;
      },
    );
    return this.#ready;
  }

  /** With create=false: fails with SESSION_STORE_MISSING unless the table is there. */
  async #findTable(): Promise<void> {
    const [rows] = await this.#pool.query(
      'SELECT 1 AS found FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?',
      [this.#table],
    );
    if (!Array.isArray(rows) || rows.length === 0) throw storeMissing(`the MySQL table ${this.#table}`);
  }

  #createTable(): Promise<unknown> {
    return (
      this.#pool
        // Binary collation: sids and base64 payloads are case-sensitive, and the server's default
        // (case-insensitive) collation would make "abc" and "ABC" the same key.
        .query(
          `CREATE TABLE IF NOT EXISTS ${this.sql.table} (id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin ` +
            `PRIMARY KEY, value MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin)`,
        )
    );
  }

  async #query(sql: string, params: readonly unknown[]): Promise<SqlResult> {
    await this.#prepare();
    const [result] = await this.#pool.query(sql, params);
    if (Array.isArray(result)) return { rows: result as Array<Record<string, unknown>>, changed: 0 };
    return { rows: [], changed: (result as { affectedRows?: number }).affectedRows ?? 0 };
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
export interface MysqlBackend extends ReturnType<typeof sqlBackend> {}

/** `mysql://user@host/db` (`?table=`). */
export async function openMysql(url: string, scheme: string, timeout: number): Promise<Backend> {
  const mysql = await importOptional('mysql2/promise', scheme);
  const { url: uri, params } = takeParameters(url, ['table', 'create']);
  const create = createParameter(params.create, scheme);
  // Its sockets are made here, as mysql2 would make them, so that destroy() can drop them.
  const sockets = new Sockets();
  const stream = ({ config }: { config: { socketPath?: string; port: number; host: string } }) =>
    sockets
      .track(config.socketPath ? connect(config.socketPath) : connect(config.port, config.host))
      .setKeepAlive(true);
  const pool = (mysql.default ?? mysql).createPool({ uri, connectTimeout: timeout, connectionLimit: 10, stream });
  return new MysqlBackend(pool, params.table ?? 'keyv', create, sockets);
}
