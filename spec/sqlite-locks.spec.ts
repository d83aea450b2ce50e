// SQLite under another process's write lock and during a purge: reads never wait for a lock, and the store never blocks
// the event loop for long; on each driver.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { openBackend } from '../src/backends/registry.js';
import type { SqliteBackend } from '../src/backends/sqlite.js';
import { frameRecord } from '../src/record.js';
import { kvSession } from '../src/index.js';
import { cookiePair, startApp } from './support/app.js';
import { HAS_NODE_SQLITE } from './support/servers.js';

const DRIVERS = HAS_NODE_SQLITE ? (['node', 'sqlite3'] as const) : (['sqlite3'] as const);
const dir = mkdtempSync(join(tmpdir(), 'kvs-sqlite-locks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** How long the other process holds the write lock. */
const LOCK_MS = 2000;

/**
 * Another process takes the write lock of `file` (BEGIN IMMEDIATE plus a write) and holds it `holdMs`; resolves once it
 * holds it, with `released`, which settles when that process has let go (wrapped in an object: an async function
 * returning a bare promise would adopt it).
 */
async function lockFromAnotherProcess(file: string, holdMs = LOCK_MS): Promise<{ released: Promise<void> }> {
  const script = `
    const sqlite3 = require('sqlite3');
    const db = new sqlite3.Database(process.argv[1]);
    db.exec("BEGIN IMMEDIATE; INSERT OR REPLACE INTO keyv (key, value) VALUES ('other', 'x');", (error) => {
      if (error) { console.error(error.message); process.exit(1); }
      console.log('locked');
      setTimeout(() => db.exec('COMMIT', () => db.close(() => process.exit(0))), ${holdMs});
    });`;
  const child = spawn(process.execPath, ['-e', script, file], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: process.cwd(),
  });
  const done = new Promise<void>((resolve, reject) =>
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`locker exited with ${code}`)))),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) resolve();
    });
    child.once('exit', () => reject(new Error('the locking process ended before it held the lock')));
  });
  return { released: done };
}

/**
 * The longest the event loop went without turning while `work` ran, in ms: the largest gap between the ticks of a 5 ms
 * timer.
 */
async function loopLagDuring<T>(work: () => Promise<T>): Promise<{ result: T; lag: number }> {
  let last = performance.now();
  let lag = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    lag = Math.max(lag, now - last - 5);
    last = now;
  }, 5);
  try {
    const result = await work();
    // One more tick, so that a block at the very end is counted too.
    await sleep(20);
    return { result, lag };
  } finally {
    clearInterval(ticker);
  }
}

