#!/usr/bin/env node
// The operator command: `npx koa-kv-session <command>`, configured by the same SESSION_* environment as the app.
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { SessionError } from '../errors.js';
import { BadCursorError, census, listPage, migrate, showSession, type WalkOptions } from './maintenance.js';
import { Committer } from '../commit.js';
import { backendsThat, schemeRow } from '../backends/registry.js';
import { maskPassword } from '../backends/url.js';
import { resolveSettings, type Settings } from '../options.js';
import { Progress } from './progress.js';
import { SessionStore } from '../store.js';
import { UserIndex } from '../users.js';

/** Exit codes, as documented in the README and in `--help`. */
const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, unsupported: 4, missing: 5, interrupted: 130 } as const;

const EXIT_CODES = `Exit codes: 0 done, 1 the store failed, 2 bad usage or configuration, 3 no such session,
4 the store cannot do this (it cannot list its keys), 5 the store's SQLite file or SQL table does
not exist (the command creates nothing), 130 interrupted (safe to run again).`;

/** SQL stores create their file and table when missing; the operator command never does (create=false). */
function withoutCreating(settings: Settings): Settings {
  const { store } = settings;
  if (store.kind !== 'url' || schemeRow(store.scheme)?.creates !== true) return settings;
  const [base, query = ''] = store.url.split(/\?(.*)/s) as [string, string?];
  const params = new URLSearchParams(query);
  params.set('create', 'false');
  return { ...settings, store: { ...store, url: `${base}?${params.toString()}` } };
}

const USAGE = `Usage: koa-kv-session <command> [options]

Commands:
  stats                  count sessions, expired records, users and bytes
  list                   list sessions page by page (sid prefix, expiry, size, user)
  show <sid>             print one session record, decoded (CBOR or JSON)
                         (stats, list, show and purge print JSON with --json)
  revoke <sid>           delete one session
  revoke --user <id>     delete every session of a user (needs SESSION_USER_KEY)
  purge                  delete expired session records
  migrate --to cbor|json rewrite every session record in the other encoding
  help [command]         show this text, or a command's
  --version              print the version of koa-kv-session

"koa-kv-session <command> --help" shows a command's options. The store, key prefix and the rest
come from the same environment as your app: SESSION_STORE, SESSION_KEY_PREFIX, SESSION_USER_KEY,
SESSION_STORE_TIMEOUT, ... (see the README).

${EXIT_CODES}`;

const HELP: Record<string, string> = {
  stats: `Usage: koa-kv-session stats [--json]

Reads every record under SESSION_KEY_PREFIX and prints how many are live sessions (by encoding),
how many have expired and wait for a purge, how many user indexes there are, how many records
cannot be read, and their total size in bytes. Needs a store that can list its keys.
Shows a progress bar on a terminal, progress lines otherwise; Ctrl-C stops it with partial counts.
--json prints the counts as one JSON object (progress still goes to stderr).`,
  list: `Usage: koa-kv-session list [--limit N] [--cursor C] [--json]

Prints one page of sessions: the first 12 characters of the sid, expiry, permanence, size, encoding
and (with SESSION_USER_KEY) the user. --limit sets the page size (default 50; Redis pages are
approximate); the last line gives the command for the next page (--cursor). A cursor holds at
most 12 characters of a sid, never a whole one (DynamoDB's excepted: its Scan resumes only from an
exact key). --json prints {"sessions": [...], "next": cursor or null}. Needs a store that can list
its keys.`,
  show: `Usage: koa-kv-session show <sid> [--json]

Prints the session record stored under <sid> (a cookie value "<sid>.<signature>" works too):
expiry, permanence, encoding, size and the data as JSON. Exits with 3 when there is no such record.
--json prints all of it as one JSON object.`,
  revoke: `Usage: koa-kv-session revoke <sid>
       koa-kv-session revoke --user <id>

Deletes one session (the user is logged out on their next request), or with --user every session
of a user, found through the user index (SESSION_USER_KEY must name the same field as the app's
userKey). Works on every store, memcached and DynamoDB included. Exits with 3 when <sid> has no record.`,
  purge: `Usage: koa-kv-session purge [--json]

Deletes the expired session records under SESSION_KEY_PREFIX in SESSION_STORE: one statement per
batch of rows on SQL backends (bounded memory), nothing to do on Redis (it expires keys itself).
Prints the number of records removed (--json: {"removed": n, ...}).`,
  migrate: `Usage: koa-kv-session migrate --to cbor|json

Rewrites every live session record in the given encoding, keeping its expiry and permanence. Each
record is rewritten with a compare-and-set, so a session the running app changes meanwhile is
never overwritten (it is read and converted again). Records whose data the target encoding cannot
hold exactly (Dates, Maps, binary data in JSON) or that would exceed SESSION_MAX_SIZE are left as
they are and counted. Set SESSION_SERIALIZATION_FORMAT in the app to the same encoding first, so
new writes use it too. Ctrl-C stops after the current page; running it again continues.
Needs a store that can list its keys.`,
};

