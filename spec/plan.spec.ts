// The commit plan as a decision table: what the commit writes, removes and sends, for each way a handler can
// leave a session (planning.ts, a pure function of the session's status).
import { describe, expect, it } from 'vitest';
import { type StoredRecord, frameRecord, parseRecord } from '../src/record.js';
import type { LifetimeConfig } from '../src/lifetime.js';
import { expiryAt, isModified, planWrite, type SessionStatus } from '../src/planning.js';

const NOW = 1_767_225_600_000;
const HOUR = 3_600_000;
const CONFIG: LifetimeConfig = {
  lifetime: 24 * HOUR,
  nonPermanentLifetime: 24 * HOUR,
  absoluteLifetime: undefined,
  refreshEachRequest: true,
  refreshInterval: 60_000,
};

/** A record stored `age` ms ago (its expiry a lifetime after that). */
function stored(age: number, permanent = true): StoredRecord {
  return parseRecord(frameRecord('{"a":1}', 'json', NOW - age + 24 * HOUR, permanent, { created: NOW - age }));
}

/** A status as the handler left it: `over` on top of an unchanged, stored, permanent session loaded just now. */
function status(over: Partial<SessionStatus> & { changed?: boolean } = {}): SessionStatus {
  const { changed = false, ...rest } = over;
  return {
    stored: stored(0),
    rotatedFrom: undefined,
    retired: [],
    empty: false,
    forced: false,
    permanent: true,
    permanentChanged: false,
    settingsChanged: false,
    staleCookie: false,
    created: NOW,
    expiryFromNow: NOW + 24 * HOUR,
    dataChanged: () => changed,
    record: (expires) => `record until ${expires}`,
    changeSet: () => ({ replaced: false, set: new Map(), deleted: [], updates: new Map(), permanent: undefined }),
    drawSid: () => 'SID',
    ...rest,
  };
}

const newSession = { stored: undefined };
const rotated = { stored: undefined, rotatedFrom: { sid: 'OLD', record: stored(0) } };
const destroyed = { stored: undefined, retired: ['OLD'] };
const until = (expires: number | undefined) => ({ sid: 'SID', expires });

/** The plan, reduced to what the table compares: the write's kind, what is removed, the cookie. */
function decided(over: Parameters<typeof status>[0]) {
  const plan = planWrite(status(over), CONFIG, NOW);
  return { write: plan.write?.kind, remove: plan.remove, cookie: plan.cookie };
}

describe('the commit plan', () => {
  it.each([
    ['new, never given data', { ...newSession, empty: true }, { write: undefined, remove: [], cookie: undefined }],
    ['new, with data, permanent', newSession, { write: 'put', remove: [], cookie: until(NOW + 24 * HOUR) }],
    [
      'new, with data, browser-session',
      { ...newSession, permanent: false },
      { write: 'put', remove: [], cookie: until(undefined) },
    ],
    ['regenerated, with data', rotated, { write: 'rotate', remove: [], cookie: until(NOW + 24 * HOUR) }],
    [
      'regenerated, then emptied (a logout)',
      { ...rotated, empty: true },
      { write: undefined, remove: ['OLD'], cookie: 'clear' },
    ],
    ['destroyed', { ...destroyed, empty: true }, { write: undefined, remove: ['OLD'], cookie: 'clear' }],
    ['destroyed, then given data', destroyed, { write: 'put', remove: ['OLD'], cookie: until(NOW + 24 * HOUR) }],
    ['unchanged, refresh not due', {}, { write: undefined, remove: [], cookie: undefined }],
    [
      'unchanged, refresh due, permanent',
      { stored: stored(2 * 60_000) },
      { write: 'refresh', remove: [], cookie: until(NOW + 24 * HOUR) },
    ],
    [
      'unchanged, refresh due, browser-session',
      { stored: stored(2 * 60_000, false), permanent: false },
      { write: 'refresh', remove: [], cookie: undefined },
    ],
    [
      'unchanged, cookie signed with an old key',
      { staleCookie: true },
      { write: undefined, remove: [], cookie: until(NOW + 24 * HOUR) },
    ],
    ['changed, its expiry not due to move', { changed: true }, { write: 'merge', remove: [], cookie: undefined }],
    [
      'changed, expiry due to move, permanent',
      { changed: true, stored: stored(2 * 60_000) },
      { write: 'merge', remove: [], cookie: until(NOW + 24 * HOUR) },
    ],
    ['changed to empty', { changed: true, empty: true }, { write: undefined, remove: ['SID'], cookie: 'clear' }],
    ['forced (save(), modified = true)', { forced: true }, { write: 'merge', remove: [], cookie: undefined }],
    [
      'made browser-session',
      { permanent: false, permanentChanged: true, settingsChanged: true },
      { write: 'merge', remove: [], cookie: until(undefined) },
    ],
    [
      'given its own lifetime',
      { settingsChanged: true, expiryFromNow: NOW + 2 * HOUR },
      { write: 'merge', remove: [], cookie: until(NOW + 2 * HOUR) },
    ],
  ] as const)('%s', (_, over, expected) => {
    expect(decided(over as Parameters<typeof status>[0])).toEqual(expected);
  });

  it('encodes only when it writes: an unchanged session not due for a refresh makes no record', () => {
    let encoded = 0;
    planWrite(status({ record: () => `${encoded++}` }), CONFIG, NOW);
    expect(encoded).toBe(0);
    planWrite(status({ changed: true, record: () => `${encoded++}` }), CONFIG, NOW);
    expect(encoded).toBe(1);
  });

  it('modified: a change, a force, a regenerate, a destroy or a new setting; a plain read is not one', () => {
    expect(
      [{}, { changed: true }, { forced: true }, rotated, destroyed, { settingsChanged: true }].map((over) =>
        isModified(status(over)),
      ),
    ).toEqual([false, true, true, true, true, true]);
  });

  it('the expiry a request would leave: none for an empty session, the stored one for a read, a new one for a write', () => {
    expect(expiryAt(status({ empty: true }), CONFIG, NOW)).toBeUndefined();
    expect(expiryAt(status({ stored: stored(1000) }), CONFIG, NOW)).toBe(NOW - 1000 + 24 * HOUR);
    expect(expiryAt(status({ changed: true, stored: stored(2 * 60_000) }), CONFIG, NOW)).toBe(NOW + 24 * HOUR);
    expect(expiryAt(status(newSession), CONFIG, NOW)).toBe(NOW + 24 * HOUR);
  });
});
