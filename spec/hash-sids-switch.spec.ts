// Switching hashSids on a store that already holds sessions: each one moves to the other key layout at its next request
// (or by `migrate --hash-sids`), nobody is signed out, revocation still finds every session, and a key read out of the
// store is no sid; on every backend.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend as StoreBackend } from '../src/backends/contract.js';
import { openBackend } from '../src/backends/registry.js';
import { parseRecord } from '../src/record.js';
import { recordStatus } from '../src/tombstone.js';
import { parseLayout } from '../src/layout-switch.js';
import { LAYOUT_NAME } from '../src/names.js';
import { sidHash } from '../src/sid.js';
import { cookiePair, type Reply, sidOf, startApp, type TestApp } from './support/app.js';
import { cli } from './support/cli.js';
import {
  BACKENDS,
  mustRun,
  MYSQL_URL,
  onBackend,
  POSTGRES_URL,
  REDIS_URL,
  reachable,
  uniquePrefix,
} from './support/servers.js';

/** Routes: /login?user= (regenerate), /set?k=&v=, /get?k=, /inc, /me. */
async function route(ctx: Parameters<Parameters<typeof startApp>[1]>[0]): Promise<string> {
  const q = ctx.query as Record<string, string>;
  if (ctx.path === '/login') {
    await ctx.session.regenerate();
    ctx.session.user = q.user;
  } else if (ctx.path === '/set') ctx.session[q.k as string] = q.v;
  else if (ctx.path === '/get') return String(ctx.session[q.k as string] ?? 'none');
  else if (ctx.path === '/inc') ctx.session.update('n', (n = 0) => (n as number) + 1);
  return String(ctx.session.user ?? 'anonymous');
}

/** The cookie a reply set, or the one the request sent when it set none (a move never changes the cookie). */
function keptCookie(reply: Reply, sent: string): string {
  if (reply.setCookies.length === 0) return sent;
  expect(sidOf(reply.setCookies[0])).toBe(sidOf(sent));
  return cookiePair(reply.setCookies[0]);
}

