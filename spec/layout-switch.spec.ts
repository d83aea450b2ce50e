// Whether a switch of hashSids is under way, as the store's layout record says (src/layout-switch.ts): an unknown sid
// costs one read outside a switch, both layouts are looked in during one, a process that has not heard of a switch
// learns of it before it decides a session is gone, and `migrate --hash-sids` ends it; on every backend.
import { describe, expect, it } from 'vitest';
import { handedIn } from '../src/backends/handed-in.js';
import { frameRecord } from '../src/codec.js';
import { GRACE, LayoutSwitch, layoutRecord, parseLayout, RECHECK } from '../src/layout-switch.js';
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
    expect(layout.settling()).toBeInstanceOf(Promise);
    await layout.settling();
    expect(layout.settling()).toBeUndefined();
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
    await layout.settling();
    expect(Date.now()).toBeGreaterThanOrEqual((state?.since ?? 0) + GRACE);
  });

  it('a process still running with the other setting moves the end of the switch on; migrate ends it', async () => {
    const map = new Map<string, unknown>();
    const prefix = uniquePrefix('layout');
    const old = new LayoutSwitch(storeOn(map, prefix, false), 2 * RECHECK, () => {});
    await old.check();
    const store = storeOn(map, prefix, true);
    const fresh = new LayoutSwitch(store, 2 * RECHECK, () => {});
    await fresh.check();
    const first = parseLayout(await store.loadRaw(LAYOUT_NAME));
    // The old process reads it (a miss), then serves requests: past RECHECK, each tick may carry the end on.
    expect(await old.lookElsewhere(Date.now() + RECHECK, Date.now() + 1000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 2.5 * RECHECK));
    old.tick(Date.now());
    await old.check();
    const carried = parseLayout(await store.loadRaw(LAYOUT_NAME));
    expect(carried?.hashed).toBe(true);
    expect(carried?.until).toBeGreaterThan(first?.until ?? 0);
    await fresh.end();
    expect(parseLayout(await store.loadRaw(LAYOUT_NAME))?.until).toBeLessThanOrEqual(Date.now());
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
