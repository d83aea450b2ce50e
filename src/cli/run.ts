// What every command of the operator command runs with (the store, the settings, the output streams), and the
// arguments and output they share: exit codes, sids, safe ids and key prefixes given on the command line, JSON.
import { backendsThat } from '../backends/registry.js';
import type { Settings } from '../settings.js';
import type { SessionStore } from '../store.js';
import type { UserIndex } from '../users.js';
import type { Revoker } from '../revoke.js';
import { canList, countRecords } from '../store-scan.js';
import { findByPrefix, findBySafeId, type WalkOptions } from './maintenance.js';
import { Progress } from './progress.js';

/** Exit codes, as documented in the README and in `--help`. */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, unsupported: 4, missing: 5, interrupted: 130 } as const;

/** What a command runs with: the settings, the store, where it is (masked), the output streams, Ctrl-C and --json. */
export interface Run {
  readonly settings: Settings;
  readonly store: SessionStore;
  /** The index of each user's sessions, with SESSION_USER_KEY. */
  readonly users: UserIndex | undefined;
  readonly revoker: Revoker;
  readonly where: string;
  readonly out: NodeJS.WriteStream;
  readonly err: NodeJS.WriteStream;
  readonly stopped: () => boolean;
  /** --json: one JSON document on stdout instead of the text for people. */
  readonly json: boolean;
}

/** Writes one JSON document (what --json prints), with what JSON has no word for spelled out. */
export function writeJson(run: Run, value: unknown): void {
  run.out.write(`${printable(value)}\n`);
}

/** Bad usage of a command: exit code 2, with a pointer to its --help. */
export class UsageError extends Error {}

export function countOf(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** An argument that starts with "-" but is a sid (or a whole cookie value), not an option. */
export const SID_LIKE = /^-[A-Za-z0-9_-]{15,}(?:\.\S*)?$/;

/**
 * A sid given on the command line; a whole cookie value (`<sid>.<signature>`) is accepted too, and
 * the start of a key as `list` prints it, with its ellipsis.
 */
export function sidArgument(value: string | undefined, command: string): string {
  if (value === undefined || value === '')
    throw new UsageError(`${command} needs a session id: koa-kv-session ${command} <sid>`);
  // "~" never occurs in a sid: a user index or the layout record, which only the library writes.
  if (value.startsWith('~')) throw new UsageError(`${value} is no session id (a record of the library's own)`);
  return (value.split('.')[0] as string).replace(/(…|\.\.\.)$/, '');
}

/** What an argument of show is, as its output names it: a safe id, the start of a key, or a sid. */
export function labelOf(argument: string): string {
  return SAFE_ID.test(argument) ? 'id' : LISTED_PREFIX.test(argument) ? 'key' : 'sid';
}

/** A safe id (16 characters, as a devices page shows): never a sid, which has at least 22. */
const SAFE_ID = /^[A-Za-z0-9_-]{16}$/;
/** The start of a stored name, as `list` prints it (12 characters): 8 to 15 accepted. */
const LISTED_PREFIX = /^[A-Za-z0-9_-]{8,15}$/;

/**
 * The session `show` and `revoke` act on: a sid (hashed on the way when the store keeps hashes), or
 * a safe id, found by walking the records; undefined when no stored session has that safe id.
 */
export async function targetOf(run: Run, argument: string): Promise<string | undefined> {
  const safeId = SAFE_ID.test(argument);
  const prefix = LISTED_PREFIX.test(argument);
  if (!safeId && !prefix) return argument;
  const what = safeId ? 'a safe id' : 'the start of a sid';
  if (!(await canList(run.store)))
    throw new UsageError(`${argument} is ${what}, and finding one needs a store that can list its keys; give the sid`);
  if (safeId) return findBySafeId(run.store, argument);
  const found = await findByPrefix(run.store, argument);
  if (found.length > 1)
    throw new UsageError(
      `${argument} starts more than one session's key (${found.length} at least): give more characters, or the sid`,
    );
  return found[0];
}

/** Thrown by mustList(): the command needs a store that can list its keys (main.ts says what else can be done). */
export class CannotList extends Error {}

/**
 * Goes on only on a store that can list its keys: what `stats`, `list` and `migrate` need. Called once a command's
 * arguments and settings are checked, so that a mistake in them is told as such, without a store call.
 */
export async function mustList(run: Run): Promise<void> {
  if (!(await canList(run.store))) throw new CannotList();
}

/** What a store that cannot list its keys can still do, said plainly. */
export function cannotList(run: Run, command: string): number {
  run.err.write(
    `koa-kv-session: ${command} needs a store that can list its keys, and ${run.where} cannot ` +
      `(${backendsThat('list', false).join(' and ')} cannot; ` +
      `${backendsThat('list')
        .filter((name) => name !== 'memory')
        .join(', ')} can).\n` +
      'On this store you can still use: show <sid>, revoke <sid>, revoke --user <id> (with SESSION_USER_KEY) and ' +
      'purge.\n',
  );
  return EXIT.unsupported;
}

export async function walkOptions(run: Run, label: string): Promise<WalkOptions & { progress: Progress }> {
  const total = await countRecords(run.store);
  return { progress: new Progress(run.err, label, total), stopped: run.stopped };
}

export function interrupted(run: Run, complete: boolean): number {
  if (complete) return EXIT.ok;
  run.err.write(
    'interrupted: the summary above covers the records reached so far; running the command again is safe\n',
  );
  return EXIT.interrupted;
}

/** JSON for session data, with what JSON has no word for spelled out. */
export function printable(data: unknown): string {
  return JSON.stringify(
    data,
    (_key, value: unknown) => {
      if (typeof value === 'bigint') return `${value}n`;
      if (value instanceof Map) return { '<Map>': [...value] };
      if (value instanceof Set) return { '<Set>': [...value] };
      if (value instanceof Uint8Array) return { '<bytes base64>': Buffer.from(value).toString('base64') };
      if (
        value &&
        typeof value === 'object' &&
        (value as { type?: unknown }).type === 'Buffer' &&
        Array.isArray((value as { data?: unknown }).data)
      ) {
        return { '<bytes base64>': Buffer.from((value as { data: number[] }).data).toString('base64') };
      }
      return value === undefined ? '<undefined>' : value;
    },
    2,
  );
}
