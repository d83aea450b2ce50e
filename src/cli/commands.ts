// The operator command's commands (stats, list, show, revoke, purge, migrate), each given the store and settings it
// runs on.
import { parseArgs } from 'node:util';
import { hashSids } from './hash-sids.js';
import { BadCursorError, census, hasUserIndex, listPage, showSession } from './maintenance.js';
import { migrate } from './convert.js';
import {
  countOf,
  EXIT,
  interrupted,
  labelOf,
  mustList,
  printable,
  SID_LIKE,
  sidArgument,
  targetOf,
  UsageError,
  walkOptions,
  writeJson,
  type Run,
} from './run.js';
import { purgeExpired } from '../store-scan.js';

const TOMBSTONES_NOTE =
  ' (of revoked or regenerated sessions, for requests in flight; purged or dropped within minutes)';

const SWITCH_OVER = 'yes: a cookie naming no session costs one read again';
const SWITCH_GOES_ON =
  'no: a process with SESSION_HASH_SIDS off is still running (or this run was interrupted): run it again once none is';

async function stats(run: Run): Promise<number> {
  await mustList(run);
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
      `tombstones  ${counts.tombstones}${counts.tombstones > 0 ? TOMBSTONES_NOTE : ''}\n` +
      `users       ${counts.users}\n` +
      `unreadable  ${counts.unreadable}\n` +
      `bytes       ${counts.bytes}\n`,
  );
  return interrupted(run, counts.complete);
}

async function list(run: Run, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { limit: { type: 'string' }, cursor: { type: 'string' } },
    strict: true,
  });
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000)
    throw new UsageError(`--limit must be a whole number from 1 to 10000, got ${JSON.stringify(values.limit)}`);
  await mustList(run);
  const { sessions, cursor } = await listPage(run.store, values.cursor, limit, run.settings.userKey).catch(
    (error: unknown) => {
      throw error instanceof BadCursorError ? new UsageError(error.message) : error;
    },
  );
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
    cursor === undefined
      ? `(${countOf(sessions.length, 'session')}, last page)\n`
      : `(${countOf(sessions.length, 'session')}) next page: koa-kv-session list --limit ${limit} --cursor ${cursor}\n`,
  );
  return EXIT.ok;
}

async function show(run: Run, args: string[]): Promise<number> {
  // "--" ends the options: what follows is the sid, even one that starts with "-".
  const positionals = args[0] === '--' ? args.slice(1) : args;
  if (positionals.length > 1) throw new UsageError('show takes one sid');
  const sid = sidArgument(positionals[0], 'show');
  const label = labelOf(sid).padEnd(10);
  const target = await targetOf(run, sid);
  const shown = target === undefined ? ({ status: 'missing' } as const) : await showSession(run.store, target);
  if (shown.status === 'missing') {
    run.err.write(`koa-kv-session: no session record ${sid} under "${run.settings.keyPrefix}" in ${run.where}\n`);
    return EXIT.notFound;
  }
  if (run.json) {
    if (shown.status === 'unreadable')
      writeJson(run, { [labelOf(sid)]: sid, unreadable: shown.reason, raw: shown.raw.slice(0, 200) });
    else {
      const { record } = shown;
      writeJson(run, {
        [labelOf(sid)]: sid,
        expires: new Date(record.expires).toISOString(),
        expired: record.expires <= Date.now(),
        permanent: record.permanent,
        created: record.created === undefined ? null : new Date(record.created).toISOString(),
        format: record.format,
        bytes: shown.bytes,
        data: shown.data,
      });
    }
    return EXIT.ok;
  }
  if (shown.status === 'unreadable') {
    run.out.write(
      `${label} ${sid}\nunreadable ${shown.reason}\nraw        ` +
        `${shown.raw.slice(0, 200)}${shown.raw.length > 200 ? '…' : ''}\n`,
    );
    return EXIT.ok;
  }
  const { record } = shown;
  const state = record.expires <= Date.now() ? ' (expired)' : '';
  run.out.write(
    `${label} ${sid}\nexpires    ${new Date(record.expires).toISOString()}${state}\npermanent  ${record.permanent}\n` +
      `created    ${record.created === undefined ? 'unknown' : new Date(record.created).toISOString()}\n` +
      `format     ${record.format}\nbytes      ${shown.bytes}\ndata       ${printable(shown.data)}\n`,
  );
  return EXIT.ok;
}