const LISTING = ['stats', 'list', 'migrate'];
/** The commands that print a JSON document with --json. */
const JSON_COMMANDS = ['stats', 'list', 'show', 'purge'];

interface Run {
  readonly settings: Settings;
  readonly store: SessionStore;
  readonly where: string;
  readonly out: NodeJS.WriteStream;
  readonly err: NodeJS.WriteStream;
  readonly stopped: () => boolean;
  /** --json: one JSON document on stdout instead of the text for people. */
  readonly json: boolean;
}

/** Writes one JSON document (what --json prints), with what JSON has no word for spelled out. */
function writeJson(run: Run, value: unknown): void {
  run.out.write(`${printable(value)}\n`);
}

class UsageError extends Error {}

function countOf(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** An argument that starts with "-" but is a sid (or a whole cookie value), not an option. */
const SID_LIKE = /^-[A-Za-z0-9_-]{15,}(?:\.\S*)?$/;

/** A sid given on the command line; a whole cookie value (`<sid>.<signature>`) is accepted too. */
function sidArgument(value: string | undefined, command: string): string {
  if (value === undefined || value === '') throw new UsageError(`${command} needs a session id: koa-kv-session ${command} <sid>`);
  return value.split('.')[0] as string;
}

/** What a store that cannot list its keys can still do, said plainly. */
function cannotList(run: Run, command: string): number {
  run.err.write(
    `koa-kv-session: ${command} needs a store that can list its keys, and ${run.where} cannot (${backendsThat('list', false).join(' and ')} cannot; ` +
      `${backendsThat('list')
        .filter((name) => name !== 'memory')
        .join(', ')} can).\n` +
      'On this store you can still use: show <sid>, revoke <sid>, revoke --user <id> (with SESSION_USER_KEY) and purge.\n',
  );
  return EXIT.unsupported;
}

async function walkOptions(run: Run, label: string): Promise<WalkOptions & { progress: Progress }> {
  const total = await run.store.countRecords();
  return { progress: new Progress(run.err, label, total), stopped: run.stopped };
}

function interrupted(run: Run, complete: boolean): number {
  if (complete) return EXIT.ok;
  run.err.write('interrupted: the summary above covers the records reached so far; running the command again is safe\n');
  return EXIT.interrupted;
}

async function stats(run: Run): Promise<number> {
  const options = await walkOptions(run, 'stats');
  const counts = await census(run.store, options);
  options.progress.finish();
  if (run.json) {
    const { complete, ...numbers } = counts;
    writeJson(run, { store: run.where, prefix: run.settings.keyPrefix, ...numbers, complete });
    return interrupted(run, counts.complete);
  }
  run.out.write(
    `store       ${run.where}, prefix "${run.settings.keyPrefix}"\n` +
      `sessions    ${counts.sessions} (cbor ${counts.cbor}, json ${counts.json})\n` +
      `expired     ${counts.expired}${counts.expired > 0 ? ' (koa-kv-session purge removes them)' : ''}\n` +
      `markers     ${counts.markers}${counts.markers > 0 ? ' (of revoked or moved sessions, for requests in flight; purged or dropped within minutes)' : ''}\n` +
      `users       ${counts.users}\n` +
      `unreadable  ${counts.unreadable}\n` +
      `bytes       ${counts.bytes}\n`,
  );
  return interrupted(run, counts.complete);
}

async function list(run: Run, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { limit: { type: 'string' }, cursor: { type: 'string' } }, strict: true });
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit must be a whole number from 1 to 10000, got ${JSON.stringify(values.limit)}`);
  const { sessions, cursor } = await listPage(run.store, values.cursor, limit, run.settings.userKey).catch((error: unknown) => {
    throw error instanceof BadCursorError ? new UsageError(error.message) : error;
  });
  const now = Date.now();
  if (run.json) {
    const listed = sessions.map((s) => ({
      sid: s.sid.slice(0, 12),
      expires: Number.isNaN(s.expires) ? null : new Date(s.expires).toISOString(),
      expired: !Number.isNaN(s.expires) && s.expires <= now,
      unreadable: Number.isNaN(s.expires),
      permanent: s.permanent,
      bytes: s.bytes,
      format: s.format ?? null,
      user: s.user ?? null,
    }));
    writeJson(run, { sessions: listed, next: cursor ?? null });
    return EXIT.ok;
  }
  const rows = sessions.map((s) => [
    `${s.sid.slice(0, 12)}…`,
    Number.isNaN(s.expires) ? 'unreadable' : s.expires <= now ? 'expired' : new Date(s.expires).toISOString(),
    s.permanent ? 'yes' : 'no',
    String(s.bytes),
    s.format ?? '-',
    s.user ?? '-',
  ]);
  const header = ['SID', 'EXPIRES', 'PERMANENT', 'BYTES', 'FORMAT', 'USER'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  for (const row of [header, ...rows])
    run.out.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd()}\n`,
    );
  run.out.write(
    cursor === undefined ? `(${countOf(sessions.length, 'session')}, last page)\n` : `(${countOf(sessions.length, 'session')}) next page: koa-kv-session list --limit ${limit} --cursor ${cursor}\n`,
  );
  return EXIT.ok;
}

