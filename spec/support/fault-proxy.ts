// A TCP proxy in front of a real server that loses what the tests tell it to: the reply to the next write
// (the server applied it, the client never hears), every reply after a delay, random replies, or everything
// (a server that accepts and never answers).
import { createServer, type Server, Socket } from 'node:net';

export interface FaultProxyOptions {
  /** Whether a chunk of the client's bytes holds a write (see WRITES). */
  readonly write: () => (text: string) => boolean;
}

/** One client connection: its bytes to the server, and what the proxy does with the replies. */
interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** The client sent a write whose reply is to be lost. */
  dropping: boolean;
}

export class FaultProxy {
  readonly port: number;
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #write: (text: string) => boolean;
  readonly #pairs = new Set<Pair>();
  /** Writes whose replies are still to be lost. */
  #toDrop = 0;
  /** Each write's reply is lost with this probability (random faults). */
  #dropRate = 0;
  /** Every reply is held this long first. */
  #delay = 0;
  #frozen = false;
  /** How many replies were lost so far. */
  dropped = 0;

  private constructor(
    server: Server,
    port: number,
    target: { host: string; port: number },
    options: FaultProxyOptions,
  ) {
    this.#server = server;
    this.port = port;
    this.#target = target;
    this.#write = options.write();
    server.on('connection', (client) => this.#connect(client));
  }

  /** A proxy on a free loopback port to `target` (host:port), forwarding everything until told otherwise. */
  static async start(target: string, options: FaultProxyOptions): Promise<FaultProxy> {
    // Half-open connections as a real server has them: a client's FIN is not answered by a frozen one.
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const [host, port] = target.split(':') as [string, string];
    return new FaultProxy(server, (server.address() as { port: number }).port, { host, port: Number(port) }, options);
  }

  /**
   * The reply to the next `count` writes (after `skip` more that go through) is lost: the server applies each write,
   * then the connection is cut.
   */
  dropNextReplies(count = 1, skip = 0): void {
    this.#toDrop += count;
    this.#toSkip = skip;
  }

  /** Writes to let through before the ones whose replies are lost. */
  #toSkip = 0;

  /** Each write's reply is lost with probability `rate` (0 stops it). */
  dropRandomly(rate: number): void {
    this.#dropRate = rate;
  }

  /** Every reply reaches the client `ms` late. */
  delayReplies(ms: number): void {
    this.#delay = ms;
  }

  /** Accepts connections and bytes, and answers nothing: a server that hangs (SIGSTOP). `false` answers again. */
  freeze(frozen = true): void {
    this.#frozen = frozen;
  }

  #connect(client: Socket): void {
    const upstream = new Socket({ allowHalfOpen: true });
    const pair: Pair = { client, upstream, dropping: false };
    this.#pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.#pairs.delete(pair);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    // A goodbye is passed on, except by a frozen server (SIGSTOP): the kernel keeps the connection, nobody closes it.
    client.on('end', () => {
      if (!this.#frozen) upstream.end();
    });
    upstream.on('end', () => {
      if (!this.#frozen) client.end();
    });
    upstream.connect(this.#target.port, this.#target.host);
    client.on('data', (chunk) => {
      if (this.#frozen) return;
      if (this.#write(chunk.toString('latin1')) && this.#shouldDrop()) pair.dropping = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (this.#frozen) return;
      if (pair.dropping) {
        // The server has answered, so it applied the write: the client never hears of it.
        this.dropped++;
        end();
        return;
      }
      if (this.#delay > 0) setTimeout(() => client.write(chunk), this.#delay);
      else client.write(chunk);
    });
  }

  #shouldDrop(): boolean {
    if (this.#toSkip > 0 && this.#toDrop > 0) {
      this.#toSkip--;
      return false;
    }
    if (this.#toDrop > 0) {
      this.#toDrop--;
      return true;
    }
    return this.#dropRate > 0 && Math.random() < this.#dropRate;
  }

  /** Cuts every connection (the clients see their server gone). */
  cutAll(): void {
    for (const pair of this.#pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.#pairs.clear();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** What a write looks like on the wire, by protocol: each makes a fresh test for one proxy. */
export const WRITES = {
  /** Redis: the compare-and-set script, or a SET. */
  redis: () => (text: string) => /EVALSHA|\bEVAL\b|\r\nSET\r\n/i.test(text),
  /**
   * SQL: an UPDATE or INSERT in the text; PostgreSQL runs a named statement by its name after its
   * first use (no text), so the names of write statements are remembered as they are prepared.
   */
  sql: () => {
    const named = new Set<string>();
    return (text: string) => {
      for (const [, name] of text.matchAll(/(kvs_[0-9a-f]{6,})\0\s*(?:UPDATE|INSERT|WITH)\b/gi))
        named.add(name as string);
      return /\b(UPDATE|INSERT)\b/i.test(text) || [...named].some((name) => text.includes(name));
    };
  },
} as const;
