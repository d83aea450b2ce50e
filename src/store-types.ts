// What a session store is opened from and can do, and how messages and traces name it.
import { type HandedIn, notAtomic, type StoreNotice } from './backends/handed-in.js';
import { schemeRow } from './backends/registry.js';
import { maskPassword } from './backends/url.js';
import { SessionError } from './errors.js';

/** What the `store` option resolved to: a connection URL, or something the user hands in. */
export type StoreSpec =
  /** `shown`: the URL as the user gave it, for messages, when `url` carries a parameter they did not type. */
  | { readonly kind: 'url'; readonly url: string; readonly scheme: string; readonly shown?: string }
  | { readonly kind: 'given'; readonly value: object; readonly handed: HandedIn };

/** What the store can do, as `ready()` reports it. */
export interface StoreAbilities {
  /** Compare-and-set in one atomic step: concurrent writes of one session in different processes all land. */
  readonly atomic: boolean;
  /** Can list its keys: what the operator's `stats`, `list` and `migrate` need. */
  readonly list: boolean;
  /** `purge()` works (it resolves with 0 where the server expires keys itself). */
  readonly purge: boolean;
  /**
   * The store deletes expired records itself (Redis, Valkey, memcached, MongoDB); elsewhere the background cleanup
   * (`cleanupInterval`) does.
   */
  readonly ownExpiry: boolean;
}

export interface StoreConfig {
  readonly store: StoreSpec;
  readonly keyPrefix: string;
  /** Keys hold the sid's SHA-256, never the sid (see SessionStore.key). */
  readonly hashSids?: boolean;
  readonly storeTimeout: number;
  readonly storeRetries: number;
  readonly maxSize: number;
}

/** Where the store was opened from, for messages: a masked URL or the adapter's kind. */
export function describeStore(spec: StoreSpec): string {
  if (spec.kind === 'url') return maskPassword(spec.shown ?? spec.url);
  return spec.handed.name;
}

/** The backend as tracing names it: the registry's name for a URL, else what was handed in. */
export function backendName(spec: StoreSpec): string {
  if (spec.kind === 'url') return schemeRow(spec.scheme)?.name ?? spec.scheme;
  return spec.handed.kind;
}

/** A record as a listing sees it: its name under the key prefix (a sid, or a user index) and the stored string. */
export interface ListedRecord {
  readonly name: string;
  readonly raw: string;
}

/** What a user must know of the store at start-up (said once each, as KvSessionWarnings, by kvSession()). */
export function startupNotices(spec: StoreSpec): readonly StoreNotice[] {
  if (spec.kind === 'given') return spec.handed.notices;
  const row = schemeRow(spec.scheme);
  return row === undefined || row.abilities.atomic ? [] : [notAtomic(`the store ${maskPassword(spec.url)}`)];
}

/** What onError hears, once, of a store without atomic compare-and-set (besides the start-up warning). */
export function notAtomicError(spec: StoreSpec): SessionError {
  return new SessionError(
    'SESSION_STORE_NOT_ATOMIC',
    `koa-kv-session: the store (${describeStore(spec)}) has no atomic compare-and-set, so a write reads the session ` +
      `right before it writes: two processes writing one session at the same moment can lose one change. Within one ` +
      `process nothing is lost. Use a store with compare-and-set (see docs/guarantees.md) if several processes share ` +
      `sessions.`,
  );
}
