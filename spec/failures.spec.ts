// Store failures: errors surface as 503 with a stable code, bounded in time, and never become an empty session.
import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.js';
import { SCHEMES } from '../src/backends/registry.js';
import { importOptional } from '../src/backends/url.js';
import type { KvSessionOptions } from '../src/index.js';
import { decodeStored } from './support/records.js';
import { cookiePair, sidOf, startApp, type Handler, type TestApp } from './support/app.js';
import { FlakyAdapter } from './support/flaky.js';
import { uniquePrefix } from './support/servers.js';

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function setup(handler: Handler, options: KvSessionOptions = {}) {
  const errors: Error[] = [];
  const app = await startApp({ keyPrefix: uniquePrefix('fail'), ...options }, handler, (koa) => {
    koa.on('error', (error) => errors.push(error));
  });
  apps.push(app);
  return { app, errors };
}

const counter: Handler = (ctx) => {
  ctx.session.n = Number(ctx.session.n ?? 0) + 1;
  return String(ctx.session.n);
};

describe('store failures', () => {
  it('a failing read answers 503 SESSION_STORE_UNAVAILABLE, never an empty session, and nothing is written', async () => {
    const store = new FlakyAdapter();
    let handlerRuns = 0;
    const { app, errors } = await setup(
      (ctx) => {
        handlerRuns++;
        return counter(ctx);
      },
      { store: store },
    );
    const one = await app.request();
    const cookie = cookiePair(one.setCookies[0]);
    store.failGet = true;
    const setsBefore = store.sets;
    const two = await app.request('/', { cookie });
    expect(two.status).toBe(503);
    expect(two.setCookies).toEqual([]);
    expect(store.sets).toBe(setsBefore);
    expect(handlerRuns).toBe(1);
    expect(errors[0]).toMatchObject({ code: 'SESSION_STORE_UNAVAILABLE', operation: 'get', status: 503 });
    expect(errors[0]?.message).toMatch(/connection reset by peer/);
    // The store comes back: the same session, untouched, continues.
    store.failGet = false;
    const three = await app.request('/', { cookie });
    expect(three.body).toBe('2');
  });

  it('a transient read error is retried with backoff (storeRetries) and the request succeeds', async () => {
    const store = new FlakyAdapter();
    const { app } = await setup(counter, { store: store, storeRetries: 2 });
    const one = await app.request();
    store.failNextGets = 2;
    store.gets = 0;
    const two = await app.request('/', { cookie: cookiePair(one.setCookies[0]) });
    expect(two.status).toBe(200);
    expect(two.body).toBe('2');
    expect(store.gets).toBe(3);
  });

  it('storeRetries: 0 gives up after the first failure; the retries are bounded in count', async () => {
    const store = new FlakyAdapter();
    const none = await setup(counter, { store: store, storeRetries: 0 });
    const one = await none.app.request();
    store.failNextGets = 1;
    expect((await none.app.request('/', { cookie: cookiePair(one.setCookies[0]) })).status).toBe(503);
    const three = await setup(counter, { store: store, storeRetries: 3 });
    await three.app.middleware.ready();
    store.failGet = true;
    store.gets = 0;
    expect((await three.app.request('/', { cookie: cookiePair(one.setCookies[0]) })).status).toBe(503);
    expect(store.gets).toBe(4);
  });

  it('a failing write answers 503 and sends no cookie; the stored session is unchanged', async () => {
    const store = new FlakyAdapter();
    const prefix = uniquePrefix('fail');
    const { app, errors } = await setup(counter, { store: store, keyPrefix: prefix });
    const one = await app.request();
    const cookie = cookiePair(one.setCookies[0]);
    store.failSet = true;
    const two = await app.request('/', { cookie });
    expect(two.status).toBe(503);
    expect(two.setCookies).toEqual([]);
    expect(errors[0]).toMatchObject({ code: 'SESSION_STORE_UNAVAILABLE', operation: 'set' });
    expect(decodeStored(await store.get(prefix + sidOf(one.setCookies[0])))).toEqual({ n: 1 });
  });

  it('a new session whose write fails gets no cookie (the client never holds a sid without a record)', async () => {
    const store = new FlakyAdapter();
    store.failSet = true;
    const { app } = await setup(counter, { store: store });
    const reply = await app.request();
    expect(reply.status).toBe(503);
    expect(reply.setCookies).toEqual([]);
  });

  it('a store that never answers is bounded by storeTimeout: 503 SESSION_STORE_TIMEOUT', async () => {
    const store = new FlakyAdapter();
    const { app, errors } = await setup(counter, { store: store, storeTimeout: 200 });
    const one = await app.request();
    store.hang = true;
    const two = await app.request('/', { cookie: cookiePair(one.setCookies[0]) });
    expect(two.status).toBe(503);
    expect(errors[0]).toMatchObject({ code: 'SESSION_STORE_TIMEOUT', operation: 'get' });
    expect(errors[0]?.message).toMatch(/did not answer a get within 200 ms/);
  });

  it('a write that times out is reported and the cookie is not changed', async () => {
    const store = new FlakyAdapter();
    let step = 0;
    const { app, errors } = await setup(
      async (ctx) => {
        if (step++ === 1) {
          store.hang = true; // after the read: only the write hangs
          await ctx.session.regenerate();
        }
        return counter(ctx);
      },
      { store: store, storeTimeout: 200 },
    );
    const one = await app.request();
    const two = await app.request('/', { cookie: cookiePair(one.setCookies[0]) });
    expect(two.status).toBe(503);
    expect(two.setCookies).toEqual([]);
    expect(errors[0]).toMatchObject({ code: 'SESSION_STORE_TIMEOUT', operation: 'set' });
  });

  it('a handler error is never masked: the handler throws while the store would fail the write', async () => {
    const store = new FlakyAdapter();
    const { app } = await setup(
      (ctx) => {
        ctx.session.x = 1;
        store.failSet = true;
        ctx.throw(409, 'conflict from the handler');
      },
      { store: store },
    );
    const reply = await app.request();
    expect(reply.status).toBe(409);
    expect(reply.body).toBe('conflict from the handler');
  });

  it('an unreachable Redis (closed port) gives 503 on requests and reports the masked URL at start-up', async () => {
    const started: Error[] = [];
    const { app, errors } = await setup(counter, {
      store: 'redis://user:hunter2@127.0.0.1:1',
      storeTimeout: 300,
      onError: (error) => started.push(error),
    });
    await expect(app.middleware.ready()).rejects.toMatchObject({ status: 503 });
    expect(started[0]?.message).toContain('redis://user:****@127.0.0.1:1');
    expect(started[0]?.message).not.toContain('hunter2');
    const reply = await app.request();
    expect(reply.status).toBe(503);
    expect(errors[0]).toMatchObject({ status: 503 });
  });

  it('an unreachable PostgreSQL (closed port) gives 503 on requests', async () => {
    const { app, errors } = await setup(counter, {
      store: 'postgres://postgres@127.0.0.1:1/test',
      storeTimeout: 500,
      onError: () => {},
    });
    const reply = await app.request();
    expect(reply.status).toBe(503);
    expect(errors[0]).toMatchObject({ code: expect.stringMatching(/^SESSION_STORE_(UNAVAILABLE|TIMEOUT)$/) });
  });

  it('a user KeyvRedis adapter that swallows errors is bypassed (its client is used), never changed: 503, not "logged out"', async () => {
    const adapter = new KeyvRedis('redis://127.0.0.1:1', { throwOnErrors: false, connectionTimeout: 200 });
    const { app } = await setup(counter, { store: new Keyv(adapter), storeTimeout: 500, onError: () => {} });
    const reply = await app.request('/', { cookie: `session=${'A'.repeat(43)}.${'B'.repeat(43)}` });
    expect(reply.status).toBe(503);
    expect(adapter.throwOnErrors).toBe(false);
    // A client that never connected does not answer disconnect(): destroy it.
    (adapter.client as unknown as { destroy(): void }).destroy();
  });

  it('an adapter package that is not installed fails with the npm install command to run', async () => {
    // Every adapter is a dev dependency here, so the missing one is a package that does not exist.
    const error = await importOptional('@koa-kv-session-test/no-such-adapter/promise', 'nosuch').catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'SESSION_ADAPTER_MISSING', status: 500 });
    expect((error as Error).message).toBe(
      'koa-kv-session: the store URL nosuch:// needs the @koa-kv-session-test/no-such-adapter package, which is not installed: run `npm install @koa-kv-session-test/no-such-adapter`',
    );
  });

  it('every store URL scheme names the package it needs', () => {
    const packages = Object.fromEntries(Object.entries(SCHEMES).map(([scheme, row]) => [scheme, row.package]));
    expect(packages).toMatchObject({
      sqlite: 'sqlite3',
      postgres: 'pg',
      mysql: 'mysql2',
      memcache: '@keyv/memcache',
      etcd: '@keyv/etcd',
      dynamodb: '@keyv/dynamo',
      valkey: '@keyv/valkey',
      mongodb: '@keyv/mongo',
      memory: undefined,
    });
  });

  it('after close(), requests fail with 503 instead of hanging', async () => {
    const { app } = await setup(counter, { store: 'memory://' });
    await app.middleware.close();
    const reply = await app.request();
    expect(reply.status).toBe(503);
  });
});

