/**
 * Before and after: the same-run ratios of the vault and collect benches for an earlier checkout
 * (`--before DIR`, built with `npm run build` and with its node_modules) and this one, in
 * alternating rounds, so that a change can show it made no ratio worse. Each round measures each
 * checkout against its baseline in the same round; the report gives each ratio's median over the
 * rounds.
 *
 * - vault: a child process per checkout and round (bench/compare-vault.child.ts): Vault.write over
 *   the naive one-thread writer, and the 8-field use-gate read's p99 over the naive reader's.
 * - http: both checkouts' `pledge serve` (SQLite) and the references loaded in turn each round:
 *   collect (feedback) over the durable reference (bench/baseline/fastify-sqlite-collect.mjs), as
 *   bench/collect.bench.ts loads them, and one-subject decisions over the bare Fastify route
 *   (bench/baseline/fastify-decide.mjs), as bench/consent.bench.ts does; each ratio is Pledge's
 *   requests/s over the reference's of the same round.
 *
 * `node --import tsx bench/compare.ts --before DIR [--rounds 5] [--seconds 5] [--records 20000]
 * [--reads 100] [--only vault|http]`
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BenchFailure, formatTable, NODE, ROOT, stopServer, summarize } from './lib.js';
import {
  createApiKey,
  loadPosts,
  registerSubjects,
  startOnFreePort,
  type BenchServer,
  type LoadFigures,
} from './servers.js';

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '5' },
    records: { type: 'string', default: '20000' },
    reads: { type: 'string', default: '100' },
    only: { type: 'string' },
  },
});
if (values.before === undefined)
  throw new BenchFailure('--before DIR (an earlier checkout, built) is required');
const BEFORE = path.resolve(values.before);
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const TREES = [
  { label: 'before', root: BEFORE },
  { label: 'after', root: ROOT },
] as const;

interface VaultRound {
  naiveWrite: number;
  pledgeWrite: number;
  naiveReadP99: number;
  pledgeReadP99: number;
}

function vaultRound(root: string): VaultRound {
  const result = spawnSync(
    NODE,
    [
      '--import',
      'tsx',
      'bench/compare-vault.child.ts',
      '--tree',
      root,
      '--records',
      values.records,
      '--reads',
      values.reads,
    ],
    { cwd: ROOT, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
  );
  const line = result.stdout.trim().split('\n').pop() ?? '';
  if (result.status !== 0 || !line.startsWith('{')) {
    throw new BenchFailure(`vault round for ${root} exited ${String(result.status)}\n${result.stderr}`);
  }
  return JSON.parse(line) as VaultRound;
}

const median = (xs: readonly number[]) => summarize(xs).median;
const ratio = (x: number) => `×${x.toFixed(2)}`;
const list = (xs: readonly number[]) => xs.map((x) => x.toFixed(2)).join(', ');

function compareVault(): string {
  const ratios = new Map(TREES.map((t) => [t.label, { write: [] as number[], read: [] as number[] }]));
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which checkout goes first, so drift in the machine's load touches each alike.
    const order = round % 2 === 0 ? TREES : [...TREES].reverse();
    for (const tree of order) {
      const r = vaultRound(tree.root);
      ratios.get(tree.label)!.write.push(r.pledgeWrite / r.naiveWrite);
      ratios.get(tree.label)!.read.push(r.pledgeReadP99 / r.naiveReadP99);
    }
  }
  const rows = TREES.flatMap((t) => {
    const r = ratios.get(t.label)!;
    return [
      [`Vault.write / naive writer`, t.label, ratio(median(r.write)), list(r.write)],
      [`use gate 8 fields p99 / naive reader p99`, t.label, ratio(median(r.read)), list(r.read)],
    ];
  });
  return formatTable(['ratio', 'checkout', 'median', 'rounds'], rows);
}

/** One checkout's server and what the HTTP rounds send it. */
interface HttpTree {
  label: string;
  server: BenchServer;
  /** Collects (feedback) and registers the subjects. */
  collectKey: string;
  /** Asks for decisions (marketing-email). */
  decideKey: string;
  subjects: string[];
}

/**
 * Collect and decisions over HTTP, both checkouts and both references loaded in turn each round:
 * collect over the durable reference, one-subject decisions over the bare Fastify route.
 */
