/**
 * One-click unsubscribe across instances: two `pledge serve` processes (the built CLI) share one
 * PostgreSQL database (a database of its own, made for the run) and one data directory (the same
 * key file). The figure is the time from sending an RFC 8058 one-click POST to instance A until
 * instance B answers both `POST /api/v1/decisions` with "not allowed" for that person and
 * `POST /api/v1/mail/suppressions/check` with the person's address suppressed, B having decided
 * for that person just before (so its cache held the old answer). Baseline, interleaved in the
 * same run: the round trip of `GET /healthz` to B. Target: p99 < 1 s.
 *
 * Alone: `npm run build && node --import tsx bench/one-click.bench.ts [--quick]`
 * (PostgreSQL at $PLEDGE_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLinkToken, deriveLinkTokenKey } from '../src/consent/link-tokens.js';
import { Keyring } from '../src/vault/keyring.js';
import {
  BenchFailure,
  formatMs,
  formatRatio,
  formatTable,
  formatTarget,
  isMainModule,
  runAlone,
  stopServer,
  summarize,
  type BenchResult,
  ROOT,
} from './lib.js';
import {
  createApiKey,
  createBenchDatabase,
  registerSubjects,
  startOnFreePort,
  type BenchServer,
} from './servers.js';

/** How many unsubscribes to time. */
export interface OneClickBenchOptions {
  /** Timed unsubscribes (each of a different person), each with a baseline round trip. */
  repetitions: number;
  /** Untimed unsubscribes first (connections, caches, JIT). */
  warmup: number;
  /** Longest wait for B to reflect one unsubscribe before the bench fails. */
  deadlineMs: number;
}

/** The figures of `npm run bench`. */
export const ONE_CLICK_BENCH_DEFAULTS: OneClickBenchOptions = {
  repetitions: 200,
  warmup: 20,
  deadlineMs: 10_000,
};

/** `--quick`: a few, to try the harness. */
export const ONE_CLICK_BENCH_QUICK: OneClickBenchOptions = {
  ...ONE_CLICK_BENCH_DEFAULTS,
  repetitions: 20,
  warmup: 3,
};

const TARGET_MS = 1000;
const PURPOSE = 'marketing-email';
const PLEDGE_ENV = { PLEDGE_RATE_LIMIT: '1000000', PLEDGE_LOG_LEVEL: 'warn', PLEDGE_RETENTION_INTERVAL: '0' };

async function json(base: string, method: 'POST', url: string, key: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new BenchFailure(`${method} ${url}: ${res.status} ${text}`);
  return JSON.parse(text) as unknown;
}

/** Whether B denies marketing e-mail to the person and excludes the address. */
async function reflected(base: string, key: string, subjectId: string, address: string): Promise<boolean> {
  const [decision, check] = await Promise.all([
    json(base, 'POST', '/api/v1/decisions', key, { subject: subjectId, purpose: PURPOSE, channel: 'email' }),
    json(base, 'POST', '/api/v1/mail/suppressions/check', key, { list: PURPOSE, addresses: [address] }),
  ]);
  const allowed = (decision as { decision: { allowed: boolean } }).decision.allowed;
  const suppressed = (check as { suppressed: boolean[] }).suppressed[0] === true;
  return !allowed && suppressed;
}

