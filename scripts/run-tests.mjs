#!/usr/bin/env node
// Runs every test file under test/ with node's test runner and tsx. Node 20's `--test` does not
// expand globs, so the files are listed here; extra arguments are passed through to node.
//
// Node's --test-timeout applies to a whole file as well as to each test in it. 120 s is what
// catches a hung test everywhere, but a few files take minutes by design (the crash test starts and
// kills a server hundreds of times), so they run after the others, in a run of their own with
// their own limit. The exit status is the worst of the runs.
//
// The repository tests need PostgreSQL: with PLEDGE_TEST_DATABASE_URL set they use that server;
// unset, one server is started here for the whole run (test/helpers/embedded-postgres.mjs), its URL
// is passed to the tests in that variable, and it is stopped after them, also on SIGINT or SIGTERM.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../test/helpers/embedded-postgres.mjs';

/** Files that take minutes by design, and the time each may take. */
const LONG = new Map([[path.join('test', 'vault', 'crash.test.ts'), 20 * 60_000]]);
const DEFAULT_TIMEOUT_MS = 120_000;
/** How long the tests have to end after a signal is passed on to them. */
const SIGNAL_GRACE_MS = 10_000;

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return find(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** The test run in progress, and the signal that interrupted the runner, if any. */
let current;
let interrupted;

function run(files, timeoutMs, env) {
  return new Promise((resolve) => {
    // detached: its own process group, so that a signal to the runner reaches node's test runner
    // and the test processes it spawns, and the runner itself waits for them to end.
    current = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        '--test-concurrency=2',
        `--test-timeout=${timeoutMs}`,
        ...flags,
        ...files,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'], env, detached: true },
    );
    current.once('error', (err) => {
      console.error(err);
      resolve(1);
    });
    current.once('exit', (code) => {
      current = undefined;
      resolve(code ?? 1);
    });
  });
}

function signalTests(signal) {
  try {
    process.kill(-current.pid, signal);
  } catch {
    // Already gone.
  }
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted ??= signal;
    if (current === undefined) return;
    signalTests(signal);
    const tests = current;
    setTimeout(() => tests === current && signalTests('SIGKILL'), SIGNAL_GRACE_MS).unref();
  });
}

const args = process.argv.slice(2);
const explicit = args.filter((a) => a.endsWith('.test.ts')).map((f) => path.normalize(f));
const flags = args.filter((a) => !a.endsWith('.test.ts'));
const files = explicit.length > 0 ? explicit : find('test').sort();
const regular = files.filter((f) => !LONG.has(f));
const long = files.filter((f) => LONG.has(f));

let server;
if (!process.env.PLEDGE_TEST_DATABASE_URL) {
  const started = performance.now();
  try {
    server = await startEmbeddedPostgres();
  } catch (err) {
    console.error(`Could not start PostgreSQL for the tests: ${err.message}`);
    console.error('Set PLEDGE_TEST_DATABASE_URL to a running server to use it instead.');
    process.exit(1);
  }
  console.error(`${server.version} for this run at ${server.url} (started in ${ms(started)})`);
}
const env = server === undefined ? process.env : { ...process.env, PLEDGE_TEST_DATABASE_URL: server.url };

let status = 0;
try {
  if (regular.length > 0 && interrupted === undefined) {
    status = Math.max(status, await run(regular, DEFAULT_TIMEOUT_MS, env));
  }
  if (long.length > 0 && interrupted === undefined) {
    status = Math.max(status, await run(long, Math.max(...long.map((f) => LONG.get(f))), env));
  }
} finally {
  if (server !== undefined) {
    const stopping = performance.now();
    await server.stop();
    console.error(`${server.version} stopped in ${ms(stopping)}`);
  }
}
// As a shell reports a death by signal: 128 + its number.
process.exit(interrupted === undefined ? status : 128 + os.constants.signals[interrupted]);

function ms(since) {
  return `${Math.round(performance.now() - since)} ms`;
}
