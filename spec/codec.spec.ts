// Stored records: both encodings, reading the other one, corrupt input, and the size limit.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.js';
import { MAX_DEPTH } from '../src/cbor.js';
import { decodePayload, encodePayload } from '../src/codec.js';
import {
  casStamp,
  CorruptRecordError,
  frameRecord,
  holdsWrite,
  parseRecord,
  relaidRecord,
  sameRecord,
} from '../src/record.js';
import { movedTo, recordStatus, movedTombstone, revokedTombstone } from '../src/tombstone.js';
import type { KvSessionOptions } from '../src/index.js';
import { sidFingerprint } from '../src/sid.js';
import { decodeStored } from './support/records.js';
import { cookiePair, sidOf, startApp, type Handler, type TestApp } from './support/app.js';
import { CountingAdapter } from './support/counting.js';
import { uniquePrefix } from './support/servers.js';

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function setup(
  handler: Handler,
  options: KvSessionOptions = {},
  store = new CountingAdapter(new MemoryBackend()),
) {
  const prefix = uniquePrefix('codec');
  const errors: Error[] = [];
  const app = await startApp({ store: store, keyPrefix: prefix, onError: (e) => errors.push(e), ...options }, handler);
  apps.push(app);
  await app.middleware.ready();
  store.reset();
  return { app, store, prefix, errors };
}

