// A fake store for unit tests of error paths (never an integration test): a real in-memory store whose calls can be
// made to fail or hang.
import { MemoryBackend } from '../../src/backends/memory.js';

/** A fake store for error paths: a real in-memory store whose calls can be made to fail or hang. */
export class FlakyAdapter extends MemoryBackend {
  failGet = false;
  /** Fail this many reads, then answer again: a transient error. */
  failNextGets = 0;
  gets = 0;
  failSet = false;
  hang = false;
  sets = 0;

  override async get(key: string): Promise<unknown> {
    if (this.hang) return new Promise(() => {});
    this.gets++;
    if (this.failGet) throw new Error('connection reset by peer');
    if (this.failNextGets > 0) {
      this.failNextGets--;
      throw new Error('ECONNRESET');
    }
    return super.get(key);
  }

  override async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    if (this.hang) return new Promise(() => {});
    if (this.failSet) throw new Error("READONLY You can't write against a read only replica.");
    this.sets++;
    return super.set(key, value, ttl);
  }

  override async compareAndSet(
    key: string,
    expected: string,
    next: string,
    ttl: number,
  ): ReturnType<MemoryBackend['compareAndSet']> {
    if (this.hang) return new Promise(() => {});
    if (this.failSet) throw new Error("READONLY You can't write against a read only replica.");
    this.sets++;
    return super.compareAndSet(key, expected, next, ttl);
  }
}
