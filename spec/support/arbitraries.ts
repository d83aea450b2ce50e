// fast-check arbitraries of session data as handlers store it (nested objects, arrays, Dates, bigints), and the
// predicates the CBOR specs need about it.
import fc from 'fast-check';

export const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.string(),
    fc.integer(),
    // -0 is stored as 0 in either format (cbor-x writes it as the integer 0, JSON as 0): drawn as 0.
    fc.double({ noNaN: true }).map((n) => (Object.is(n, -0) ? 0 : n)),
    fc.boolean(),
    fc.constant(null),
    fc.date({ min: new Date(0), max: new Date('2100-01-01'), noInvalidDate: true }),
    fc.bigInt(),
  ),
  node: fc.oneof(
    { depthSize: 'small' },
    tie('leaf'),
    fc.array(tie('node'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('node'), { maxKeys: 4 }),
  ),
})).node;
export const key = fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !/^__proto__+$/.test(k));
export const data = fc.dictionary(key, value, { maxKeys: 12 });

export const mentionsProto = (value: unknown): boolean =>
  typeof value === 'string'
    ? value.includes('__proto__')
    : typeof value === 'object' &&
      value !== null &&
      Object.entries(value).some(([name, item]) => name.includes('__proto__') || mentionsProto(item));
export const INDEX = /^(?:0|[1-9]\d*)$/;
export const hasDate = (value: unknown): boolean =>
  value instanceof Date || (typeof value === 'object' && value !== null && Object.values(value).some(hasDate));
