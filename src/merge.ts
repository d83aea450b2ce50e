// How a request's changes go onto the freshest stored record: pure functions of record strings, which the committer
// calls between its compare-and-sets (commit.ts), and which a retry calls again on what it then finds.
import { checkSize, decodePayload, encodePayload } from './codec.js';
import { type Format, frameRecord, parseRecord, recordExpiry, type StoredRecord } from './record.js';
import type { ChangeSet, Write } from './plan.js';
import { type NoSession, recordStatus } from './tombstone.js';

/** A write that goes onto whatever the store holds now: the request's changes, or a refresh of the expiry. */
export type Conditional = Extract<Write, { kind: 'merge' | 'refresh' }>;

/** How records are written: the encoding and the size limit. */
export interface MergeConfig {
  readonly serialization: Format;
  readonly maxSize: number;
}

/**
 * The changes of `writes`, in order, applied onto the record `current` holds; 'gone' or 'moved'
 * when that record no longer holds a live session (which must not come back).
 */
export function mergeWrites(current: string, writes: Conditional[], config: MergeConfig): string | NoSession {
  const fate = recordStatus(current, Date.now());
  if (fate !== 'live') return fate;
  const last = writes[writes.length - 1] as Conditional;
  if (last.kind === 'refresh') return last.raw;
  const changes: ChangeSet[] = [];
  for (const write of writes) if (write.kind === 'merge') changes.push(write.changes);
  return applyOnto(current, changes, last.raw, config);
}

/**
 * `changes` applied onto the data of the live record `current`; a record we cannot read is replaced
 * by `planned` (the record as this request would write it). The creation time is the planned one
 * (a regenerate starts a new one), the expiry the later of the two: the cookie this request sends
 * must not outlive the record, nor may it cut short a refresh another request made.
 */
export function applyOnto(
  current: string,
  changes: readonly ChangeSet[],
  planned: string,
  config: MergeConfig,
): string {
  let record: ReturnType<typeof parseRecord>;
  let data: Record<string, unknown>;
  let plan: ReturnType<typeof parseRecord>;
  try {
    plan = parseRecord(planned);
  } catch {
    return planned;
  }
  try {
    record = parseRecord(current);
    data = decodePayload(record.payload, record.format);
  } catch {
    return planned;
  }
  let permanent = record.permanent;
  for (const change of changes) {
    data = applyChanges(data, change);
    permanent = change.permanent ?? permanent;
  }
  const format = config.serialization;
  const meta = { created: plan.created, lifetime: plan.lifetime, hashed: plan.hashed, after: record };
  const raw = frameRecord(
    encodePayload(data, format, config.maxSize),
    format,
    Math.max(plan.expires, record.expires),
    permanent,
    meta,
  );
  checkSize(raw, config.maxSize);
  return raw;
}

/** The TTL that makes the store expire `raw` when its header says; `fallback` for a value without one. */
export function ttlOf(raw: string, fallback: number): number {
  const expires = recordExpiry(raw);
  return Number.isFinite(expires) ? Math.max(1, expires - Date.now()) : fallback;
}

function applyChanges(data: Record<string, unknown>, changes: ChangeSet): Record<string, unknown> {
  const merged: Record<string, unknown> = changes.replaced ? {} : data;
  const define = (key: string, value: unknown) =>
    Reflect.defineProperty(merged, key, { value, writable: true, enumerable: true, configurable: true });
  for (const key of changes.deleted) Reflect.deleteProperty(merged, key);
  for (const [key, value] of changes.set) define(key, value);
  // update(): each function again, in order, on the freshest value.
  for (const [key, updaters] of changes.updates)
    define(
      key,
      updaters.reduce((value, fn) => fn(value), Object.hasOwn(merged, key) ? merged[key] : undefined),
    );
  return merged;
}

/**
 * The record `raw` holds and, when its data has `key`, the value there and the record without it
 * (its header kept). Undefined when `raw` cannot be read.
 */
export function takeFrom(
  raw: string,
  key: string,
  maxSize: number,
): { record: StoredRecord; taken?: { value: unknown; record: StoredRecord } } | undefined {
  let record: StoredRecord;
  let data: Record<string, unknown>;
  try {
    record = parseRecord(raw);
    data = decodePayload(record.payload, record.format);
  } catch {
    return undefined;
  }
  if (!Object.hasOwn(data, key)) return { record };
  const value = data[key];
  Reflect.deleteProperty(data, key);
  const meta = { created: record.created, lifetime: record.lifetime, hashed: record.hashed, after: record };
  const next = frameRecord(
    encodePayload(data, record.format, maxSize),
    record.format,
    record.expires,
    record.permanent,
    meta,
  );
  return { record, taken: { value, record: parseRecord(next) } };
}
