// SQLite files (`sqlite://path`, the zero-config default), tuned as web apps tune SQLite, whose open is retried until
// it succeeds.
//
// Driver (sqlite-drivers.ts): the built-in `node:sqlite` where the running Node has it (22.13 and later, 23.4 and
// later: nothing to install or compile), else the `sqlite3` package (an optional peer, compiled or downloaded at
// install). `?driver=node` or `?driver=sqlite3` picks one. Both run the same statements, on two connections per file:
// reads on one, writes on the other, so that a read never queues behind a write waiting for another process's lock (in
// WAL, readers never wait for the writer). node:sqlite runs statements synchronously, in microseconds; it never waits
// for a lock inside SQLite (that would block the event loop): a busy file is tried again after a short asynchronous
// pause, until the busy timeout.
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
import { expiryIndex, sqlBackend, type SqlClient, type SqlResult } from './sql.js';
import { closeSync, existsSync, openSync } from 'node:fs';
import {
  type Database,
  PREPARED,
  type Rows,
  type SqliteDriver,
  type Statement,
  sqliteDriver,
} from './sqlite-drivers.js';
import { createParameter, storeMissing, takeParameters } from './url.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** An open file with its prepared statements. */
interface Connection {
  readonly db: Database;
  readonly statements: Map<string, Promise<Statement>>;
}

/**
 * The two connections to one file: reads never queue behind a write that waits for a lock. One for an in-memory
 * database (a second would be another database).
 */
interface Connections {
  readonly read: Connection;
  readonly write: Connection;
}

// What sqlBackend() assigns in the constructor is declared by the interface below.
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: see the line above
export class SqliteBackend extends QuietEmitter implements Backend {
  /** The sessions table, as the SQL of sql.ts reaches it. Statements that change rows say so with RETURNING. */
  readonly sql: SqlClient;
  /** The driver that opens the file: `node:sqlite` or `sqlite3`. */
  readonly driver: SqliteDriver['name'];
  readonly #file: string;
  readonly #driver: SqliteDriver;
  readonly #busyTimeout: number;
  readonly #create: boolean;
  #ready: Promise<Connections> | undefined;
  #closed = false;

  constructor(driver: SqliteDriver, file: string, table: string, busyTimeout: number, create = true) {
    super();
    if (!IDENTIFIER.test(table))
      throw new TypeError(
        `koa-kv-session: the table parameter of a sqlite:// URL must be a plain SQL identifier, got ` +
          `${JSON.stringify(table)}`,
      );
    this.#file = file;
    this.#driver = driver;
    this.driver = driver.name;
    this.#busyTimeout = busyTimeout;
    this.#create = create;
    this.sql = { dialect: 'sqlite', table, query: (sql, params) => this.#query(sql, params) };
    Object.assign(this, sqlBackend(this.sql));
  }

  /**
   * Opens the file (a connection to write, one to read) and creates the table; a failure (a lock, a missing folder) is
   * retried on the next call.
   */
  #open(): Promise<Connections> {
    this.#ready ??= (async () => {
      const inMemory = this.#file === ':memory:' || this.#file === '';
      if (!this.#create && !inMemory && !existsSync(this.#file)) throw storeMissing(`the SQLite file ${this.#file}`);
      // The file holds sids: readable by its owner only. SQLite gives its -wal and -shm files the
      // mode of the database file, so creating it first, 0600, covers all three.
      if (this.#create && !inMemory && !existsSync(this.#file)) closeSync(openSync(this.#file, 'a', 0o600));
      const db = await this.#driver.open(this.#file, this.#busyTimeout);
      let reader: Database | undefined;
      try {
        if (!this.#create) {
          const found = await db.all("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", [
            this.sql.table,
          ]);
          if (found.length === 0) throw storeMissing(`the table ${this.sql.table} in the SQLite file ${this.#file}`);
        }
        // WAL is a property of the file (it stays on for every later connection); NORMAL is per connection.
        // With create=false (the operator command) the file is left in the mode the app gave it.
        if (this.#create) await db.all('PRAGMA journal_mode = WAL', []);
        await db.all('PRAGMA synchronous = NORMAL', []);
        if (this.#create) {
          await db.all(`CREATE TABLE IF NOT EXISTS ${this.sql.table} (key VARCHAR(255) PRIMARY KEY, value TEXT)`, []);
          // What a purge finds expired rows by (an index on the expiry in the record header).
          await db.all(expiryIndex('sqlite', this.sql.table, `${this.sql.table}_kvs_expires`) as string, []);
        }
        const write = { db, statements: new Map() };
        if (inMemory) return { read: write, write };
        reader = await this.#driver.open(this.#file, this.#busyTimeout);
        return { read: { db: reader, statements: new Map() }, write };
      } catch (error) {
        await db.close().catch(() => {});
        await reader?.close().catch(() => {});
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
    const connections = await this.#open();
    // Transaction control stays unprepared, on the writer: it is rare, and BEGIN/COMMIT must not be held by a cache.
    if (/^\s*(BEGIN|COMMIT|ROLLBACK|PRAGMA|CREATE|DROP)\b/i.test(sql))
      return rowsOf(await connections.write.db.all(sql, params));
    const connection = /^\s*SELECT\b/i.test(sql) ? connections.read : connections.write;
    const statement = await this.#prepared(connection, sql);
    return rowsOf(await statement.all(params));
  }

  /** The prepared statement of `sql` on this connection, prepared on first use. */
  #prepared(connection: Connection, sql: string): Promise<Statement> {
    let statement = connection.statements.get(sql);
    if (statement === undefined) {
      statement = connection.db.prepare(sql);
      // A statement that failed to prepare (a table dropped meanwhile, say) is prepared again next time.
      statement.catch(() => connection.statements.delete(sql));
      connection.statements.set(sql, statement);
      if (connection.statements.size > PREPARED) {
        const [oldest, evicted] = connection.statements.entries().next().value as [string, Promise<Statement>];
        connection.statements.delete(oldest);
        void evicted.then(
          (s) => s.finalize(),
          () => {},
        );
      }
    }
    return statement;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const ready = this.#ready;
    this.#ready = undefined;
    const connections = await ready?.catch(() => undefined);
    if (connections === undefined) return;
    for (const connection of new Set([connections.read, connections.write])) {
      for (const statement of connection.statements.values())
        await statement.then(
          (s) => s.finalize(),
          () => {},
        );
      await connection.db.close().catch(() => {});
    }
  }
}

function rowsOf(rows: Rows): SqlResult {
  return { rows, changed: rows.length };
}

// The members sqlBackend() assigns in the constructor.
export interface SqliteBackend extends ReturnType<typeof sqlBackend> {}

/** `sqlite://path` (`?table=name`, `?driver=node|sqlite3`, `?create=false`). */
export async function openSqlite(url: string, scheme: string, timeout: number): Promise<Backend> {
  const { url: uri, params } = takeParameters(url, ['table', 'driver', 'create']);
  const create = createParameter(params.create, scheme);
  const driver = await sqliteDriver(params.driver, scheme);
  return new SqliteBackend(driver, uri.replace(/^sqlite:\/\//i, ''), params.table ?? 'keyv', timeout, create);
}
