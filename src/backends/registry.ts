// One row per URL scheme: the package it needs, what it can do, and how to open it (its file is loaded only then).
import { createRequire } from 'node:module';
import { SessionError } from '../errors.js';
import type { Backend } from './contract.js';
import { schemeOf } from './url.js';

/** What a backend can do; the store finds the same by the presence of the contract's optional members. */
export interface Abilities {
  /** Compare-and-set in one atomic step; without it, a read right before the write (a one-round-trip window between processes). */
  readonly atomic: boolean;
  /** Can list its keys: what the operator's `stats`, `list` and `migrate` need. */
  readonly list: boolean;
  /** The server expires keys by itself; otherwise expiry is checked on read and purge removes expired records. */
  readonly ownExpiry: boolean;
}

export interface SchemeRow {
  /** The backend's name in messages and docs. */
  readonly name: string;
  /** The npm package the scheme needs, undefined when none. */
  readonly package: string | undefined;
  readonly abilities: Abilities;
  /** The URL takes `create=false` (never create the file, schema or table): the SQL backends. */
  readonly creates?: true;
  /** Opens the backend; `timeout` bounds connecting, where the driver takes one. */
  open(url: string, scheme: string, timeout: number): Promise<Backend>;
}

const ALL = { atomic: true, list: true, ownExpiry: false };
const REDIS = { atomic: true, list: true, ownExpiry: true };

const sqlite: SchemeRow = { name: 'SQLite', package: 'sqlite3', abilities: ALL, creates: true, open: async (...a) => (await import('./sqlite.js')).openSqlite(...a) };
const redis: SchemeRow = { name: 'Redis', package: '@keyv/redis', abilities: REDIS, open: async (...a) => (await import('./redis.js')).openRedis(...a) };
const postgres: SchemeRow = { name: 'PostgreSQL', package: 'pg', abilities: ALL, creates: true, open: async (...a) => (await import('./postgres.js')).openPostgres(...a) };
const mongo: SchemeRow = {
  name: 'MongoDB',
  package: '@keyv/mongo',
  abilities: { atomic: false, list: false, ownExpiry: true },
  open: async (...a) => (await import('./mongo.js')).openMongo(...a),
};

/** Every URL scheme `store` accepts. */
export const SCHEMES: Readonly<Record<string, SchemeRow>> = Object.freeze({
  memory: { name: 'memory', package: undefined, abilities: ALL, open: async () => new (await import('./memory.js')).MemoryBackend() },
  sqlite,
  redis,
  rediss: redis,
  'redis+cluster': { name: 'Redis Cluster', package: '@keyv/redis', abilities: REDIS, open: async (...a) => (await import('./redis.js')).openRedisCluster(...a) },
  valkey: { name: 'Valkey', package: '@keyv/valkey', abilities: REDIS, open: async (...a) => (await import('./valkey.js')).openValkey(...a) },
  'valkey+cluster': { name: 'Valkey Cluster', package: 'iovalkey', abilities: REDIS, open: async (...a) => (await import('./valkey-cluster.js')).openValkeyCluster(...a) },
  postgres,
  postgresql: postgres,
  mysql: { name: 'MySQL/MariaDB', package: 'mysql2', abilities: ALL, creates: true, open: async (...a) => (await import('./mysql.js')).openMysql(...a) },
  memcache: {
    name: 'memcached',
    package: '@keyv/memcache',
    abilities: { atomic: false, list: false, ownExpiry: true },
    open: async (...a) => (await import('./memcache.js')).openMemcache(...a),
  },
  etcd: { name: 'etcd', package: '@keyv/etcd', abilities: ALL, open: async (...a) => (await import('./etcd.js')).openEtcd(...a) },
  dynamodb: { name: 'DynamoDB', package: '@keyv/dynamo', abilities: ALL, open: async (url, scheme) => (await import('./dynamo.js')).openDynamo(url, scheme) },
  mongodb: mongo,
  'mongodb+srv': mongo,
});

/** The row of a URL scheme (as `schemeOf()` gives it); undefined for a scheme we do not know. */
export function schemeRow(scheme: string | undefined): SchemeRow | undefined {
  return scheme !== undefined && Object.hasOwn(SCHEMES, scheme) ? SCHEMES[scheme] : undefined;
}

/** Opens the backend of a connection URL; `timeout` bounds connecting where the driver takes one. */
export async function openBackend(url: string, timeout: number): Promise<Backend> {
  const scheme = schemeOf(url);
  const row = schemeRow(scheme);
  if (row === undefined) throw new SessionError('SESSION_INVALID_OPTION', `koa-kv-session: unsupported store URL scheme ${scheme ?? '(none)'}://`);
  return row.open(url, scheme as string, timeout);
}

/** The names of the backends with an ability, for messages ("SQLite, PostgreSQL ... can"). */
export function backendsThat(ability: keyof Abilities, has = true): string[] {
  return [
    ...new Set(
      Object.values(SCHEMES)
        .filter((row) => row.abilities[ability] === has)
        .map((row) => row.name),
    ),
  ];
}

/**
 * Why a `sqlite://` URL cannot open on this Node, known without opening it (so kvSession() can say
 * so at once, not every request): no `node:sqlite` and no `sqlite3` package to be found from the
 * app's folder or its main script. Undefined when a driver is there, or for any other URL.
 */
export function missingSqliteDriver(url: string): string | undefined {
  if (schemeOf(url) !== 'sqlite') return undefined;
  const driver = /[?&]driver=([^&]*)/.exec(url)?.[1];
  const builtin = (process as { getBuiltinModule?: (id: string) => { DatabaseSync?: unknown } | undefined }).getBuiltinModule?.('node:sqlite');
  if (driver !== 'sqlite3' && typeof builtin?.DatabaseSync === 'function') return undefined;
  if (driver === 'node') return `needs node:sqlite, which Node ${process.version} does not have (Node 22.13 or later has it)`;
  for (const from of [`${process.cwd()}/`, process.argv[1]]) {
    try {
      if (from !== undefined) return void createRequire(from).resolve('sqlite3');
    } catch {
      // not found from there
    }
  }
  return `needs node:sqlite (built into Node 22.13 and later; this is ${process.version}) or the sqlite3 package: run on Node 22.13 or later, or run \`npm install sqlite3\``;
}
