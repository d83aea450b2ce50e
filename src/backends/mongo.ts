// MongoDB through @keyv/mongo (`mongodb://`, `mongodb+srv://`): get/set/delete only; no compare-and-set, no listing.
import type { Backend } from './contract.js';
import { adapterBackend, type KeyvAdapterLike } from './keyv.js';
import { exportOf, takeParameters, type AnyModule } from './url.js';

/**
 * @keyv/mongo connects once, in its constructor, and when that fails its connection promise never
 * settles: every later call would hang until our timeout, for ever. The open waits for it instead
 * (bounded), so a failure fails the open, which the next request tries again.
 */
async function connected(adapter: AnyModule, timeout: number): Promise<void> {
  let onError: ((error: unknown) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      adapter.connect,
      new Promise((_, reject) => {
        onError = reject;
        adapter.on('error', onError);
        timer = setTimeout(() => reject(new Error(`MongoDB did not connect within ${timeout} ms`)), timeout + 1000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    adapter.off('error', onError);
  }
}

/** `mongodb://...` (`?collection=`). */
export async function openMongo(url: string, scheme: string, timeout: number): Promise<Backend> {
  const KeyvMongo = await exportOf('@keyv/mongo', scheme, 'KeyvMongo');
  const { url: uri, params } = takeParameters(url, ['collection']);
  const adapter = new KeyvMongo(uri, { serverSelectionTimeoutMS: timeout, ...params });
  await connected(adapter, timeout);
  // @keyv/mongo keeps a TTL index on the expiry it stores: MongoDB deletes expired documents itself.
  return { ...adapterBackend(adapter as KeyvAdapterLike, true), expiresKeys: true };
}