/** Runs the bench and returns the report section. Throws a BenchFailure on failure. */
export async function runOneClickBench(
  options: OneClickBenchOptions = ONE_CLICK_BENCH_DEFAULTS,
): Promise<BenchResult> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-oneclick-'));
  const database = await createBenchDatabase('pledge_bench_oneclick');
  let a: BenchServer | undefined;
  let b: BenchServer | undefined;
  const samples: number[] = [];
  const baseline: number[] = [];
  const polls: number[] = [];
  const answers: number[] = [];
  try {
    const env = { PLEDGE_DATA_DIR: dataDir, DATABASE_URL: database.url, ...PLEDGE_ENV };
    // One after the other: the first creates the schema and the key file, the second finds them.
    const serve = ['bin/pledge.js', 'serve'];
    a = await startOnFreePort('pledge serve A', serve, env);
    b = await startOnFreePort('pledge serve B', serve, env);
    const signup = createApiKey(dataDir, ['collect:write'], env);
    const key = createApiKey(dataDir, ['consent:read', 'mail:send'], env, ROOT, 'marketing-automation');
    const keyring = await Keyring.load({ dataDir });
    const linkKey = deriveLinkTokenKey(keyring.indexKey);

    const total = options.warmup + options.repetitions;
    const people = await registerSubjects(a.base, signup, total);

    for (const [i, person] of people.entries()) {
      // B decides first, so it holds the person's old answer (allowed) in its cache.
      if (await reflected(b.base, key, person.subjectId, person.address)) {
        throw new BenchFailure(`person ${i} is denied or suppressed before the unsubscribe`);
      }
      const token = createLinkToken(
        linkKey,
        { scope: 'unsubscribe', subjectId: person.subjectId, purpose: PURPOSE, channel: 'email' },
        { now: new Date() },
      );

      const t0 = performance.now();
      const post = fetch(`${a.base}/unsubscribe/one-click/${token}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'List-Unsubscribe=One-Click',
      });
      const answered = post.then(() => performance.now() - t0);
      // Poll B back to back from the moment the POST leaves: A answers after its commit, and B
      // may reflect the change before A's answer arrives.
      let n = 0;
      for (;;) {
        n++;
        if (await reflected(b.base, key, person.subjectId, person.address)) break;
        if (performance.now() - t0 > options.deadlineMs) {
          throw new BenchFailure(
            `instance B did not reflect unsubscribe ${i} within ${options.deadlineMs} ms`,
          );
        }
      }
      const elapsed = performance.now() - t0;
      const res = await post;
      await res.arrayBuffer();
      if (res.status !== 200) throw new BenchFailure(`one-click POST ${i}: ${res.status}`);
      const answerMs = await answered;

      const h0 = performance.now();
      const health = await fetch(`${b.base}/healthz`);
      await health.arrayBuffer();
      const roundTrip = performance.now() - h0;
      if (!health.ok) throw new BenchFailure(`GET /healthz on B: ${health.status}`);

      if (i >= options.warmup) {
        samples.push(elapsed);
        baseline.push(roundTrip);
        polls.push(n);
        answers.push(answerMs);
      }
    }
  } finally {
    if (b) await stopServer(b.child);
    if (a) await stopServer(a.child);
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }

  const s = summarize(samples);
  const base = summarize(baseline);
  const answer = summarize(answers);
  const met = s.p99 < TARGET_MS;
  const missed = met
    ? []
    : [`one-click on A → B denies and suppresses: p99 ${formatMs(s.p99)}; target < ${formatMs(TARGET_MS)}`];
  const markdown = [
    formatTable(
      ['measure', 'n', 'p50', 'p99', 'max', 'baseline p50', 'ratio (p50)', 'target'],
      [
        [
          'one-click POST on A → B denies and suppresses',
          String(s.n),
          formatMs(s.median),
          formatMs(s.p99),
          formatMs(s.max),
          formatMs(base.median),
          formatRatio(s.median, base.median),
          formatTarget({ label: `p99 < ${formatMs(TARGET_MS)}`, met }),
        ],
        [
          'of which: A answers the one-click POST (200, after its commit)',
          String(answer.n),
          formatMs(answer.median),
          formatMs(answer.p99),
          formatMs(answer.max),
          formatMs(base.median),
          formatRatio(answer.median, base.median),
          '—',
        ],
        [
          'baseline: GET /healthz round trip to B',
          String(base.n),
          formatMs(base.median),
          formatMs(base.p99),
          formatMs(base.max),
          formatMs(base.median),
          '×1.00',
          '—',
        ],
      ],
    ),
    '',
    `Two \`pledge serve\` processes (the built CLI, \`bin/pledge.js\`) share a PostgreSQL database made ` +
      `for the run and one data directory (one key file). ${s.n} people registered through A ` +
      `(\`/api/v1/collect/registration\`, US, so marketing e-mail is allowed by default), one ` +
      `unsubscribe each after ${options.warmup} untimed ones. Per person: B decides first (its cache ` +
      `holds "allowed"), then the clock starts as the RFC 8058 POST ` +
      '(`List-Unsubscribe=One-Click`, urlencoded, no cookie) leaves for A, and B is polled back to back ' +
      '(`POST /api/v1/decisions` and `POST /api/v1/mail/suppressions/check` in parallel) until it ' +
      `answers "not allowed" and "suppressed"; the clock stops at that answer (mean ${(
        polls.reduce((x, y) => x + y, 0) / Math.max(1, polls.length)
      ).toFixed(1)} polls). The figure so includes A's transaction, the NOTIFY to B and one poll's ` +
      'round trip. Baseline, right after each: one `GET /healthz` round trip to B.',
  ].join('\n');
  return { title: 'One-click unsubscribe across instances (PostgreSQL)', markdown, missed };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runOneClickBench(quick ? ONE_CLICK_BENCH_QUICK : ONE_CLICK_BENCH_DEFAULTS));
}
