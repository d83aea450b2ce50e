// What a session store is opened from and can do (store.ts names it in messages and traces).
import type { HandedIn } from './backends/contract.js';

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

/** What decoding a value read from the store needs: the key prefix, maxSize, and where to report an unreadable one. */
export interface Reading {
  readonly keyPrefix: string;
  readonly maxSize: number;
  readonly report: (error: Error) => void;
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

/** A record as a listing sees it: its name under the key prefix (a sid, or a user index) and the stored string. */
export interface ListedRecord {
  readonly name: string;
  readonly raw: string;
}
