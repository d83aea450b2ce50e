// One contender of the benchmark as its own HTTP server process:  node bench/server.mjs <contender> <variant> <port>
// <prefix> Routes: /login creates a ~1 KB session; /a ignores the session; /b and /d read it; /c and /f change one key.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import Koa from 'koa';
import { createClient } from 'redis';

const require = createRequire(import.meta.url);
// BENCH_KV_SESSION: another build's dist/esm/index.js, for bench/ab.mjs; this package's own build otherwise.
const { kvSession } = await import(process.env.BENCH_KV_SESSION ?? 'koa-kv-session');
const [contender, variant = 'default', portText = '0', prefix = 'bench:'] = process.argv.slice(2);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
/** The table every PostgreSQL contender shares (keys under each one's own prefix). */
const PG_TABLE = 'kvs_bench';
/** The SQLite file of the SQLite contenders: one per contender process (BENCH_SQLITE_DIR, made by run.mjs). */
const SQLITE_FILE = `${process.env.BENCH_SQLITE_DIR ?? '/tmp'}/${contender}.sqlite`;
const SECRET = 'bench-secret-key';
const flask = variant === 'flask';

/** The session a login creates: about 1 KB once encoded. */
function sessionData() {
  return {
    user: { id: 'u-123456', name: 'Ada Lovelace', email: 'ada@example.test', roles: ['admin', 'editor', 'viewer'] },
    prefs: { theme: 'dark', language: 'en-GB', timezone: 'Europe/London', notes: 'n'.repeat(700) },
    cart: { items: ['sku-1', 'sku-2', 'sku-3'], updated: 1767225600000 },
    counter: 0,
  };
}

function route(ctx, session) {
  switch (ctx.path) {
    case '/login':
      Object.assign(session(), sessionData());
      return 'ok';
    case '/a':
      return 'a';
    case '/b':
    case '/d':
      return session().user?.name ?? 'anonymous';
    case '/c':
    case '/f': {
      const s = session();
      s.counter = (s.counter ?? 0) + 1;
      return String(s.counter);
    }
    default:
      return 'unknown';
  }
}

/**
 * take-update.mjs: a one-time token taken (its own compare-and-set) and the next one put in its place (the commit's).
 */
async function takeRoute(ctx) {
  const token = await ctx.session.take('token');
  ctx.session.token = (token ?? 0) + 1;
  ctx.body = String(token);
}

