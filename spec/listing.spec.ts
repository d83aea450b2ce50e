// What the operator commands and the user index ask of each real backend: listing by prefix, batched and
// insert-if-absent compare-and-set.
import { beforeEach, describe, expect, it } from 'vitest';
import { handedIn } from '../src/backends/handed-in.js';
import { encodePayload } from '../src/codec.js';
import { frameRecord } from '../src/record.js';
import { SessionStore } from '../src/store.js';
import { canList, compareAndSetMany, scanPage } from '../src/store-scan.js';
import type { CountingAdapter } from './support/counting.js';
import { BACKENDS, onBackend } from './support/servers.js';

describe.each(BACKENDS)('listing and conditional writes on $name', (backend) => {
  const env = onBackend(backend, 'listing');
  let counting: CountingAdapter;
  beforeEach(() => {
    counting = env.store;
  });

  const storeUnder = (keyPrefix: string): SessionStore =>
    new SessionStore(
      {
        store: { kind: 'given', value: counting, handed: handedIn(counting) },
        keyPrefix,
        storeTimeout: 5000,
        storeRetries: 0,
        maxSize: 65_536,
      },
      () => {},
    );

  /** Every name under the store's prefix, page by page. */
  async function listAll(store: SessionStore, pageSize: number): Promise<string[]> {
    const names: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await scanPage(store, cursor, pageSize);
      names.push(...page.records.map((r) => r.name));
      cursor = page.cursor;
    } while (cursor !== undefined);
    return names;
  }

  it('lists every record under its prefix exactly once, page by page; a prefix with wildcard characters matches only itself', async () => {
    // "_", "%", "*" and "[" are wildcards to LIKE or to Redis MATCH: they must match only themselves.
    const prefix = `${env.prefix}a_b%c*[d]:`;
    const decoy = `${env.prefix}aXb%c*[d]:`;
    const store = storeUnder(prefix);
    if (!(await canList(store))) {
      await expect(scanPage(store, undefined, 10)).rejects.toMatchObject({
        code: 'SESSION_UNSUPPORTED',
        message: expect.stringMatching(/cannot list its keys/),
      });
      return;
    }
    const names = Array.from({ length: 250 }, (_, i) => `s${String(i).padStart(4, '0')}`);
    await Promise.all(names.map((name) => counting.put(prefix + name, `value-${name}`, 60_000)));
    await Promise.all(['decoy1', 'decoy2'].map((name) => counting.put(decoy + name, 'x', 60_000)));
    const listed = await listAll(store, 100);
    expect(listed.length).toBe(250);
    expect([...listed].sort()).toEqual(names);
    const page = await scanPage(store, undefined, 100);
    for (const record of page.records) expect(record.raw).toBe(`value-${record.name}`);
  });

  it('rewrites a batch only where each record still holds what was read', async () => {
    const store = storeUnder(env.prefix);
    const names = Array.from({ length: 10 }, (_, i) => `r${i}`);
    await Promise.all(names.map((name) => counting.put(env.prefix + name, `old-${name}`, 60_000)));
    // Three records changed by someone else since they were read.
    await Promise.all(names.slice(0, 3).map((name) => counting.put(env.prefix + name, `changed-${name}`, 60_000)));
    const written = await compareAndSetMany(
      store,
      names.map((name) => ({ name, expected: `old-${name}`, next: `new-${name}`, ttl: 60_000 })),
    );
    expect([...written].sort()).toEqual(names.slice(3).sort());
    const values = await Promise.all(names.map((name) => counting.raw(env.prefix + name)));
    expect(values).toEqual(names.map((name, i) => (i < 3 ? `changed-${name}` : `new-${name}`)));
  });

  it('a compare-and-set expecting no record writes only where there is none', async () => {
    const store = storeUnder(env.prefix);
    expect(await store.compareAndSet('fresh', undefined, 'first', 60_000)).toEqual({ status: 'saved' });
    expect(await store.compareAndSet('fresh', undefined, 'second', 60_000)).toEqual({
      status: 'conflict',
      current: 'first',
    });
    expect(await store.compareAndSet('fresh', 'first', 'third', 60_000)).toEqual({ status: 'saved' });
    expect(await counting.raw(`${env.prefix}fresh`)).toBe('third');
    await counting.put(`${env.prefix}fresh`, 'third', 60_000); // registered for cleanup
  });

  it('a compare-and-set on a format-2 record compares its version token: the same data written again (a new token) is a conflict', async () => {
    const store = storeUnder(env.prefix);
    const key = `${env.prefix}versioned`;
    const expires = Date.now() + 60_000;
    const frame = (n: number) => frameRecord(encodePayload({ n }, 'cbor'), 'cbor', expires, true, { created: 1 });
    const first = frame(1);
    const again = frame(1);
    await counting.put(key, first, 60_000);
    await counting.put(key, again, 60_000);
    const lost = await store.compareAndSet('versioned', first, frame(2), 60_000);
    expect(lost).toEqual({ status: 'conflict', current: again });
    const next = frame(3);
    expect(await store.compareAndSet('versioned', again, next, 60_000)).toEqual({ status: 'saved' });
    expect(await counting.raw(key)).toBe(next);
  });
});
