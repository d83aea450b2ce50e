// The embedded SQLite default, tuned as web apps tune SQLite: WAL, synchronous=NORMAL, a busy timeout, several
// processes on one file.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openBackend } from '../src/backends/registry.js';
import type { SqliteBackend } from '../src/backends/sqlite.js';
import { cookiePair } from './support/app.js';
import { HAS_NODE_SQLITE } from './support/servers.js';

/** The drivers this Node can run: sqlite3 always (a dev dependency), node:sqlite where built in. */
const DRIVERS = HAS_NODE_SQLITE ? (['node', 'sqlite3'] as const) : (['sqlite3'] as const);

const dir = mkdtempSync(join(tmpdir(), 'kvs-sqlite-tuned-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the SQLite store', () => {
  it.each(DRIVERS)(
    'on driver %s, opens its file in WAL mode with synchronous=NORMAL and a busy timeout (node:sqlite: its own, asynchronous)',
    async (driver) => {
      const backend = (await openBackend(
        `sqlite://${join(dir, `pragmas-${driver}.sqlite`)}?driver=${driver}`,
        1500,
      )) as SqliteBackend;
      try {
        expect(backend.driver).toBe(driver === 'node' ? 'node:sqlite' : 'sqlite3');
        await backend.get('warm-up');
        const pragma = async (name: string) =>
          Object.values((await backend.sql.query(`PRAGMA ${name}`, [])).rows[0] ?? {})[0];
        expect(await pragma('journal_mode')).toBe('wal');
        expect(await pragma('synchronous')).toBe(1); // NORMAL
        // node:sqlite never waits inside SQLite (it would block the event loop): it retries asynchronously instead.
        expect(await pragma('busy_timeout')).toBe(driver === 'node' ? 0 : 1500);
      } finally {
        await backend.close();
      }
    },
  );

  it(`with no driver named, runs on ${HAS_NODE_SQLITE ? 'node:sqlite (built into this Node: nothing to compile)' : 'sqlite3 (this Node has no node:sqlite)'}`, async () => {
    const backend = (await openBackend(`sqlite://${join(dir, 'default.sqlite')}`, 1500)) as SqliteBackend;
    await backend.close();
    expect(backend.driver).toBe(HAS_NODE_SQLITE ? 'node:sqlite' : 'sqlite3');
  });

  it.each(DRIVERS)(
    'on driver %s, creates the file and its -wal and -shm files readable by their owner only (they hold sids)',
    async (driver) => {
      const file = join(dir, `mode-${driver}.sqlite`);
      const backend = (await openBackend(`sqlite://${file}?driver=${driver}`, 1500)) as SqliteBackend;
      try {
        await backend.set('kvs-mode', 'c2:0:0:x', 60_000);
        for (const name of [file, `${file}-wal`, `${file}-shm`])
          expect((statSync(name).mode & 0o777).toString(8), name).toBe('600');
      } finally {
        await backend.close();
      }
    },
  );

  it('git ignores the default file and its -wal and -shm files (the demo and a new app write them in the working tree)', () => {
    const ignored = execFileSync(
      'git',
      ['check-ignore', 'sessions.sqlite', 'sessions.sqlite-wal', 'sessions.sqlite-shm'],
      { cwd: resolve(import.meta.dirname, '..'), encoding: 'utf8' },
    );
    expect(ignored.trim().split('\n')).toEqual(['sessions.sqlite', 'sessions.sqlite-wal', 'sessions.sqlite-shm']);
  });

  it('a driver it does not know is refused with the parameter named', async () => {
    await expect(openBackend(`sqlite://${join(dir, 'x.sqlite')}?driver=better-sqlite3`, 1500)).rejects.toMatchObject({
      code: 'SESSION_INVALID_OPTION',
      message: 'koa-kv-session: the driver parameter of a sqlite:// URL is "node" or "sqlite3", got "better-sqlite3"',
    });
  });

  it.runIf(!HAS_NODE_SQLITE)(
    '?driver=node on a Node without node:sqlite: SESSION_ADAPTER_MISSING, saying which Node has it',
    async () => {
      await expect(openBackend(`sqlite://${join(dir, 'x.sqlite')}?driver=node`, 1500)).rejects.toMatchObject({
        code: 'SESSION_ADAPTER_MISSING',
        message: expect.stringContaining('Node 22.13 or later has it'),
      });
    },
  );

  it.runIf(HAS_NODE_SQLITE)('node:sqlite and sqlite3 read and write the same rows of one file', async () => {
    const file = join(dir, 'both.sqlite');
    const builtin = (await openBackend(`sqlite://${file}?driver=node`, 1500)) as SqliteBackend;
    const addon = (await openBackend(`sqlite://${file}?driver=sqlite3`, 1500)) as SqliteBackend;
    try {
      await builtin.set('both:a', 'j2:9999999999999:1:AAAAAAAA:1::{"by":"node"}', 60_000);
      await addon.set('both:b', 'j2:9999999999999:1:BBBBBBBB:1::{"by":"sqlite3"}', 60_000);
      expect(await addon.get('both:a')).toBe('j2:9999999999999:1:AAAAAAAA:1::{"by":"node"}');
      expect(await builtin.get('both:b')).toBe('j2:9999999999999:1:BBBBBBBB:1::{"by":"sqlite3"}');
    } finally {
      await builtin.close();
      await addon.close();
    }
  });

  it.runIf(HAS_NODE_SQLITE)(
    'node:sqlite, synchronous underneath, still lets the event loop turn during a long run of statements',
    async () => {
      const backend = (await openBackend(`sqlite://${join(dir, 'loop.sqlite')}?driver=node`, 1500)) as SqliteBackend;
      try {
        await backend.get('warm-up');
        let turned = false;
        setImmediate(() => {
          turned = true;
        });
        // 100 ms of back-to-back statements: a timer, a signal or another request must not wait that long.
        const started = performance.now();
        while (!turned && performance.now() - started < 100) await backend.get('loop:none');
        expect(turned).toBe(true);
        expect(performance.now() - started).toBeLessThan(100);
      } finally {
        await backend.close();
      }
    },
  );

  it(`four processes writing one session on one file (${DRIVERS.join(' and ')}): no errors, no lost update`, async () => {
    const file = join(dir, 'shared.sqlite');
    const children: ChildProcess[] = [];
    try {
      const ports = await Promise.all(
        Array.from({ length: 4 }, () => {
          const driver = DRIVERS[children.length % DRIVERS.length] as string;
          const child = spawn(
            process.execPath,
            [resolve('spec/fixtures/sqlite-app.mjs'), resolve('dist/esm/index.js'), file, driver],
            { stdio: ['ignore', 'pipe', 'inherit'] },
          );
          children.push(child);
          return new Promise<number>((done, fail) => {
            child.stdout?.once('data', (data: Buffer) => done(Number(String(data).trim())));
            child.once('exit', (code) => fail(new Error(`an app process exited with ${code}`)));
          });
        }),
      );
      const url = (i: number, path: string) => `http://127.0.0.1:${ports[i % ports.length]}${path}`;
      const first = await fetch(url(0, '/?k=base&v=0'));
      const cookie = cookiePair(first.headers.getSetCookie()[0]);
      const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
      const replies = await Promise.all(
        keys.map((key, i) => fetch(url(i, `/?k=${key}&v=${i}`), { headers: { cookie } })),
      );
      expect(replies.map((reply) => reply.status)).toEqual(keys.map(() => 200));
      const stored = JSON.parse(await (await fetch(url(1, '/'), { headers: { cookie } })).text()) as Record<
        string,
        string
      >;
      expect(stored).toEqual({ base: '0', ...Object.fromEntries(keys.map((key, i) => [key, String(i)])) });
    } finally {
      for (const child of children) child.kill();
    }
  }, 60_000);
});
