/**
 * The share gate over HTTP for one subject: `POST /api/v1/disclosures` (two fields of one subject to
 * the e-mail delivery provider) against the use gate's `GET /api/v1/subjects/:id/data` for the same
 * subjects and purpose, on the same `pledge serve` (SQLite) in the same run, interleaved. The share
 * gate does the use gate's read and more: the flow's checks, the opt-out of distribution, picking
 * the fields, and one more log entry per request in the read's commit.
 * Target: requests/s at least ×0.7 of the use gate's.
 *
 * Alone: `node --import tsx bench/share.bench.ts [--quick]` (needs `npm run build` first).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { createApp } from '../src/app.js';
import { SystemGate } from '../src/manifest/systems.gate.js';
import { loadConfig } from '../src/platform/config.js';
import { createContext } from '../src/platform/context.js';
import { ShareRepository } from '../src/share/share.repository.js';
import { ShareService } from '../src/share/share.service.js';
import { AgreementStanding, NO_LEGAL_APPROVALS } from '../src/share/share.standing.js';
import {
  formatRatio,
  formatTable,
  formatTarget,
  isMainModule,
  runAlone,
  stopServer,
  type BenchResult,
} from './lib.js';
import {
  createApiKey,
  HTTP_LOAD_QUICK,
  loadCells,
  loadFigures,
  loadHeaders,
  loadInterleaved,
  PLEDGE_BENCH_ENV,
  registerSubjects,
  startOnFreePort,
  summarizeRuns,
  type BenchServer,
  type HttpLoadOptions,
  type LoadFigures,
} from './servers.js';

/** How much to run. */
export interface ShareBenchOptions extends HttpLoadOptions {
  /** People registered, each request names one (round robin). */
  subjects: number;
}

/** The figures of `npm run bench`. */
export const SHARE_BENCH_DEFAULTS: ShareBenchOptions = {
  subjects: 1_000,
  seconds: 10,
  rounds: 2,
  warmupSeconds: 2,
  connections: 50,
};

/** `--quick`: to try the harness. */
export const SHARE_BENCH_QUICK: ShareBenchOptions = {
  ...SHARE_BENCH_DEFAULTS,
  ...HTTP_LOAD_QUICK,
  subjects: 200,
};

const TARGET = 0.7;
const USE = 'use gate `GET /api/v1/subjects/:id/data?purpose=provide-service`';
const SHARE = 'share gate `POST /api/v1/disclosures` (email, first_name to email-delivery)';

/** Loads one of the two routes with one subject per request for `seconds`. */
async function load(
  label: string,
  base: string,
  key: string,
  subjects: readonly string[],
  seconds: number,
  connections: number,
): Promise<LoadFigures> {
  let n = 0;
  const share = label === SHARE;
  const result = await autocannon({
    url: base,
    connections,
    duration: seconds,
    requests: [
      {
        method: share ? 'POST' : 'GET',
        path: '/',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        setupRequest: (request) => {
          const subject = subjects[n++ % subjects.length]!;
          return share
            ? {
                ...request,
                path: '/api/v1/disclosures',
                body: JSON.stringify({
                  recipient: 'email-delivery',
                  purpose: 'provide-service',
                  subjects: [subject],
                  fields: ['email', 'first_name'],
                }),
              }
            : {
                ...request,
                path: `/api/v1/subjects/${subject}/data?purpose=provide-service`,
                headers: { authorization: `Bearer ${key}` },
              };
        },
      },
    ],
  });
  return loadFigures(label, result);
}

/** CPU microseconds per call, in-process, of the use gate, the share gate, and the share gate with the manifest's standing. */
interface InProcessFigures {
  read: number;
  share: number;
  shareByAgreement: number;
}

/**
 * The same work in-process, measured as CPU time per call (this process's, SQLite included, since
 * better-sqlite3 runs in it): what the share gate adds to the use gate, and how much of it is the
 * recipient's standing (the acknowledgements' query) rather than the gate's own checks.
 */
