// One row per URL scheme: the package it needs, what it can do, and how to open it (its file is loaded only then).
import { createRequire } from 'node:module';
import { SessionError } from '../errors.js';
import type { Backend } from './contract.js';

/** The scheme of a connection URL, lower-cased, or undefined when it has none. */
export function schemeOf(url: string): string | undefined {
  const match = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  return match ? (match[1] as string).toLowerCase() : undefined;
}

/** Hides the password of a connection URL, for messages and logs. */
export function maskPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, '$1****@');
}

/** What a backend can do; the store finds the same by the presence of the contract's optional members. */
export interface Abilities {
  /**
   * Compare-and-set in one atomic step; without it, a read right before the write (a one-round-trip window between
   * processes).
   */
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
  /**
   * The query parameters the URL takes for koa-kv-session (`?table=`, `?driver=`); others go to the driver, unless
   * `strict`.
   */
  readonly parameters?: readonly string[];
  /** No query parameter but `parameters` means anything: another is a mistake. */
  readonly strict?: true;
  /** Opens the backend; `timeout` bounds connecting, where the driver takes one. */
  open(url: string, scheme: string, timeout: number): Promise<Backend>;
}

const ALL = { atomic: true, list: true, ownExpiry: false };
const REDIS = { atomic: true, list: true, ownExpiry: true };

const sqlite: SchemeRow = {
  name: 'SQLite',
  package: 'sqlite3',
  abilities: ALL,
  creates: true,
  parameters: ['table', 'driver', 'create'],
  strict: true,
  open: async (...a) => (await import('./sqlite.js')).openSqlite(...a),
};
const redis: SchemeRow = {
  name: 'Redis',
  package: '@keyv/redis',
  abilities: REDIS,
  open: async (...a) => (await import('./redis.js')).openRedis(...a),
};
const postgres: SchemeRow = {
  name: 'PostgreSQL',
  package: 'pg',
  abilities: ALL,
  creates: true,
  parameters: ['table', 'schema', 'create'],
  open: async (...a) => (await import('./postgres.js')).openPostgres(...a),
};
const mongo: SchemeRow = {
  name: 'MongoDB',
  package: '@keyv/mongo',
  abilities: { atomic: false, list: false, ownExpiry: true },
  parameters: ['collection'],
  open: async (...a) => (await import('./mongo.js')).openMongo(...a),
};

/** Every URL scheme `store` accepts. */
export const SCHEMES: Readonly<Record<string, SchemeRow>> = Object.freeze({
  memory: {
    name: 'memory',
    package: undefined,
    abilities: ALL,
    open: async () => new (await import('./memory.js')).MemoryBackend(),
  },
  sqlite,
  redis,
  rediss: redis,
  'redis+cluster': {
    name: 'Redis Cluster',
    package: '@keyv/redis',
    abilities: REDIS,
    open: async (...a) => (await import('./redis.js')).openRedisCluster(...a),
  },
  valkey: {
    name: 'Valkey',
    package: '@keyv/valkey',
    abilities: REDIS,
    open: async (...a) => (await import('./valkey.js')).openValkey(...a),
  },
  'valkey+cluster': {
    name: 'Valkey Cluster',
    package: 'iovalkey',
    abilities: REDIS,
    open: async (...a) => (await import('./valkey-cluster.js')).openValkeyCluster(...a),
  },
  postgres,
  postgresql: postgres,
  mysql: {
    name: 'MySQL/MariaDB',
    package: 'mysql2',
    abilities: ALL,
    creates: true,
    parameters: ['table', 'create'],
    open: async (...a) => (await import('./mysql.js')).openMysql(...a),
  },
  memcache: {
    name: 'memcached',
    package: '@keyv/memcache',
    abilities: { atomic: false, list: false, ownExpiry: true },
    open: async (...a) => (await import('./memcache.js')).openMemcache(...a),
  },
  etcd: {
    name: 'etcd',
    package: '@keyv/etcd',
    abilities: ALL,
    open: async (...a) => (await import('./etcd.js')).openEtcd(...a),
  },
  dynamodb: {
    name: 'DynamoDB',
    package: '@keyv/dynamo',
    abilities: ALL,
    parameters: ['region', 'table', 'tls'],
    strict: true,
    open: async (url, scheme) => (await import('./dynamo.js')).openDynamo(url, scheme),
  },
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
  if (row === undefined)
    throw new SessionError(
      'SESSION_INVALID_OPTION',
      `koa-kv-session: unsupported store URL scheme ${scheme ?? '(none)'}://`,
    );
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
 * Where `request` resolves from the app's folder or its main script (as Node would find it there); undefined when from
 * neither.
 */
function resolvable(request: string): string | undefined {
  for (const from of [`${process.cwd()}/`, process.argv[1]]) {
    try {
      if (from !== undefined) return createRequire(from).resolve(request);
    } catch {
      // not found from there
    }
  }
  return undefined;
}

/**
 * Why a store URL cannot open here, known without opening it (so kvSession() can say so at once,
 * not on every request), or undefined. `sqlite://`: neither `node:sqlite` nor the `sqlite3` package
 * (or the one `?driver=` asks for). Any other scheme: its driver package is not installed beside
 * koa-kv-session. When koa-kv-session itself cannot be found from the app's folder (a bundle, an
 * unusual layout), nothing can be told, and the first request says it instead.
 */
export function missingDriver(url: string): string | undefined {
  const scheme = schemeOf(url);
  if (scheme === 'sqlite') return missingSqliteDriver(url);
  const needed = schemeRow(scheme)?.package;
  const ours = needed === undefined ? undefined : resolvable('koa-kv-session/package.json');
  if (needed === undefined || ours === undefined) return undefined;
  try {
    createRequire(ours).resolve(needed);
    return undefined;
  } catch {
    return `needs the ${needed} package, which is not installed: run \`npm install ${needed}\``;
  }
}

function missingSqliteDriver(url: string): string | undefined {
  const driver = /[?&]driver=([^&]*)/.exec(url)?.[1];
  const builtin = (
    process as { getBuiltinModule?: (id: string) => { DatabaseSync?: unknown } | undefined }
  ).getBuiltinModule?.('node:sqlite');
  const hasBuiltin = typeof builtin?.DatabaseSync === 'function';
  if (driver !== 'sqlite3' && hasBuiltin) return undefined;
  if (driver === 'node')
    return `needs node:sqlite, which Node ${process.version} does not have (Node 22.13 or later has it)`;
  if (resolvable('sqlite3') !== undefined) return undefined;
  if (driver === 'sqlite3') {
    return (
      `asks for the sqlite3 package (?driver=sqlite3), which is not installed: run \`npm install ` +
      `sqlite3\`${hasBuiltin ? ', or drop ?driver=sqlite3 to use the node:sqlite built into this Node' : ''}`
    );
  }
  return (
    `needs node:sqlite (built into Node 22.13 and later; this is ${process.version}) or the sqlite3 package: ` +
    `run on Node 22.13 or later, or run \`npm install sqlite3\``
  );
}
