// The two ways to open a SQLite file: the built-in `node:sqlite` (Node 22.13 and later) and the `sqlite3`
// package (an optional peer). Both are reduced to the same small Database/Statement pair, which
// sqlite.ts runs its statements on. node:sqlite runs statements synchronously and never waits for a
// lock inside SQLite (that would block the event loop): a busy file is tried again after a short
// asynchronous pause, until the busy timeout.
import { messageOf, SessionError } from '../errors.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { importOptional } from './url.js';

export type Rows = Array<Record<string, unknown>>;

/** A prepared statement, whichever driver prepared it. */
export interface Statement {
  all(params: readonly unknown[]): Promise<Rows>;
  finalize(): Promise<void>;
}

/** One open SQLite file, whichever driver opened it. */
export interface Database {
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
export const PREPARED = 64;

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
        const opened: Sqlite3Database = new sqlite3.Database(file, (error) =>
          error ? reject(error) : resolve(opened),
        );
      });
      db.configure('busyTimeout', busyTimeout);
      const all = (sql: string, params: readonly unknown[]) =>
        new Promise<Rows>((resolve, reject) =>
          db.all(sql, params, (error, rows) => (error ? reject(error) : resolve(rows))),
        );
      return {
        all,
        prepare: (sql) =>
          new Promise<Statement>((resolve, reject) => {
            const prepared = db.prepare(sql, (error) => {
              if (error) return reject(error);
              resolve({
                all: (params) =>
                  new Promise<Rows>((done, fail) =>
                    prepared.all(params, (err, rows) => (err ? fail(err) : done(rows))),
                  ),
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
  return code === 5 || code === 6 || /database (table )?is locked/.test(messageOf(error));
}

/**
 * Runs `run` (a synchronous statement) and, while the file is busy, again after a growing pause of at most 50 ms, until
 * `busyTimeout` ms have passed.
 */
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
        const all = (params: readonly unknown[]): Promise<Rows> =>
          whenNotBusy(() => statement.all(...params) as Rows, busyTimeout);
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
    throw new SessionError(
      'SESSION_INVALID_OPTION',
      `koa-kv-session: the driver parameter of a sqlite:// URL is "node" or "sqlite3", got ${JSON.stringify(choice)}`,
    );
  }
  const builtin = choice === 'sqlite3' ? undefined : builtinSqlite();
  if (builtin !== undefined) return nodeSqliteDriver(builtin);
  if (choice === 'node') {
    throw new SessionError(
      'SESSION_ADAPTER_MISSING',
      `koa-kv-session: the store URL sqlite://...?driver=node needs node:sqlite, which Node ${process.version} does ` +
        `not have without a flag (Node 22.13 or later has it); or drop ?driver=node and run \`npm install sqlite3\``,
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
        `koa-kv-session: the store URL sqlite:// needs node:sqlite (built into Node 22.13 and later; this is ` +
          `${process.version}) or the sqlite3 package: run \`npm install sqlite3\`, or run on Node 22 or later`,
        500,
        { cause: error },
      );
    }
    throw error;
  }
}
