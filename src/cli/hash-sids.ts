// `migrate --hash-sids`: every session stored under its sid moves under the hash of its sid, by the steps a
// request of it takes (relayout.ts); tombstones under sids are moved too, so that no sid is left in the store.
import { decodeRecord } from '../codec.js';
import { isHashedRecord, type StoredData, type StoredRecord } from '../record.js';
import { isTombstone, movedTo, movedTombstone, TOMBSTONE_LIFETIME } from '../tombstone.js';
import { mapConcurrently } from '../concurrently.js';
import { LayoutSwitch } from '../layout-switch.js';
import { relayout } from '../relayout.js';
import type { SessionStore } from '../store.js';
import { isUserIndexName } from '../names.js';
import type { UserIndex } from '../users.js';
import { walk, type WalkOptions } from './maintenance.js';

/** What `migrate --hash-sids` did. */
export interface RelayoutReport {
  /** Moved from under their sid to under its hash. */
  moved: number;
  /** Stored under the hash of their sid already. */
  already: number;
  /** Expired, or ended or moved by the app meanwhile: left as they are. */
  skipped: number;
  /** Not readable session records: left as they are. */
  unreadable: number;
  /** Tombstones (of revoked or regenerated sessions) under a sid: removed, a regenerate's moved under the hash. */
  tombstones: number;
  complete: boolean;
  /** The switch is over (the layout record says so): false while a process with hashSids off carried it on. */
  switchOver: boolean;
}

/**
 * Moves every live session stored under its sid to the hash of its sid (the store must be opened
 * with hashSids), each by the very steps a request of it takes (relayout.ts): nobody is signed out,
 * and a session the app changes or ends meanwhile stays as the app left it.
 */
export async function hashSids(
  store: SessionStore,
  users: UserIndex | undefined,
  userKey: string | undefined,
  absoluteLifetime: number | undefined,
  options: WalkOptions = {},
): Promise<RelayoutReport> {
  const report: RelayoutReport = {
    moved: 0,
    already: 0,
    skipped: 0,
    unreadable: 0,
    tombstones: 0,
    complete: false,
    switchOver: false,
  };
  // Moving every session under its hash is a switch: said in the store first, and ended once all have moved.
  const layout = new LayoutSwitch(store, absoluteLifetime, (error) => {
    throw error;
  });
  await layout.check();
  // No move before every process that reads the record on a miss has heard of the switch.
  await layout.ready();
  const context = { store, users, userKey, report: () => undefined, layout };
  report.complete = await walk(store, options, async (records) => {
    await mapConcurrently(records, 16, async ({ name, raw }) => {
      if (isUserIndexName(name)) return;
      if (isTombstone(raw)) return void (await retireTombstone(store, name, raw, report));
      let loaded: { record: StoredRecord; data: StoredData };
      try {
        loaded = decodeRecord(raw);
      } catch {
        return void report.unreadable++;
      }
      if (loaded.record.hashed) return void report.already++;
      const now = Date.now();
      if (loaded.record.expires <= now) return void report.skipped++;
      const moved = await relayout(context, name, store.names.otherName(name) as string, loaded, now + store.timeoutMs);
      report[typeof moved === 'string' ? 'skipped' : 'moved']++;
    });
  });
  report.switchOver = report.complete && (await layout.end());
  return report;
}

/**
 * A tombstone under `name`, a key read from the store: under a sid (not the hash of one), it goes, for
 * its key is a sid, and a regenerate()'s names the new sid too. What it tells requests in flight
 * stays true: a revoked session's sid finds nothing either way, and a regenerate()'s is written again
 * under the hash of the old sid, naming the new one by its hash, for the rest of its time.
 */
async function retireTombstone(store: SessionStore, name: string, raw: string, report: RelayoutReport): Promise<void> {
  if (isHashedRecord(raw)) return;
  const to = movedTo(raw);
  if (to !== undefined) {
    // `name` is the old sid: its hash's name, and the new sid's (a sid kept by a process without hashSids).
    const moved = store.names.nameOf(name);
    const target = store.names.storedName(to.startsWith('#') ? to : store.names.nameOf(to));
    await store.compareAndSet(
      moved,
      undefined,
      movedTombstone(target, true),
      TOMBSTONE_LIFETIME,
      Date.now() + store.timeoutMs,
    );
  }
  await store.remove(store.names.fromKey(name, false));
  report.tombstones++;
}
