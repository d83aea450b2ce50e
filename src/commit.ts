// Applies a session write to the store: a request's changes go onto the freshest record, never over a logout.
import { setTimeout as sleep } from 'node:timers/promises';
import { decodePayload, encodePayload, frameRecord, parseRecord, type Format } from './codec.js';
import { SessionError } from './errors.js';
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

// A conflict means another writer got in between; each retry merges onto what it wrote. Within one
// process the writes of a sid are queued, so conflicts only come from other processes. Retries wait a
// random, growing moment (so two processes do not collide again in lockstep) and stop at storeTimeout.
const MAX_ATTEMPTS = 50;

interface Lane {
  /** The end of the queue of writes of this sid in this process. */
  tail: Promise<unknown>;
  /** The record this process wrote last for the sid while others were queued: the freshest one we know. */
  latest: string | undefined;
  users: number;
}

export class Committer {
  readonly #store: SessionStore;
  readonly #config: CommitConfig;
  readonly #lanes = new Map<string, Lane>();

  constructor(store: SessionStore, config: CommitConfig) {
    this.#store = store;
    this.#config = config;
  }

  async write(write: Write): Promise<WriteOutcome> {
    if (write.kind === 'put') {
      await this.#store.save(write.sid, write.raw, write.ttl);
      return 'saved';
    }
    return this.#inLane(write.sid, (lane) => this.#conditionalWrite(write, lane));
  }

  /** Runs `job` after every earlier write of the same sid in this process. */
  async #inLane<T>(sid: string, job: (lane: Lane) => Promise<T>): Promise<T> {
    let lane = this.#lanes.get(sid);
    if (lane === undefined) {
      lane = { tail: Promise.resolve(), latest: undefined, users: 0 };
      this.#lanes.set(sid, lane);
    }
    lane.users++;
    const current = lane;
    const run = current.tail.then(() => job(current));
    current.tail = run.catch(() => {});
    try {
      return await run;
    } finally {
      if (--current.users === 0) this.#lanes.delete(sid);
    }
  }

  async #conditionalWrite(write: Extract<Write, { kind: 'merge' | 'refresh' }>, lane: Lane): Promise<WriteOutcome> {
    let expected = lane.latest ?? write.base;
    if (write.kind === 'refresh' && expected !== write.base) {
      return 'skipped'; // written since we loaded it: that write already moved the expiry
    }
    let raw = expected === write.base ? write.raw : this.#merge(expected, write);
    const deadline = Date.now() + this.#config.storeTimeout;
    for (let attempt = 1; ; attempt++) {
      if (raw === undefined) return 'gone';
      const result = await this.#store.compareAndSet(write.sid, expected, raw, write.ttl);
      if (result.status === 'saved') {
        lane.latest = raw;
        return 'saved';
      }
      if (result.status === 'gone') return 'gone';
      if (write.kind === 'refresh') return 'skipped';
      const pause = Math.random() * Math.min(2 ** attempt, 100);
      if (attempt >= MAX_ATTEMPTS || Date.now() + pause >= deadline) {
        throw new SessionError(
          'SESSION_CONFLICT',
          `koa-kv-session: other processes kept changing the session during ${attempt} attempts to save it; nothing was saved by this request`,
          503,
        );
      }
      await sleep(pause);
      expected = result.current;
      raw = this.#merge(expected, write);
    }
  }

  /**
   * This request's changes applied onto the record `current` holds; undefined when that record has
   * expired (the session is gone, and must not come back). A record we cannot read is replaced by ours.
   */
  #merge(current: string, write: Extract<Write, { kind: 'merge' | 'refresh' }>): string | undefined {
    if (write.kind === 'refresh') return write.raw;
    const now = Date.now();
    let record: ReturnType<typeof parseRecord>;
    let data: Record<string, unknown>;
    try {
      record = parseRecord(current);
      data = decodePayload(record.payload, record.format);
    } catch {
      return write.raw;
    }
    if (record.expires <= now) return undefined;
    const merged = applyChanges(data, write.changes);
    const format = this.#config.serialization;
    const raw = frameRecord(encodePayload(merged, format), format, now + this.#config.lifetime, write.changes.permanent ?? record.permanent);
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