/** JSON for session data, with what JSON has no word for spelled out. */
function printable(data: unknown): string {
  return JSON.stringify(
    data,
    (_key, value: unknown) => {
      if (typeof value === 'bigint') return `${value}n`;
      if (value instanceof Map) return { '<Map>': [...value] };
      if (value instanceof Set) return { '<Set>': [...value] };
      if (value instanceof Uint8Array) return { '<bytes base64>': Buffer.from(value).toString('base64') };
      if (value && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
        return { '<bytes base64>': Buffer.from((value as { data: number[] }).data).toString('base64') };
      }
      return value === undefined ? '<undefined>' : value;
    },
    2,
  );
}

async function show(run: Run, args: string[]): Promise<number> {
  const sid = sidArgument(args[0], 'show');
  const shown = await showSession(run.store, sid);
  if (shown.status === 'missing') {
    run.err.write(`koa-kv-session: no session record ${sid} under "${run.settings.keyPrefix}" in ${run.where}\n`);
    return EXIT.notFound;
  }
  if (run.json) {
    if (shown.status === 'unreadable') writeJson(run, { sid, unreadable: shown.reason, raw: shown.raw.slice(0, 200) });
    else {
      const { record } = shown;
      writeJson(run, {
        sid,
        expires: new Date(record.expires).toISOString(),
        expired: record.expires <= Date.now(),
        permanent: record.permanent,
        created: record.created === undefined ? null : new Date(record.created).toISOString(),
        format: record.format,
        recordFormat: record.recordFormat,
        bytes: shown.bytes,
        data: shown.data,
      });
    }
    return EXIT.ok;
  }
  if (shown.status === 'unreadable') {
    run.out.write(`sid        ${sid}\nunreadable ${shown.reason}\nraw        ${shown.raw.slice(0, 200)}${shown.raw.length > 200 ? '…' : ''}\n`);
    return EXIT.ok;
  }
  const { record } = shown;
  const state = record.expires <= Date.now() ? ' (expired)' : '';
  run.out.write(
    `sid        ${sid}\nexpires    ${new Date(record.expires).toISOString()}${state}\npermanent  ${record.permanent}\n` +
      `created    ${record.created === undefined ? 'unknown' : new Date(record.created).toISOString()}\n` +
      `format     ${record.format} (record format ${record.recordFormat})\nbytes      ${shown.bytes}\ndata       ${printable(shown.data)}\n`,
  );
  return EXIT.ok;
}

