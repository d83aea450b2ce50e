// SQLite files on sqlite3 (`sqlite://path`, the zero-config default), whose open is retried until it succeeds.
//
// Why not @keyv/sqlite for URLs: it opens the file and creates its table once, in its constructor,
// and keeps that promise for ever. A file locked by another process at start-up (SQLITE_BUSY) then
// fails every later request, long after the lock is gone, and the half-opened handle can never be
// closed. The table layout is the same (key VARCHAR(255) PRIMARY KEY, value TEXT), so a KeyvSqlite
// instance you pass as `store` reads and writes the same rows.
import { QuietEmitter, type Backend } from './contract.js';
import { sqlBackend, type SqlClient, type SqlResult } from './sql.js';
import { importOptional, takeParameters } from './url.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** The part of sqlite3's Database this backend uses. */
interface Database {
  configure(option: 'busyTimeout', value: number): void;
  all(sql: string, params: readonly unknown[], callback: (error: Error | null, rows: Array<Record<string, unknown>>) => void): void;
  close(callback: (error: Error | null) => void): void;
}

/** The part of the sqlite3 module this backend uses. */
interface Sqlite3 {
  Database: new (path: string, callback: (error: Error | null) => void) => Database;
}

function all(db: Database, sql: string, params: readonly unknown[]): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => db.all(sql, params, (error, rows) => (error ? reject(error) : resolve(rows))));
}

function closeQuietly(db: Database): Promise<void> {
  return new Promise((resolve) => db.close(() => resolve()));
}

export class SqliteBackend extends QuietEmitter implements Backend {
  /** The sessions table, as the SQL of sql.ts reaches it. Statements that change rows say so with RETURNING. */
  readonly sql: SqlClient;
  readonly #file: string;
  readonly #sqlite3: Sqlite3;
  readonly #busyTimeout: number;
  #ready: Promise<Database> | undefined;
  #closed = false;

  constructor(sqlite3: Sqlite3, file: string, table: string, busyTimeout: number) {
    super();
    if (!IDENTIFIER.test(table)) throw new TypeError(`koa-kv-session: the table parameter of a sqlite:// URL must be a plain SQL identifier, got ${JSON.stringify(table)}`);
    this.#file = file;
    this.#sqlite3 = sqlite3;
    this.#busyTimeout = busyTimeout;
    this.sql = { dialect: 'sqlite', table, query: (sql, params) => this.#query(sql, params) };
    Object.assign(this, sqlBackend(this.sql));
  }

  /** Opens the file and creates the table; a failure (a lock, a missing folder) is retried on the next call. */
  #open(): Promise<Database> {
    this.#ready ??= (async () => {
      const db = await new Promise<Database>((resolve, reject) => {
        const opened: Database = new this.#sqlite3.Database(this.#file, (error) => (error ? reject(error) : resolve(opened)));
      });
      try {
        db.configure('busyTimeout', this.#busyTimeout);
        await all(db, `CREATE TABLE IF NOT EXISTS ${this.sql.table} (key VARCHAR(255) PRIMARY KEY, value TEXT)`, []);
        return db;
      } catch (error) {
        await closeQuietly(db);
        throw error;
      }
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  async #query(sql: string, params: readonly unknown[]): Promise<SqlResult> {
    if (this.#closed) throw new Error('koa-kv-session: the SQLite store was closed');
    const rows = await all(await this.#open(), sql, params);
    return { rows, changed: rows.length };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const ready = this.#ready;
    this.#ready = undefined;
    const db = await ready?.catch(() => undefined);
    if (db !== undefined) await closeQuietly(db);
  }
}

// The members sqlBackend() assigns in the constructor.
export interface SqliteBackend extends ReturnType<typeof sqlBackend> {}

/** `sqlite://path` (`?table=name`). */
export async function openSqlite(url: string, scheme: string, timeout: number): Promise<Backend> {
  const sqlite3 = await importOptional('sqlite3', scheme);
  const { url: uri, params } = takeParameters(url, ['table']);
  return new SqliteBackend(sqlite3.default ?? sqlite3, uri.replace(/^sqlite:\/\//i, ''), params.table ?? 'keyv', timeout);
}
