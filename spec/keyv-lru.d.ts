// keyv-lru ships no types: the two classes it exports, as the ecosystem spec uses them.
declare module 'keyv-lru' {
  export class KeyvLru {
    constructor(options?: { max?: number; ttl?: number });
    get(key: string): unknown;
    set(key: string, value: unknown): unknown;
    delete(key: string): boolean;
  }
  export class KeyvLruManagedTtl extends KeyvLru {}
}