function userIndexOf(run: Run): UserIndex | undefined {
  const userKey = run.settings.userKey;
  return userKey === undefined ? undefined : new UserIndex(run.store, { ...run.settings, userKey });
}

async function revoke(run: Run, args: string[]): Promise<number> {
  // A sid is base64url and may start with "-": such an argument is a sid, not an unknown option.
  const sids = args.filter((arg) => SID_LIKE.test(arg));
  const parsed = parseArgs({ args: args.filter((arg) => !SID_LIKE.test(arg)), options: { user: { type: 'string' } }, allowPositionals: true, strict: true });
  const { values } = parsed;
  const positionals = [...parsed.positionals, ...sids];
  if (values.user !== undefined) {
    if (positionals.length > 0) throw new UsageError('revoke takes either a sid or --user <id>, not both');
    const users = userIndexOf(run);
    if (users === undefined) throw new UsageError("revoke --user needs SESSION_USER_KEY: the session field that holds the user id, as the app's userKey option");
    if (values.user === '') throw new UsageError('--user needs a user id');
    const failures: Error[] = [];
    const revoked = (await new Committer(run.store, run.settings, users).revokeUser(values.user, undefined, (error) => failures.push(error))).length;
    for (const error of failures) run.err.write(`koa-kv-session: ${error.message.replace(/^koa-kv-session: /, '')}\n`);
    run.out.write(`revoked ${countOf(revoked, 'session')} of user ${JSON.stringify(values.user)}\n`);
    return EXIT.ok;
  }
  if (positionals.length > 1) throw new UsageError('revoke takes one sid');
  const sid = sidArgument(positionals[0], 'revoke');
  // As the app's revokeSession(): by compare-and-set, following a session that a racing regenerate() moves.
  if ((await new Committer(run.store, run.settings, userIndexOf(run)).revoke(sid)) === undefined) {
    run.err.write(`koa-kv-session: no session record ${sid} under "${run.settings.keyPrefix}" in ${run.where}\n`);
    return EXIT.notFound;
  }
  run.out.write(`revoked session ${sid}\n`);
  return EXIT.ok;
}

async function purge(run: Run): Promise<number> {
  const removed = await run.store.purge();
  if (run.json) {
    writeJson(run, { removed, prefix: run.settings.keyPrefix, store: run.where });
    return EXIT.ok;
  }
  run.out.write(`removed ${countOf(removed, 'expired session record')} under "${run.settings.keyPrefix}" from ${run.where}\n`);
  return EXIT.ok;
}

async function migrateCommand(run: Run, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { to: { type: 'string' } }, strict: true });
  const to = values.to?.toLowerCase();
  if (to !== 'cbor' && to !== 'json') throw new UsageError(`migrate needs --to cbor or --to json${values.to === undefined ? '' : `, got ${JSON.stringify(values.to)}`}`);
  const options = await walkOptions(run, `migrate to ${to}`);
  const report = await migrate(run.store, to, run.settings.maxSize, options);
  options.progress.finish();
  run.out.write(
    `converted        ${report.converted}\nalready ${to.padEnd(8)} ${report.already}\nexpired          ${report.expired}\n` +
      `left as is: unrepresentable in ${to} ${report.unrepresentable}, over maxSize ${report.tooLarge}, unreadable ${report.unreadable}, ` +
      `changed by the app throughout ${report.busy}\n`,
  );
  return interrupted(run, report.complete);
}