describe.each(BACKENDS)('switching hashSids on $name', (backend) => {
  const env = onBackend(backend, 'hswitch');

  async function app(hashSids: boolean, cookie: { signed: boolean } = { signed: true }): Promise<TestApp> {
    // Where sessions end up is tested here, not timing: a burst of requests of two apps contends for one record and its
    // user index (compare-and-set retries with random pauses), and the default storeTimeout (2 s) ran out once in CI
    // beside the rest of the suite (a 503).
    const started = await startApp(
      {
        store: env.store,
        keyPrefix: env.prefix,
        hashSids,
        userKey: 'user',
        describe: () => 'a browser',
        cookie,
        storeTimeout: 10_000,
      },
      route,
    );
    env.apps.push(started);
    return started;
  }

  /** Every key the test wrote that still holds something, with its value. */
  async function stored(): Promise<Map<string, unknown>> {
    const found = new Map<string, unknown>();
    for (const key of new Set(env.store.calls.map((call) => call.key))) {
      const raw = await env.store.raw(key);
      if (raw !== undefined && raw !== null) found.set(key, raw);
    }
    return found;
  }

  it('a revocation whose two reads straddle the move of its session still finds it (under the new key), and ends it', async () => {
    const plain = await app(false);
    const cookie = cookiePair((await plain.request('/login?user=ann')).setCookies[0]);
    const sid = sidOf(cookie);
    const hashed = await app(true);
    // The revocation reads the new key (nothing yet) and waits there; a request moves the session
    // (new key written, old key deleted); then the revocation reads the old key: nothing either.
    const held = env.store.hold('get', env.prefix + sidHash(sid));
    const revoking = hashed.middleware.revokeSession(sid);
    await held.reached;
    expect((await hashed.request('/me', { cookie })).body).toBe('ann');
    expect(await env.store.raw(env.prefix + sid)).toBeUndefined();
    held.release();
    expect(await revoking).toBe(true);
    expect((await hashed.request('/me', { cookie })).body).toBe('anonymous');
  });

  it('on: each session moves under its hash at its next request, keeps its data, cookie, index entry and safe id, and leaves no sid in the store', async () => {
    const plain = await app(false);
    const phone = cookiePair((await plain.request('/login?user=ann')).setCookies[0]);
    const laptop = cookiePair((await plain.request('/login?user=ann')).setCookies[0]);
    await plain.request('/set?k=cart&v=3', { cookie: phone });
    const guest = cookiePair((await plain.request('/set?k=x&v=1')).setCookies[0]);
    const idsBefore = (await plain.middleware.listUserSessions('ann')).map((s) => s.id).sort();
    expect(idsBefore).toHaveLength(2);
    const labels = (await plain.middleware.listUserSessions('ann')).map((s) => s.label);

    const hashed = await app(true);
    const reply = await hashed.request('/get?k=cart', { cookie: phone });
    expect(reply.body).toBe('3');
    keptCookie(reply, phone);
    expect((await hashed.request('/me', { cookie: phone })).body).toBe('ann');
    expect((await hashed.request('/get?k=x', { cookie: guest })).body).toBe('1');
    // Moved: under the hash, marked so in its header; the old key (the sid itself) is gone.
    const phoneSid = sidOf(phone);
    const moved = await env.store.raw(env.prefix + sidHash(phoneSid));
    expect(parseRecord(moved).hashed).toBe(true);
    expect(await env.store.raw(env.prefix + phoneSid)).toBeUndefined();

    // The laptop has not come back yet: listed (same safe ids, same labels) and revocable all the same.
    const listed = await hashed.middleware.listUserSessions('ann');
    expect(listed.map((s) => s.id).sort()).toEqual(idsBefore);
    expect(listed.map((s) => s.label)).toEqual(labels);
    expect(listed.map((s) => s.id)).toContain((await hashed.middleware.load(phone))?.id);
    const all = [...(await stored()).entries()];
    for (const sid of [phoneSid, sidOf(guest)]) {
      for (const [key, raw] of all) {
        expect(key).not.toContain(sid);
        expect(String(raw)).not.toContain(sid);
      }
    }
    expect(await hashed.middleware.revokeUserSessions('ann')).toBe(2);
    for (const server of [hashed, plain]) {
      expect((await server.request('/me', { cookie: laptop })).body).toBe('anonymous');
      expect((await server.request('/me', { cookie: phone })).body).toBe('anonymous');
    }
  });

  it('off: each session moves back under its sid at its next request, nobody is signed out, and revocation still finds the rest', async () => {
    const hashed = await app(true);
    const phone = cookiePair((await hashed.request('/login?user=bob')).setCookies[0]);
    const laptop = cookiePair((await hashed.request('/login?user=bob')).setCookies[0]);
    await hashed.request('/set?k=cart&v=7', { cookie: laptop });
    const ids = (await hashed.middleware.listUserSessions('bob')).map((s) => s.id).sort();

    const plain = await app(false);
    const reply = await plain.request('/get?k=cart', { cookie: laptop });
    expect(reply.body).toBe('7');
    keptCookie(reply, laptop);
    const laptopSid = sidOf(laptop);
    expect(parseRecord(await env.store.raw(env.prefix + laptopSid)).hashed).toBe(false);
    expect(recordStatus(await env.store.raw(env.prefix + sidHash(laptopSid)), Date.now())).not.toBe('live');
    expect((await plain.middleware.listUserSessions('bob')).map((s) => s.id).sort()).toEqual(ids);
    expect(await plain.middleware.update(sidOf(phone), (session) => void (session.role = 'admin'))).toBe(true);
    expect(await plain.middleware.revokeUserSessions('bob')).toBe(2);
    expect((await plain.request('/me', { cookie: phone })).body).toBe('anonymous');
    expect((await hashed.request('/me', { cookie: laptop })).body).toBe('anonymous');
  });

  it('a key read out of the store is no sid: an unsigned cookie holding a hashed key signs nobody in, with hashSids on or off', async () => {
    const hashed = await app(true, { signed: false });
    const plain = await app(false, { signed: false });
    const sid = sidOf((await hashed.request('/login?user=eve')).setCookies[0]);
    expect((await hashed.request('/me', { cookie: `session=${sid}` })).body).toBe('eve');
    // What a copy of the store shows: the key under the prefix.
    const key = sidHash(sid);
    expect(await env.store.raw(env.prefix + key)).toBeDefined();
    expect((await hashed.request('/me', { cookie: `session=${key}` })).body).toBe('anonymous');
    expect((await plain.request('/me', { cookie: `session=${key}` })).body).toBe('anonymous');
    expect(await plain.middleware.revokeSession(sid)).toBe(true);
    expect((await hashed.request('/me', { cookie: `session=${sid}` })).body).toBe('anonymous');
  });

  it('concurrent requests of one browser at the switch (two apps where the store has atomic compare-and-set): one move, every change kept', async () => {
    const plain = await app(false);
    const cookie = cookiePair((await plain.request('/login?user=cy')).setCookies[0]);
    // Across processes, a store without atomic compare-and-set has a documented one-round-trip window.
    const one = await app(true);
    const two = env.store.atomic ? await app(true) : one;
    const replies = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? one : two).request('/inc', { cookie })),
    );
    for (const reply of replies) expect(reply.status).toBe(200);
    expect((await one.request('/get?k=n', { cookie })).body).toBe('12');
    expect((await two.request('/me', { cookie })).body).toBe('cy');
    expect(await one.middleware.listUserSessions('cy')).toHaveLength(1);
  });
});

