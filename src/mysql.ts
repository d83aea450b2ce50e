// A Keyv store adapter for MySQL and MariaDB on mysql2, with its own pool: conditional writes and batched purges in SQL.
//
// Why not @keyv/mysql for URLs: like @keyv/postgres it keeps one pool per process and URL, so closing
// one instance breaks the others. The table layout is the same (id VARCHAR(255) PRIMARY KEY, value),
// except that a table created here uses MEDIUMTEXT (a TEXT column holds at most 65 535 bytes, less
// than the default maxSize) and a binary collation (see #prepare).
import type { EventEmitter } from 'node:events';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { QuietEmitter } from './wrappers.js';
import { PURGE_BATCH, likePrefix, missed, purgeInBatches, sqlCount, sqlScan, type CasResult, type CountUnder, type ScanPage } from './adapters.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export interface MysqlAdapterOptions {
  readonly table?: string;
  /** Connection timeout, ms. */
  readonly timeout: number;
}

type Mysql = typeof import('mysql2/promise');

export class MysqlAdapter extends QuietEmitter {
  readonly opts: { readonly dialect: 'mysql'; readonly table: string; readonly url: string };
  namespace: string | undefined;
  readonly #pool: Pool;
  readonly #table: string;
  #ready: Promise<void> | undefined;

  constructor(mysql: Mysql, url: string, options: MysqlAdapterOptions) {
    super();
    const table = options.table ?? 'keyv';
    if (!IDENTIFIER.test(table)) throw new TypeError(`koa-kv-session: the table parameter of a mysql:// URL must be a plain SQL identifier, got ${JSON.stringify(table)}`);
    this.opts = { dialect: 'mysql', table, url };
    this.#table = `\`${table}\``;
    this.#pool = mysql.createPool({ uri: url, connectTimeout: options.timeout, connectionLimit: 10, enableKeepAlive: true });
    // A connection dropped by the server is reported, not thrown at the process.
    (this.#pool as unknown as EventEmitter).on('error', this.report);
  }

  #prepare(): Promise<void> {
    this.#ready ??= this.#pool
      // Binary collation: sids and base64 payloads are case-sensitive, and the server's default
      // (case-insensitive) collation would make "abc" and "ABC" the same key.
      .query(`CREATE TABLE IF NOT EXISTS ${this.#table} (id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PRIMARY KEY, value MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin)`)
      .then(
        () => undefined,
        (error: unknown) => {
          this.#ready = undefined; // the server may be down now: try again on the next call
          throw error;
        },
      );
    return this.#ready;
  }

  /** Runs a statement on the sessions table; `{table}` in the text is replaced by its quoted name. */
  async query<T extends RowDataPacket[] | ResultSetHeader>(sql: string, params: unknown[] = []): Promise<T> {
    await this.#prepare();
    const [result] = await this.#pool.query<T>(sql.replaceAll('{table}', this.#table), params);
    return result;
  }

  async get(key: string): Promise<string | undefined> {
    const rows = await this.query<RowDataPacket[]>('SELECT value FROM {table} WHERE id = ?', [key]);
    return rows[0]?.value ?? undefined;
  }

  async set(key: string, value: string): Promise<boolean> {
    await this.query<ResultSetHeader>('INSERT INTO {table} (id, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)', [key, value]);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const result = await this.query<ResultSetHeader>('DELETE FROM {table} WHERE id = ?', [key]);
    return result.affectedRows > 0;
  }

  /** Deletes the keys of this adapter's namespace only; without a namespace it refuses, rather than empty a shared table. */
  async clear(): Promise<void> {
    if (!this.namespace) throw new Error('koa-kv-session: refusing to clear a MySQL table without a namespace');
    await this.query<ResultSetHeader>("DELETE FROM {table} WHERE id LIKE ? ESCAPE '\\\\'", [likePrefix(`${this.namespace}:`)]);
  }

  /** One conditional UPDATE (or INSERT when no value is expected), atomic in the database; a read tells "gone" from "changed" when it updated nothing. */
  async compareAndSet(key: string, expected: string | undefined, next: string): Promise<CasResult> {
    const result = expected === undefined
      ? await this.query<ResultSetHeader>('INSERT IGNORE INTO {table} (id, value) VALUES (?, ?)', [key, next])
      : await this.query<ResultSetHeader>('UPDATE {table} SET value = ? WHERE id = ? AND value = ?', [next, key, expected]);
    if (result.affectedRows > 0) return { status: 'saved' };
    return missed(await this.get(key));
  }

  /** Deletes expired records under `prefix`, one statement per batch of rows, reading the expiry from the record header. */
  purgeExpired(prefix: string, now: number): Promise<number> {
    const sql = `DELETE FROM {table} WHERE id LIKE ? ESCAPE '\\\\' AND value REGEXP '^[cj][0-9]+:[0-9]{1,16}:'
      AND CAST(SUBSTRING_INDEX(SUBSTRING_INDEX(value, ':', 2), ':', -1) AS UNSIGNED) <= ? LIMIT ${PURGE_BATCH}`;
    return purgeInBatches(async () => (await this.query<ResultSetHeader>(sql, [likePrefix(prefix), now])).affectedRows);
  }

  /** Pages of records under a prefix, in key order (keyset pagination: no OFFSET, however deep). */
  readonly scanPage: ScanPage = sqlScan((sql, params) => this.query<RowDataPacket[]>(sql, params), '{table}', 'mysql');

  readonly countUnder: CountUnder = sqlCount((sql, params) => this.query<RowDataPacket[]>(sql, params), '{table}', 'mysql');

  async disconnect(): Promise<void> {
    await this.#pool.end();
  }
}