describe.each(DRIVERS)('SQLite on driver %s', (driver) => {
  it(`while another process holds the write lock (${LOCK_MS} ms) and this one waits to write: reads answer at once, the event loop keeps turning, the write lands after`, async () => {
    const file = join(dir, `locked-${driver}.sqlite`);
    const backend = (await openBackend(`sqlite://${file}?driver=${driver}`, LOCK_MS + 2000)) as SqliteBackend;
    try {
      await backend.set('session:a', frameRecord('{}', 'json', Date.now() + 60_000, true), 60_000);
      const { released } = await lockFromAnotherProcess(file);
      const { result, lag } = await loopLagDuring(async () => {
        const writing = backend.set('session:b', frameRecord('{}', 'json', Date.now() + 60_000, true), 60_000);
        const reads: number[] = [];
        for (let i = 0; i < 15; i++) {
          const started = performance.now();
          expect(await backend.get('session:a')).toBeDefined();
          reads.push(performance.now() - started);
          await sleep(50);
        }
        await writing;
        return reads;
      });
      await released;
      // Bounds far below the lock's length: a read that waited for it, or a blocked loop, takes seconds.
      expect(Math.max(...result)).toBeLessThan(LOCK_MS / 4);
      expect(lag).toBeLessThan(LOCK_MS / 4);
      expect(await backend.get('session:b')).toBeDefined();
    } finally {
      await backend.close();
    }
  }, 20_000);

  it('through an app with the default storeTimeout (2 s), while another process holds the write lock 3 s and requests keep writing sessions: reads of a session answer at once and the event loop keeps turning', async () => {
    const file = join(dir, `app-${driver}.sqlite`);
    const app = await startApp({ store: `sqlite://${file}?driver=${driver}`, env: {} }, (ctx) => {
      if (ctx.path === '/login') ctx.session.n = 0;
      else if (ctx.path === '/write') ctx.session.n = Number(ctx.session.n) + 1;
      return String(ctx.session.n);
    });
    try {
      const login = async () => cookiePair((await app.request('/login')).setCookies[0]);
      const reader = await login();
      const writers = await Promise.all(Array.from({ length: 20 }, login));
      const { released } = await lockFromAnotherProcess(file, 3000);
      let locked = true;
      const unlocked = released.finally(() => {
        locked = false;
      });
      const { result: reads, lag } = await loopLagDuring(async () => {
        // One request at a time writes a session, round-robin over 20 of them; each waits for the lock (and may answer
        // 503 after storeTimeout).
        const writing = (async () => {
          for (let i = 0; locked; i++) await app.request('/write', { cookie: writers[i % writers.length] });
        })();
        const times: number[] = [];
        while (locked) {
          const started = performance.now();
          const reply = await app.request('/read', { cookie: reader });
          times.push(performance.now() - started);
          expect([reply.status, reply.body]).toEqual([200, '0']);
          await sleep(50);
        }
        await writing;
        return times;
      });
      await unlocked;
      expect(reads.length).toBeGreaterThan(10);
      // A read that queued behind a waiting write, or a loop blocked by a synchronous busy wait, takes seconds.
      expect(Math.max(...reads)).toBeLessThan(500);
      expect(lag).toBeLessThan(500);
      expect((await app.request('/write', { cookie: writers[0] })).status).toBe(200);
    } finally {
      await app.close();
    }
  }, 30_000);

  it('a purge of 100 000 expired rows among live ones deletes in short batches: the event loop keeps turning, reads keep answering', async () => {
    const file = join(dir, `purge-${driver}.sqlite`);
    const backend = (await openBackend(`sqlite://${file}?driver=${driver}`, 5000)) as SqliteBackend;
    try {
      const now = Date.now();
      await backend.sql.query('BEGIN', []);
      for (let i = 0; i < 120_000; i++) {
        const expires = i % 6 === 0 ? now + 3_600_000 : now - 1000;
        await backend.sql.query('INSERT INTO keyv (key, value) VALUES (?, ?)', [
          `p:${i}`,
          frameRecord('{}', 'json', expires, true),
        ]);
      }
      await backend.sql.query('COMMIT', []);
      const middleware = kvSession({ store: backend, keyPrefix: 'p:', cleanupInterval: 0, env: {} });
      const reads: number[] = [];
      const { result: removed, lag } = await loopLagDuring(async () => {
        let purging = true;
        const purge = middleware.purge().finally(() => {
          purging = false;
        });
        while (purging) {
          const started = performance.now();
          await backend.get('p:0');
          reads.push(performance.now() - started);
          await sleep(10);
        }
        return purge;
      });
      await middleware.close();
      expect(removed).toBe(100_000);
      expect(reads.length).toBeGreaterThan(5);
      expect(lag).toBeLessThan(150);
      expect(Math.max(...reads)).toBeLessThan(150);
    } finally {
      await backend.close();
    }
  }, 120_000);

  it('finds expired rows through its expiry index, never by scanning the live rows', async () => {
    const backend = (await openBackend(
      `sqlite://${join(dir, `plan-${driver}.sqlite`)}?driver=${driver}`,
      5000,
    )) as SqliteBackend;
    try {
      await backend.get('warm-up');
      const purge = 'DELETE FROM keyv WHERE key IN (SELECT key FROM keyv WHERE';
      const statements: string[] = [];
      const original = backend.sql.query;
      Object.assign(backend.sql, {
        query: (sql: string, params: readonly unknown[]) => {
          statements.push(sql);
          return original(sql, params);
        },
      });
      await backend.purgeExpired('p:', Date.now());
      const statement = statements.find((sql) => sql.startsWith(purge)) as string;
      const inner = statement.slice(statement.indexOf('(SELECT') + 1, statement.lastIndexOf(')'));
      const plan = (await original(`EXPLAIN QUERY PLAN ${inner}`, ['p:%', Date.now(), 500])).rows
        .map((row) => String(row.detail))
        .join('\n');
      expect(plan).toMatch(/USING INDEX keyv_kvs_expires/);
      expect(plan).not.toMatch(/^SCAN keyv$/m);
    } finally {
      await backend.close();
    }
  });
});