describe('record layout', () => {
  it('format 2: tag, expiry, permanent flag, version token, creation time and own lifetime in a text header before the payload', () => {
    const raw = frameRecord(encodePayload({ a: 1 }, 'json'), 'json', 1767225600000, true, {
      created: 1764547200000,
      lifetime: 7_200_000,
    });
    expect(raw).toMatch(/^j2:1767225600000:1:[\w-]{8}:1764547200000:7200000:\{"a":1\}$/);
    const versions = raw.split(':')[3];
    expect(parseRecord(raw)).toEqual({
      versions,
      format: 'json',
      expires: 1767225600000,
      permanent: true,
      hashed: false,
      created: 1764547200000,
      lifetime: 7_200_000,
      payload: '{"a":1}',
      raw,
    });
    // Unknown creation time, the configured lifetime: empty fields.
    const bare = frameRecord('{}', 'json', 1767225600000, false);
    expect(bare).toMatch(/^j2:1767225600000:0:[\w-]{8}:::\{\}$/);
    expect(parseRecord(bare)).toMatchObject({ created: undefined, lifetime: undefined, permanent: false });
  });

  it('the third field holds two bits: 1 permanent, 2 stored under the hash of its sid (hashSids)', () => {
    for (const [permanent, hashed, field] of [
      [false, false, '0'],
      [true, false, '1'],
      [false, true, '2'],
      [true, true, '3'],
    ] as const) {
      const raw = frameRecord('{}', 'json', 1767225600000, permanent, { created: undefined, hashed });
      expect(raw.split(':')[2]).toBe(field);
      expect(parseRecord(raw)).toMatchObject({ permanent, hashed });
      expect(parseRecord(relaidRecord(parseRecord(raw), !hashed))).toMatchObject({
        permanent,
        hashed: !hashed,
        payload: '{}',
      });
    }
  });

  it('CBOR records keep the expiry readable without decoding CBOR', () => {
    const raw = frameRecord(encodePayload({ a: 1 }, 'cbor'), 'cbor', 1767225600000, false);
    expect(raw.split(':').slice(0, 3)).toEqual(['c2', '1767225600000', '0']);
  });

  it('the version token is new on every framing of the same data (48 random bits), and only it tells the two apart', () => {
    const tokens = new Set<string>();
    let previous = frameRecord('{"a":1}', 'json', 1767225600000, true, { created: 1 });
    for (let i = 0; i < 2000; i++) {
      const raw = frameRecord('{"a":1}', 'json', 1767225600000, true, { created: 1 });
      tokens.add(raw.split(':')[3] as string);
      expect(sameRecord(raw, previous)).toBe(true);
      expect(raw).not.toBe(previous);
      previous = raw;
    }
    expect(tokens.size).toBe(2000);
    expect(sameRecord(previous, frameRecord('{"a":2}', 'json', 1767225600000, true, { created: 1 }))).toBe(false);
    expect(sameRecord(previous, frameRecord('{"a":1}', 'json', 1767225600001, true, { created: 1 }))).toBe(false);
  });

  it('a compare-and-set stamp is the header through the version token, or the whole value (anything that is not a record)', () => {
    const raw = frameRecord('{"a":1}', 'json', 1767225600000, true, { created: 5 });
    const { stamp, whole } = casStamp(raw);
    expect(whole).toBe(false);
    expect(stamp).toBe(`${raw.split(':').slice(0, 4).join(':')}:`);
    expect(casStamp('value-x')).toEqual({ stamp: 'value-x', whole: true });
  });

  it('a record written over another keeps its versions behind its own, up to eight in all: a writer finds its own write under later ones', () => {
    let record = parseRecord(frameRecord('{"n":0}', 'json', 1767225600000, true));
    const written = [record.raw];
    for (let n = 1; n <= 9; n++) {
      record = parseRecord(frameRecord(`{"n":${n}}`, 'json', 1767225600000, true, { created: 1, after: record }));
      written.push(record.raw);
    }
    expect(record.versions).toHaveLength(64);
    expect(casStamp(record.raw).stamp).toBe(`j2:1767225600000:1:${record.versions}:`);
    // The last eight writes are found in the latest record; the two before them have left it.
    expect(written.map((raw) => holdsWrite(record.raw, raw))).toEqual([
      false,
      false,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
    ]);
    // Another record of the same data is another write.
    expect(holdsWrite(record.raw, frameRecord('{"n":9}', 'json', 1767225600000, true, { created: 1 }))).toBe(false);
    // Tombstones are writes of their own: a revocation or a regenerate finds its own after a lost reply.
    const revoked = revokedTombstone(false);
    expect([
      holdsWrite(revoked, revoked),
      holdsWrite(revoked, revokedTombstone(false)),
      revoked === revokedTombstone(false),
    ]).toEqual([true, false, false]);
    expect(movedTo(movedTombstone('abc', false))).toBe('abc');
    expect(recordStatus(movedTombstone('abc', false), Date.now())).toBe('moved');
    expect(recordStatus(revoked, Date.now())).toBe('gone');
  });

  it('refuses a header format it does not write (the one digit after the tag), naming it', () => {
    expect(() => parseRecord('c1:1767225600000:0:oWFhAQ==')).toThrow(
      new CorruptRecordError('session record format 1 is not supported by this version of koa-kv-session'),
    );
    expect(() => parseRecord('j3:1767225600000:0:x:::{}')).toThrow(/format 3 is not supported/);
  });

  it.each(['cbor', 'json'] as const)('%s round-trips text, numbers, nesting, non-ASCII and odd keys', (format) => {
    const data = {
      text: 'héllo ✓ 日本 🎉',
      n: 1.5,
      neg: -3,
      flag: false,
      none: null,
      list: [1, 'two', { three: 3 }],
      nested: { deep: { __proto__x: 1 } },
      _x: 'underscore',
    };
    expect(decodePayload(encodePayload(data, format), format)).toEqual(data);
  });

  it.each(['cbor', 'json'] as const)('%s keeps "__proto__" keys as plain data at every depth', (format) => {
    const data = JSON.parse('{"__proto__":{"polluted":true},"__proto_":1,"__proto___":2,"inner":{"__proto__":3}}');
    const back = decodePayload(encodePayload(data, format), format);
    expect(Object.keys(back).sort()).toEqual(['__proto_', '__proto__', '__proto___', 'inner']);
    expect(Object.getOwnPropertyDescriptor(back, '__proto__')?.value).toEqual(JSON.parse('{"polluted":true}'));
    expect(back.__proto_).toBe(1);
    expect(back.__proto___).toBe(2);
    expect(Object.getOwnPropertyDescriptor(back.inner, '__proto__')?.value).toBe(3);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('CBOR round-trips Dates, Maps, Sets, BigInts and binary data', () => {
    const data = {
      at: new Date('2026-11-25T10:00:00.000Z'),
      map: new Map<string, number>([['a', 1]]),
      set: new Set([1, 2, 3]),
      small: 5n,
      big: 2n ** 80n,
      bytes: new Uint8Array([0, 1, 255]),
    };
    const back = decodePayload(encodePayload(data, 'cbor'), 'cbor');
    expect(back.at).toBeInstanceOf(Date);
    expect((back.at as Date).toISOString()).toBe('2026-11-25T10:00:00.000Z');
    expect(back.map).toEqual(new Map([['a', 1]]));
    expect(back.set).toEqual(new Set([1, 2, 3]));
    expect(back.small).toBe(5n);
    expect(back.big).toBe(2n ** 80n);
    expect([...(back.bytes as Uint8Array)]).toEqual([0, 1, 255]);
  });

  it.each([
    ['not a string', 42],
    ['no header', '{"a":1}'],
    ['a future record version', 'c9:1767225600000:1:oA=='],
    ['a truncated header', 'c2:17672'],
    ['an unknown tag', 'x1:1767225600000:1:{}'],
  ])('rejects %s', (_label, raw) => {
    expect(() => parseRecord(raw)).toThrow(CorruptRecordError);
  });

  it.each([
    ['truncated JSON', 'json', '{"a":'],
    ['a JSON array', 'json', '[1,2]'],
    ['JSON null', 'json', 'null'],
    ['truncated CBOR', 'cbor', encodePayload({ a: 'long enough text' }, 'cbor').slice(0, 8)],
    ['a CBOR number', 'cbor', Buffer.from([0x01]).toString('base64')],
  ] as const)('payload with %s is a corrupt record', (_label, format, payload) => {
    expect(() => decodePayload(payload, format)).toThrow(CorruptRecordError);
  });
});

describe('serialization option', () => {
  it.each(['cbor', 'json'] as const)('writes records in %s', async (serialization) => {
    const { app, store, prefix } = await setup(
      (ctx) => {
        ctx.session.user = 'ada';
      },
      { serialization },
    );
    const reply = await app.request();
    const raw = String(await store.raw(prefix + sidOf(reply.setCookies[0])));
    expect(raw.slice(0, 2)).toBe(serialization === 'cbor' ? 'c2' : 'j2');
    expect(decodeStored(raw)).toEqual({ user: 'ada' });
  });

  it.each([
    ['json', 'cbor'],
    ['cbor', 'json'],
  ] as const)(
    'reads a %s record with serialization %s, and rewrites it in %s on its next write',
    async (stored, configured) => {
      const inner = new MemoryBackend();
      const store = new CountingAdapter(inner as never);
      // A session written by an app configured with the other format...
      const writer = await setup(
        (ctx) => {
          ctx.session.user = 'ada';
        },
        { serialization: stored },
        store,
      );
      const first = await writer.app.request();
      const cookie = cookiePair(first.setCookies[0]);
      const key = writer.prefix + sidOf(first.setCookies[0]);
      expect(String(await store.raw(key)).slice(0, 1)).toBe(stored[0]);
      // ...is read by an app configured with this one (same prefix, same store).
      let step = 0;
      const reader = await startApp(
        { store: store, keyPrefix: writer.prefix, serialization: configured, refreshEachRequest: false },
        (ctx) => {
          if (step++ === 0) return String(ctx.session.user);
          ctx.session.visits = 1;
          return 'written';
        },
      );
      apps.push(reader);
      const read = await reader.request('/', { cookie });
      expect(read.body).toBe('ada');
      expect(String(await store.raw(key)).slice(0, 1)).toBe(stored[0]); // a read does not rewrite
      await reader.request('/', { cookie });
      expect(String(await store.raw(key)).slice(0, 1)).toBe(configured[0]);
      expect(decodeStored(await store.raw(key))).toEqual({ user: 'ada', visits: 1 });
    },
  );
});

describe('corrupt stored records', () => {
  it.each([
    ['garbage', 'not a session record'],
    ['a truncated CBOR payload', `c2:${Date.now() + 60_000}:1:AAAAAAAA:::oWF`],
    ['a future version', `c2:${Date.now() + 60_000}:1:oA==`],
    ['invalid JSON', `j2:${Date.now() + 60_000}:1:AAAAAAAA:::{"user":`],
  ])('%s: fresh session with a new sid, onError told, no crash', async (_label, raw) => {
    const { app, store, prefix, errors } = await setup((ctx) => {
      const fresh = ctx.session.isNew;
      ctx.session.user = 'new';
      return String(fresh);
    });
    const seed = await app.request();
    const sid = sidOf(seed.setCookies[0]);
    await store.put(prefix + sid, raw);
    const reply = await app.request('/', { cookie: cookiePair(seed.setCookies[0]) });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('true');
    expect(sidOf(reply.setCookies[0])).not.toBe(sid);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'SESSION_RECORD_CORRUPT' });
    // Named by its safe id: a sid is a bearer secret, and onError output goes to logs.
    expect(errors[0]?.message).not.toContain(sid);
    expect(errors[0]?.message).toContain(sidFingerprint(sid));
    await store.cleanup();
  });
});

