// Closing a backend within a bound: a server that accepts connections and never answers (stopped with
// SIGSTOP, or hung) must not hang close(), and with it a graceful shutdown or an operator command.
import type { Socket } from 'node:net';
import type { Backend } from './contract.js';

const LATE = Symbol('late');

/** `work`'s value, or LATE once `ms` have passed; the timer holds the process only while it waits. */
function within<T>(work: Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), Math.max(0, ms));
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * Closes the backend `opening` resolves to, within `ms` in all: the goodbye (QUIT, Terminate)
 * waits for the server, so one that does not answer in time has its connections dropped instead
 * (`destroy`). An open still under way by then is dropped as soon as it settles; a failed open
 * left nothing to close.
 */
export async function closeBackend(opening: Promise<Backend>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  const backend = await within(
    opening.catch(() => undefined),
    ms,
  );
  if (backend === LATE) {
    void opening.then(
      (opened) => (opened.destroy !== undefined ? opened.destroy() : opened.close?.()),
      () => {},
    );
    return;
  }
  if (backend?.close === undefined) return;
  const closed = await within(
    backend.close().catch(() => {}),
    deadline - Date.now(),
  );
  if (closed === LATE) backend.destroy?.();
}

/**
 * The sockets a driver opened through a socket factory of ours (pg's and mysql2's `stream` option), to drop them all at
 * once.
 */
export class Sockets {
  readonly #open = new Set<Socket>();

  track<S extends Socket>(socket: S): S {
    this.#open.add(socket);
    socket.once('close', () => this.#open.delete(socket));
    return socket;
  }

  destroyAll(): void {
    for (const socket of this.#open) socket.destroy();
    this.#open.clear();
  }
}
