// Requests held open by a test at a point it chooses, so that an overlap of requests is certain, not likely.
import type { Context } from 'koa';
import { gate } from './app.js';

/**
 * Requests with an `x-hold` header stop after the session is loaded, until the test releases them:
 * `held(name)` resolves once the request is inside the handler.
 */
export class Holds {
  readonly #entered = new Map<string, ReturnType<typeof gate>>();
  readonly #release = new Map<string, ReturnType<typeof gate>>();

  #get(map: Map<string, ReturnType<typeof gate>>, name: string) {
    let g = map.get(name);
    if (!g) {
      g = gate();
      map.set(name, g);
    }
    return g;
  }

  async hold(ctx: Context): Promise<void> {
    const name = ctx.get('x-hold');
    if (!name) return;
    this.#get(this.#entered, name).open();
    await this.#get(this.#release, name).wait;
  }

  held(name: string): Promise<void> {
    return this.#get(this.#entered, name).wait;
  }

  release(name: string): void {
    this.#get(this.#release, name).open();
  }
}

/** One app, or two on the same store and prefix: each with its own write lanes, as two processes would have. */
export const MODES = [
  ['one process', 1],
  ['two processes', 2],
] as const;
