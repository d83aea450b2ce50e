// SQLite files on sqlite3 (`sqlite://path`, the zero-config default), tuned as web apps tune SQLite, whose open is retried until it succeeds.
//
// Tuning: WAL journal (readers never wait for the writer), synchronous=NORMAL (a commit no longer
// waits for a disk sync: a power cut may lose the last commits, but never corrupts the file), a busy
// timeout (several processes can share one file), prepared statements kept per connection.
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

type Rows = Array<Record<string, unknown>>;

/** The part of sqlite3's Statement this backend uses. */
interface Statement {
  all(params: readonly unknown[], callback: (error: Error | null, rows: Rows) => void): void;
  finalize(callback: () => void): void;
}

/** The part of sqlite3's Database this backend uses. */
interface Database {
  configure(option: 'busyTimeout', value: number): void;
  all(sql: string, params: readonly unknown[], callback: (error: Error | null, rows: Rows) => void): void;
  prepare(sql: string, callback: (error: Error | null) => void): Statement;
  close(callback: (error: Error | null) => void): void;
}

// Statements kept prepared per connection; past this many (batched rewrites vary in length), the oldest goes.
const PREPARED = 64;

/** The part of the sqlite3 module this backend uses. */
interface Sqlite3 {
  Database: new (path: string, callback: (error: Error | null) => void) => Database;
}

function all(db: Database, sql: string, params: readonly unknown[]): Promise<Rows> {
  return new Promise((resolve, reject) => db.all(sql, params, (error, rows) => (error ? reject(error) : resolve(rows))));
}

function closeQuietly(db: Database): Promise<void> {
  return new Promise((resolve) => db.close(() => resolve()));
}

/** An open file with its prepared statements. */
interface Connection {
  readonly db: Database;
  readonly statements: Map<string, Promise<Statement>>;
}

export class SqliteBackend extends QuietEmitter implements Backend {
  /** The sessions table, as the SQL of sql.ts reaches it. Statements that change rows say so with RETURNING. */
  readonly sql: SqlClient;
  readonly #file: string;
  readonly #sqlite3: Sqlite3;
  readonly #busyTimeout: number;
  #ready: Promise<Connection> | undefined;
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
  #open(): Promise<Connection> {
    this.#ready ??= (async () => {
      const db = await new Promise<Database>((resolve, reject) => {
        const opened: Database = new this.#sqlite3.Database(this.#file, (error) => (error ? reject(error) : resolve(opened)));
      });
      try {
        db.configure('busyTimeout', this.#busyTimeout);
        // WAL is a property of the file (it stays on for every later connection); NORMAL is per connection.
        await all(db, 'PRAGMA journal_mode = WAL', []);
        await all(db, 'PRAGMA synchronous = NORMAL', []);
        await all(db, `CREATE TABLE IF NOT EXISTS ${this.sql.table} (key VARCHAR(255) PRIMARY KEY, value TEXT)`, []);
        return { db, statements: new Map() };
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
    const connection = await this.#open();
    // Transaction control stays unprepared: it is rare, and BEGIN/COMMIT must not be held by a cache.
    if (/^\s*(BEGIN|COMMIT|ROLLBACK|PRAGMA|CREATE|DROP)\b/i.test(sql)) return rowsOf(await all(connection.db, sql, params));
    const statement = await this.#prepared(connection, sql);
    return rowsOf(await new Promise<Rows>((resolve, reject) => statement.all(params, (error, rows) => (error ? reject(error) : resolve(rows)))));
  }

  /** The prepared statement of `sql` on this connection, prepared on first use. */
  #prepared(connection: Connection, sql: string): Promise<Statement> {
    let statement = connection.statements.get(sql);
    if (statement === undefined) {
      statement = new Promise<Statement>((resolve, reject) => {
        const prepared = connection.db.prepare(sql, (error) => (error ? reject(error) : resolve(prepared)));
      });
      // A statement that failed to prepare (a table dropped meanwhile, say) is prepared again next time.
      statement.catch(() => connection.statements.delete(sql));
      connection.statements.set(sql, statement);
      if (connection.statements.size > PREPARED) {
        const [oldest, evicted] = connection.statements.entries().next().value as [string, Promise<Statement>];
        connection.statements.delete(oldest);
        void evicted.then((s) => s.finalize(() => {}), () => {});
      }
    }
    return statement;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const ready = this.#ready;
    this.#ready = undefined;
    const connection = await ready?.catch(() => undefined);
    if (connection === undefined) return;
    for (const statement of connection.statements.values()) await statement.then((s) => new Promise<void>((done) => s.finalize(done)), () => {});
    await closeQuietly(connection.db);
  }
}

function rowsOf(rows: Rows): SqlResult {
  return { rows, changed: rows.length };
}

// The members sqlBackend() assigns in the constructor.
export interface SqliteBackend extends ReturnType<typeof sqlBackend> {}

/** `sqlite://path` (`?table=name`). */
export async function openSqlite(url: string, scheme: string, timeout: number): Promise<Backend> {
  const sqlite3 = await importOptional('sqlite3', scheme);
  const { url: uri, params } = takeParameters(url, ['table']);
  return new SqliteBackend(sqlite3.default ?? sqlite3, uri.replace(/^sqlite:\/\//i, ''), params.table ?? 'keyv', timeout);
}