async function redisClient() {
  const client = createClient({ url: REDIS_URL });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** A minimal koa-session external store over the same Redis client. */
function koaSessionStore(client) {
  return {
    async get(key) {
      const raw = await client.get(prefix + key);
      return raw ? JSON.parse(raw) : undefined;
    },
    async set(key, value, maxAge) {
      await client.set(prefix + key, JSON.stringify(value), { PX: typeof maxAge === 'number' ? maxAge : 86_400_000 });
    },
    async destroy(key) {
      await client.del(prefix + key);
    },
  };
}

function memoryKoaSessionStore() {
  const map = new Map();
  return {
    get: async (key) => map.get(key),
    set: async (key, value) => void map.set(key, value),
    destroy: async (key) => void map.delete(key),
  };
}

async function koaApp(useSession) {
  const app = new Koa();
  app.keys = [SECRET];
  app.silent = true;
  await useSession(app);
  return app;
}

/** The store URL (or adapter) of a koa-kv-session contender. */
async function kvStore() {
  switch (contender) {
    case 'kv-memory':
      return 'memory://';
    case 'kv-pg':
      return `${POSTGRES_URL}?table=${PG_TABLE}`;
    case 'kv-sqlite':
      // The zero-config default, in a file of its own.
      return `sqlite://${SQLITE_FILE}`;
    case 'kv-sqlite-0.1': {
      // What 0.1's default ran on: @keyv/sqlite with its own settings (rollback journal, full sync, no busy timeout).
      const { default: KeyvSqlite } = await import('@keyv/sqlite');
      return new KeyvSqlite(`sqlite://${SQLITE_FILE}`);
    }
    default:
      return REDIS_URL;
  }
}

/** A raw SQL client for the limits: get(key) and set(key, value) with prepared statements, nothing else. */
async function rawSql() {
  if (contender === 'raw-pg') {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 10 });
    await pool.query(`CREATE TABLE IF NOT EXISTS ${PG_TABLE} (key VARCHAR(255) PRIMARY KEY, value TEXT)`);
    return {
      get: async (key) =>
        (await pool.query({ name: 'get', text: `SELECT value FROM ${PG_TABLE} WHERE key = $1`, values: [key] })).rows[0]
          ?.value,
      set: async (key, value) =>
        pool.query({
          name: 'set',
          text: `INSERT INTO ${PG_TABLE} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
          values: [key, value],
        }),
    };
  }
  // raw-sqlite: sqlite3 on a WAL file, tuned as our default is: the limit of the embedded store.
  const { default: sqlite3 } = await import('sqlite3');
  const db = new sqlite3.Database(SQLITE_FILE);
  const run = (sql, params = []) =>
    new Promise((resolve, reject) => db.all(sql, params, (error, rows) => (error ? reject(error) : resolve(rows))));
  await run('PRAGMA journal_mode = WAL');
  await run('PRAGMA synchronous = NORMAL');
  await run('CREATE TABLE IF NOT EXISTS keyv (key VARCHAR(255) PRIMARY KEY, value TEXT)');
  const get = db.prepare('SELECT value FROM keyv WHERE key = ?');
  const set = db.prepare(
    'INSERT INTO keyv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  );
  return {
    get: (key) =>
      new Promise((resolve, reject) => get.get([key], (error, row) => (error ? reject(error) : resolve(row?.value)))),
    set: (key, value) =>
      new Promise((resolve, reject) => set.run([key, value], (error) => (error ? reject(error) : resolve()))),
  };
}

async function build() {
  switch (contender) {
    case 'kv-cbor':
    case 'kv-json':
    case 'kv-memory':
    case 'kv-pg':
    case 'kv-sqlite':
    case 'kv-sqlite-0.1':
      return koaApp(async (app) => {
        const middleware = kvSession({
          store: await kvStore(),
          serialization: contender === 'kv-json' ? 'json' : 'cbor',
          keyPrefix: prefix,
          // Flask itself rewrites on every request; ours refreshes at most once per interval.
          refreshInterval: flask ? 0 : '60s',
          env: {},
        });
        await middleware.ready();
        app.use(middleware);
        app.use((ctx) => {
          if (ctx.path === '/t') return takeRoute(ctx);
          // update(): the counter of (c), changed from its freshest value.
          if (ctx.path === '/u') ctx.body = String(ctx.session.update('counter', (n = 0) => n + 1));
          // A logout: the cookie stays validly signed, and names a session that is gone (ab.mjs, (g)).
          else if (ctx.path === '/logout') ctx.body = String((ctx.session = null));
          else ctx.body = route(ctx, () => ctx.session);
        });
      });
    case 'koa-session':
    case 'koa-session-memory': {
      const session = require('koa-session').default ?? require('koa-session');
      const store = contender === 'koa-session' ? koaSessionStore(await redisClient()) : memoryKoaSessionStore();
      return koaApp(async (app) => {
        app.use(session({ store, key: 'koa.sess', maxAge: 86_400_000, rolling: flask, renew: false }, app));
        app.use((ctx) => {
          if (ctx.path === '/t') return takeRoute(ctx);
          // update(): the counter of (c), changed from its freshest value.
          if (ctx.path === '/u') ctx.body = String(ctx.session.update('counter', (n = 0) => n + 1));
          else ctx.body = route(ctx, () => ctx.session);
        });
      });
    }
    case 'express-session':
    case 'express-session-memory': {
      const express = require('express');
      const session = require('express-session');
      const app = express();
      let store;
      if (contender === 'express-session') {
        const { RedisStore } = require('connect-redis');
        store = new RedisStore({ client: await redisClient(), prefix });
      } else {
        store = new session.MemoryStore();
      }
      app.use(
        session({
          store,
          secret: SECRET,
          resave: flask,
          rolling: flask,
          saveUninitialized: false,
          cookie: { maxAge: 86_400_000 },
        }),
      );
      app.use((req, res) => {
        res.end(route({ path: req.path }, () => req.session));
      });
      return app;
    }
    case 'raw':
    case 'raw-memory':
    case 'raw-pg':
    case 'raw-sqlite': {
      // The limit: exactly the store round trips a session needs, nothing else. Unsigned sid cookie.
      const map = new Map();
      const client = contender === 'raw' ? await redisClient() : undefined;
      const sql = contender === 'raw-pg' || contender === 'raw-sqlite' ? await rawSql() : undefined;
      const get = sql ? sql.get : client ? (key) => client.get(key) : async (key) => map.get(key);
      const set = sql
        ? sql.set
        : client
          ? (key, value) => client.set(key, value, { PX: 86_400_000 })
          : async (key, value) => void map.set(key, value);
      return koaApp(async (app) => {
        app.use(async (ctx) => {
          if (ctx.path === '/a') {
            ctx.body = 'a';
            return;
          }
          if (ctx.path === '/login') {
            const sid = randomBytes(32).toString('base64url');
            await set(prefix + sid, JSON.stringify(sessionData()));
            ctx.set('Set-Cookie', `sid=${sid}; Path=/; HttpOnly`);
            ctx.body = 'ok';
            return;
          }
          const sid = /(?:^|;\s*)sid=([^;]+)/.exec(ctx.get('cookie'))?.[1];
          const raw = sid ? await get(prefix + sid) : undefined;
          const data = raw ? JSON.parse(raw) : {};
          if (ctx.path === '/c' || ctx.path === '/f') {
            data.counter = (data.counter ?? 0) + 1;
            await set(prefix + sid, JSON.stringify(data));
            ctx.body = String(data.counter);
          } else {
            ctx.body = data.user?.name ?? 'anonymous';
          }
        });
      });
    }
    case 'bare':
      return koaApp(async (app) => {
        app.use((ctx) => {
          ctx.body = ctx.path === '/a' ? 'a' : 'bare';
        });
      });
    default:
      throw new Error(`unknown contender ${contender}`);
  }
}

const app = await build();
const server = app.listen(Number(portText), '127.0.0.1', () => {
  process.send?.({ ready: true, port: server.address().port });
});
process.on('message', (message) => {
  if (message === 'rss') process.send?.({ rss: process.memoryUsage().rss });
  if (message === 'gc' && global.gc) {
    global.gc();
    process.send?.({ gc: true });
  }
});
// A normal exit on SIGINT, so `node --cpu-prof bench/server.mjs ...` writes its profile.
process.on('SIGINT', () => process.exit(0));
