// The SQL backends the purge benchmarks run on: how to open each on a table of its own, fill it with N copies of a
// record in one statement, count and drop it (bench/purge.mjs, bench/purge-latency.mjs).
import { join } from 'node:path';

export const count = async (a) => Number((await a.sql.query(`SELECT COUNT(*) AS n FROM ${a.sql.table}`, [])).rows[0].n);
export const drop = (a) => a.sql.query(`DROP TABLE IF EXISTS ${a.sql.table}`, []);

/**
 * Each backend: its store URL for a table (and a folder, for SQLite), and `fill(adapter, n, value, prefix)`: keys
 * `<prefix>1` .. `<prefix>n`.
 */
export const BACKENDS = [
  {
    name: 'SQLite',
    url: (table, dir) => `sqlite://${join(dir, 'purge.sqlite')}?table=${table}`,
    fill: (a, n, value, prefix) =>
      a.sql.query(
        `INSERT INTO ${a.sql.table} (key, value) WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?) SELECT ? || n, ? FROM seq`,
        [n, prefix, value],
      ),
  },
  {
    name: 'PostgreSQL',
    url: (table) => `postgresql://postgres@127.0.0.1:5432/test?table=${table}`,
    fill: (a, n, value, prefix) =>
      a.sql.query(`INSERT INTO ${a.sql.table} (key, value) SELECT $1 || g, $2 FROM generate_series(1, $3) AS g`, [
        prefix,
        value,
        n,
      ]),
  },
  {
    name: 'MariaDB',
    url: (table) => `mysql://root@127.0.0.1:3306/test?table=${table}`,
    // A cross join of digit tables counts to a million without recursion (capped at 1 000 iterations here).
    fill: (a, n, value, prefix) => {
      const digits =
        '(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)';
      const places = Math.ceil(Math.log10(n + 1));
      const tables = Array.from({ length: places }, (_, i) => `${digits} t${i}`).join(' CROSS JOIN ');
      const number = Array.from({ length: places }, (_, i) => `t${i}.d * ${10 ** i}`).join(' + ');
      return a.sql.query(
        `INSERT INTO ${a.sql.table} (id, value) SELECT CONCAT(?, ${number} + 1), ? FROM ${tables} WHERE ${number} < ?`,
        [prefix, value, n],
      );
    },
  },
];