describe('nesting', () => {
  /** An array nested `levels` deep (the session data around it is one level more). */
  const nested = (levels: number): unknown => {
    let value: unknown = 'core';
    for (let i = 0; i < levels; i++) value = [value];
    return value;
  };

  it.each(['cbor', 'json'] as const)(
    '%s: data nested deeper than readers take back is refused at write, the stored session kept; up to the limit it reads back',
    async (serialization) => {
      const errors: Array<{ code?: string; message: string }> = [];
      const { app, store, prefix } = await setup(
        (ctx) => {
          if (ctx.path === '/deep') ctx.session.tree = nested(Number(ctx.query.levels));
          else if (ctx.path === '/read') return JSON.stringify(ctx.session.tree ?? null).length;
          else ctx.session.small = 'x';
        },
        { serialization },
      );
      app.app.on('error', (error) => errors.push(error));
      const cookie = cookiePair((await app.request('/')).setCookies[0]);
      const key = prefix + sidOf(`${cookie}; x`);
      const before = await store.raw(key);
      // The cbor-x encoder takes 3,000 levels and its decoder does not give them back: refused, nothing written.
      expect((await app.request('/deep?levels=3000', { cookie })).status).toBe(500);
      expect(errors[0]).toMatchObject({ code: 'SESSION_UNENCODABLE' });
      expect(errors[0]?.message).toMatch(/nested deeper than 256 levels/);
      expect(await store.raw(key)).toBe(before);
      expect((await app.request('/read', { cookie })).body).toBe('4');
      // At the limit: stored, and read back whole.
      expect((await app.request(`/deep?levels=${MAX_DEPTH - 1}`, { cookie })).status).toBe(200);
      expect((await app.request('/read', { cookie })).body).toBe(String(JSON.stringify(nested(MAX_DEPTH - 1)).length));
    },
  );
});

