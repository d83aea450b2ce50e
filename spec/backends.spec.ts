// Adapter quirks that must not reach users, checked on each real backend: values, key case, the default lifetime, clean
// shutdown.
import { beforeEach, describe, expect, it } from 'vitest';
import { openBackend, SCHEMES } from '../src/backends/registry.js';
import { encodePayload } from '../src/codec.js';
import { frameRecord } from '../src/record.js';
import type { KvSessionOptions } from '../src/index.js';
import { decodeStored } from './support/records.js';
import { cookiePair, sidOf, startApp, type Handler } from './support/app.js';
import type { CountingAdapter } from './support/counting.js';
import { BACKENDS, mustRun, onBackend, REQUIRE_SERVERS, uniquePrefix } from './support/servers.js';

describe.each(BACKENDS)('values and keys on $name', (backend) => {
  const env = onBackend(backend, 'values');
  let store: CountingAdapter;
  let prefix: string;
  const apps = env.apps;
  beforeEach(() => {
    store = env.store;
    prefix = env.prefix;
  });

  async function roundTrip(write: Handler, read: Handler, options: KvSessionOptions) {
    let step = 0;
    const app = await startApp({ store: store, keyPrefix: prefix, ...options }, (ctx) =>
      step++ === 0 ? write(ctx) : read(ctx),
    );
    apps.push(app);
    const one = await app.request();
    expect(one.status).toBe(200);
    return app.request('/', { cookie: cookiePair(one.setCookies[0]) });
  }

  it.each(['cbor', 'json'] as const)('%s: non-ASCII text and nesting round-trip', async (serialization) => {
    const data = { text: 'héllo ✓ 日本語 🎉', nested: { list: [1, 'two', { three: null }] }, _x: 'underscore' };
    const reply = await roundTrip(
      (ctx) => {
        ctx.session = structuredClone(data);
      },
      (ctx) => JSON.stringify(ctx.session),
      { serialization },
    );
    expect(JSON.parse(reply.body)).toEqual(data);
  });

  it('cbor: Dates, Maps, Sets, BigInts and binary data round-trip', async () => {
    const reply = await roundTrip(
      (ctx) => {
        ctx.session.at = new Date('2026-11-25T10:00:00.000Z');
        ctx.session.map = new Map([['a', 1]]);
        ctx.session.set = new Set(['x', 'y']);
        ctx.session.big = 2n ** 70n;
        ctx.session.bytes = new Uint8Array([0, 255, 10]);
      },
      (ctx) =>
        JSON.stringify([
          (ctx.session.at as Date).toISOString(),
          [...(ctx.session.map as Map<string, number>)],
          [...(ctx.session.set as Set<string>)],
          String(ctx.session.big),
          [...(ctx.session.bytes as Uint8Array)],
        ]),
      { serialization: 'cbor' },
    );
    expect(JSON.parse(reply.body)).toEqual([
      '2026-11-25T10:00:00.000Z',
      [['a', 1]],
      ['x', 'y'],
      String(2n ** 70n),
      [0, 255, 10],
    ]);
  });

  it.each(['cbor', 'json'] as const)(
    '%s: a session of exactly the default maxSize (64 KiB) is stored and read back',
    async (serialization) => {
      const maxSize = 65_536;
      // Grow a string until the framed record is exactly maxSize bytes.
      const frame = (text: string) =>
        frameRecord(encodePayload({ s: text }, serialization), serialization, Date.now() + 31 * 86_400_000, true, {
          created: Date.now(),
        });
      let text = 'a'.repeat(serialization === 'json' ? maxSize - 80 : Math.floor((maxSize - 80) * 0.74));
      while (Buffer.byteLength(frame(`${text}a`)) <= maxSize) text += 'a';
      const reply = await roundTrip(
        (ctx) => {
          ctx.session.s = text;
        },
        (ctx) => String((ctx.session.s as string).length),
        { serialization },
      );
      expect(Buffer.byteLength(frame(text))).toBeGreaterThan(maxSize - 4);
      expect(reply.body).toBe(String(text.length));
    },
  );

  it('keys are case-sensitive: sids that differ only in case are different sessions', async () => {
    const lower = `${prefix}abcdef`;
    const upper = `${prefix}ABCDEF`;
    const raw = (user: string) => frameRecord(encodePayload({ user }, 'json'), 'json', Date.now() + 60_000, true);
    await store.put(lower, raw('lower'), 60_000);
    await store.put(upper, raw('upper'), 60_000);
    expect(decodeStored(await store.raw(lower))).toEqual({ user: 'lower' });
    expect(decodeStored(await store.raw(upper))).toEqual({ user: 'upper' });
  });

  it('the default 31-day lifetime works (TTL over 30 days)', async () => {
    const app = await startApp({ store: store, keyPrefix: prefix }, (ctx) => {
      if (ctx.path === '/login') ctx.session.user = 'ada';
      return String(ctx.session.user ?? 'anonymous');
    });
    apps.push(app);
    await app.middleware.ready();
    const login = await app.request('/login');
    expect(store.calls.find((c) => c.op === 'set')?.ttl).toBe(31 * 86_400_000);
    expect((await app.request('/', { cookie: cookiePair(login.setCookies[0]) })).body).toBe('ada');
    expect(await store.raw(prefix + sidOf(login.setCookies[0]))).toBeDefined();
  });
});