async function measureInProcess(subjects: number, calls: number): Promise<InProcessFigures> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-share-cpu-'));
  const app = await createApp({
    ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' }),
    retentionIntervalSeconds: 0,
  });
  try {
    const ctx = createContext({ kind: 'system', id: 'web-app', key: 'bench' });
    const ids: string[] = [];
    for (let i = 0; i < subjects; i++) {
      const r = await app.collect.collect(ctx, 'trial-signup', {
        jurisdiction: 'US',
        data: {
          email: `bench-${i}-x${Math.random().toString(36).slice(2)}@example-customer.test`,
          first_name: 'Ada',
          last_name: 'Lovelace',
        },
      });
      ids.push(r.subject.id);
    }
    const manifest = { manifest: app.active.manifest };
    const byAgreement = new ShareService({
      db: app.database.db,
      repo: new ShareRepository(app.database.db),
      audit: app.audit,
      manifest,
      systems: new SystemGate(manifest),
      vault: app.vault,
      consent: app.consent,
      subjects: app.subjects,
      standing: new AgreementStanding(manifest),
      legal: NO_LEGAL_APPROVALS,
    });
    const body = (id: string) => ({
      recipient: 'email-delivery',
      purpose: 'provide-service',
      subjects: [id],
      fields: ['email', 'first_name'],
    });
    const cpu = async (f: (id: string) => Promise<unknown>): Promise<number> => {
      let i = 0;
      const before = process.cpuUsage();
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          while (i < calls) await f(ids[i++ % ids.length]!);
        }),
      );
      const used = process.cpuUsage(before);
      return (used.user + used.system) / calls;
    };
    const runs: InProcessFigures[] = [];
    for (let round = 0; round < 3; round++) {
      runs.push({
        read: await cpu((id) => app.vault.read(ctx, id, 'provide-service')),
        share: await cpu((id) => app.share.disclose(ctx, body(id))),
        shareByAgreement: await cpu((id) => byAgreement.disclose(ctx, body(id))),
      });
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    return {
      read: median(runs.map((r) => r.read)),
      share: median(runs.map((r) => r.share)),
      shareByAgreement: median(runs.map((r) => r.shareByAgreement)),
    };
  } finally {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Runs the bench and returns the report section. */
export async function runShareBench(options: ShareBenchOptions = SHARE_BENCH_DEFAULTS): Promise<BenchResult> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-share-'));
  let pledge: BenchServer | undefined;
  let runs: Map<string, LoadFigures[]>;
  try {
    const signup = createApiKey(dataDir, ['collect:write']);
    // The web application's key: it serves provide-service, and may read and disclose for it.
    const key = createApiKey(dataDir, ['subjects:read', 'share:write']);
    pledge = await startOnFreePort('pledge serve (SQLite)', ['bin/pledge.js', 'serve'], {
      PLEDGE_DATA_DIR: dataDir,
      ...PLEDGE_BENCH_ENV,
    });
    const people = await registerSubjects(pledge.base, signup, options.subjects, { concurrency: 16 });
    const subjects = people.map((p) => p.subjectId);
    // Both gates answer every subject before timing (the same warm caches for each).
    const check = await fetch(`${pledge.base}/api/v1/disclosures`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        recipient: 'email-delivery',
        purpose: 'provide-service',
        subjects: [subjects[0]],
        fields: ['email', 'first_name'],
      }),
    });
    const answer = (await check.json()) as { disclosure?: { subjects?: Array<{ disclosed?: boolean }> } };
    if (check.status !== 200 || answer.disclosure?.subjects?.[0]?.disclosed !== true)
      throw new Error(`the share gate disclosed nothing: ${check.status} ${JSON.stringify(answer)}`);
    const base = pledge.base;
    runs = await loadInterleaved(
      [
        { label: USE, base },
        { label: SHARE, base },
      ],
      options,
      (label, b, seconds) => load(label, b, key, subjects, seconds, options.connections),
    );
  } finally {
    if (pledge) await stopServer(pledge.child);
    rmSync(dataDir, { recursive: true, force: true });
  }
  const cpu = await measureInProcess(200, options.seconds >= 10 ? 8_000 : 2_000);
  const use = summarizeRuns(runs.get(USE)!);
  const share = summarizeRuns(runs.get(SHARE)!);
  const met = share.requestsPerSecond >= TARGET * use.requestsPerSecond;
  const missed = met
    ? []
    : [
        `share gate: ${Math.round(share.requestsPerSecond)} requests/s, ${formatRatio(share.requestsPerSecond, use.requestsPerSecond)} of the use gate's; target ≥ ×${TARGET}`,
      ];
  const markdown = [
    formatTable(
      ['route', ...loadHeaders('2xx'), 'ratio to the use gate', 'target'],
      [
        [USE, ...loadCells(use), '×1.00', ''],
        [
          SHARE,
          ...loadCells(share),
          formatRatio(share.requestsPerSecond, use.requestsPerSecond),
          formatTarget({ label: `≥ ×${TARGET.toFixed(2)}`, met }),
        ],
      ],
    ),
    '',
    formatTable(
      ['in-process, CPU per call (median of 3 rounds)', 'µs', 'ratio to the use gate'],
      [
        ['use gate `vault.read`', Math.round(cpu.read).toString(), '×1.00'],
        [
          "share gate `share.disclose` (the app's standing: acknowledgements)",
          Math.round(cpu.share).toString(),
          formatRatio(cpu.share, cpu.read),
        ],
        [
          "share gate with the manifest's standing (no acknowledgements query)",
          Math.round(cpu.shareByAgreement).toString(),
          formatRatio(cpu.shareByAgreement, cpu.read),
        ],
      ],
    ),
    '',
    `One \`pledge serve\` on SQLite (${Object.entries(PLEDGE_BENCH_ENV)
      .map(([k, v]) => `${k}=${v}`)
      .join(
        ', ',
      )}) with ${options.subjects.toLocaleString('en-US')} people signed up through /api/v1/collect/trial-signup; ` +
      `one key of the web-app system (subjects:read, share:write); each request names the next subject in turn. ` +
      `autocannon with ${options.connections} connections, ${options.rounds} run(s) of ${options.seconds} s per route interleaved ` +
      `after ${options.warmupSeconds} s of warm-up each. Every request of either route appends to the log in a group commit.`,
  ].join('\n');
  return { title: 'Share gate (`POST /api/v1/disclosures`, one subject)', markdown, missed };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runShareBench(quick ? SHARE_BENCH_QUICK : SHARE_BENCH_DEFAULTS));
}