describe('what a store can do', () => {
  /** A bare adapter with only get/set/delete: no compare-and-set, no listing, no purge. */
  const plainAdapter = () => {
    const map = new Map<string, string>();
    return {
      get: (key: string) => map.get(key),
      set: (key: string, value: string) => map.set(key, value),
      delete: (key: string) => map.delete(key),
    };
  };

  it('a store without atomic compare-and-set is reported once through onError, and ready() says so', async () => {
    const reported: Error[] = [];
    const { app } = await setup(counter, { store: plainAdapter(), onError: (error) => reported.push(error) });
    await expect(app.middleware.ready()).resolves.toEqual({
      atomic: false,
      list: false,
      purge: false,
      ownExpiry: false,
    });
    const one = await app.request();
    for (let i = 0; i < 3; i++)
      expect((await app.request('/', { cookie: cookiePair(one.setCookies[0]) })).status).toBe(200);
    const warnings = reported.filter((error) => (error as { code?: string }).code === 'SESSION_STORE_NOT_ATOMIC');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toMatch(
      /no atomic compare-and-set.*two processes writing one session at the same moment can lose one change/,
    );
  });

  it('a store with compare-and-set is not reported, and ready() lists its abilities', async () => {
    const reported: Error[] = [];
    const { app } = await setup(counter, { store: new MemoryBackend(), onError: (error) => reported.push(error) });
    await expect(app.middleware.ready()).resolves.toEqual({ atomic: true, list: true, purge: true, ownExpiry: false });
    expect((await app.request()).status).toBe(200);
    expect(reported).toEqual([]);
  });
});
