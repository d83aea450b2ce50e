// The lifetime policy as a table: every limit of the README's "Which limit ends a session when", as pure functions of
// the settings and a record.
import { describe, expect, it } from 'vitest';
import type { StoredRecord } from '../src/record.js';
import {
  absoluteEnd,
  cookieExpires,
  createdOf,
  expiryFrom,
  expiryMoves,
  idleLifetime,
  type LifetimeConfig,
  lastSeenOf,
  pastAbsoluteLifetime,
  refreshDue,
} from '../src/lifetime.js';
import { ownLifetimeOf } from '../src/session-types.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const NOW = 1_800_000_000_000;
const config = (over: Partial<LifetimeConfig> = {}): LifetimeConfig => ({
  lifetime: 24 * HOUR,
  nonPermanentLifetime: 30 * MIN,
  absoluteLifetime: undefined,
  refreshEachRequest: true,
  refreshInterval: MIN,
  ...over,
});
const record = (over: Partial<StoredRecord>): StoredRecord => ({
  versions: 'AAAAAAAA',
  format: 'json',
  expires: NOW + HOUR,
  permanent: true,
  hashed: false,
  created: NOW - HOUR,
  lifetime: undefined,
  payload: '{}',
  raw: '',
  ...over,
});

describe('which limit ends a session when', () => {
  it.each([
    // [limit, permanent, own lifetime, absolute, created, expected expiry of a write now, expected cookie Expires]
    ['idle lifetime, permanent session', true, undefined, undefined, NOW, NOW + 24 * HOUR, NOW + 24 * HOUR],
    ['idle lifetime, browser-session session', false, undefined, undefined, NOW, NOW + 30 * MIN, undefined],
    ['its own lifetime, permanent', true, 2 * HOUR, undefined, NOW, NOW + 2 * HOUR, NOW + 2 * HOUR],
    ['its own lifetime, browser-session', false, 2 * HOUR, undefined, NOW, NOW + 2 * HOUR, undefined],
    ['absolute lifetime, far away', true, undefined, 7 * 24 * HOUR, NOW, NOW + 24 * HOUR, NOW + 24 * HOUR],
    ['absolute lifetime caps the idle one', true, undefined, 2 * HOUR, NOW - HOUR, NOW + HOUR, NOW + HOUR],
    ['absolute lifetime caps its own lifetime', false, 10 * HOUR, 2 * HOUR, NOW - HOUR, NOW + HOUR, undefined],
  ] as const)('%s', (_limit, permanent, own, absolute, created, expiry, cookie) => {
    const settings = config({ absoluteLifetime: absolute });
    const expires = expiryFrom(NOW, idleLifetime(permanent, own, settings), created, settings);
    expect(expires).toBe(expiry);
    expect(cookieExpires(permanent, expires)).toBe(cookie);
  });

  it.each([
    // [case, refreshEachRequest, stored expiry moved this long ago, absolute end, due]
    ['interval passed', true, 2 * MIN, undefined, true],
    ['interval not passed', true, 30_000, undefined, false],
    ['refreshEachRequest off', false, 2 * MIN, undefined, false],
    ['at its absolute end already', true, 2 * MIN, 'at-expiry', false],
    ['absolute end later than the expiry', true, 2 * MIN, 'later', true],
  ] as const)('a refresh due: %s', (_case, refreshEachRequest, ago, end, due) => {
    const stored = record({ expires: NOW - ago + 24 * HOUR, created: NOW - HOUR });
    const absolute =
      end === undefined
        ? undefined
        : end === 'at-expiry'
          ? stored.expires - (NOW - HOUR)
          : stored.expires - (NOW - HOUR) + HOUR;
    const settings = config({ refreshEachRequest, absoluteLifetime: absolute });
    expect(refreshDue(stored, NOW, NOW - HOUR, settings)).toBe(due);
    // A write moves the expiry when a refresh is due, and always without refreshEachRequest (as Flask).
    expect(expiryMoves(stored, NOW, NOW - HOUR, settings)).toBe(due || !refreshEachRequest);
  });

  it('a stored session past its absolute lifetime is gone, just before it is not', () => {
    const settings = config({ absoluteLifetime: 2 * HOUR });
    expect(pastAbsoluteLifetime(record({ created: NOW - 2 * HOUR }), settings, NOW)).toBe(true);
    expect(pastAbsoluteLifetime(record({ created: NOW - 2 * HOUR + 1 }), settings, NOW)).toBe(false);
    expect(pastAbsoluteLifetime(record({ created: NOW - 100 * HOUR }), config(), NOW)).toBe(false);
    expect(absoluteEnd(NOW, config())).toBe(Number.POSITIVE_INFINITY);
  });

  it('creation and last use: a record whose header has no creation time counts from its last refresh', () => {
    const settings = config();
    expect(createdOf(record({ created: NOW - 5 * HOUR }), settings)).toBe(NOW - 5 * HOUR);
    expect(createdOf(record({ created: undefined, expires: NOW + HOUR }), settings)).toBe(NOW + HOUR - 24 * HOUR);
    expect(lastSeenOf(record({ created: NOW - 5 * HOUR, expires: NOW + 23 * HOUR }), settings)).toBe(NOW - HOUR);
    expect(lastSeenOf(record({ created: NOW - 5 * HOUR, expires: NOW + 2 * HOUR, lifetime: 3 * HOUR }), settings)).toBe(
      NOW - HOUR,
    );
  });

  it.each([
    [null, undefined],
    ['2h', 2 * HOUR],
    [90_000, 90_000],
  ])('ctx.session.lifetime = %s -> %s ms', (value, ms) => {
    expect(ownLifetimeOf(value)).toBe(ms);
  });

  it.each([500, '401d', 1e16, 'soon'])('ctx.session.lifetime = %s is a TypeError naming it', (value) => {
    expect(() => ownLifetimeOf(value)).toThrow(TypeError);
    expect(() => ownLifetimeOf(value)).toThrow(/ctx\.session\.lifetime/);
  });
});
