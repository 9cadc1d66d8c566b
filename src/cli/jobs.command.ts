/**
 * `pledge jobs list`: the job queue, newest first (ids of payloads only, never the payloads).
 * `pledge jobs show ID`: one job, with its last error.
 * `pledge jobs retry ID...`: puts dead jobs back in the queue with a fresh set of attempts.
 * `pledge jobs counts`: how many jobs are in each state, per type.
 * The CLI runs no jobs: running servers pick retried jobs up on their next poll.
 * Exit codes: 0 done, 1 invalid configuration, unreachable database, an unknown job, a job that is
 * not dead (retry) or bad input.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { createContext, type Context } from '../platform/context.js';
import type { Database } from '../platform/db/database.js';
import { PledgeError } from '../platform/errors.js';
import type {
  JobCountsView,
  JobView,
  presentJob,
  presentJobCounts,
} from '../platform/jobs/jobs.presenter.js';
import type { JobQueue, JobState } from '../platform/jobs/jobs.service.js';
import { cliUser } from './keys.command.js';
import { alignColumns, printList } from './cli.shared.js';
import { addDataDirOption, runWithDatabase, type DatabaseCommandOptions } from './migrate.command.js';

/** Kept here so that `--help` loads no database code. */
const STATES: readonly JobState[] = ['pending', 'running', 'done', 'dead'];
const MAX_PAGE = 500;

interface FormatOptions extends DatabaseCommandOptions {
  format: 'text' | 'json';
}

interface ListOptions extends FormatOptions {
  state?: JobState;
  type?: string;
  before?: string;
  limit: number;
}

/** Registers `pledge jobs` and its subcommands. */
export function registerJobsCommand(program: Command): void {
  const jobs = program
    .command('jobs')
    .description('the durable job queue: what is waiting, running, done or dead, and retrying dead jobs');

  addDataDirOption(
    jobs
      .command('list')
      .description('list jobs, newest first (the ids in their payloads, never the payloads)')
      .addOption(new Option('--state <state>', 'only jobs in this state').choices([...STATES]))
      .option('--type <type>', 'only jobs of this type')
      .option('--before <id>', 'only jobs older than this one (the last id of the previous page)')
      .option('--limit <n>', `at most this many (1 to ${MAX_PAGE})`, parseLimit, 50)
      .addOption(formatOption()),
  ).action(async (options: ListOptions) => {
    await withQueue(options, async (queue, ctx, present) => {
      const list = (
        await queue.list(ctx, {
          state: options.state,
          type: options.type,
          before: options.before,
          limit: options.limit,
        })
      ).map(present.job);
      printList(options.format, list, 'no jobs', formatList);
    });
  });

  addDataDirOption(
    jobs
      .command('show')
      .description('show one job: its state, attempts, last error and who enqueued it')
      .argument('<id>', 'the job id (from `pledge jobs list`)')
      .addOption(formatOption()),
  ).action(async (id: string, options: FormatOptions) => {
    await withQueue(options, async (queue, ctx, present) => {
      const job = present.job(await queue.getOrThrow(ctx, id));
      if (options.format === 'json') process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
      else process.stdout.write(formatJob(job));
    });
  });

  addDataDirOption(
    jobs
      .command('retry')
      .description('put dead jobs back in the queue, due now, with a fresh set of attempts')
      .argument('<id...>', 'job ids (from `pledge jobs list --state dead`)'),
  ).action(async (ids: string[], options: DatabaseCommandOptions) => {
    await withQueue(options, async (queue, ctx) => {
      let retried = 0;
      for (const id of ids) {
        try {
          await queue.retry(ctx, id);
          retried++;
        } catch (err) {
          if (!(err instanceof PledgeError)) throw err;
          process.stderr.write(`${id}: ${err.message}\n`);
        }
      }
      process.stdout.write(
        `${retried} of ${ids.length} job${ids.length === 1 ? '' : 's'} queued again${retried > 0 ? '; running servers pick them up at their next poll' : ''}\n`,
      );
      if (retried < ids.length) process.exitCode = 1;
    });
  });

  addDataDirOption(
    jobs.command('counts').description('how many jobs are in each state, per type').addOption(formatOption()),
  ).action(async (options: FormatOptions) => {
    await withQueue(options, async (queue, ctx, present) => {
      const counts = present.counts(await queue.counts(ctx));
      if (options.format === 'json') process.stdout.write(`${JSON.stringify(counts, null, 2)}\n`);
      else process.stdout.write(formatCounts(counts));
    });
  });
}

interface Presenters {
  job: typeof presentJob;
  counts: typeof presentJobCounts;
}

/** Opens the database (migrated) and a queue over it that runs nothing, for the administrator. */
async function withQueue(
  options: DatabaseCommandOptions,
  work: (queue: JobQueue, ctx: Context, present: Presenters) => Promise<void>,
): Promise<void> {
  await runWithDatabase(options, async (database: Database) => {
    const [{ JobQueue }, presenter] = await Promise.all([
      import('../platform/jobs/jobs.service.js'),
      import('../platform/jobs/jobs.presenter.js'),
    ]);
    const queue = new JobQueue({ db: database.db });
    const ctx = createContext({ kind: 'cli', id: cliUser() });
    await work(queue, ctx, { job: presenter.presentJob, counts: presenter.presentJobCounts });
  });
}

function formatOption(): Option {
  return new Option('--format <format>', 'output format').choices(['text', 'json']).default('text');
}

function parseLimit(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < 1 || n > MAX_PAGE)
    throw new InvalidArgumentError(`give a whole number from 1 to ${MAX_PAGE}.`);
  return n;
}

function formatList(list: readonly JobView[]): string {
  return alignColumns([
    ['ID', 'TYPE', 'STATE', 'ATTEMPTS', 'RUN AT / FINISHED', 'LAST ERROR'],
    ...list.map((j) => [
      j.id,
      j.type,
      j.state,
      `${j.attempts}/${j.maxAttempts}`,
      j.runAt ?? j.finishedAt ?? j.leaseUntil ?? '-',
      oneLine(j.lastError ?? '-', 60),
    ]),
  ]);
}

function formatJob(j: JobView): string {
  const ids = Object.entries(j.ids).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`);
  const lines: Array<[string, string | null]> = [
    ['id', j.id],
    ['type', j.type],
    ['key', j.key],
    ['state', j.state],
    ['ids', ids.length > 0 ? ids.join(' ') : null],
    ['attempts', `${j.attempts} of ${j.maxAttempts}`],
    ['run at', j.runAt],
    ['lease until', j.leaseUntil],
    ['worker', j.worker],
    ['enqueued by', `${j.enqueuedBy.kind}${j.enqueuedBy.id === null ? '' : ` ${j.enqueuedBy.id}`}`],
    ['request', j.requestId],
    ['created', j.createdAt],
    ['updated', j.updatedAt],
    ['started', j.startedAt],
    ['finished', j.finishedAt],
    ['last error', j.lastError],
  ];
  return `${lines
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${`${k}:`.padEnd(13)}${v ?? ''}`)
    .join('\n')}\n`;
}

function formatCounts(counts: JobCountsView): string {
  return alignColumns([
    ['TYPE', ...STATES.map((s) => s.toUpperCase()), 'OLDEST PENDING'],
    ...counts.types.map((t) => [
      t.type,
      ...STATES.map((s) => String(t.states[s])),
      t.oldestPendingRunAt ?? '-',
    ]),
    ['(all)', ...STATES.map((s) => String(counts.states[s])), ''],
  ]);
}

function oneLine(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
