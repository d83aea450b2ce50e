// A Keyv store adapter for SQLite files on sqlite3, whose open is retried until it succeeds.
//
// Why not @keyv/sqlite for URLs: it opens the file and creates its table once, in its constructor,
// and keeps that promise for ever. A file locked by another process at start-up (SQLITE_BUSY) then
// fails every later request, long after the lock is gone, and the half-opened handle can never be
// closed. The table layout is the same (key VARCHAR(255) PRIMARY KEY, value TEXT) and so is the
// shape (`opts.dialect`, `opts.table`, `query(sql, ...params)`), so the SQL abilities of a
// KeyvSqlite instance (compare-and-set, purge, listing) apply here unchanged, and a KeyvSqlite
// instance you pass as `store` reads and writes the same rows.
import { QuietEmitter } from './wrappers.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** The part of sqlite3's Database this adapter uses. */
interface Database {
  configure(option: 'busyTimeout', value: number): void;
  all(sql: string, params: unknown[], callback: (error: Error | null, rows: Array<Record<string, unknown>>) => void): void;
  close(callback: (error: Error | null) => void): void;
}

/** The part of the sqlite3 module this adapter uses. */
export interface Sqlite3 {
  Database: new (path: string, callback: (error: Error | null) => void) => Database;
}

export interface SqliteAdapterOptions {
  readonly table?: string;
  /** How long a statement waits for another connection's lock before SQLITE_BUSY, ms. */
  readonly busyTimeout: number;
}

function all(db: Database, sql: string, params: unknown[]): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => db.all(sql, params, (error, rows) => (error ? reject(error) : resolve(rows))));
}

function closeQuietly(db: Database): Promise<void> {
  return new Promise((resolve) => db.close(() => resolve()));
}

export class SqliteAdapter extends QuietEmitter {
  readonly opts: { readonly dialect: 'sqlite'; readonly table: string; readonly db: string };
  namespace: string | undefined;
  readonly #sqlite3: Sqlite3;
  readonly #busyTimeout: number;
  #ready: Promise<Database> | undefined;
  #closed = false;

  constructor(sqlite3: Sqlite3, url: string, options: SqliteAdapterOptions) {
    super();
    const table = options.table ?? 'keyv';
    if (!IDENTIFIER.test(table)) throw new TypeError(`koa-kv-session: the table parameter of a sqlite:// URL must be a plain SQL identifier, got ${JSON.stringify(table)}`);
    this.opts = { dialect: 'sqlite', table, db: url.replace(/^sqlite:\/\//i, '') };
    this.#sqlite3 = sqlite3;
    this.#busyTimeout = options.busyTimeout;
  }

  /** Opens the file and creates the table; a failure (a lock, a missing folder) is retried on the next call. */
  #open(): Promise<Database> {
    this.#ready ??= (async () => {
      const db = await new Promise<Database>((resolve, reject) => {
        const opened: Database = new this.#sqlite3.Database(this.opts.db, (error) => (error ? reject(error) : resolve(opened)));
      });
      try {
        db.configure('busyTimeout', this.#busyTimeout);
        await all(db, `CREATE TABLE IF NOT EXISTS ${this.opts.table} (key VARCHAR(255) PRIMARY KEY, value TEXT)`, []);
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

  /** Runs one statement and resolves with its rows (KeyvSqlite's calling convention). */
  async query(sql: string, ...params: unknown[]): Promise<Array<Record<string, unknown>>> {
    if (this.#closed) throw new Error('koa-kv-session: the SQLite store was closed');
    return all(await this.#open(), sql, params);
  }

  async get(key: string): Promise<string | undefined> {
    const rows = await this.query(`SELECT value FROM ${this.opts.table} WHERE key = ?`, key);
    return (rows[0]?.value as string | undefined) ?? undefined;
  }

  async set(key: string, value: string): Promise<boolean> {
    await this.query(`INSERT INTO ${this.opts.table} (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.query(`DELETE FROM ${this.opts.table} WHERE key = ? RETURNING key`, key)).length > 0;
  }

  /** Refuses: a sessions table may be shared, and nothing of ours ever needs to empty one. */
  async clear(): Promise<void> {
    throw new Error('koa-kv-session: refusing to clear a SQLite sessions table');
  }

  async disconnect(): Promise<void> {
    this.#closed = true;
    const ready = this.#ready;
    this.#ready = undefined;
    const db = await ready?.catch(() => undefined);
    if (db !== undefined) await closeQuietly(db);
  }
}
