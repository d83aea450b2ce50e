// How a session is named in the store: the key of a sid in either layout (`<keyPrefix><sid>`, or with hashSids `<keyPrefix><SHA-256 of the sid>`), and names read back from the store.
import { HASHED, sidFingerprint, sidHash } from './sid.js';
import { isUserIndexName } from './user-id.js';

/**
 * A name is a sid (stored in the configured layout), a user index name, or `#` and a key as it is
 * (a sid's hash, or a name read back from the store: an index entry, a retired marker, a listing).
 */
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

  /** The store key of a name. */
  key(name: string): string {
    if (name.startsWith(HASHED)) return this.#prefix + name.slice(1);
    return this.#prefix + (this.#hashed && !isUserIndexName(name) ? sidHash(name) : name);
  }

  /** The one name of a session, whether a sid or a name read back from the store: with `hashSids`, `#<hash>`. Compare names, never a sid with a name. */
  nameOf(sid: string): string {
    if (isUserIndexName(sid)) return sid;
    // Without hashSids a key as it is needs no mark: `#<key>` and `<key>` are one name.
    if (sid.startsWith(HASHED)) return this.#hashed ? sid : sid.slice(1);
    return this.#hashed ? HASHED + sidHash(sid) : sid;
  }

  /** What the store keeps to name a session (an index entry, a retired marker's `to`): with `hashSids` its hash, never the sid. */
  storedName(name: string): string {
    const named = this.nameOf(name);
    return named.startsWith(HASHED) ? named.slice(1) : named;
  }

  /** A name the store kept (storedName), as the store's own methods take it. */
  fromStored(stored: string): string {
    return this.#hashed ? HASHED + stored : stored;
  }

  /**
   * Where a session of `sid` lives in the other layout, from before hashSids was switched: its
   * plain key with `hashSids` (`#<sid>`), its hashed key without (`<hash>`, a key as it is).
   * Undefined for a name that is no sid.
   */
  otherName(sid: string): string | undefined {
    if (sid.startsWith(HASHED) || isUserIndexName(sid)) return undefined;
    return this.#hashed ? HASHED + sid : sidHash(sid);
  }

  /** The safe id of the session `name` names, whose record says whether it is stored under its hash. */
  idOf(name: string, hashedRecord: boolean): string {
    const key = this.storedName(name);
    return sidFingerprint(hashedRecord ? HASHED + key : key);
  }

  /** The safe ids the session `name` may have, when its record is not read: as stored under its sid, or under its hash. */
  idsOf(name: string): string[] {
    return [this.idOf(name, true), this.idOf(name, false)];
  }
}