/** The stores the operator command can walk, each by URL. */
const LISTABLE: ReadonlyArray<{
  readonly name: string;
  readonly url: () => string;
  readonly available: () => Promise<boolean>;
}> = [
  { name: 'sqlite', url: () => `sqlite://${join(folder(), 'hs.db')}`, available: async () => true },
  { name: 'redis', url: () => REDIS_URL, available: () => reachable(REDIS_URL) },
  { name: 'postgres', url: () => POSTGRES_URL, available: () => reachable(POSTGRES_URL) },
  { name: 'mariadb', url: () => MYSQL_URL, available: () => reachable(MYSQL_URL) },
];
/** Every record under `prefix`, page after page. */
async function everything(opened: StoreBackend, prefix: string): Promise<Array<readonly [string, string]>> {
  const found: Array<readonly [string, string]> = [];
  let cursor: string | undefined;
  do {
    const page = await (opened.scanPage as NonNullable<StoreBackend['scanPage']>)(prefix, cursor, 500);
    found.push(...page.entries);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return found;
}

let made: string | undefined;
function folder(): string {
  made ??= mkdtempSync(join(tmpdir(), 'hs-cli-'));
  return made;
}
afterAll(() => {
  if (made !== undefined) rmSync(made, { recursive: true, force: true });
});

describe.each(LISTABLE)('migrate --hash-sids on $name', (store) => {
  it('moves every session under its hash: nobody is signed out, the user index follows, and no sid is left in the store', async (context) => {
    if (!(await store.available())) {
      if (mustRun(BACKENDS.find((b) => b.name === store.name) as (typeof BACKENDS)[number]))
        throw new Error(`${store.name} is required`);
      return context.skip(`${store.name} not reachable`);
    }
    const prefix = uniquePrefix(`hs-cli-${store.name}`);
    const url = store.url();
    const opened: StoreBackend = await openBackend(url, 5000);
    const options = { store: url, keyPrefix: prefix, userKey: 'user' };
    const plain = await startApp({ ...options, hashSids: false }, route);
    const cookies: string[] = [];
    try {
      for (let i = 0; i < 6; i++)
        cookies.push(cookiePair((await plain.request(`/login?user=${i % 2 === 0 ? 'dan' : 'fay'}`)).setCookies[0]));
      await plain.request('/set?k=cart&v=9', { cookie: cookies[0] });
      const sids = cookies.map((cookie) => sidOf(cookie));
      // Tombstones under sids: a login again (a regenerate: the old sid names the new one), a revocation.
      const before = cookies[1] as string;
      const again = await plain.request('/login?user=fay', { cookie: before });
      cookies[1] = cookiePair(again.setCookies[0]);
      sids.push(sidOf(cookies[1]));
      expect(await plain.middleware.revokeSession(sids[5] as string)).toBe(true);
      // The command's store calls get 10 s, not the default 2: beside the rest of the suite, a run of it ended with
      // exit 1 (the store failed) in CI twice. What is measured here is what it moves, not how fast.
      const env = {
        SESSION_STORE: url,
        SESSION_KEY_PREFIX: prefix,
        SESSION_USER_KEY: 'user',
        SESSION_STORE_TIMEOUT: '10s',
      };

      // Refused, exit 2, naming what to set: without hashSids, and without the user field while indexes exist.
      const off = await cli(['migrate', '--hash-sids'], env);
      expect(off.status).toBe(2);
      expect(off.stderr).toMatch(/SESSION_HASH_SIDS=true/);
      const noUser = await cli(['migrate', '--hash-sids'], {
        SESSION_STORE: url,
        SESSION_KEY_PREFIX: prefix,
        SESSION_HASH_SIDS: 'true',
        SESSION_STORE_TIMEOUT: env.SESSION_STORE_TIMEOUT,
      });
      expect(noUser.status, noUser.stderr).toBe(2);
      expect(noUser.stderr).toMatch(/SESSION_USER_KEY/);

      const run = await cli(['migrate', '--hash-sids'], { ...env, SESSION_HASH_SIDS: 'true' });
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^moved\s+5$/m);
      expect(run.stdout).toMatch(/^tombstones moved 2$/m);
      // Every session moved: the switch is over (an unknown sid costs one read again).
      const layout = parseLayout(String(await opened.get(prefix + LAYOUT_NAME)));
      expect(layout?.hashed).toBe(true);
      expect(layout?.until).toBeLessThanOrEqual(Date.now());
      const rerun = await cli(['migrate', '--hash-sids'], { ...env, SESSION_HASH_SIDS: 'true' });
      expect(rerun.status, rerun.stderr).toBe(0);
      expect(rerun.stdout).toMatch(/^already hashed\s+5$/m);

      const entries = await everything(opened, prefix);
      expect(entries.length).toBeGreaterThanOrEqual(8); // 5 sessions, 2 user indexes, the regenerate's tombstone
      for (const [key, raw] of entries) for (const sid of sids) expect(`${key} ${raw}`).not.toContain(sid);

      const hashed = await startApp({ ...options, hashSids: true }, route);
      try {
        expect((await hashed.request('/get?k=cart', { cookie: cookies[0] })).body).toBe('9');
        for (const [i, cookie] of cookies.entries())
          expect((await hashed.request('/me', { cookie })).body).toBe(
            i === 5 ? 'anonymous' : i % 2 === 0 ? 'dan' : 'fay',
          );
        // The cookie from before the login again still says "moved" (no deletion cookie for its browser).
        const late = await hashed.request('/me', { cookie: before });
        expect([late.body, late.setCookies]).toEqual(['anonymous', []]);
        expect(await hashed.middleware.listUserSessions('fay')).toHaveLength(2);
        expect(await hashed.middleware.revokeUserSessions('dan')).toBe(3);
        expect((await hashed.request('/me', { cookie: cookies[2] })).body).toBe('anonymous');
      } finally {
        await hashed.close();
      }
    } finally {
      await plain.close();
      for (const [key] of await everything(opened, prefix)) await opened.delete(key);
      await opened.close?.();
    }
  }, 60_000);
});
