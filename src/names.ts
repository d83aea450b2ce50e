// How a session is named in the store: the key of a sid in either layout (`<keyPrefix><sid>`, or with hashSids
// `<keyPrefix><SHA-256 of the sid>`), and names that say which layout they are in.
import { createHash } from 'node:crypto';
import { HASHED, sidFingerprint, sidHash } from './sid.js';

/**
 * How sessions are named, besides the sid a cookie carries (which a store with hashSids keys by its
 * hash). Names say which key layout they are in, so that nothing upstream ever takes a sid for a hash:
 * - `#<hash>`: a session stored under the SHA-256 of its sid. The store keeps this very string (user
 *   index entries, a retired tombstone's `to`), and its first 16 characters after `#` are the safe id.
 * - `<sid>`: a session stored under its sid, as stored; with hashSids (one stored before the switch)
 *   it is `!<sid>` as a name, and `<sid>` as stored.
 * - a user index name (`~user~...`).
 */
const PLAIN = '!';
/** Names of records that are no session (a user index `~user~...`, the layout record): never hashed. */
const META = '~';

/** The record that says whether a switch of hashSids is under way (layout-switch.ts). */
export const LAYOUT_NAME = '~layout';

/** Starts the store name of every index: "~" is not base64url, so no sid looks like this. */
export const USER_INDEX_MARK = '~user~';

/** The store name (key without prefix) of a user's index. */
export function userIndexName(user: string): string {
  return USER_INDEX_MARK + createHash('sha256').update(user).digest('base64url');
}

/** True for a store name that is a user index, not a session. */
export function isUserIndexName(name: string): boolean {
  return name.startsWith(USER_INDEX_MARK);
}

function isMeta(name: string): boolean {
  return name.startsWith(META);
}

export class StoreNames {
  readonly #prefix: string;
  readonly #hashed: boolean;

  constructor(keyPrefix: string, hashSids: boolean | undefined) {
    this.#prefix = keyPrefix;
    this.#hashed = hashSids === true;
  }

  /** True with `hashSids`: new records are stored under the hash of their sid. */
  get hashed(): boolean {
    return this.#hashed;
  }

  /** The store key of a name, or of a sid. */
  key(name: string): string {
    return this.#prefix + this.keyOf(name);
  }

  /** The store key of a name, or of a sid, without the key prefix. */
  keyOf(name: string): string {
    if (name.startsWith(HASHED) || name.startsWith(PLAIN)) return name.slice(1);
    return this.#hashed && !isMeta(name) ? sidHash(name) : name;
  }

  /**
   * The one name of a session, whether a sid or a name: with `hashSids`, a sid's is `#<hash>`. Compare names, never a
   * sid with a name.
   */
  nameOf(sid: string): string {
    if (isMeta(sid) || sid.startsWith(HASHED)) return sid;
    if (sid.startsWith(PLAIN)) return this.#hashed ? sid : sid.slice(1);
    return this.#hashed ? HASHED + sidHash(sid) : sid;
  }

  /** What the store keeps to name a session (an index entry, a tombstone's `to`): never a sid with `hashSids`. */
  storedName(name: string): string {
    const named = this.nameOf(name);
    return named.startsWith(PLAIN) ? named.slice(1) : named;
  }

  /** A name the store kept (storedName), as the store's own methods take it. */
  fromStored(stored: string): string {
    if (stored.startsWith(HASHED) || isMeta(stored) || !this.#hashed) return stored;
    return PLAIN + stored;
  }

  /**
   * The name of the session stored under `key` (a listed key, without the prefix), whose record says whether that key
   * is a hash.
   */
  fromKey(key: string, hashedRecord: boolean): string {
    if (isMeta(key)) return key;
    if (hashedRecord) return HASHED + key;
    return this.#hashed ? PLAIN + key : key;
  }

  /**
   * Where a session of `sid` lives in the other layout, from before hashSids was switched: under its
   * sid with `hashSids` (`!<sid>`), under its hash without (`#<hash>`). Undefined for a name that is no sid.
   */
  otherName(sid: string): string | undefined {
    if (sid.startsWith(HASHED) || sid.startsWith(PLAIN) || isMeta(sid)) return undefined;
    return this.#hashed ? PLAIN + sid : HASHED + sidHash(sid);
  }

  /**
   * True when the session `name` (or a sid) names is kept under a hash: what a tombstone written there says in its
   * header.
   */
  isHashed(name: string): boolean {
    return this.nameOf(name).startsWith(HASHED);
  }

  /** The safe id of the session a name or a sid names (what tracing publishes): never a part of a sid. */
  safeId(name: string): string {
    return sidFingerprint(name.startsWith(PLAIN) ? name.slice(1) : name);
  }

  /** The safe id of the session `name` names, whose record says whether it is stored under its hash. */
  idOf(name: string, hashedRecord: boolean): string {
    const key = this.keyOf(name);
    return sidFingerprint(hashedRecord ? HASHED + key : key);
  }

  /**
   * The safe ids the session `name` may have, when its record is not read: as stored under its sid, or under its hash.
   */
  idsOf(name: string): string[] {
    return [this.idOf(name, true), this.idOf(name, false)];
  }
}
