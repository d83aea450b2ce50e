// The Proxy handler behind ctx.session: data keys go to the data object, the names of control members to the
// session behind it, so that Object.keys, spread and JSON.stringify see exactly the user data.
import type { DataChanges } from './changes.js';
import type { StoredData } from './record.js';
import { CONTROL_MEMBERS, controlError } from './session-types.js';

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/** What the handler asks of the session behind it (session.ts's SessionState). */
export interface ProxiedSession {
  /** The value of a control member (`sid`, `permanent`, `regenerate`...). */
  readControl(key: string): unknown;
  /** Sets a writable control member (`permanent`, `modified`, `lifetime`); throws for the others. */
  writeControl(key: string, value: unknown): void;
  /** The object `value` at `key` of `target` was handed to the handler, which may change it in place. */
  handedOut(target: StoredData, key: string, value: object): void;
  /**
   * What the handler does to `target` when it is this session's data: undefined for the data of a session the
   * request left with regenerate(callback), a plain object from then on (passport reads it back).
   */
  changesOf(target: StoredData): DataChanges | undefined;
}

export class SessionProxyHandler implements ProxyHandler<StoredData> {
  readonly #session: ProxiedSession;

  constructor(session: ProxiedSession) {
    this.#session = session;
  }

  get(target: StoredData, key: string | symbol, receiver: unknown): unknown {
    if (typeof key === 'string' && CONTROL_MEMBERS.has(key)) return this.#session.readControl(key);
    // util.inspect(ctx.session) and koa-session's ctx.session[inspect](): the data, as a plain object.
    if (key === INSPECT) {
      return () => {
        this.#session.changesOf(target)?.whole();
        return { ...target };
      };
    }
    if (typeof key === 'string') this.#session.changesOf(target)?.read(key);
    const value = Reflect.get(target, key, receiver);
    if (typeof value === 'object' && value !== null && typeof key === 'string')
      this.#session.handedOut(target, key, value);
    return value;
  }

  set(target: StoredData, key: string | symbol, value: unknown): boolean {
    if (typeof key === 'string' && CONTROL_MEMBERS.has(key)) {
      this.#session.writeControl(key, value);
      return true;
    }
    this.#session.changesOf(target)?.touch(key);
    // defineProperty, not assignment: a key such as "__proto__" stays plain data.
    return Reflect.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  }

  deleteProperty(target: StoredData, key: string | symbol): boolean {
    if (typeof key === 'string' && CONTROL_MEMBERS.has(key)) throw controlError(key);
    if (typeof key === 'string') this.#session.changesOf(target)?.read(key);
    if (Object.hasOwn(target, key)) this.#session.changesOf(target)?.touch(key);
    return Reflect.deleteProperty(target, key);
  }

  defineProperty(target: StoredData, key: string | symbol, descriptor: PropertyDescriptor): boolean {
    if (typeof key === 'string' && CONTROL_MEMBERS.has(key)) throw controlError(key);
    // A descriptor without a value keeps the stored one.
    if (typeof key === 'string') this.#session.changesOf(target)?.read(key);
    this.#session.changesOf(target)?.touch(key);
    return Reflect.defineProperty(target, key, descriptor);
  }

  has(target: StoredData, key: string | symbol): boolean {
    if (typeof key === 'string') this.#session.changesOf(target)?.read(key);
    return Reflect.has(target, key);
  }

  getOwnPropertyDescriptor(target: StoredData, key: string | symbol): PropertyDescriptor | undefined {
    if (typeof key === 'string') this.#session.changesOf(target)?.read(key);
    return Reflect.getOwnPropertyDescriptor(target, key);
  }

  // Frozen, sealed or given another prototype, the data can take no more keys from the payload: all of them first.
  preventExtensions(target: StoredData): boolean {
    this.#session.changesOf(target)?.whole();
    return Reflect.preventExtensions(target);
  }

  setPrototypeOf(target: StoredData, prototype: object | null): boolean {
    this.#session.changesOf(target)?.whole();
    return Reflect.setPrototypeOf(target, prototype);
  }

  ownKeys(target: StoredData): (string | symbol)[] {
    this.#session.changesOf(target)?.whole();
    return Reflect.ownKeys(target);
  }
}
