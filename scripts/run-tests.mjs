#!/usr/bin/env node
// Runs every test file under test/ with node's test runner and tsx. Node 20's `--test` does not
// expand globs, so the files are listed here; extra arguments are passed through to node.
//
// Node's --test-timeout applies to a whole file as well as to each test in it. 120 s is what
// catches a hung test everywhere, but a few files take minutes by design (the crash test starts and
// kills a server hundreds of times), so they run after the others, in a run of their own with
// their own limit. The exit status is the worst of the runs.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

/** Files that take minutes by design, and the time each may take. */
const LONG = new Map([[path.join('test', 'vault', 'crash.test.ts'), 20 * 60_000]]);
const DEFAULT_TIMEOUT_MS = 120_000;

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return find(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

function run(files, timeoutMs) {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=2', `--test-timeout=${timeoutMs}`, ...flags, ...files],
    { stdio: 'inherit' },
  );
  return result.status ?? 1;
}

const args = process.argv.slice(2);
const explicit = args.filter((a) => a.endsWith('.test.ts')).map((f) => path.normalize(f));
const flags = args.filter((a) => !a.endsWith('.test.ts'));
const files = explicit.length > 0 ? explicit : find('test').sort();
const regular = files.filter((f) => !LONG.has(f));
const long = files.filter((f) => LONG.has(f));

let status = 0;
if (regular.length > 0) status = Math.max(status, run(regular, DEFAULT_TIMEOUT_MS));
if (long.length > 0) status = Math.max(status, run(long, Math.max(...long.map((f) => LONG.get(f)))));
process.exit(status);
