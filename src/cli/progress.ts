// Progress of a long operator command: a redrawn bar on a terminal, plain lines in logs and pipes.

/** Where progress goes: a terminal gets a bar redrawn in place, anything else a line now and then. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

const BAR_WIDTH = 30;
// Terminals are redrawn at most this often. Logs get a line at each tenth of a known total, or every
// STEP records when the total is unknown (Redis cannot count by prefix), and at least every LINE_MS.
const REDRAW_MS = 100;
const LINE_MS = 5000;
const STEP = 25_000;

export class Progress {
  readonly #stream: ProgressStream;
  readonly #label: string;
  readonly #total: number | undefined;
  readonly #started = Date.now();
  #done = 0;
  #lastDraw = this.#started;
  #lastTenth = 0;
  #drawn = false;

  constructor(stream: ProgressStream, label: string, total: number | undefined) {
    this.#stream = stream;
    this.#label = label;
    this.#total = total !== undefined && total > 0 ? total : undefined;
  }

  get done(): number {
    return this.#done;
  }

  /** Counts `n` more records and shows it when it is time to. */
  advance(n: number): void {
    this.#done += n;
    const now = Date.now();
    if (this.#stream.isTTY) {
      if (!this.#drawn || now - this.#lastDraw >= REDRAW_MS) this.#draw(now);
      return;
    }
    const tenth =
      this.#total === undefined ? Math.floor(this.#done / STEP) : Math.floor((10 * this.#done) / this.#total);
    if (tenth > this.#lastTenth || now - this.#lastDraw >= LINE_MS) {
      this.#lastTenth = tenth;
      this.#lastDraw = now;
      this.#stream.write(`${this.#label}: ${this.#describe(now)}\n`);
    }
  }

  /** Leaves the terminal line clean for what comes next. */
  finish(): void {
    if (this.#stream.isTTY && this.#drawn) {
      this.#draw(Date.now());
      this.#stream.write('\n');
    }
  }

  #draw(now: number): void {
    this.#lastDraw = now;
    this.#drawn = true;
    const total = this.#total;
    const bar =
      total === undefined
        ? ''
        : `[${'#'.repeat(Math.round((BAR_WIDTH * Math.min(this.#done, total)) / total)).padEnd(BAR_WIDTH, '-')}] `;
    this.#stream.write(`\r\x1b[2K${this.#label} ${bar}${this.#describe(now)}`);
  }

  #describe(now: number): string {
    const seconds = Math.max((now - this.#started) / 1000, 0.001);
    const rate = Math.round(this.#done / seconds);
    const share =
      this.#total === undefined
        ? ''
        : `/${this.#total} (${Math.min(100, Math.floor((100 * this.#done) / this.#total))}%)`;
    return `${this.#done}${share} records, ${rate}/s`;
  }
}
