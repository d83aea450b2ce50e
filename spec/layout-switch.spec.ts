// Whether a switch of hashSids is under way, as the store's layout record says (src/layout-switch.ts): an unknown sid
// costs one read outside a switch, both layouts are looked in during one, a process that has not heard of a switch
// learns of it before it decides a session is gone, and `migrate --hash-sids` ends it; on every backend.
import { describe, expect, it } from 'vitest';
import { handedIn } from '../src/backends/handed-in.js';
import { frameRecord } from '../src/record.js';
import { GRACE, IDLE_RECHECK, LayoutSwitch, layoutRecord, parseLayout, RECHECK } from '../src/layout-switch.js';
import { LAYOUT_NAME } from '../src/names.js';
import { scanPage } from '../src/store-scan.js';
import { SessionStore } from '../src/store.js';
import { cookiePair, sidOf, startApp, type TestApp } from './support/app.js';
import { BACKENDS, onBackend, uniquePrefix } from './support/servers.js';

const HOUR = 3_600_000;

/** A store on `map` (one per test), with or without hashSids. */
function storeOn(map: Map<string, unknown>, prefix: string, hashSids: boolean): SessionStore {
  const store = { kind: 'given' as const, value: map, handed: handedIn(map) };
  return new SessionStore(
    { store, keyPrefix: prefix, hashSids, storeTimeout: 2000, storeRetries: 0, maxSize: 100_000 },
    () => {},
  );
}

describe('the layout record', () => {
  it('a store without one has seen no switch: the first process writes its own layout, and a miss looks nowhere else', async () => {
    const store = storeOn(new Map<string, unknown>(), uniquePrefix('layout'), false);
    const layout = new LayoutSwitch(store, HOUR, () => {});
    await layout.check();
    expect(parseLayout(await store.loadRaw(LAYOUT_NAME))).toEqual({ hashed: false, since: 0, until: 0 });
    expect(await layout.lookElsewhere(Date.now(), Date.now() + 1000)).toBe(false);
    expect(await layout.ready()).toBe(0);
  });

  it('a process that starts with the other setting switches: both layouts for a lifetime, and it serves only GRACE after', async () => {
    const map = new Map<string, unknown>();
    const prefix = uniquePrefix('layout');
    await new LayoutSwitch(storeOn(map, prefix, false), HOUR, () => {}).check();
    const store = storeOn(map, prefix, true);
    const layout = new LayoutSwitch(store, HOUR, () => {});
    const before = Date.now();
    await layout.check();
    const state = parseLayout(await store.loadRaw(LAYOUT_NAME));
    expect(state?.hashed).toBe(true);
    expect(state?.since).toBeGreaterThanOrEqual(before);
    expect(state?.until).toBeGreaterThanOrEqual(before + HOUR);
    expect(await layout.lookElsewhere(Date.now(), Date.now() + 1000)).toBe(true);
    expect(await layout.ready()).toBeGreaterThan(0);
    expect(Date.now()).toBeGreaterThanOrEqual((state?.since ?? 0) + GRACE);
    expect(await layout.ready()).toBe(0);
  });

  it('a process still running with the other setting carries the switch on; migrate ends it only if none did', async () => {
    const map = new Map<string, unknown>();
    const prefix = uniquePrefix('layout');
    const old = new LayoutSwitch(storeOn(map, prefix, false), HOUR, () => {});
    await old.check();
    const store = storeOn(map, prefix, true);
    const fresh = new LayoutSwitch(store, HOUR, () => {});
    await fresh.check();
    // The old process hears of it at a miss, then finds its end near: it carries it on a lifetime from now.
    expect(await old.lookElsewhere(Date.now() + RECHECK, Date.now() + 1000)).toBe(true);
    const near = { hashed: true, since: Date.now(), until: Date.now() + 1000 };
    await store.save(LAYOUT_NAME, layoutRecord(near, Date.now()).raw, HOUR);
    await new Promise((resolve) => setTimeout(resolve, 5)); // a later millisecond than `fresh` wrote in
    await old.check();
    expect(parseLayout(await store.loadRaw(LAYOUT_NAME))?.until).toBeGreaterThan(Date.now() + HOUR - IDLE_RECHECK);
    // Carried on since `fresh` read it: a process with the other setting may still write there.
    expect(await fresh.end()).toBe(false);
    await fresh.check();
    expect(await fresh.end()).toBe(true);
    expect(parseLayout(await store.loadRaw(LAYOUT_NAME))?.until).toBeLessThanOrEqual(Date.now());
    expect(await fresh.lookElsewhere(Date.now() + RECHECK, Date.now() + 1000)).toBe(false);
  });

  it('a record lost during a switch is written back as this process knew it, not as "no switch"', async () => {
    const map = new Map<string, unknown>();
    const prefix = uniquePrefix('layout');
    await new LayoutSwitch(storeOn(map, prefix, false), HOUR, () => {}).check();
    const store = storeOn(map, prefix, true);
    const layout = new LayoutSwitch(store, HOUR, () => {});
    await layout.check();
    const before = parseLayout(await store.loadRaw(LAYOUT_NAME));
    await store.remove(LAYOUT_NAME);
    expect(await layout.lookElsewhere(Date.now() + RECHECK, Date.now() + 1000)).toBe(true);
    expect(parseLayout(await store.loadRaw(LAYOUT_NAME))).toEqual(before);
  });

  it('no session is written before the record is read: a store that fails it fails the write', async () => {
    const map = new Map<string, unknown>();
    const store = storeOn(map, uniquePrefix('layout'), true);
    const layout = new LayoutSwitch(store, HOUR, () => {});
    await store.close();
    await expect(layout.ready()).rejects.toMatchObject({ code: 'SESSION_STORE_UNAVAILABLE' });
  });

  it('a record that cannot be read is written again; the operator command never lists it', async () => {
    const map = new Map<string, unknown>();
    const prefix = uniquePrefix('layout');
    const store = storeOn(map, prefix, false);
    await store.save(LAYOUT_NAME, frameRecord('{"hashed":"yes"}', 'json', Date.now() + HOUR, false), HOUR);
    await new LayoutSwitch(store, HOUR, () => {}).check();
    expect(parseLayout(await store.loadRaw(LAYOUT_NAME))).toEqual({ hashed: false, since: 0, until: 0 });
    await store.save('a-session', layoutRecord({ hashed: false, since: 0, until: 0 }, Date.now()).raw, HOUR);
    expect((await scanPage(store, undefined, 100)).records.map((record) => record.name)).toEqual(['a-session']);
  });
});

describe.each(BACKENDS)('the switch of hashSids on $name', (backend) => {
  const env = onBackend(backend, 'lswitch');

  async function app(hashSids: boolean): Promise<TestApp> {
    const started = await startApp({ store: env.store, keyPrefix: env.prefix, hashSids }, (ctx) => {
      if (ctx.path === '/login') ctx.session.user = ctx.query.user;
      return String(ctx.session.user ?? 'anonymous');
    });
    env.apps.push(started);
    await started.middleware.ready();
    return started;
  }

  it('a process that has not heard of the switch learns of it before it decides a session is gone', async () => {
    const plain = await app(false);
    const hashed = await app(true);
    // Its first request waits until every process that reads the record on a miss has heard of the switch.
    const cookie = cookiePair((await hashed.request('/login?user=ann')).setCookies[0]);
    const reply = await plain.request('/', { cookie });
    expect(reply.body).toBe('ann');
    expect(reply.setCookies.filter((set) => set.startsWith('session=;'))).toEqual([]);
    expect(sidOf(cookie)).toHaveLength(43);
  });
});
