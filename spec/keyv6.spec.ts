// Keyv 6 handed in as a user would: instances and bare adapters told apart by what they are, expiries in the form each
// generation takes, records never wrapped.
import KeyvRedis5 from '@keyv/redis';
import { createClient } from 'redis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { KvSessionOptions } from '../src/index.js';
import { keyv6Unavailable, loadKeyv6, type Keyv6 } from './keyv6/load.js';
import { asStore, cookiePair, sidOf, startApp, type TestApp } from './support/app.js';
import { REDIS_URL, uniquePrefix } from './support/servers.js';

const reason = keyv6Unavailable();
const required = process.env.KV_SESSION_REQUIRE_KEYV6 === '1';

describe('Keyv 6 handed in', () => {
  let keyv6: Keyv6;
  let redis: ReturnType<typeof createClient>;
  const apps: TestApp[] = [];
  const closers: Array<() => Promise<void>> = [];
  let prefix: string;

  beforeAll(async () => {
    if (reason !== undefined) {
      if (required) throw new Error(`Keyv 6 is required here (KV_SESSION_REQUIRE_KEYV6=1): ${reason}`);
      return;
    }
    keyv6 = loadKeyv6();
    redis = createClient({ url: REDIS_URL });
    await redis.connect();
  });
  beforeEach((context) => {
    if (reason !== undefined) context.skip(`skipped: ${reason}`);
    prefix = uniquePrefix('keyv6');
  });
  afterAll(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    for (const close of closers.splice(0)) await close();
    if (redis?.isOpen) {
      for await (const keys of redis.scanIterator({ MATCH: 'kvs-test:keyv6:*', COUNT: 1000 }))
        if (keys.length > 0) await redis.del(keys);
      await redis.quit();
    }
  });

  /** Logs in through an app on `store` and reads the session back; resolves with the stored key's raw value and TTL. */
  async function loginAndRead(store: unknown, options: KvSessionOptions = {}) {
    const app = await startApp({ store: asStore(store), keyPrefix: prefix, lifetime: '2h', ...options }, (ctx) => {
      if (ctx.path === '/login') ctx.session.user = 'ada';
      return String(ctx.session.user ?? 'anonymous');
    });
    apps.push(app);
    const abilities = await app.middleware.ready();
    const login = await app.request('/login');
    const again = await app.request('/', { cookie: cookiePair(login.setCookies[0]) });
    return { app, abilities, sid: sidOf(login.setCookies[0]), body: again.body };
  }

  function redisAdapter6(): object {
    const adapter = new keyv6.KeyvRedis(REDIS_URL);
    closers.push(() => adapter.disconnect());
    return adapter;
  }

  it('a bare Keyv 6 Redis adapter keeps the session for its lifetime (it takes an absolute expiry time, not a TTL)', async () => {
    const { body, sid, abilities } = await loginAndRead(redisAdapter6());
    expect(body).toBe('ada');
    const ttl = await redis.pTTL(prefix + sid);
    expect(ttl).toBeGreaterThan(2 * 3600_000 - 60_000);
    expect(ttl).toBeLessThanOrEqual(2 * 3600_000);
    expect(abilities).toEqual({ atomic: true, list: true, purge: true, ownExpiry: true });
  });

  it('a Keyv 6 instance is told from an adapter without Keyv 5 `opts`: the record is ours, unwrapped, under exactly <prefix><sid>, and the Redis script is used', async () => {
    const instance = new keyv6.Keyv(redisAdapter6());
    expect('opts' in instance).toBe(false);
    const { body, sid, abilities } = await loginAndRead(instance);
    expect(body).toBe('ada');
    const raw = await redis.get(prefix + sid);
    expect(raw).toMatch(/^[cj]\d+:/);
    expect(raw).not.toContain('"value"');
    expect(abilities.atomic).toBe(true);
  });

  it('a Keyv 6 instance over a Keyv 5 adapter (its bridge) is unwrapped: the Keyv 5 adapter takes a TTL and runs the script', async () => {
    const adapter5 = new KeyvRedis5(REDIS_URL);
    closers.push(() => adapter5.disconnect());
    const instance = new keyv6.Keyv(adapter5);
    const { body, sid, abilities } = await loginAndRead(instance);
    expect(body).toBe('ada');
    expect(await redis.pTTL(prefix + sid)).toBeGreaterThan(2 * 3600_000 - 60_000);
    expect(abilities.atomic).toBe(true);
  });

  it("a Keyv 6 instance over a Map keeps the Map's compare-and-set", async () => {
    const map = new Map<unknown, unknown>();
    const { body, sid, abilities } = await loginAndRead(new keyv6.Keyv(map));
    expect(body).toBe('ada');
    expect(map.has(prefix + sid)).toBe(true);
    expect(abilities).toEqual({ atomic: true, list: true, purge: true, ownExpiry: false });
  });

  it('@keyv/bigmap, synchronous and Map-like, is a Map: atomic, purged', async () => {
    const bigmap = new keyv6.BigMap();
    const errors: string[] = [];
    const { body, abilities } = await loginAndRead(bigmap, {
      onError: (error) => errors.push((error as { code?: string }).code ?? error.message),
    });
    expect(body).toBe('ada');
    expect(abilities).toEqual({ atomic: true, list: true, purge: true, ownExpiry: false });
    expect(errors).toEqual([]);
  });
});
