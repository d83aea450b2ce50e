// A CBOR write re-encodes only the keys a request changed and copies the rest from the payload it loaded:
// the result must be exactly what encoding the whole data gives, for any data and any change.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCbor, encodeCbor as encodeBytes, spliceCbor } from '../src/cbor.js';
import { encodePayload } from '../src/codec.js';
import { data, hasDate, INDEX, key, mentionsProto, value } from './support/arbitraries.js';

// The payloads as stored (base64), as codec.ts makes them of these bytes.
const encode = (data: Record<string, unknown>) => encodeBytes(data).toString('base64');
const splice = (...args: Parameters<typeof spliceCbor>) => spliceCbor(...args)?.toString('base64');

describe('spliced CBOR writes', () => {
  it('read back as the data, as a whole encode does, for any data and any set, deleted or added keys', () => {
    fc.assert(
      fc.property(
        data,
        fc.array(fc.tuple(key, fc.option(value, { nil: undefined })), { maxLength: 5 }),
        (before, edits) => {
          const payload = encode(before);
          const after = decodeCbor(payload) as Record<string, unknown>;
          const changed = new Set<string>();
          for (const [name, next] of edits) {
            changed.add(name);
            if (next === undefined) Reflect.deleteProperty(after, name);
            else
              Reflect.defineProperty(after, name, {
                value: next,
                writable: true,
                enumerable: true,
                configurable: true,
              });
          }
          const spliced = splice(payload, after, changed);
          // Only data that holds "__proto__" (escaped as a whole), or a new key that is an array index (first in
          // an object's keys), is left to a whole encode.
          if (spliced === undefined) {
            const reason = (name: string) => mentionsProto(name) || mentionsProto(after[name]) || INDEX.test(name);
            expect([...changed].some(reason)).toBe(true);
            return;
          }
          // It reads back as a whole encode of the data does; without Dates (which cbor-x reads back
          // as another float than it wrote, at times), byte for byte the same.
          const whole = encode(after);
          expect(decodeCbor(spliced)).toEqual(decodeCbor(whole));
          if (!hasDate(before) && !hasDate(after)) expect(spliced).toBe(whole);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('gives way to a whole encode for a new key that is an array index (fast-check seed 2085206708)', () => {
    const payload = encode({ ' ': '' });
    const after = { ' ': '', 0: {} };
    expect(splice(payload, after, new Set(['0']))).toBeUndefined();
    const existing = encode({ 0: 1, a: 2 });
    const changed = splice(existing, { 0: 3, a: 2 }, new Set(['0']));
    expect(changed).toBe(encode({ 0: 3, a: 2 }));
  });

  it('gives way to a whole encode where it cannot be exact: a "__proto__" key, a payload that is no map of text keys', () => {
    const payload = encode({ a: 1 });
    const withProto = decodeCbor(payload) as Record<string, unknown>;
    Reflect.defineProperty(withProto, '__proto__', { value: 2, enumerable: true, configurable: true, writable: true });
    expect(splice(payload, withProto, new Set(['__proto__']))).toBeUndefined();
    expect(splice(encode({ 1: 'x' }).slice(0, -4), { a: 1 }, new Set(['a']))).toBeUndefined();
    expect(splice(Buffer.from([0x83, 1, 2, 3]).toString('base64'), { a: 1 }, new Set(['a']))).toBeUndefined();
  });

  it('refuses, before making it, a spliced payload over maxSize', () => {
    const payload = encode({ a: 'x' });
    const base = { payload, changed: new Set(['b']) };
    expect(() => encodePayload({ a: 'x', b: 'y'.repeat(2000) }, 'cbor', 1000, base)).toThrow(/over maxSize \(1000\)/);
  });
});