describe('maxSize', () => {
  it('a CBOR payload whose base64 text would exceed maxSize is refused before that text is made', () => {
    const data = { big: 'z'.repeat(3000) };
    expect(() => encodePayload(data, 'cbor', 1024)).toThrow(expect.objectContaining({ code: 'SESSION_TOO_LARGE' }));
    expect(encodePayload(data, 'cbor', 8192)).toBe(encodePayload(data, 'cbor'));
  });

  it('a session over maxSize fails the request with SESSION_TOO_LARGE and leaves the stored record untouched', async () => {
    const errors: unknown[] = [];
    let step = 0;
    const { app, store, prefix } = await setup(
      (ctx) => {
        if (step++ === 0) ctx.session.small = 'x';
        else ctx.session.big = 'y'.repeat(2000);
      },
      { maxSize: 1024 },
    );
    app.app.on('error', (error) => errors.push(error));
    const one = await app.request();
    const key = prefix + sidOf(one.setCookies[0]);
    const before = await store.raw(key);
    store.reset();
    const two = await app.request('/', { cookie: cookiePair(one.setCookies[0]) });
    expect(two.status).toBe(500);
    expect(two.setCookies).toEqual([]);
    expect(store.count('set') + store.count('cas')).toBe(0);
    expect(await store.raw(key)).toBe(before);
    expect(errors[0]).toMatchObject({ code: 'SESSION_TOO_LARGE' });
    expect((errors[0] as Error).message).toMatch(/over maxSize \(1024\)/);
  });

  it('a session of exactly maxSize bytes is saved (non-ASCII counted in bytes)', async () => {
    const probe = frameRecord(encodePayload({ s: '' }, 'json'), 'json', Date.now() + 1e12, true, {
      created: Date.now(),
    });
    const maxSize = 512;
    const room = maxSize - Buffer.byteLength(probe);
    const text = 'é'.repeat(Math.floor(room / 2)) + 'a'.repeat(room % 2);
    const { app, store, prefix } = await setup(
      (ctx) => {
        ctx.session.s = text;
      },
      { maxSize, serialization: 'json' },
    );
    const reply = await app.request();
    expect(reply.status).toBe(200);
    const raw = String(await store.raw(prefix + sidOf(reply.setCookies[0])));
    expect(Buffer.byteLength(raw)).toBe(maxSize);
  });

  it('one byte over maxSize (non-ASCII) is refused', async () => {
    const probe = frameRecord(encodePayload({ s: '' }, 'json'), 'json', Date.now() + 1e12, true, {
      created: Date.now(),
    });
    const maxSize = 512;
    const room = maxSize - Buffer.byteLength(probe) + 1;
    const text = 'é'.repeat(Math.floor(room / 2)) + 'a'.repeat(room % 2);
    const { app, store } = await setup(
      (ctx) => {
        ctx.session.s = text;
      },
      { maxSize, serialization: 'json' },
    );
    const reply = await app.request();
    expect(reply.status).toBe(500);
    expect(store.count('set')).toBe(0);
  });
});
