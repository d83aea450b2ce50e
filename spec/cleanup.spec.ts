// The background cleanup timer: on by default where the store keeps expired records, off where it expires keys itself;
// one purge at a time, errors to onError, stopped by close().
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { openBackend } from '../src/backends/registry.js';
import { encodePayload } from '../src/codec.js';
import { frameRecord } from '../src/record.js';
import { kvSession } from '../src/index.js';
import { startApp } from './support/app.js';

const dir = mkdtempSync(join(tmpdir(), 'kvs-cleanup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fake store for the timer's own behaviour: records purge calls; may be slow, may fail, may expire keys itself. */
function fakeStore(options: { expiresKeys?: boolean; purgeMs?: number; fail?: boolean } = {}) {
  const map = new Map<string, string>();
  const calls = { purges: 0, running: 0, maxRunning: 0 };
  const store = {
    get: async (key: string) => map.get(key),
    set: async (key: string, value: string) => void map.set(key, value),
    delete: async (key: string) => map.delete(key),
    purgeExpired: async () => {
      calls.purges++;
      calls.running++;
      calls.maxRunning = Math.max(calls.maxRunning, calls.running);
      try {
        await sleep(options.purgeMs ?? 0);
        if (options.fail) throw new Error('purge failed on purpose');
        return 0;
      } finally {
        calls.running--;
      }
    },
    ...(options.expiresKeys ? { expiresKeys: true } : {}),
  };
  return { store, calls };
}

describe('background cleanup', () => {
  it('the SQLite default purges expired rows on its own (default settings, a short interval)', async () => {
    const file = join(dir, 'own.sqlite');
    const url = `sqlite://${file}`;
    const raw = await openBackend(url, 2000);
    const middleware = kvSession({ store: url, keyPrefix: 'c:', cleanupInterval: 1000 });
    try {
      expect(await middleware.ready()).toMatchObject({ purge: true, ownExpiry: false });
      const dead = frameRecord(encodePayload({ user: 'gone' }, 'cbor'), 'cbor', Date.now() - 1000, true);
      const live = frameRecord(encodePayload({ user: 'here' }, 'cbor'), 'cbor', Date.now() + 60_000, true);
      await raw.set('c:dead', dead, 1);
      await raw.set('c:live', live, 60_000);
      await raw.set('other:dead', dead, 1);
      const until = Date.now() + 5000;
      while ((await raw.get('c:dead')) !== undefined && Date.now() < until) await sleep(100);
      expect(await raw.get('c:dead')).toBeUndefined();
      expect(await raw.get('c:live')).toBe(live);
      // Under its own prefix only.
      expect(await raw.get('other:dead')).toBe(dead);
    } finally {
      await middleware.close();
      await raw.close?.();
    }
  });

  it('runs on a store that keeps expired records, never on one that expires keys itself', async () => {
    const keeps = fakeStore();
    const expires = fakeStore({ expiresKeys: true });
    const a = kvSession({ store: keeps.store, cleanupInterval: 1000 });
    const b = kvSession({ store: expires.store, cleanupInterval: 1000 });
    try {
      expect((await b.ready()).ownExpiry).toBe(true);
      await sleep(2500);
      expect(keeps.calls.purges).toBeGreaterThanOrEqual(1);
      expect(expires.calls.purges).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('never runs two purges at once, and close() stops it', async () => {
    const slow = fakeStore({ purgeMs: 2500 });
    const middleware = kvSession({ store: slow.store, cleanupInterval: 1000 });
    await sleep(3600);
    expect(slow.calls.purges).toBe(1);
    expect(slow.calls.maxRunning).toBe(1);
    await middleware.close();
    const after = slow.calls.purges;
    await sleep(1500);
    expect(slow.calls.purges).toBe(after);
  });

  it('reports a failed purge through onError and keeps the app serving', async () => {
    const failing = fakeStore({ fail: true });
    const errors: Error[] = [];
    const app = await startApp(
      { store: failing.store, cleanupInterval: 1000, onError: (error) => errors.push(error) },
      (ctx) => {
        ctx.session.n = 1;
        return 'ok';
      },
    );
    try {
      await sleep(1500);
      expect(errors.map((e) => e.message).join('\n')).toMatch(/purge failed on purpose/);
      expect((await app.request('/')).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('cleanupInterval 0 turns it off', async () => {
    const keeps = fakeStore();
    const middleware = kvSession({ store: keeps.store, cleanupInterval: 0 });
    await sleep(1500);
    expect(keeps.calls.purges).toBe(0);
    await middleware.close();
  });

  it('a process with only the timer left exits on its own', () => {
    const script = join(dir, 'exits.mjs');
    const entry = new URL('../dist/esm/index.js', import.meta.url).href;
    writeFileSync(
      script,
      `import { kvSession } from ${JSON.stringify(entry)};
const middleware = kvSession({ store: 'sqlite://${join(dir, 'exits.sqlite')}', cleanupInterval: 1000 });
await middleware.ready();
console.log('ready');
`,
    );
    const started = Date.now();
    const out = execFileSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
    expect(out.trim()).toBe('ready');
    // Exited without waiting for a purge interval to matter, let alone for ever.
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