const COMMANDS: Record<string, (run: Run, args: string[]) => Promise<number>> = {
  stats,
  list,
  show,
  revoke,
  purge,
  migrate: migrateCommand,
};

/** The version of the installed package: dist/esm/cli/main.js is three folders below its package.json. */
function packageVersion(): string {
  const file = join(dirname(realpathSync(process.argv[1] as string)), '..', '..', '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** An error's message without our own prefix: the command line says "koa-kv-session <command>:" once. */
function reason(error: unknown): string {
  return String((error as Error)?.message ?? error).replace(/^koa-kv-session: /, '');
}

/**
 * Node 22 warns that node:sqlite is experimental the first time a SQLite store opens it. Apps see
 * that once at start-up; in a command's output it is noise that scripts would have to filter.
 */
function quietSqliteWarning(): void {
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    if (/SQLite is an experimental feature/.test(String((warning as Error)?.message ?? warning))) return;
    emitWarning(warning, ...rest);
  }) as typeof process.emitWarning;
}

async function main(argv: readonly string[], out = process.stdout, err = process.stderr): Promise<number> {
  const [command, ...given] = argv;
  const json = given.includes('--json') && command !== undefined && JSON_COMMANDS.includes(command);
  const args = json ? given.filter((arg) => arg !== '--json') : given;
  if (command === undefined) {
    err.write(`${USAGE}\n`);
    return EXIT.usage;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    out.write(`koa-kv-session ${packageVersion()}\n`);
    return EXIT.ok;
  }
  if (command === 'help' || command === '--help' || command === '-h') {
    const topic = args[0];
    out.write(`${topic !== undefined && HELP[topic] !== undefined ? HELP[topic] : USAGE}\n`);
    return EXIT.ok;
  }
  const handler = COMMANDS[command];
  if (handler === undefined) {
    err.write(`koa-kv-session: unknown command "${command}"\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  if (args.includes('--help') || args.includes('-h')) {
    out.write(`${HELP[command]}\n\n${EXIT_CODES}\n`);
    return EXIT.ok;
  }

  let settings: Settings;
  try {
    settings = resolveSettings({});
  } catch (error) {
    err.write(`${(error as Error).message}\n`);
    return EXIT.usage;
  }
  const where = settings.store.kind === 'url' ? maskPassword(settings.store.url) : 'the configured store';
  const store = new SessionStore(withoutCreating(settings), () => {});
  // Ctrl-C: finish the page in flight, print the summary, exit 130. A second Ctrl-C quits at once.
  let stopping = false;
  const onSigint = (): void => {
    if (stopping) process.exit(EXIT.interrupted);
    stopping = true;
    err.write('\nstopping after the current page (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', onSigint);
  const run: Run = { settings, store, where, out, err, stopped: () => stopping, json };
  try {
    if (LISTING.includes(command) && !(await store.canList())) return cannotList(run, command);
    return await handler(run, args);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err.write(`koa-kv-session ${command}: ${reason(error)}\n(koa-kv-session ${command} --help shows the options)\n`);
      return EXIT.usage;
    }
    if (error instanceof SessionError && error.code === 'SESSION_STORE_MISSING') {
      err.write(`koa-kv-session ${command}: ${reason(error)}\n`);
      return EXIT.missing;
    }
    // Listing commands were checked above; this is a purge on a store that cannot purge.
    if (error instanceof SessionError && error.code === 'SESSION_UNSUPPORTED') {
      err.write(`koa-kv-session ${command}: ${reason(error)}\n`);
      return EXIT.unsupported;
    }
    err.write(`koa-kv-session ${command}: ${reason(error)}\n`);
    return error instanceof SessionError && error.code === 'SESSION_INVALID_OPTION' ? EXIT.usage : EXIT.failed;
  } finally {
    process.off('SIGINT', onSigint);
    await store.close();
  }
}

quietSqliteWarning();
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
