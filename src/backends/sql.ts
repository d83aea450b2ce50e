// Everything SQL, for every dialect in one place: the statements of get/set/delete, compare-and-set, purge, listing,
// counting and batched rewrites.
//
// The sessions table is the one the Keyv SQL adapters use (key VARCHAR(255) PRIMARY KEY, value TEXT;
// MySQL names the key column `id`), so a Keyv adapter handed in and a URL opened here share rows.
// The record header "<tag>:<expires>:" lets SQL read the expiry without decoding the payload.
import {
  type Backend,
  type BatchRow,
  type CasResult,
  missed,
  PURGE_BATCH,
  purgeInBatches,
  type ScannedPage,
} from './contract.js';
import { casStamp } from '../record.js';

export type Dialect = 'postgres' | 'sqlite' | 'mysql';

/** What a statement returned: its rows (those of a RETURNING clause included) and how many rows it changed. */
export interface SqlResult {
  readonly rows: ReadonlyArray<Record<string, unknown>>;
  readonly changed: number;
}

/** A connection (or pool) to the sessions table, however the driver calls it. */
export interface SqlClient {
  readonly dialect: Dialect;
  /** The table as statements name it, quoted where needed. */
  readonly table: string;
  query(sql: string, params: readonly unknown[]): Promise<SqlResult>;
}

