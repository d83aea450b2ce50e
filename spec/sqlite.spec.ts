// The embedded SQLite default, tuned as web apps tune SQLite: WAL, synchronous=NORMAL, a busy timeout, several processes on one file.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openBackend } from '../src/backends/registry.js';
import type { SqliteBackend } from '../src/backends/sqlite.js';
import { cookiePair } from './support/app.js';

const dir = mkdtempSync(join(tmpdir(), 'kvs-sqlite-tuned-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the SQLite store', () => {
  it('opens its file in WAL mode with synchronous=NORMAL and a busy timeout', async () => {
    const backend = (await openBackend(`sqlite://${join(dir, 'pragmas.sqlite')}`, 1500)) as SqliteBackend;
    try {
      await backend.get('warm-up');
      const pragma = async (name: string) => Object.values((await backend.sql.query(`PRAGMA ${name}`, [])).rows[0] ?? {})[0];
      expect(await pragma('journal_mode')).toBe('wal');
      expect(await pragma('synchronous')).toBe(1); // NORMAL
      expect(await pragma('busy_timeout')).toBe(1500);
    } finally {
      await backend.close();
    }
  });

  it('four processes writing one session on one file: no errors, no lost update', async () => {
    const file = join(dir, 'shared.sqlite');
    const children: ChildProcess[] = [];
    try {
      const ports = await Promise.all(
        Array.from({ length: 4 }, () => {
          const child = spawn(process.execPath, [resolve('spec/fixtures/sqlite-app.mjs'), resolve('dist/esm/index.js'), file], { stdio: ['ignore', 'pipe', 'inherit'] });
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
      const replies = await Promise.all(keys.map((key, i) => fetch(url(i, `/?k=${key}&v=${i}`), { headers: { cookie } })));
      expect(replies.map((reply) => reply.status)).toEqual(keys.map(() => 200));
      const stored = JSON.parse(await (await fetch(url(1, '/'), { headers: { cookie } })).text()) as Record<string, string>;
      expect(stored).toEqual({ base: '0', ...Object.fromEntries(keys.map((key, i) => [key, String(i)])) });
    } finally {
      for (const child of children) child.kill();
    }
  }, 60_000);
});
