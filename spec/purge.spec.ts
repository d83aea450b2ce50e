// Expired-session cleanup: purge() per backend, key-prefix isolation, batches, and the background cleanup.
import { beforeEach, describe, expect, it } from 'vitest';
import { PURGE_BATCH } from '../src/backends/contract.js';
import { MemoryBackend } from '../src/backends/memory.js';
import { encodePayload } from '../src/codec.js';
import { frameRecord } from '../src/record.js';
import { kvSession } from '../src/index.js';
import { openBackend } from '../src/backends/registry.js';
import type { PostgresBackend } from '../src/backends/postgres.js';
import { gate, startApp } from './support/app.js';
import type { CountingAdapter } from './support/counting.js';
import { BACKENDS, onBackend, REQUIRE_SERVERS, uniquePrefix, POSTGRES_URL, reachable } from './support/servers.js';

const record = (expires: number) => frameRecord(encodePayload({ user: 'ada' }, 'cbor'), 'cbor', expires, true);

describe.each(BACKENDS)('purge on $name', (backend) => {
  const env = onBackend(backend, 'purge');
  let store: CountingAdapter;
  beforeEach(() => {
    store = env.store;
  });

  it('removes expired records under its own prefix only, and keeps live ones', async () => {
    // "a_b:" must not match "axb:", and "p:" must not touch the longer prefix "p:x:" it is a prefix of.
    const base = uniquePrefix(`purge-${backend.name}`);
    const prefix = `${base}a_b:`;
    const now = Date.now();
    const mine = [...Array(5)].map((_, i) => `${prefix}expired${i}`);
    const live = `${prefix}live`;
    const others = [`${base}axb:expired`, `${base}a_c:expired`];
    const native = backend.nativeTtl === true;
    // Servers that expire keys themselves get a real short TTL (memcached counts in whole seconds).
    for (const key of [...mine, ...others]) await store.put(key, record(now - 1000), native ? 1000 : undefined);
    await store.put(live, record(now + 3_600_000), 3_600_000);
    const middleware = kvSession({ store: store, keyPrefix: prefix, env: {} });
    try {
      const removed = await middleware.purge();
      if (native) {
        expect(removed).toBe(0); // nothing to purge: the server drops expired keys
        await new Promise((resolve) => setTimeout(resolve, 2100));
        for (const key of mine) expect(await store.raw(key)).toBeUndefined();
      } else {
        expect(removed).toBe(mine.length);
        for (const key of mine) expect(await store.raw(key)).toBeUndefined();
        for (const key of others) expect(await store.raw(key)).toBeDefined();
      }
      expect(await store.raw(live)).toBeDefined();
    } finally {
      await middleware.close();
    }
  });
});

describe('purge in batches on PostgreSQL', () => {
  it(`deletes more than one batch (${PURGE_BATCH} rows) of expired rows in a few statements`, async (context) => {
    if (!(await reachable(POSTGRES_URL))) {
      if (REQUIRE_SERVERS) throw new Error(`PostgreSQL is required at ${POSTGRES_URL}`);
      context.skip(`no PostgreSQL at ${POSTGRES_URL}`);
    }
    const table = `kvs_purge_${Date.now().toString(36)}`;
    const adapter = (await openBackend(`${POSTGRES_URL}?table=${table}`, 5000)) as PostgresBackend;
    const prefix = uniquePrefix('batch');
    try {
      const rows = PURGE_BATCH * 2 + 500;
      await adapter.sql.query(
        `INSERT INTO ${adapter.sql.table} (key, value) SELECT $1 || g, $2 FROM generate_series(1, $3) AS g`,
        [prefix, record(Date.now() - 1000), rows],
      );
      await adapter.set(`${prefix}live`, record(Date.now() + 60_000), 60_000);
      const statements: string[] = [];
      const original = adapter.sql.query;
      Object.assign(adapter.sql, {
        query: async (sql: string, params: readonly unknown[]) => {
          statements.push(sql);
          return original(sql, params);
        },
      });
      const middleware = kvSession({ store: adapter, keyPrefix: prefix, env: {} });
      expect(await middleware.purge()).toBe(rows);
      await middleware.close();
      expect(statements.filter((sql) => sql.startsWith('DELETE'))).toHaveLength(Math.floor(rows / PURGE_BATCH) + 1);
      expect(await adapter.get(`${prefix}live`)).toBeDefined();
    } finally {
      await adapter.sql.query(`DROP TABLE IF EXISTS ${adapter.sql.table}`, []).catch(() => {});
      await adapter.close();
    }
  });
});

describe('background cleanup (cleanupEveryNRequests)', () => {
  it('with N = 1 every request starts a purge, never two at once, and never delays the response', async () => {
    const purges = { started: 0, running: 0, maxRunning: 0 };
    const release = gate();
    class SlowPurge extends MemoryBackend {
      override async purgeExpired(prefix: string, now: number): Promise<number> {
        purges.started++;
        purges.running++;
        purges.maxRunning = Math.max(purges.maxRunning, purges.running);
        await release.wait;
        purges.running--;
        return super.purgeExpired(prefix, now);
      }
    }
    const prefix = uniquePrefix('cleanup');
    const adapter = new SlowPurge();
    await adapter.set(`${prefix}old`, record(Date.now() - 1000), 1); // expired
    const app = await startApp({ store: adapter, keyPrefix: prefix, cleanupEveryNRequests: 1 }, () => 'ok');
    try {
      for (let i = 0; i < 5; i++) expect((await app.request()).body).toBe('ok'); // answered while the purge is held
      expect(purges.started).toBe(1);
      expect(purges.maxRunning).toBe(1);
      release.open();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await adapter.get(`${prefix}old`)).toBeUndefined();
    } finally {
      await app.close();
    }
  });

  it('with N = 0 (the default) no request purges', async () => {
    let purges = 0;
    class Counting extends MemoryBackend {
      override async purgeExpired(prefix: string, now: number): Promise<number> {
        purges++;
        return super.purgeExpired(prefix, now);
      }
    }
    const app = await startApp({ store: new Counting() as never, keyPrefix: uniquePrefix('nocleanup') }, () => 'ok');
    try {
      for (let i = 0; i < 20; i++) await app.request();
      expect(purges).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('a store that cannot purge says so with SESSION_UNSUPPORTED', async () => {
    const adapter = {
      get: async () => undefined,
      set: async () => true,
      delete: async () => true,
      clear: async () => {},
      on: () => adapter,
      opts: {},
    };
    const middleware = kvSession({ store: adapter, env: {} });
    await expect(middleware.purge()).rejects.toMatchObject({ code: 'SESSION_UNSUPPORTED' });
    await middleware.close();
  });
});
