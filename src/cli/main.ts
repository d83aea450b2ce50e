#!/usr/bin/env node
// The operator command: `npx koa-kv-session <command>`, configured by the same SESSION_* environment as the app.
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { maskPassword, schemeRow } from '../backends/registry.js';
import { messageOf, SessionError } from '../errors.js';
import { resolveSettings } from '../options.js';
import type { Settings } from '../settings.js';
import { wire } from '../wiring.js';
import { COMMANDS } from './commands.js';
import { CannotList, cannotList, EXIT, type Run, UsageError } from './run.js';
import { distance } from '../warnings.js';

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
  // Messages name the URL as the user gave it, not with a parameter they never typed.
  return { ...settings, store: { ...store, url: `${base}?${params.toString()}`, shown: store.url } };
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
  migrate --hash-sids    move every session under the hash of its sid (SESSION_HASH_SIDS=true)
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

Prints the session record stored under <sid> (a cookie value "<sid>.<signature>" works too, and so
do a safe id and the 8-15 first characters "list" prints, on stores that list their keys):
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
       koa-kv-session migrate --hash-sids

Rewrites every live session record in the given encoding, keeping its expiry and permanence. Each
record is rewritten with a compare-and-set, so a session the running app changes meanwhile is
never overwritten (it is read and converted again). Records whose data the target encoding cannot
hold exactly (Dates, Maps, binary data in JSON) or that would exceed SESSION_MAX_SIZE are left as
they are and counted. Set SESSION_SERIALIZATION_FORMAT in the app to the same encoding first, so
new writes use it too.

--hash-sids moves every session stored under its sid to the SHA-256 of its sid, as the app's
hashSids does for each session at its next request: switch the app to SESSION_HASH_SIDS=true
first, then run this with the same environment (SESSION_USER_KEY too, so that user indexes follow).
Nobody is signed out. The other way needs no command: with hashSids off, each session moves back
under its sid at its next request (a hash gives no sid back).

Ctrl-C stops after the current page; running it again continues. Needs a store that can list its keys.`,
};

/** The commands that print a JSON document with --json. */
const JSON_COMMANDS = ['stats', 'list', 'show', 'purge'];

/** The version of the installed package: dist/esm/cli/main.js is three folders below its package.json. */
function packageVersion(): string {
  const file = join(dirname(realpathSync(process.argv[1] as string)), '..', '..', '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** An error's message without our own prefix: the command line says "koa-kv-session <command>:" once. */
/** The options of every command, for "did you mean". */
const OPTION_NAMES = ['--limit', '--cursor', '--user', '--to', '--hash-sids', '--json', '--help', '--version'];

/** For an unknown option that is a near miss of one we have: " (did you mean --limit?)". */
function meant(error: unknown): string {
  const given = /Unknown option '(--?[^']+)'/.exec(messageOf(error))?.[1];
  const near = given === undefined ? undefined : OPTION_NAMES.find((name) => distance(given, name) <= 2);
  return near === undefined ? '' : ` (did you mean ${near}?)`;
}

function reason(error: unknown): string {
  return messageOf(error).replace(/^koa-kv-session: /, '');
}

/**
 * Node 22 warns that node:sqlite is experimental the first time a SQLite store opens it. Apps see
 * that once at start-up; in a command's output it is noise that scripts would have to filter.
 */
function quietSqliteWarning(): void {
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    if (/SQLite is an experimental feature/.test(messageOf(warning))) return;
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
    err.write(`${messageOf(error)}\n`);
    return EXIT.usage;
  }
  const where = settings.store.kind === 'url' ? maskPassword(settings.store.url) : 'the configured store';
  // The same parts as the app's (wiring.ts), on a store the command never creates tables in.
  const { store, users, revoker } = wire(withoutCreating(settings), () => {});
  // Ctrl-C: finish the page in flight, print the summary, exit 130. A second Ctrl-C quits at once.
  let stopping = false;
  const onSigint = (): void => {
    if (stopping) process.exit(EXIT.interrupted);
    stopping = true;
    err.write('\nstopping after the current page (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', onSigint);
  const run: Run = { settings, store, users, revoker, where, out, err, stopped: () => stopping, json };
  try {
    return await handler(run, args);
  } catch (error) {
    if (error instanceof CannotList) return cannotList(run, command);
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err.write(
        `koa-kv-session ${command}: ${reason(error)}${meant(error)}\n(koa-kv-session ${command} --help shows the ` +
          `options)\n`,
      );
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
    // Configuration: a bad option, or a store driver that is not installed (the message names the package).
    const configuration =
      error instanceof SessionError &&
      (error.code === 'SESSION_INVALID_OPTION' || error.code === 'SESSION_ADAPTER_MISSING');
    return configuration ? EXIT.usage : EXIT.failed;
  } finally {
    process.off('SIGINT', onSigint);
    await store.close();
  }
}

quietSqliteWarning();
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // The store is closed (within storeTimeout): whatever a driver still holds (a reconnect timer, a
  // socket to a server that does not answer) must not keep a finished command running.
  setTimeout(() => process.exit(code), 1000).unref();
});
