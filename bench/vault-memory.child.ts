/**
 * The child process of bench/vault-memory.bench.ts, so the resident set it samples is its own:
 * writes registration records (through Vault.write, or with bare better-sqlite3 for the baseline)
 * and prints one JSON line per sample to stdout: `{"records":N,"rssKiB":R,"heapUsedKiB":H}`, then
 * `{"done":true,"seconds":S,"peakKiB":P}`.
 *
 * `node --import tsx bench/vault-memory.child.ts --engine pledge|bare --records N --every M
 *  [--subjects 1000] [--batch 500] [--in-flight 4]`
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { readMemory } from './lib.js';
import { createSubjects, openBareSqlite, openBenchApp, writeRegistrations } from './vault-fixture.js';

const { values } = parseArgs({
  options: {
    engine: { type: 'string' },
    records: { type: 'string' },
    every: { type: 'string' },
    subjects: { type: 'string', default: '1000' },
    batch: { type: 'string', default: '500' },
    'in-flight': { type: 'string', default: '4' },
  },
});
const records = Number(values.records);
const every = Number(values.every);
const subjects = Number(values.subjects);
const batch = Number(values.batch);
const inFlight = Number(values['in-flight']);
if (![records, every, subjects, batch, inFlight].every((n) => Number.isInteger(n) && n > 0)) {
  throw new Error('--records, --every, --subjects, --batch and --in-flight must be positive integers');
}

let nextSample = every;
/** Prints a sample each time the committed count passes a multiple of `every`. */
function onProgress(committed: number): void {
  while (committed >= nextSample) {
    const { rssKiB } = readMemory(process.pid);
    const heapUsedKiB = Math.round(process.memoryUsage().heapUsed / 1024);
    process.stdout.write(`${JSON.stringify({ records: nextSample, rssKiB, heapUsedKiB })}\n`);
    nextSample += every;
  }
}

const start = performance.now();
switch (values.engine) {
  case 'pledge': {
    const bench = await openBenchApp();
    try {
      const ids = await createSubjects(bench, subjects);
      await writeRegistrations(bench, ids, { total: records, batch, inFlight }, onProgress);
    } finally {
      await bench.close();
    }
    break;
  }
  case 'bare': {
    const bare = await openBareSqlite(subjects);
    try {
      bare.insertRegistrations(records, batch, 0, onProgress);
    } finally {
      bare.close();
    }
    break;
  }
  default:
    throw new Error(`--engine must be pledge or bare, not ${String(values.engine)}`);
}
process.stdout.write(
  `${JSON.stringify({ done: true, seconds: (performance.now() - start) / 1000, peakKiB: readMemory(process.pid).peakKiB })}\n`,
);
