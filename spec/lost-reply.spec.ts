// A reply lost after the store applied the write: every compare-and-set recognises its own write on retry, so
// take() hands a value out once, update() applies once, regenerate() keeps the session, a logout stays one.
// Through a TCP proxy that cuts the connection instead of passing the reply on (Redis, PostgreSQL, MariaDB),
// and a backend that applies a write and then fails the call (SQLite, memory).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { KvSessionOptions } from '../src/index.js';
import { cookiePair, sidOf, startApp, type TestApp } from './support/app.js';
import { FAULTY, type Faulty, route } from './support/faulty.js';
import { REQUIRE_SERVERS, reachable, uniquePrefix } from './support/servers.js';

describe.each(FAULTY)('one lost reply on $name', (kind) => {
  let faulty: Faulty;
  let skip: string | undefined;
  const apps: TestApp[] = [];

  beforeAll(async () => {
    skip = kind.server !== undefined && !(await reachable(kind.server)) ? `no server at ${kind.server}` : undefined;
    if (skip !== undefined && REQUIRE_SERVERS) throw new Error(skip);
    if (skip === undefined) faulty = await kind.open();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(async () => {
    if (skip === undefined) await faulty.close();
  });

  async function seeded(options: KvSessionOptions = {}): Promise<{ app: TestApp; cookie: string }> {
    const app = await startApp(
      { store: faulty.store, keyPrefix: uniquePrefix('lost'), onError: () => {}, ...options },
      route,
    );
    apps.push(app);
    const seed = await app.request('/seed');
    expect(seed.status).toBe(200);
    return { app, cookie: cookiePair(seed.setCookies[0]) };
  }

  async function read(app: TestApp, cookie: string): Promise<Record<string, unknown>> {
    return JSON.parse((await app.request('/read', { cookie })).body) as Record<string, unknown>;
  }

  it('take() hands the value out once: the request gets it, the store no longer has it', async (context) => {
    if (skip !== undefined) return context.skip(skip);
    const { app, cookie } = await seeded();
    const lost = faulty.lost();
    faulty.loseNextWrite();
    const taken = await app.request('/take', { cookie });
    expect(faulty.lost()).toBe(lost + 1);
    expect([taken.status, taken.body]).toEqual([200, '"one-time"']);
    expect(await read(app, cookie)).toEqual({ n: 0, list: [] });
  });

  it('update() applies once', async (context) => {
    if (skip !== undefined) return context.skip(skip);
    const { app, cookie } = await seeded();
    const lost = faulty.lost();
    faulty.loseNextWrite();
    expect((await app.request('/inc', { cookie })).status).toBe(200);
    expect(faulty.lost()).toBe(lost + 1);
    expect((await read(app, cookie)).n).toBe(1);
  });

  it('regenerate() keeps the session under the new sid when the reply of its retiring write is lost', async (context) => {
    if (skip !== undefined) return context.skip(skip);
    const { app, cookie } = await seeded();
    const lost = faulty.lost();
    // The new record's write goes through; the old one's retirement is lost on the way back.
    faulty.loseNextWrite(1);
    const moved = await app.request('/regenerate', { cookie });
    expect(faulty.lost()).toBe(lost + 1);
    expect(moved.status).toBe(200);
    const next = cookiePair(moved.setCookies[0]);
    expect(sidOf(moved.setCookies[0])).not.toBe(cookie.split('=')[1]?.split('.')[0]);
    expect(await read(app, next)).toEqual({ n: 0, list: [], token: 'one-time' });
    // The old sid signs nobody in.
    expect(await app.middleware.load(cookie)).toBeUndefined();
  });

  it('a revocation whose reply is lost answers true, and the session stays signed out', async (context) => {
    if (skip !== undefined) return context.skip(skip);
    const { app, cookie } = await seeded();
    const sid = (await app.middleware.load(cookie))?.sid as string;
    const lost = faulty.lost();
    faulty.loseNextWrite();
    expect(await app.middleware.revokeSession(sid)).toBe(true);
    expect(faulty.lost()).toBe(lost + 1);
    expect(await read(app, cookie)).toEqual({});
    expect(await app.middleware.load(cookie)).toBeUndefined();
  });

  it('moving a session to the hashed layout: a lost create still retires the plain copy, so a logout stays one', async (context) => {
    if (skip !== undefined) return context.skip(skip);
    const { app, cookie } = await seeded();
    const hashed = await startApp(
      { store: faulty.store, keyPrefix: app.options.keyPrefix, hashSids: true, onError: () => {} },
      route,
    );
    apps.push(hashed);
    const lost = faulty.lost();
    faulty.loseNextWrite();
    expect(await read(hashed, cookie)).toEqual({ n: 0, list: [], token: 'one-time' });
    expect(faulty.lost()).toBe(lost + 1);
    // Signed out in the new layout: neither layout brings it back.
    await hashed.middleware.revokeSession((await hashed.middleware.load(cookie))?.sid as string);
    expect(await read(hashed, cookie)).toEqual({});
    expect(await read(app, cookie)).toEqual({});
  });
});