async function compareHttp(): Promise<string> {
  const dirs: string[] = [];
  const trees: HttpTree[] = [];
  const references: BenchServer[] = [];
  try {
    for (const tree of TREES) {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), `pledge-compare-${tree.label}-`));
      dirs.push(dataDir);
      // A checkout from before keys had systems knows no --system: one key does both there.
      const systems = existsSync(path.join(tree.root, 'src/manifest/systems.gate.ts'));
      const collectKey = systems
        ? createApiKey(dataDir, ['collect:write'], {}, tree.root, 'web-app')
        : createApiKey(dataDir, ['collect:write', 'consent:read'], {}, tree.root, null);
      const decideKey = systems
        ? createApiKey(dataDir, ['consent:read'], {}, tree.root, 'marketing-automation')
        : collectKey;
      const server = await startOnFreePort(
        tree.label,
        [path.join(tree.root, 'bin/pledge.js'), 'serve'],
        { PLEDGE_DATA_DIR: dataDir, PLEDGE_RATE_LIMIT: '1000000', PLEDGE_LOG_LEVEL: 'warn' },
        tree.root,
      );
      const subjects = (await registerSubjects(server.base, collectKey, 100)).map((p) => p.subjectId);
      trees.push({ label: tree.label, server, collectKey, decideKey, subjects });
    }
    const durableDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-compare-durable-'));
    dirs.push(durableDir);
    const durable = await startOnFreePort('durable', ['bench/baseline/fastify-sqlite-collect.mjs'], {
      DATA_DIR: durableDir,
    });
    references.push(durable);
    const bare = await startOnFreePort('bare decide', ['bench/baseline/fastify-decide.mjs'], {});
    references.push(bare);
    const collect = (base: string, key: string, subjects: readonly string[], seconds: number) =>
      loadPosts(base, base, {
        path: '/api/v1/collect/feedback',
        key,
        seconds,
        connections: 50,
        body: (n) => ({
          subject: { id: subjects[n % Math.max(1, subjects.length)] },
          data: { message: `The recording export is slow (feedback ${n}).`, rating: 4 },
        }),
      });
    const decide = (base: string, key: string, subjects: readonly string[], seconds: number) =>
      loadPosts(base, base, {
        path: '/api/v1/decisions',
        key,
        seconds,
        connections: 50,
        body: (n) => ({
          subject: subjects[n % subjects.length],
          purpose: 'marketing-email',
          channel: 'email',
        }),
      });
    const referenceSubjects = trees[0]!.subjects;
    // Warm-up.
    for (const t of trees) {
      await collect(t.server.base, t.collectKey, t.subjects, 1);
      await decide(t.server.base, t.decideKey, t.subjects, 1);
    }
    await collect(durable.base, 'none', referenceSubjects, 1);
    await decide(bare.base, 'none', referenceSubjects, 1);
    const ratios = {
      collect: new Map(trees.map((t) => [t.label, [] as number[]])),
      decide: new Map(trees.map((t) => [t.label, [] as number[]])),
    };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? trees : [...trees].reverse();
      const collected = new Map<string, LoadFigures>();
      const decided = new Map<string, LoadFigures>();
      for (const t of order)
        collected.set(t.label, await collect(t.server.base, t.collectKey, t.subjects, SECONDS));
      const durableRun = await collect(durable.base, 'none', referenceSubjects, SECONDS);
      for (const t of order)
        decided.set(t.label, await decide(t.server.base, t.decideKey, t.subjects, SECONDS));
      const bareRun = await decide(bare.base, 'none', referenceSubjects, SECONDS);
      for (const t of trees) {
        ratios.collect
          .get(t.label)!
          .push(collected.get(t.label)!.requestsPerSecond / durableRun.requestsPerSecond);
        ratios.decide.get(t.label)!.push(decided.get(t.label)!.requestsPerSecond / bareRun.requestsPerSecond);
      }
    }
    const rows = (name: string, m: Map<string, number[]>) =>
      trees.map((t) => [name, t.label, ratio(median(m.get(t.label)!)), list(m.get(t.label)!)]);
    return formatTable(
      ['ratio', 'checkout', 'median', 'rounds'],
      [
        ...rows('collect requests/s / durable reference', ratios.collect),
        ...rows('one-subject decisions/s / bare Fastify', ratios.decide),
      ],
    );
  } finally {
    for (const t of trees) await stopServer(t.server.child);
    for (const r of references) await stopServer(r.child);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

const sections: string[] = [];
if (values.only !== 'http') sections.push(compareVault());
if (values.only !== 'vault') sections.push(await compareHttp());
console.log(
  `before: ${BEFORE}; after: ${ROOT}; ${ROUNDS} rounds, alternating, ${values.records} records per ` +
    `write round, ${SECONDS} s per collect run\n\n${sections.join('\n\n')}`,
);