describe.each(BACKENDS.filter((b) => ['redis', 'postgres', 'mariadb'].includes(b.name)))(
  'clean shutdown on $name',
  (backend) => {
    it('closing one middleware never breaks another connected to the same URL', async (context) => {
      const reason = await backend.unavailable();
      if (reason !== undefined) {
        if (REQUIRE_SERVERS) throw new Error(`${backend.name} is required: ${reason}`);
        context.skip(`${backend.name} skipped: ${reason}`);
      }
      const url = {
        redis: 'redis://127.0.0.1:6379',
        postgres: 'postgresql://postgres@127.0.0.1:5432/test',
        mariadb: 'mysql://root@127.0.0.1:3306/test?table=kvs_test',
      }[backend.name] as string;
      const prefix = uniquePrefix(`close-${backend.name}`);
      const handler: Handler = (ctx) => {
        ctx.session.n = Number(ctx.session.n ?? 0) + 1;
        return String(ctx.session.n);
      };
      const first = await startApp({ store: url, keyPrefix: prefix }, handler);
      const second = await startApp({ store: url, keyPrefix: prefix }, handler);
      let sid = '';
      try {
        const created = await second.request();
        sid = sidOf(created.setCookies[0]);
        await first.close();
        expect((await second.request('/', { cookie: cookiePair(created.setCookies[0]) })).body).toBe('2');
      } finally {
        await second.close();
        // Leave the shared server as it was.
        const cleanup = await openBackend(url, 2000);
        if (sid) await cleanup.delete(prefix + sid);
        await cleanup.close?.();
      }
    });
  },
);

describe.each(BACKENDS)('registry row of $name', (backend) => {
  it('states the abilities the backend really has (atomic compare-and-set, listing, its own expiry)', async (context) => {
    const reason = await backend.unavailable();
    if (reason !== undefined) {
      if (mustRun(backend)) throw new Error(`${backend.name} is required: ${reason}`);
      context.skip(`${backend.name} skipped: ${reason}`);
    }
    const row = SCHEMES[backend.scheme];
    expect(row).toBeDefined();
    const { backend: opened, cleanup } = await backend.open();
    try {
      expect({
        atomic: opened.compareAndSet !== undefined,
        list: opened.scanPage !== undefined,
        ownExpiry: opened.expiresKeys === true,
      }).toEqual(backend.abilities ?? row?.abilities);
      // Every backend of ours can purge; one that expires keys itself has nothing to do. (An adapter
      // handed in, with abilities of its own, purges only if it has the method.)
      if (backend.abilities === undefined) expect(opened.purgeExpired).toBeDefined();
    } finally {
      await opened.close?.();
      await cleanup();
    }
  });
});