/** A LIKE pattern matching every key that starts with `prefix` (with `\` as the escape character). */
export function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, '\\$&')}%`;
}

/**
 * A record's expiry, read from its header in SQL (NULL for a row that is not a record). PostgreSQL
 * and SQLite index this very expression (expiryIndex), so a purge finds expired rows without reading
 * live ones; MariaDB has no index on an expression, and scans.
 */
const EXPIRY: Record<Dialect, string> = {
  postgres: `(CASE WHEN value ~ '^[cj][0-9]+:[0-9]{1,16}:' THEN split_part(value, ':', 2)::bigint END)`,
  sqlite:
    `(CASE WHEN value GLOB '[cj][0-9]*:[0-9]*:*' THEN CAST(substr(value, instr(value, ':') + 1, ` +
    `instr(substr(value, instr(value, ':') + 1), ':') - 1) AS INTEGER) END)`,
  mysql:
    `(CASE WHEN value REGEXP '^[cj][0-9]+:[0-9]{1,16}:' THEN CAST(SUBSTRING_INDEX(SUBSTRING_INDEX(value, ':', ` +
    `2), ':', -1) AS UNSIGNED) END)`,
};

/**
 * The index a purge finds expired rows by, named `index` (unqualified), on `table`; undefined where the dialect has
 * none.
 */
export function expiryIndex(dialect: Dialect, table: string, index: string): string | undefined {
  return dialect === 'mysql' ? undefined : `CREATE INDEX IF NOT EXISTS ${index} ON ${table} (${EXPIRY[dialect]})`;
}

/** The statements of one dialect on one table. PostgreSQL and SQLite report changed rows through RETURNING. */
function statements(dialect: Dialect, table: string) {
  const p = (n: number): string => (dialect === 'postgres' ? `$${n}` : '?');
  const key = dialect === 'mysql' ? 'id' : 'key';
  const returning = dialect === 'mysql' ? '' : ` RETURNING ${key}`;
  const escapeCharacter = dialect === 'mysql' ? "'\\\\'" : "'\\'";
  const underPrefix = `${key} LIKE ${p(1)} ESCAPE ${escapeCharacter}`;
  return {
    key,
    get: `SELECT value FROM ${table} WHERE ${key} = ${p(1)}`,
    set:
      dialect === 'mysql'
        ? `INSERT INTO ${table} (id, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)`
        : `INSERT INTO ${table} (key, value) VALUES (${p(1)}, ${p(2)}) ON CONFLICT (key) DO UPDATE SET value = ` +
          `excluded.value`,
    delete: `DELETE FROM ${table} WHERE ${key} = ${p(1)}${returning}`,
    update: `UPDATE ${table} SET value = ${p(1)} WHERE ${key} = ${p(2)} AND value = ${p(3)}${returning}`,
    // A record's header through its version token: a few dozen characters compared, not the record.
    updateStamped:
      `UPDATE ${table} SET value = ${p(1)} WHERE ${key} = ${p(2)} AND substr(value, 1, ${p(3)}) = ` +
      `${p(4)}${returning}`,
    // mysql2 reports a found-but-unchanged duplicate as changed under ON DUPLICATE KEY; INSERT IGNORE reports 0.
    insertIfAbsent:
      dialect === 'mysql'
        ? `INSERT IGNORE INTO ${table} (id, value) VALUES (?, ?)`
        : `INSERT INTO ${table} (key, value) VALUES (${p(1)}, ${p(2)}) ON CONFLICT (key) DO NOTHING${returning}`,
    // One batch of expired rows per statement, found through the expiry index (no scan of live
    // rows) where the dialect has one; rows that are not records are never cast.
    purge:
      dialect === 'mysql'
        ? `DELETE FROM ${table} WHERE ${underPrefix} AND ${EXPIRY.mysql} <= ? LIMIT ?`
        : `DELETE FROM ${table} WHERE ${key} IN (SELECT ${key} FROM ${table} WHERE ${underPrefix} AND ` +
          `${EXPIRY[dialect]} <= ${p(2)} LIMIT ${p(3)})${returning}`,
    // Keyset pages: no OFFSET, however deep.
    scan: `SELECT ${key}, value FROM ${table} WHERE ${underPrefix} AND ${key} > ${p(2)} ORDER BY ${key} LIMIT ${p(3)}`,
    count: `SELECT COUNT(*) AS n FROM ${table} WHERE ${underPrefix}`,
  };
}

/**
 * The batched rewrite: one UPDATE joined to a VALUES list (PostgreSQL), or to the same list as a CTE
 * (SQLite 3.33+); undefined for MySQL. A row already holding its `next` counts as written: the batch
 * retried after a lost reply finds its own rows so.
 */
function batchUpdate(dialect: Dialect, table: string, rows: number): string | undefined {
  if (dialect === 'mysql') return undefined;
  const tuples = Array.from({ length: rows }, (_, i) =>
    dialect === 'postgres' ? `($${3 * i + 1}, $${3 * i + 2}, $${3 * i + 3})` : '(?, ?, ?)',
  ).join(', ');
  return dialect === 'postgres'
    ? `UPDATE ${table} AS t SET value = v.next FROM (VALUES ${tuples}) AS v(key, expected, next) WHERE t.key = v.key ` +
        `AND (t.value = v.expected OR t.value = v.next) RETURNING t.key`
    : `WITH v(key, expected, next) AS (VALUES ${tuples}) UPDATE ${table} AS t SET value = v.next FROM v WHERE t.key ` +
        `= v.key AND (t.value = v.expected OR t.value = v.next) RETURNING key`;
}

/**
 * The abilities SQL gives any table of ours: atomic compare-and-set, purge, listing, counting and (not MySQL) batched
 * rewrites.
 */
export type SqlAbilities = Required<
  Pick<Backend, 'compareAndSet' | 'purgeExpired' | 'scanPage' | 'countUnder' | 'scansInKeyOrder'>
> &
  Pick<Backend, 'compareAndSetMany'>;

export function sqlAbilities(client: SqlClient): SqlAbilities {
  const sql = statements(client.dialect, client.table);
  const value = async (key: string): Promise<unknown> => (await client.query(sql.get, [key])).rows[0]?.value;
  const conditionalUpdate = (key: string, expected: string, next: string): [string, unknown[]] => {
    const { stamp, whole } = casStamp(expected);
    return whole ? [sql.update, [next, key, expected]] : [sql.updateStamped, [next, key, stamp.length, stamp]];
  };
  const abilities: SqlAbilities = {
    scansInKeyOrder: true,
    // One conditional statement, atomic in the database; a read tells "gone" from "changed" when it wrote nothing.
    async compareAndSet(key: string, expected: string | undefined, next: string): Promise<CasResult> {
      const result =
        expected === undefined
          ? await client.query(sql.insertIfAbsent, [key, next])
          : await client.query(...conditionalUpdate(key, expected, next));
      return result.changed > 0 ? { status: 'saved' } : missed(await value(key));
    },
    purgeExpired: (prefix: string, now: number) =>
      purgeInBatches(async () => (await client.query(sql.purge, [likePrefix(prefix), now, PURGE_BATCH])).changed),
    async scanPage(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage> {
      const { rows } = await client.query(sql.scan, [likePrefix(prefix), cursor ?? '', count]);
      const entries = rows.map((row) => [String(row[sql.key]), String(row.value)] as const);
      return { entries, cursor: entries.length === count ? entries[entries.length - 1]?.[0] : undefined };
    },
    countUnder: async (prefix: string) => Number((await client.query(sql.count, [likePrefix(prefix)])).rows[0]?.n ?? 0),
  };
  if (client.dialect !== 'mysql') {
    // One statement is one transaction: one disk sync per batch instead of one per record.
    abilities.compareAndSetMany = async (rows: readonly BatchRow[]): Promise<ReadonlySet<string>> => {
      if (rows.length === 0) return new Set();
      const statement = batchUpdate(client.dialect, client.table, rows.length) as string;
      const written = await client.query(
        statement,
        rows.flatMap((row) => [row.key, row.expected, row.next]),
      );
      return new Set(written.rows.map((row) => String(row.key)));
    };
  }
  return abilities;
}

/** A whole backend on a table of ours: get/set/delete in SQL too. */
export function sqlBackend(client: SqlClient): SqlAbilities & Pick<Backend, 'get' | 'set' | 'delete'> {
  const sql = statements(client.dialect, client.table);
  return {
    ...sqlAbilities(client),
    get: async (key: string) => (await client.query(sql.get, [key])).rows[0]?.value ?? undefined,
    set: async (key: string, value: string) => (await client.query(sql.set, [key, value])).changed >= 0,
    delete: async (key: string) => (await client.query(sql.delete, [key])).changed > 0,
  };
}
