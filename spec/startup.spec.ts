// A store that is unavailable when the app starts: requests fail with 503 while it is, and work without a restart once
// it is back, on every backend.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Context } from 'koa';
import { Gate } from './support/tcp-gate.js';
import { cookiePair, startApp, type TestApp } from './support/app.js';
import {
  BACKENDS,
  CLUSTER_URL,
  DYNAMO_URL,
  ETCD_URL,
  MEMCACHE_URL,
  MONGO_URL,
  MYSQL_URL,
  mustRun,
  POSTGRES_URL,
  REDIS_URL,
  uniquePrefix,
  VALKEY_CLUSTER_URL,
  VALKEY_URL,
} from './support/servers.js';

const counter = async (ctx: Context) => {
  if (ctx.path === '/logout') {
    await ctx.session.destroy();
    return 'bye';
  }
  ctx.session.n = Number(ctx.session.n ?? 0) + 1;
  return String(ctx.session.n);
};

/** The first host:port of a connection URL. */
function firstHost(url: string): string {
  return url
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/^[^@/]*@/, '')
    .split(/[,/?]/)[0] as string;
}

/** `url` with its (first) server replaced by the gate; a cluster is reached through one gated root node. */
function through(url: string, port: number): string {
  const host = firstHost(url);
  const cluster = /^(redis|valkey)\+cluster:/.exec(url);
  if (cluster) return `${cluster[1]}+cluster://127.0.0.1:${port}`;
  return url.replace(host, `127.0.0.1:${port}`);
}

const GATED: ReadonlyArray<{ name: string; url: string | undefined }> = [
  { name: 'redis', url: REDIS_URL },
  { name: 'redis-cluster', url: CLUSTER_URL },
  { name: 'valkey', url: VALKEY_URL },
  { name: 'valkey-cluster', url: VALKEY_CLUSTER_URL },
  { name: 'memcached', url: MEMCACHE_URL },
  { name: 'etcd', url: ETCD_URL },
  { name: 'dynamodb', url: DYNAMO_URL },
  { name: 'mariadb', url: MYSQL_URL },
  { name: 'postgres', url: POSTGRES_URL },
  { name: 'mongodb', url: MONGO_URL },
];

/** Requests `/` until one answers 200 (at most ~15 s); resolves with that reply. */
async function firstSuccess(app: TestApp): Promise<Awaited<ReturnType<TestApp['request']>>> {
  let last: Awaited<ReturnType<TestApp['request']>> | undefined;
  for (let i = 0; i < 150; i++) {
    last = await app.request('/');
    if (last.status === 200) return last;
    expect(last.status).toBe(503);
    await sleep(100);
  }
  throw new Error(`the app never recovered: last status ${last?.status}`);
}

/**
 * While the store is down: ready() rejects and requests answer 503. Once up: a session is written and read again, and
 * ready() resolves.
 */
async function expectRecovery(app: TestApp, bringUp: () => Promise<void>): Promise<void> {
  await expect(app.middleware.ready()).rejects.toMatchObject({
    code: expect.stringMatching(/^SESSION_STORE_(UNAVAILABLE|TIMEOUT)$/),
  });
  for (let i = 0; i < 3; i++) expect((await app.request('/')).status).toBe(503);
  await bringUp();
  const first = await firstSuccess(app);
  expect(first.body).toBe('1');
  const cookie = cookiePair(first.setCookies[0]);
  expect((await app.request('/', { cookie })).body).toBe('2');
  await expect(app.middleware.ready()).resolves.toMatchObject({ purge: true });
  expect((await app.request('/logout', { cookie })).status).toBe(200); // leaves nothing behind
}

describe.each(GATED)('$name unreachable when the app starts', ({ name, url }) => {
  const backend = BACKENDS.find((b) => b.name === name);

  it('answers 503 while it is, then works once it is reachable, without a restart', async (context) => {
    const reason = url === undefined ? 'no URL' : await backend?.unavailable();
    if (reason !== undefined) {
      if (backend !== undefined && mustRun(backend))
        throw new Error(`${name} is required (KV_SESSION_REQUIRE_SERVERS=1): ${reason}`);
      context.skip(`${name} skipped: ${reason}`);
    }
    const gate = await Gate.closed(firstHost(url as string));
    const app = await startApp(
      { store: through(url as string, gate.port), keyPrefix: uniquePrefix(`startup-${name}`), storeTimeout: 500 },
      counter,
    );
    try {
      await expectRecovery(app, () => gate.open());
    } finally {
      await app.close();
      await gate.close();
    }
  }, 60_000);
});

describe('sqlite locked by another process when the app starts', () => {
  it('answers 503 while the lock is held, then works once it is released, without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvs-startup-'));
    const file = join(dir, 'sessions.sqlite');
    // Another process holds an exclusive lock on the (new) file until told to let go.
    const locker: ChildProcess = spawn(
      process.execPath,
      [
        '-e',
        `
      const sqlite3 = require('sqlite3');
      const db = new sqlite3.Database(${JSON.stringify(file)});
      db.exec('BEGIN EXCLUSIVE; CREATE TABLE held (x); ', (error) => {
        if (error) { console.error(error.message); process.exit(1); }
        process.stdout.write('locked\\n');
      });
      process.stdin.once('data', () => db.exec('COMMIT', () => db.close(() => process.exit(0))));
    `,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      locker.stdout?.once('data', () => resolve());
      locker.once('exit', (code) => reject(new Error(`the locking process exited with ${code}`)));
    });
    const app = await startApp(
      { store: `sqlite://${file}`, keyPrefix: uniquePrefix('startup-sqlite'), storeTimeout: 500 },
      counter,
    );
    try {
      await expectRecovery(app, async () => {
        locker.stdin?.write('unlock\n');
        await new Promise((resolve) => locker.once('exit', resolve));
      });
    } finally {
      locker.kill();
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
