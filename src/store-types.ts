// What a session store is opened from and can do, and how messages and traces name it.
import type { KeyvAdapterLike, KeyvInstanceLike } from './backends/keyv.js';
import { schemeRow } from './backends/registry.js';
import { maskPassword } from './backends/url.js';

/** What the `store` option resolved to: a connection URL, or something the user hands in. */
export type StoreSpec =
  | { readonly kind: 'url'; readonly url: string; readonly scheme: string }
  | { readonly kind: 'keyv'; readonly keyv: KeyvInstanceLike }
  | { readonly kind: 'adapter'; readonly adapter: KeyvAdapterLike | Map<unknown, unknown> };

/** What the store can do, as `ready()` reports it. */
export interface StoreAbilities {
  /** Compare-and-set in one atomic step: concurrent writes of one session in different processes all land. */
  readonly atomic: boolean;
  /** Can list its keys: what the operator's `stats`, `list` and `migrate` need. */
  readonly list: boolean;
  /** `purge()` works (it resolves with 0 where the server expires keys itself). */
  readonly purge: boolean;
  /** The store deletes expired records itself (Redis, Valkey, memcached, MongoDB); elsewhere the background cleanup (`cleanupInterval`) does. */
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
  if (spec.kind === 'url') return maskPassword(spec.url);
  if (spec.kind === 'keyv') return 'the Keyv instance given as store';
  return spec.adapter instanceof Map ? 'the Map given as store' : 'the Keyv adapter given as store';
}

/** The backend as tracing names it: the registry's name for a URL, else what was handed in. */
export function backendName(spec: StoreSpec): string {
  if (spec.kind === 'url') return schemeRow(spec.scheme)?.name ?? spec.scheme;
  if (spec.kind === 'keyv') return 'Keyv instance';
  return spec.adapter instanceof Map ? 'Map' : 'Keyv adapter';
}

/** A record as a listing sees it: its name under the key prefix (a sid, or a user index) and the stored string. */
export interface ListedRecord {
  readonly name: string;
  readonly raw: string;
}
