// `migrate --to cbor|json`: every stored session re-encoded in place, by compare-and-set in batches, so that a
// request writing a session meanwhile wins and the record is tried again. No printing here.
import { decodePayload, encodePayload, fingerprint } from '../codec.js';
import {
  type Format,
  frameRecord,
  isHashedRecord,
  parseRecord,
  type StoredData,
  type StoredRecord,
} from '../record.js';
import type { SessionStore } from '../store.js';
import type { ListedRecord } from '../store-types.js';
import { compareAndSetMany } from '../store-scan.js';
import { isTombstone } from '../tombstone.js';
import { isUserIndexName } from '../names.js';
import { walk, type WalkOptions } from './maintenance.js';

/** What `migrate` did, record by record. */
export interface MigrationReport {
  /** Rewritten in the target encoding. */
  converted: number;
  /** Already in the target encoding. */
  already: number;
  /** Expired: left for purge. */
  expired: number;
  /** Tombstones of revoked or regenerated sessions: no session to convert, left to expire. */
  tombstones: number;
  /** Data the target encoding cannot hold exactly (Dates, Maps, binary... in JSON): left as they are. */
  unrepresentable: number;
  /** Over maxSize in the target encoding: left as they are (a larger record would not load). */
  tooLarge: number;
  /** Not readable session records: left as they are. */
  unreadable: number;
  /** Changed by the application again and again while being converted: left to the application. */
  busy: number;
  /** False when interrupted: records not reached are unchanged (running it again continues). */
  complete: boolean;
}

type Conversion =
  | { kind: 'write'; next: string; ttl: number }
  | { kind: Exclude<keyof MigrationReport, 'converted' | 'busy' | 'complete'> };

/** The record `raw` re-encoded as `to`, or why it is left as it is. */
function convert(raw: string, to: Format, maxSize: number, now: number): Conversion {
  if (isTombstone(raw)) return { kind: 'tombstones' };
  let record: StoredRecord;
  let data: StoredData;
  try {
    record = parseRecord(raw);
    data = decodePayload(record.payload, record.format);
  } catch {
    return { kind: 'unreadable' };
  }
  if (record.expires <= now) return { kind: 'expired' };
  if (record.format === to) return { kind: 'already' };
  let payload = record.payload;
  if (record.format !== to) {
    try {
      payload = encodePayload(data, to);
      // Exact only if decoding the new encoding gives back the same data.
      const before = fingerprint(data);
      const after = fingerprint(decodePayload(payload, to));
      if (before === undefined || after === undefined || !before.equals(after)) return { kind: 'unrepresentable' };
    } catch {
      return { kind: 'unrepresentable' };
    }
  }
  const next = frameRecord(payload, to, record.expires, record.permanent, {
    created: record.created,
    lifetime: record.lifetime,
    hashed: record.hashed,
    after: record,
  });
  if (Buffer.byteLength(next) > maxSize) return { kind: 'tooLarge' };
  return { kind: 'write', next, ttl: record.expires - now };
}

// A record the application rewrites between our read and our write is read and converted again, this often.
const ROUNDS = 5;

/**
 * Rewrites every live session record in `to`, keeping its expiry and permanence. Each rewrite is a
 * compare-and-set on the record as read, so a concurrent change by the application is never overwritten.
 */
export async function migrate(
  store: SessionStore,
  to: Format,
  maxSize: number,
  options: WalkOptions = {},
): Promise<MigrationReport> {
  const report: MigrationReport = {
    converted: 0,
    already: 0,
    expired: 0,
    tombstones: 0,
    unrepresentable: 0,
    tooLarge: 0,
    unreadable: 0,
    busy: 0,
    complete: false,
  };
  report.complete = await walk(store, options, async (records) => {
    // A listed name is the key as it is: its record says whether that is a hash.
    let pending = records
      .filter((r) => !isUserIndexName(r.name))
      .map((r) => ({ name: store.names.fromKey(r.name, isHashedRecord(r.raw)), raw: r.raw }));
    for (let round = 1; pending.length > 0; round++) {
      const now = Date.now();
      const rows: Array<{ name: string; expected: string; next: string; ttl: number }> = [];
      for (const { name, raw } of pending) {
        const conversion = convert(raw, to, maxSize, now);
        if (conversion.kind === 'write') rows.push({ name, expected: raw, next: conversion.next, ttl: conversion.ttl });
        else report[conversion.kind]++;
      }
      const written = await compareAndSetMany(store, rows);
      report.converted += written.size;
      const missed = rows.filter((row) => !written.has(row.name));
      if (round === ROUNDS) {
        report.busy += missed.length;
        break;
      }
      // Changed or deleted meanwhile: read again; a deleted one is simply gone.
      const reread = await Promise.all(
        missed.map(async (row) => ({ name: row.name, raw: await store.loadRaw(row.name) })),
      );
      pending = reread.filter((r): r is ListedRecord => r.raw !== undefined);
    }
  });
  return report;
}
