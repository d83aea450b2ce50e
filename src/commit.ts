// Applies session writes to the store: a request's changes go onto the freshest record, never over a logout.
import { setTimeout as sleep } from 'node:timers/promises';
import { decodePayload, encodePayload, frameRecord, parseRecord, type Format } from './codec.js';
import { conflictPause, Lanes } from './lanes.js';
import { checkSize, type ChangeSet, type Write } from './session.js';
import type { SessionStore } from './store.js';

/** What became of a write: stored, not needed (someone else already wrote newer data), or the session is gone. */
export type WriteOutcome = 'saved' | 'skipped' | 'gone';

export interface CommitConfig {
  readonly storeTimeout: number;
  readonly lifetime: number;
  readonly serialization: Format;
  readonly maxSize: number;
}

type Conditional = Extract<Write, { kind: 'merge' | 'refresh' }>;

/** What a sid's lane remembers between batches: the record this process wrote last, the freshest one we know. */
interface LaneState {
  latest: string | undefined;
}

export class Committer {
  readonly #store: SessionStore;
  readonly #config: CommitConfig;
  readonly #lanes = new Lanes<Conditional, WriteOutcome, LaneState>(
    () => ({ latest: undefined }),
    (writes, lane) => this.#saveBatch(writes, lane),
  );

  constructor(store: SessionStore, config: CommitConfig) {
    this.#store = store;
    this.#config = config;
  }

  async write(write: Write): Promise<WriteOutcome> {
    if (write.kind === 'put') {
      await this.#store.save(write.sid, write.raw, write.ttl);
      return 'saved';
    }
    return this.#lanes.push(write.sid, write);
  }

  /** One compare-and-set for every write of the batch, in order; refreshes made moot by a newer write are skipped. */
  async #saveBatch(writes: Conditional[], lane: LaneState): Promise<WriteOutcome[]> {
    let expected = lane.latest ?? (writes[0] as Conditional).base;
    const merges = writes.filter((w) => w.kind === 'merge');
    // A refresh only makes sense on the record it read: anything newer already moved the expiry.
    const outcomes: WriteOutcome[] = writes.map((w) => (w.kind === 'refresh' && (merges.length > 0 || w.base !== expected) ? 'skipped' : 'saved'));
    const active = merges.length > 0 ? merges : writes.filter((_, i) => outcomes[i] === 'saved');
    if (active.length === 0) return outcomes;

    const only = active.length === 1 ? (active[0] as Conditional) : undefined;
    let raw = only !== undefined && only.base === expected ? only.raw : this.#merge(expected, active);
    const deadline = Date.now() + this.#config.storeTimeout;
    for (let attempt = 1; ; attempt++) {
      if (raw === undefined) return writes.map(() => 'gone');
      const result = await this.#store.compareAndSet((active[0] as Conditional).sid, expected, raw, (active[0] as Conditional).ttl);
      if (result.status === 'saved') {
        lane.latest = raw;
        return outcomes;
      }
      if (result.status === 'gone') return writes.map(() => 'gone');
      if (merges.length === 0) return writes.map(() => 'skipped'); // refreshes only: someone else wrote
      await sleep(conflictPause(attempt, deadline, (n) => `koa-kv-session: other processes kept changing the session during ${n} attempts to save it; nothing was saved by this request`));
      expected = result.current;
      raw = this.#merge(expected, active);
    }
  }

  /**
   * The changes of `writes`, in order, applied onto the record `current` holds; undefined when that
   * record has expired (the session is gone and must not come back). A record we cannot read is
   * replaced by the last write's own.
   */
  #merge(current: string, writes: Conditional[]): string | undefined {
    const last = writes[writes.length - 1] as Conditional;
    if (last.kind === 'refresh') return last.raw;
    const now = Date.now();
    let record: ReturnType<typeof parseRecord>;
    let data: Record<string, unknown>;
    try {
      record = parseRecord(current);
      data = decodePayload(record.payload, record.format);
    } catch {
      return last.raw;
    }
    if (record.expires <= now) return undefined;
    let permanent = record.permanent;
    for (const write of writes) {
      if (write.kind !== 'merge') continue;
      data = applyChanges(data, write.changes);
      permanent = write.changes.permanent ?? permanent;
    }
    const format = this.#config.serialization;
    const raw = frameRecord(encodePayload(data, format), format, now + this.#config.lifetime, permanent);
    checkSize(raw, this.#config.maxSize);
    return raw;
  }
}

function applyChanges(data: Record<string, unknown>, changes: ChangeSet): Record<string, unknown> {
  const merged: Record<string, unknown> = changes.replaced ? {} : data;
  for (const key of changes.deleted) Reflect.deleteProperty(merged, key);
  for (const [key, value] of changes.set) {
    Reflect.defineProperty(merged, key, { value, writable: true, enumerable: true, configurable: true });
  }
  return merged;
}
