/**
 * One round of bench/compare.ts's vault comparison, in a process of its own: the naive writer and
 * reader of this checkout (bench/vault-fixture.ts) and Pledge's Vault.write and use gate of the
 * checkout at `--tree`, through that checkout's own bench fixture, one after the other in this
 * process. Prints one JSON line: records/s of each writer and the p99 of each reader.
 *
 * `node --import tsx bench/compare-vault.child.ts --tree DIR --records N --reads R`
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { BenchFailure, summarize } from './lib.js';
import { openNaiveVault } from './vault-fixture.js';
import type * as Fixture from './vault-fixture.js';

const { values } = parseArgs({
  options: {
    tree: { type: 'string' },
    records: { type: 'string', default: '20000' },
    reads: { type: 'string', default: '30' },
  },
});
if (values.tree === undefined) throw new BenchFailure('--tree DIR is required');
const records = Number(values.records);
const reads = Number(values.reads);
const SUBJECTS = 1_000;
const BATCH = 500;
const IN_FLIGHT = 4;
const READ_RECORDS = 1_000;

// The other checkout's fixture, with its own createApp: the same exports as this one's.
const fixture = (await import(
  pathToFileURL(path.join(path.resolve(values.tree), 'bench/vault-fixture.ts')).href
)) as typeof Fixture;

async function timed(work: () => unknown): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

// The naive writer, then the naive reader on a subject of its own with 1,000 records.
const naiveWriter = await openNaiveVault(SUBJECTS);
const naiveWriteMs = await timed(() => naiveWriter.writeRegistrations(records, BATCH));
naiveWriter.checkEnvelope();
naiveWriter.close();
const naiveReader = await openNaiveVault(1);
naiveReader.writeRegistrations(READ_RECORDS, BATCH);
const naiveReads: number[] = [];
for (let i = -5; i < reads; i++) {
  let opened = 0;
  const ms = await timed(() => (opened = naiveReader.read(naiveReader.subjects[0]!).values));
  if (opened !== READ_RECORDS * 8) throw new BenchFailure(`the naive reader opened ${opened} values`);
  if (i >= 0) naiveReads.push(ms);
}
naiveReader.close();

// Pledge of the other checkout: the first record of each subject untimed, then the timed write.
const bench = await fixture.openBenchApp();
let pledgeWriteMs: number;
const pledgeReads: number[] = [];
try {
  const subjects = await fixture.createSubjects(bench, SUBJECTS);
  await fixture.writeRegistrations(bench, subjects, { total: SUBJECTS, batch: BATCH, inFlight: IN_FLIGHT });
  pledgeWriteMs = await timed(() =>
    fixture.writeRegistrations(bench, subjects, {
      total: records,
      batch: BATCH,
      inFlight: IN_FLIGHT,
      offset: SUBJECTS,
    }),
  );
  const customer = await bench.app.vault.createSubject(bench.ctx, { kind: 'customer', jurisdiction: 'US' });
  for (let i = 0; i < READ_RECORDS; i += BATCH) {
    const inputs = [];
    for (let j = i; j < i + BATCH; j++) inputs.push(fixture.registrationRecord(customer.id, 10_000_000 + j));
    await bench.app.vault.write(bench.ctx, inputs);
  }
  for (let i = -5; i < reads; i++) {
    let fields = 0;
    const ms = await timed(async () => {
      const result = await bench.app.vault.read(bench.ctx, customer.id, 'provide-service');
      fields = result.records.reduce((s, r) => s + Object.keys(r.fields).length, 0);
    });
    if (fields !== READ_RECORDS * 8) throw new BenchFailure(`the use gate returned ${fields} fields`);
    if (i >= 0) pledgeReads.push(ms);
  }
} finally {
  await bench.close();
}

console.log(
  JSON.stringify({
    naiveWrite: (records / naiveWriteMs) * 1000,
    pledgeWrite: (records / pledgeWriteMs) * 1000,
    naiveReadP99: summarize(naiveReads).p99,
    pledgeReadP99: summarize(pledgeReads).p99,
    naiveReadP50: summarize(naiveReads).median,
    pledgeReadP50: summarize(pledgeReads).median,
  }),
);
