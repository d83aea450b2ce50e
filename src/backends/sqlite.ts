// SQLite files (`sqlite://path`, the zero-config default), tuned as web apps tune SQLite, whose open is retried until it succeeds.
//
// Driver: the built-in `node:sqlite` where the running Node has it (22.13 and later, 23.4 and later:
// nothing to install or compile), else the `sqlite3` package (an optional peer, compiled or
// downloaded at install). `?driver=node` or `?driver=sqlite3` picks one. Both run the same
// statements, on two connections per file: reads on one, writes on the other, so that a read never
// queues behind a write waiting for another process's lock (in WAL, readers never wait for the
// writer). node:sqlite runs statements synchronously, in microseconds; it never waits for a lock
// inside SQLite (that would block the event loop): a busy file is tried again after a short
// asynchronous pause, until the busy timeout.
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
import { SessionError } from '../errors.js';
import { QuietEmitter, type Backend } from './contract.js';
import { expiryIndex, sqlBackend, type SqlClient, type SqlResult } from './sql.js';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createParameter, importOptional, storeMissing, takeParameters } from './url.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

type Rows = Array<Record<string, unknown>>;

/** A prepared statement, whichever driver prepared it. */
interface Statement {
  all(params: readonly unknown[]): Promise<Rows>;
  finalize(): Promise<void>;
}

/** One open SQLite file, whichever driver opened it. */
interface Database {
  all(sql: string, params: readonly unknown[]): Promise<Rows>;
  prepare(sql: string): Promise<Statement>;
  close(): Promise<void>;
}

/** Opens a file with its busy timeout (ms). */
export interface SqliteDriver {
  /** `node:sqlite` or `sqlite3`, for messages and `ready()`. */
  readonly name: 'node:sqlite' | 'sqlite3';
  open(file: string, busyTimeout: number): Promise<Database>;
}

// Statements kept prepared per connection; past this many (batched rewrites vary in length), the oldest goes.
const PREPARED = 64;

/** The part of the sqlite3 package this backend uses (its callback API). */
interface Sqlite3 {
  Database: new (path: string, callback: (error: Error | null) => void) => Sqlite3Database;
}
interface Sqlite3Database {
  configure(option: 'busyTimeout', value: number): void;
  all(sql: string, params: readonly unknown[], callback: (error: Error | null, rows: Rows) => void): void;
  prepare(sql: string, callback: (error: Error | null) => void): Sqlite3Statement;
  close(callback: (error: Error | null) => void): void;
}
interface Sqlite3Statement {
  all(params: readonly unknown[], callback: (error: Error | null, rows: Rows) => void): void;
  finalize(callback: () => void): void;
}

/** The `sqlite3` package, its callbacks as promises. */
export function sqlite3Driver(sqlite3: Sqlite3): SqliteDriver {
  return {
    name: 'sqlite3',
    async open(file, busyTimeout) {
      const db = await new Promise<Sqlite3Database>((resolve, reject) => {
        const opened: Sqlite3Database = new sqlite3.Database(file, (error) => (error ? reject(error) : resolve(opened)));
      });
      db.configure('busyTimeout', busyTimeout);
      const all = (sql: string, params: readonly unknown[]) => new Promise<Rows>((resolve, reject) => db.all(sql, params, (error, rows) => (error ? reject(error) : resolve(rows))));
      return {
        all,
        prepare: (sql) =>
          new Promise<Statement>((resolve, reject) => {
            const prepared = db.prepare(sql, (error) => {
              if (error) return reject(error);
              resolve({
                all: (params) => new Promise<Rows>((done, fail) => prepared.all(params, (err, rows) => (err ? fail(err) : done(rows)))),
                finalize: () => new Promise<void>((done) => prepared.finalize(done)),
              });
            });
          }),
        close: () => new Promise<void>((resolve) => db.close(() => resolve())),
      };
    },
  };
}

/** The part of `node:sqlite` this backend uses. */
interface NodeSqlite {
  DatabaseSync: new (
    path: string,
  ) => {
    prepare(sql: string): { all(...params: unknown[]): unknown[] };
    close(): void;
  };
}

// A synchronous driver never lets the event loop turn by itself: a loop of statements (a purge in
// batches, the operator command's pages) would hold off timers, signals and every other request
// until it ended. When statements have run for more than this many ms without the event loop
// turning, the next one waits for it to turn once.
const HOLD_LOOP_MS = 10;
let holdingSince = 0;

