// A loaded CBOR session is read key by key, as the handler asks (src/unread.ts over cbor.ts's StoredMap): what a
// handler sees, and what is stored after it, must be exactly what the same steps give on the data decoded whole.
import fc from 'fast-check';
import type { Context } from 'koa';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.js';
import { decodeCbor, encodeCbor, StoredMap } from '../src/cbor.js';
import { data, hasDate, key, value } from './support/arbitraries.js';
import { cookiePair, startApp, type TestApp } from './support/app.js';
import { decodeStored } from './support/records.js';
import { uniquePrefix } from './support/servers.js';

type Data = Record<string, unknown>;

const payloadOf = (stored: Data) => encodeCbor(stored).toString('base64');
const holdsProto = (payload: string) => Buffer.from(payload, 'base64').includes('__proto__');
const hasBigInt = (value: unknown): boolean =>
  typeof value === 'bigint' || (typeof value === 'object' && value !== null && Object.values(value).some(hasBigInt));

describe('StoredMap: a stored payload read key by key', () => {
  it('finds every key as a whole decode gives it, lists them in stored order, and finds no other', () => {
    fc.assert(
      fc.property(data, key, (stored, other) => {
        const payload = payloadOf(stored);
        const whole = decodeCbor(payload) as Data;
        const map = StoredMap.of(payload);
        // A payload that holds "__proto__" anywhere (its keys are escaped) or a tag is decoded whole.
        if (holdsProto(payload)) {
          expect(map).toBeUndefined();
          return;
        }
        if (map === undefined) {
          expect(hasDate(stored) || hasBigInt(stored)).toBe(true);
          return;
        }
        expect(map.keys()).toEqual(Object.keys(whole));
        for (const name of Object.keys(whole)) expect(map.find(name)).toEqual({ value: whole[name] });
        if (!Object.hasOwn(whole, other)) expect(map.find(other)).toBeUndefined();
        expect(map.decodeAll()).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it('takes no payload with an item a decoder could fail on, nor one nested deeper than a write allows', () => {
    // {a: Set(5)}: tag 258 around a number; cbor-x throws building it. And an array nested 300 deep.
    const badSet = Buffer.from([0xb9, 0x00, 0x01, 0x61, 0x61, 0xd9, 0x01, 0x02, 0x05]);
    expect(StoredMap.of(badSet.toString('base64'))).toBeUndefined();
    const deep = Buffer.concat([
      Buffer.from([0xb9, 0x00, 0x01, 0x61, 0x61]),
      Buffer.alloc(300, 0x81),
      Buffer.from([0]),
    ]);
    expect(StoredMap.of(deep.toString('base64'))).toBeUndefined();
    const simple = Buffer.from([0xb9, 0x00, 0x01, 0x61, 0x61, 0xf8, 0x20]);
    expect(StoredMap.of(simple.toString('base64'))).toBeUndefined();
    expect(StoredMap.of(payloadOf({ a: [[1]], b: null, c: 1.5 }))).toBeDefined();
  });

  it('takes no payload whose items do not fit it: cut short anywhere, or with bytes after the map', () => {
    fc.assert(
      fc.property(
        data.filter((stored) => Object.keys(stored).length > 0),
        fc.nat(),
        (stored, cut) => {
          const bytes = Buffer.from(payloadOf(stored), 'base64');
          const short = bytes.subarray(0, cut % bytes.length);
          expect(StoredMap.of(short.toString('base64'))).toBeUndefined();
          expect(StoredMap.of(Buffer.concat([bytes, Buffer.from([0])]).toString('base64'))).toBeUndefined();
        },
      ),
    );
  });
});

/** One step of a handler on ctx.session, and the same step on a plain object: what each observed. */
type Step =
  | { readonly op: 'get' | 'delete' | 'has' | 'mutate' | 'take'; readonly key: string }
  | { readonly op: 'set'; readonly key: string; readonly value: unknown }
  | { readonly op: 'update'; readonly key: string }
  | { readonly op: 'keys' | 'replace' | 'clear' };

// Few names, so that steps meet the stored keys; "0" is an array index (first in an object's keys).
const name = fc.constantFrom('a', 'b', 'é', '0');
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constantFrom('get', 'delete', 'has', 'mutate', 'take', 'update'), key: name }),
  fc.record({ op: fc.constant('set'), key: name, value }),
  fc.record({ op: fc.constantFrom('keys', 'replace', 'clear') }),
) as fc.Arbitrary<Step>;

/** `ctx.session = { r: 1 }` and `ctx.session.clear()`, or what they do to a plain object. */
interface Whole {
  replace(): void;
  clear(): void;
}

const emptied = (plain: Data): Whole => ({
  replace: () => {
    for (const name of Object.keys(plain)) delete plain[name];
    plain.r = 1;
  },
  clear: () => {
    for (const name of Object.keys(plain)) delete plain[name];
  },
});

async function apply(session: Data, steps: readonly Step[], whole: Whole): Promise<unknown[]> {
  const seen: unknown[] = [];
  for (const s of steps) {
    if (s.op === 'keys') seen.push(Object.keys(session).sort());
    else if (s.op === 'replace') whole.replace();
    else if (s.op === 'clear') whole.clear();
    else if (s.op === 'get') seen.push(session[s.key]);
    else if (s.op === 'has') seen.push(s.key in session);
    // A copy each: the generated value is shared by the session, the model and fast-check's shrinking.
    else if (s.op === 'set') session[s.key] = structuredClone(s.value);
    else if (s.op === 'delete') delete session[s.key];
    else if (s.op === 'take') seen.push(await (session as { take(key: string): Promise<unknown> }).take(s.key));
    else if (s.op === 'update') {
      const next = (before: unknown) => ({ was: before === undefined ? null : before });
      seen.push(await (session as { update(key: string, fn: (v: unknown) => unknown): unknown }).update(s.key, next));
    } else if (s.op === 'mutate') {
      const held = session[s.key];
      if (Array.isArray(held)) held.push('pushed');
      else if (typeof held === 'object' && held !== null && !(held instanceof Date)) (held as Data).added = 1;
    }
  }
  return seen;
}

/**
 * The model: the same steps on the data decoded whole, take() and update() as plain object steps. take() gives the
 * stored value of a key the handler did not set (changes made in place to it are not taken: as before StoredMap).
 */
async function model(stored: Data, steps: readonly Step[]) {
  const plain = decodeCbor(payloadOf(stored)) as Data;
  const original = decodeCbor(payloadOf(stored)) as Data;
  const set = new Set<string>();
  let replaced = false;
  const seen: unknown[] = [];
  for (const s of steps) {
    if (s.op === 'set' || s.op === 'delete' || s.op === 'update') set.add(s.key);
    if (s.op === 'replace' || s.op === 'clear') replaced = true;
    if (s.op === 'take') {
      const own = replaced || set.has(s.key) || !Object.hasOwn(plain, s.key);
      seen.push(own ? plain[s.key] : original[s.key]);
      delete plain[s.key];
      delete original[s.key];
    } else if (s.op === 'update') {
      plain[s.key] = { was: plain[s.key] === undefined ? null : plain[s.key] };
      seen.push(plain[s.key]);
    } else seen.push(...(await apply(plain, [s], emptied(plain))));
  }
  return { plain, seen };
}

describe('a session read key by key behaves as one decoded whole', () => {
  let app: TestApp;
  let backend: MemoryBackend;
  let handle: (ctx: Context) => Promise<unknown>;
  beforeAll(async () => {
    backend = new MemoryBackend();
    app = await startApp({ store: backend, keyPrefix: uniquePrefix('unread') }, (ctx) => handle(ctx));
  });
  afterAll(() => app.close());

  /** Stores `stored` as a session, runs `then` in a request of it; the cookie for more requests. */
  async function session(stored: Data, then: (session: Data, ctx: Context) => Promise<unknown>) {
    handle = async (ctx) => {
      Object.assign(ctx.session, stored);
    };
    const first = await app.request();
    expect(first.status, first.body).toBe(200);
    const cookie = cookiePair(first.setCookies[0]);
    let result: unknown;
    handle = async (ctx) => {
      result = await then(ctx.session, ctx);
    };
    const second = await app.request('/', { cookie });
    expect(second.status).toBe(200);
    return { cookie, result };
  }

  async function dataOf(cookie: string): Promise<Data> {
    let whole: Data = {};
    handle = async (ctx) => {
      whole = { ...ctx.session };
    };
    await app.request('/', { cookie });
    return whole;
  }

  it('sees and stores what the steps give on the whole data, for any data and any steps', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(name, value, { maxKeys: 4 }),
        fc.array(step, { maxLength: 8 }),
        fc.boolean(),
        async (some, steps, keep) => {
          // A key no step names (unless there is none else, to have a session): something left to keep.
          const stored = keep || Object.keys(some).length === 0 ? { ...some, kept: 'as it was' } : some;
          const whole = (ctx: Context): Whole => ({
            replace: () => {
              ctx.session = { r: 1 };
            },
            clear: () => ctx.session.clear(),
          });
          const { cookie, result } = await session(stored, (s, ctx) => apply(s, steps, whole(ctx)));
          const expected = await model(stored, steps);
          expect(result).toEqual(expected.seen);
          expect(await dataOf(cookie)).toEqual(expected.plain);
        },
      ),
      {
        numRuns: 300,
        // Always tried first: a stored key deleted, taken, replaced or changed in place, then read again or listed.
        examples: [
          [
            { b: { x: 1 } },
            [
              { op: 'delete', key: 'b' },
              { op: 'get', key: 'b' },
              { op: 'has', key: 'b' },
            ],
            true,
          ],
          [{ b: [1] }, [{ op: 'take', key: 'b' }, { op: 'get', key: 'b' }, { op: 'keys' }], true],
          [{ b: 1, a: 2 }, [{ op: 'set', key: 'b', value: 3 }, { op: 'keys' }, { op: 'get', key: 'a' }], true],
          [
            { b: [1] },
            [
              { op: 'mutate', key: 'b' },
              { op: 'get', key: 'b' },
            ],
            true,
          ],
          [{ b: 1 }, [{ op: 'update', key: 'b' }, { op: 'update', key: 'a' }, { op: 'keys' }], true],
          // Emptied: every stored key deleted, taken or cleared (the session is removed), or replaced.
          [
            { b: 1, a: 2 },
            [
              { op: 'delete', key: 'b' },
              { op: 'delete', key: 'a' },
            ],
            false,
          ],
          [{ b: 1 }, [{ op: 'take', key: 'b' }], false],
          [{ b: 1 }, [{ op: 'get', key: 'b' }, { op: 'clear' }, { op: 'get', key: 'b' }], false],
          [{ b: 1, a: [2] }, [{ op: 'mutate', key: 'a' }, { op: 'replace' }, { op: 'take', key: 'a' }], false],
        ],
      },
    );
  });

  it('keeps the stored order of the keys: those changed stay in place, new keys come last', async () => {
    const { cookie } = await session({ a: 1, b: 2, c: 3, d: 4 }, async (s) => {
      void s.c;
      s.b = 'two';
      delete s.a;
      s.e = 5;
    });
    expect(Object.keys(await dataOf(cookie))).toEqual(['b', 'c', 'd', 'e']);
  });

  it('a read decodes only the keys it reads, and a write of one key decodes no other', async () => {
    const all = vi.spyOn(StoredMap.prototype, 'decodeAll');
    const find = vi.spyOn(StoredMap.prototype, 'find');
    try {
      const { cookie, result } = await session({ name: 'ann', cart: [1, 2], prefs: { theme: 'dark' } }, async (s) => {
        s.visits = ((s.visits as number | undefined) ?? 0) + 1;
        return s.name;
      });
      expect(result).toBe('ann');
      expect(all).not.toHaveBeenCalled();
      expect(find.mock.calls.map(([name]) => name).sort()).toEqual(['name', 'visits']);
      expect(await dataOf(cookie)).toEqual({ name: 'ann', cart: [1, 2], prefs: { theme: 'dark' }, visits: 1 });
    } finally {
      all.mockRestore();
      find.mockRestore();
    }
  });

  it('freezing the session, or defining a key with no value, keeps every stored value', async () => {
    const { cookie, result } = await session({ a: 1, b: [2], c: 'three' }, async (s) => {
      Object.defineProperty(s, 'b', { enumerable: true });
      Object.freeze(s);
      return [Object.keys(s), s.a, s.b, Object.isFrozen(s)];
    });
    expect(result).toEqual([['a', 'b', 'c'], 1, [2], true]);
    expect(await dataOf(cookie)).toEqual({ a: 1, b: [2], c: 'three' });
  });

  it('a record whose payload is cut short is a fresh session, as a whole decode finds it', async () => {
    const text = `cut short ${Math.random()}`;
    const { cookie } = await session({ a: text }, async () => undefined);
    const { entries } = await backend.scanPage('', undefined, 10_000);
    const [key, raw] = entries.find(([, stored]) => decodeStored(stored).a === text) ?? [];
    if (key === undefined || raw === undefined) throw new Error('the session was not stored');
    await backend.set(key, raw.slice(0, -6), 60_000);
    let seen: unknown = 'unset';
    handle = async (ctx) => {
      seen = ctx.session.a;
    };
    await app.request('/', { cookie });
    expect(seen).toBeUndefined();
  });
});