async function revoke(run: Run, args: string[]): Promise<number> {
  // A sid is base64url and may start with "-": such an argument is a sid, not an unknown option.
  const sids = args.filter((arg) => SID_LIKE.test(arg));
  const parsed = parseArgs({
    args: args.filter((arg) => !SID_LIKE.test(arg)),
    options: { user: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const { values } = parsed;
  const positionals = [...parsed.positionals, ...sids];
  if (values.user !== undefined) {
    if (positionals.length > 0) throw new UsageError('revoke takes either a sid or --user <id>, not both');
    if (run.users === undefined)
      throw new UsageError(
        "revoke --user needs SESSION_USER_KEY: the session field that holds the user id, as the app's userKey option",
      );
    if (values.user === '') throw new UsageError('--user needs a user id');
    const failures: Error[] = [];
    const revoked = (await run.revoker.revokeUser(values.user, undefined, (error) => failures.push(error))).length;
    for (const error of failures) run.err.write(`koa-kv-session: ${error.message.replace(/^koa-kv-session: /, '')}\n`);
    run.out.write(`revoked ${countOf(revoked, 'session')} of user ${JSON.stringify(values.user)}\n`);
    return EXIT.ok;
  }
  if (positionals.length > 1) throw new UsageError('revoke takes one sid');
  const sid = sidArgument(positionals[0], 'revoke');
  const target = await targetOf(run, sid);
  // As the app's revokeSession(): by compare-and-set, following a session that a racing regenerate() moves.
  if (target === undefined || (await run.revoker.revoke(target)) === undefined) {
    run.err.write(`koa-kv-session: no session record ${sid} under "${run.settings.keyPrefix}" in ${run.where}\n`);
    return EXIT.notFound;
  }
  run.out.write(`revoked session ${sid}\n`);
  return EXIT.ok;
}

async function purge(run: Run): Promise<number> {
  const removed = await purgeExpired(run.store);
  if (run.json) {
    writeJson(run, { removed, prefix: run.settings.keyPrefix, store: run.where });
    return EXIT.ok;
  }
  run.out.write(
    `removed ${countOf(removed, 'expired session record')} under "${run.settings.keyPrefix}" from ${run.where}\n`,
  );
  return EXIT.ok;
}

async function migrateCommand(run: Run, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { to: { type: 'string' }, 'hash-sids': { type: 'boolean' } },
    strict: true,
  });
  if (values['hash-sids'] === true) {
    if (values.to !== undefined)
      throw new UsageError('migrate takes --to or --hash-sids, not both: run it once for each');
    return migrateToHashes(run);
  }
  const to = values.to?.toLowerCase();
  if (to !== 'cbor' && to !== 'json')
    throw new UsageError(
      `migrate needs --to cbor or --to json${values.to === undefined ? '' : `, got ${JSON.stringify(values.to)}`}`,
    );
  await mustList(run);
  const options = await walkOptions(run, `migrate to ${to}`);
  const report = await migrate(run.store, to, run.settings.maxSize, options);
  options.progress.finish();
  run.out.write(
    `converted        ${report.converted}\nalready ${to.padEnd(8)} ${report.already}\nexpired          ` +
      `${report.expired}\n` +
      `left as is: unrepresentable in ${to} ${report.unrepresentable}, over maxSize ${report.tooLarge}, unreadable ` +
      `${report.unreadable}, ` +
      `changed by the app throughout ${report.busy}, tombstones ${report.tombstones}\n`,
  );
  return interrupted(run, report.complete);
}

async function migrateToHashes(run: Run): Promise<number> {
  if (!run.settings.hashSids) {
    throw new UsageError(
      'migrate --hash-sids moves sessions under the hash of their sid: set SESSION_HASH_SIDS=true, as in the app. ' +
        'The other way cannot be done here (a hash gives no sid back): with hashSids off, each session moves back ' +
        'under its sid at its next request',
    );
  }
  await mustList(run);
  // User indexes name sessions by key: each move must rename its entry, which needs the user field.
  if (run.settings.userKey === undefined && (await hasUserIndex(run.store))) {
    throw new UsageError(
      'the store holds user indexes: set SESSION_USER_KEY as in the app, so that each moved session keeps its entry ' +
        '(revoking a user must find it)',
    );
  }
  const options = await walkOptions(run, 'migrate to hashed sids');
  const { userKey, absoluteLifetime } = run.settings;
  const report = await hashSids(run.store, run.users, userKey, absoluteLifetime, options);
  options.progress.finish();
  run.out.write(
    `moved            ${report.moved}\nalready hashed   ${report.already}\ntombstones moved ${report.tombstones}\n` +
      `left as is: expired or ended meanwhile ${report.skipped}, unreadable ${report.unreadable}\n` +
      `switch over      ${report.switchOver ? SWITCH_OVER : SWITCH_GOES_ON}\n`,
  );
  return interrupted(run, report.complete);
}

/** The commands by name. */
export const COMMANDS: Record<string, (run: Run, args: string[]) => Promise<number>> = {
  stats,
  list,
  show,
  revoke,
  purge,
  migrate: migrateCommand,
};