async function letLoopTurn(): Promise<void> {
  if (holdingSince === 0) {
    holdingSince = performance.now();
    setImmediate(() => {
      holdingSince = 0;
    });
  } else if (performance.now() - holdingSince > HOLD_LOOP_MS) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** SQLITE_BUSY / SQLITE_LOCKED from node:sqlite: another connection holds the lock. */
function isBusy(error: unknown): boolean {
  const code = (error as { errcode?: unknown })?.errcode;
  return code === 5 || code === 6 || /database (table )?is locked/.test(String((error as Error)?.message));
}

/** Runs `run` (a synchronous statement) and, while the file is busy, again after a growing pause of at most 50 ms, until `busyTimeout` ms have passed. */
async function whenNotBusy<T>(run: () => T, busyTimeout: number): Promise<T> {
  const until = performance.now() + busyTimeout;
  for (let attempt = 0; ; attempt++) {
    await letLoopTurn();
    try {
      return run();
    } catch (error) {
      if (!isBusy(error) || performance.now() >= until) throw error;
    }
    await sleep(Math.min(2 ** attempt, 50));
  }
}

/** The built-in `node:sqlite`: synchronous calls, wrapped so that a failure is a rejection like any driver's. */
export function nodeSqliteDriver(sqlite: NodeSqlite): SqliteDriver {
  return {
    name: 'node:sqlite',
    async open(file, busyTimeout) {
      const db = new sqlite.DatabaseSync(file);
      const prepare = (sql: string) => {
        const statement = db.prepare(sql);
        const all = (params: readonly unknown[]): Promise<Rows> => whenNotBusy(() => statement.all(...params) as Rows, busyTimeout);
        return { all, finalize: async () => {} };
      };
      try {
        // SQLite's own busy wait would block the event loop for up to the busy timeout: never wait
        // inside SQLite, wait asynchronously in whenNotBusy(). Set at once, synchronously.
        db.prepare('PRAGMA busy_timeout = 0').all();
      } catch (error) {
        db.close();
        throw error;
      }
      return {
        all: async (sql, params) => prepare(sql).all(params),
        prepare: async (sql) => prepare(sql),
        close: async () => db.close(),
      };
    },
  };
}

/** `node:sqlite` when this Node has it without a flag, else undefined. */
function builtinSqlite(): NodeSqlite | undefined {
  // getBuiltinModule (Node 20.16+, 22.3+) answers undefined for a module this Node does not have.
  const load = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  try {
    const sqlite = load?.call(process, 'node:sqlite') as Partial<NodeSqlite> | undefined;
    return typeof sqlite?.DatabaseSync === 'function' ? (sqlite as NodeSqlite) : undefined;
  } catch {
    return undefined;
  }
}

/** The driver a sqlite:// URL asks for (`?driver=`), or the default: node:sqlite when present, else sqlite3. */
export async function sqliteDriver(choice: string | undefined, scheme: string): Promise<SqliteDriver> {
  if (choice !== undefined && choice !== 'node' && choice !== 'sqlite3') {
    throw new SessionError('SESSION_INVALID_OPTION', `koa-kv-session: the driver parameter of a sqlite:// URL is "node" or "sqlite3", got ${JSON.stringify(choice)}`);
  }
  const builtin = choice === 'sqlite3' ? undefined : builtinSqlite();
  if (builtin !== undefined) return nodeSqliteDriver(builtin);
  if (choice === 'node') {
    throw new SessionError(
      'SESSION_ADAPTER_MISSING',
      `koa-kv-session: the store URL sqlite://...?driver=node needs node:sqlite, which Node ${process.version} does not have without a flag (Node 22.13 or later has it); or drop ?driver=node and run \`npm install sqlite3\``,
      500,
    );
  }
  try {
    const sqlite3 = await importOptional('sqlite3', scheme);
    return sqlite3Driver((sqlite3.default ?? sqlite3) as Sqlite3);
  } catch (error) {
    if (error instanceof SessionError && choice === undefined) {
      throw new SessionError(
        'SESSION_ADAPTER_MISSING',
        `koa-kv-session: the store URL sqlite:// needs node:sqlite (built into Node 22.13 and later; this is ${process.version}) or the sqlite3 package: run \`npm install sqlite3\`, or run on Node 22 or later`,
        500,
        { cause: error },
      );
    }
    throw error;
  }
}

/** An open file with its prepared statements. */
interface Connection {
  readonly db: Database;
  readonly statements: Map<string, Promise<Statement>>;
}

/** The two connections to one file: reads never queue behind a write that waits for a lock. One for an in-memory database (a second would be another database). */
interface Connections {
  readonly read: Connection;
  readonly write: Connection;
}

// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface below declares what sqlBackend() assigns in the constructor
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
    if (!IDENTIFIER.test(table)) throw new TypeError(`koa-kv-session: the table parameter of a sqlite:// URL must be a plain SQL identifier, got ${JSON.stringify(table)}`);
    this.#file = file;
    this.#driver = driver;
    this.driver = driver.name;
    this.#busyTimeout = busyTimeout;
    this.#create = create;
    this.sql = { dialect: 'sqlite', table, query: (sql, params) => this.#query(sql, params) };
    Object.assign(this, sqlBackend(this.sql));
  }

  /** Opens the file (a connection to write, one to read) and creates the table; a failure (a lock, a missing folder) is retried on the next call. */
  #open(): Promise<Connections> {
    this.#ready ??= (async () => {
      const inMemory = this.#file === ':memory:' || this.#file === '';
      if (!this.#create && !inMemory && !existsSync(this.#file)) throw storeMissing(`the SQLite file ${this.#file}`);
      const db = await this.#driver.open(this.#file, this.#busyTimeout);
      let reader: Database | undefined;
      try {
        if (!this.#create) {
          const found = await db.all("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", [this.sql.table]);
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
    if (/^\s*(BEGIN|COMMIT|ROLLBACK|PRAGMA|CREATE|DROP)\b/i.test(sql)) return rowsOf(await connections.write.db.all(sql, params));
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
