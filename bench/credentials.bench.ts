/**
 * What a password costs a registration: the argon2id verifier Pledge writes for a credentials field
 * (src/vault/credentials.ts, OWASP's parameters), against the same hash done inline with the same
 * library and parameters (`hashRaw` of @node-rs/argon2, a random salt). Two figures, each the
 * median of alternating rounds in one process, as same-run ratios to the inline hash:
 * - the verifier alone (makeVerifier: salt, hash on the thread pool, PHC text);
 * - per registration: Vault.write of the 8-field registration record with a password, minus the
 *   same write without one (the vault bench's fixture, which leaves the password out).
 * It also reports the event loop's p99 delay while those writes run, since the hash must run on
 * libuv's thread pool, never on the event loop.
 *
 * Alone: `node --import tsx bench/credentials.bench.ts [--quick]`.
 */
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { hashRaw, type Algorithm } from '@node-rs/argon2';
import { CREDENTIALS_CATEGORY } from '../src/manifest/credentials.js';
import { makeVerifier, VERIFIER_PARAMS } from '../src/vault/credentials.js';
import type { WriteRecordInput } from '../src/vault/vault.service.js';
import {
  formatMs,
  formatRatio,
  formatTable,
  isMainModule,
  runAlone,
  summarize,
  type BenchResult,
} from './lib.js';
import { createSubjects, openBenchApp, registrationRecord } from './vault-fixture.js';

/** How many alternating rounds, and how many operations of each kind per round. */
export interface CredentialsBenchOptions {
  rounds: number;
  perRound: number;
}

export const CREDENTIALS_BENCH_DEFAULTS: CredentialsBenchOptions = { rounds: 5, perRound: 30 };
export const CREDENTIALS_BENCH_QUICK: CredentialsBenchOptions = { rounds: 2, perRound: 4 };

// The package's Algorithm is an ambient const enum, which isolated modules cannot read: Argon2id is 2.
const ARGON2ID = 2 as Algorithm;

function inlineHash(secret: string): Promise<Buffer> {
  return hashRaw(secret, { algorithm: ARGON2ID, outputLen: 32, salt: randomBytes(16), ...VERIFIER_PARAMS });
}

/** Mean milliseconds per call of `op`, run `n` times one after another. */
async function perOp(n: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < n; i++) await op(i);
  return (performance.now() - started) / n;
}

const median = (xs: readonly number[]) => summarize(xs).median;

/** Runs the rounds and returns the report section. */
export async function runCredentialsBench(
  options: CredentialsBenchOptions = CREDENTIALS_BENCH_DEFAULTS,
): Promise<BenchResult> {
  const bench = await openBenchApp();
  try {
    const subjects = await createSubjects(bench, options.rounds * options.perRound * 2 + options.perRound);
    let next = 0;
    const record = (withPassword: boolean): WriteRecordInput => {
      const i = next++;
      const r = registrationRecord(subjects[i] ?? '', i);
      if (withPassword) r.fields.password = { category: CREDENTIALS_CATEGORY, value: `correct horse ${i}` };
      return r;
    };
    const write = (withPassword: boolean) => bench.app.vault.write(bench.ctx, [record(withPassword)]);
    // Warm-up: the thread pool, the crypto workers, the data keys' cache and SQLite's pages.
    await perOp(Math.min(4, options.perRound), (i) => inlineHash(`warm ${i}`));
    await perOp(Math.min(4, options.perRound), () => write(true));

    const inline: number[] = [];
    const verifier: number[] = [];
    const withPassword: number[] = [];
    const without: number[] = [];
    const loop = monitorEventLoopDelay({ resolution: 1 });
    const loopDelays: number[] = [];
    const loopWithout: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      inline.push(await perOp(options.perRound, (i) => inlineHash(`secret ${round} ${i}`)));
      verifier.push(await perOp(options.perRound, (i) => makeVerifier(`secret ${round} ${i}`)));
      loop.reset();
      loop.enable();
      without.push(await perOp(options.perRound, () => write(false)));
      loop.disable();
      loopWithout.push(loop.percentile(99) / 1e6);
      loop.reset();
      loop.enable();
      withPassword.push(await perOp(options.perRound, () => write(true)));
      loop.disable();
      loopDelays.push(loop.percentile(99) / 1e6);
    }
    const hash = median(inline);
    const perRegistration = median(withPassword.map((w, i) => w - (without[i] ?? 0)));
    const p = VERIFIER_PARAMS;
    const rows = [
      ['argon2id hash inline (hashRaw, same parameters) — baseline', formatMs(hash), '×1.00'],
      [
        'Pledge verifier alone (makeVerifier)',
        formatMs(median(verifier)),
        formatRatio(median(verifier), hash),
      ],
      [
        'Pledge per registration (Vault.write with a password − without)',
        formatMs(perRegistration),
        formatRatio(perRegistration, hash),
      ],
      ['Vault.write of the 8-field registration, no password', formatMs(median(without)), '—'],
      ['Vault.write of the same with a password', formatMs(median(withPassword)), '—'],
    ];
    const markdown = [
      formatTable(['one at a time, mean per operation (median of rounds)', 'time', 'ratio to inline'], rows),
      '',
      `Parameters: argon2id m=${p.memoryCost} KiB, t=${p.timeCost}, p=${p.parallelism}, 32-byte hash, 16-byte salt. ` +
        `${options.rounds} alternating rounds of ${options.perRound} operations each. ` +
        `Event loop p99 delay (median of rounds) while writing with passwords: ${formatMs(median(loopDelays))}, ` +
        `without: ${formatMs(median(loopWithout))}; the hash itself runs on libuv's thread pool.`,
    ].join('\n');
    return { title: 'Credential hashing per registration', markdown, missed: [] };
  } finally {
    await bench.close();
  }
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) =>
    runCredentialsBench(quick ? CREDENTIALS_BENCH_QUICK : CREDENTIALS_BENCH_DEFAULTS),
  );
}
