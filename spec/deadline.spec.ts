// One storeTimeout is all the store time a request gets: loading, waiting in the write queue and writing, on every
// backend made slow.
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeEach, describe, expect, it } from 'vitest';
import { decodeStored } from './support/records.js';
import { cookiePair, startApp, type TestApp } from './support/app.js';
import type { CountingAdapter } from './support/counting.js';
import { BACKENDS, onBackend } from './support/servers.js';

const TIMEOUT = 1500;
// What "within storeTimeout" allows for scheduling on a loaded 2-core machine (the sweep runs every 20 ms).
const SLACK = 400;

describe.each(BACKENDS)('store deadline on $name', (backend) => {
  const env = onBackend(backend, 'deadline');
  let store: CountingAdapter;
  let app: TestApp;
  let cookie: string;

  beforeEach(async () => {
    store = env.store;
    app = await startApp(
      { store: store, keyPrefix: env.prefix, storeTimeout: TIMEOUT, refreshInterval: '1h' },
      (ctx) => {
        const q = ctx.query as Record<string, string>;
        if (q.k) ctx.session[q.k] = q.v;
        return 'ok';
      },
    );
    env.apps.push(app);
    cookie = cookiePair((await app.request('/?k=base&v=0')).setCookies[0]);
  });

  const timed = async (path: string) => {
    const started = Date.now();
    const reply = await app.request(path, { cookie });
    return { status: reply.status, ms: Date.now() - started };
  };

  it('a write queued behind a slow one fails within storeTimeout, its wait in the queue included', async () => {
    store.delay = { read: 50, write: 1200 };
    // The first write takes ~1.25 s of its 1.5 s; writes that arrive meanwhile queue behind it and
    // would need another 1.2 s: they must give up at their own deadline, not 1.5 s after their turn.
    const first = timed('/?k=first&v=1');
    await sleep(100);
    const queued = await Promise.all(Array.from({ length: 8 }, (_, i) => timed(`/?k=q${i}&v=1`)));
    const all = [await first, ...queued];
    for (const reply of all) {
      expect([200, 503]).toContain(reply.status);
      expect(reply.ms).toBeLessThan(TIMEOUT + SLACK);
    }
    expect(all[0]?.status).toBe(200);
    expect(queued.filter((reply) => reply.status === 503).length).toBeGreaterThan(0);
    store.delay = { read: 0, write: 0 };
    expect(decodeStored(await store.raw(env.prefix + cookie.split('=')[1]?.split('.')[0]))).toMatchObject({
      base: '0',
      first: '1',
    });
  });

  it('the time spent loading the session counts against the same deadline as the commit', async () => {
    store.delay = { read: 1000, write: 1000 };
    const reply = await timed('/?k=late&v=1');
    expect(reply.status).toBe(503);
    expect(reply.ms).toBeLessThan(TIMEOUT + SLACK);
  });
});

describe('take() shares the request deadline', () => {
  const env = onBackend(BACKENDS[0] as (typeof BACKENDS)[number], 'deadline-take');

  it('four slow takes in one request get one storeTimeout between them, the commit included', async () => {
    const app = await startApp({ store: env.store, keyPrefix: env.prefix, storeTimeout: 600 }, async (ctx) => {
      if (ctx.path === '/seed') Object.assign(ctx.session, { a: 1, b: 2, c: 3, d: 4 });
      else for (const key of ['a', 'b', 'c', 'd']) await ctx.session.take(key);
      return 'ok';
    });
    env.apps.push(app);
    const cookie = cookiePair((await app.request('/seed')).setCookies[0]);
    // Each take is a compare-and-set that answers 250 ms late: the four would need 1 s.
    env.store.delay = { read: 0, write: 250 };
    const started = Date.now();
    const reply = await app.request('/take', { cookie });
    const ms = Date.now() - started;
    env.store.delay = { read: 0, write: 0 };
    expect(reply.status).toBe(503);
    expect(ms).toBeLessThan(600 + SLACK);
  });
});
