/**
 * Real `pledge serve` processes for end-to-end tests: built from the current sources and started on a
 * free port. Importing this registers an `after` hook that kills the servers a test file left
 * running. (A PostgreSQL database several servers can share: ./postgres.ts.)
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after } from 'node:test';
import { childEnv, ROOT } from './cli.js';
import { TEST_SYSTEM } from './manifests.js';

/**
 * The bundled CLI (what bin/pledge.js runs when built): it starts in ~0.5 s instead of ~2 s through
 * tsx. It must be the code under test, so {@link buildIfStale} rebuilds it when a source is newer.
 */
export const BUNDLE = path.join(ROOT, 'dist/cli-bundle/run.js');

function newestMtimeMs(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((newest, e) => {
    const p = path.join(dir, e.name);
    return Math.max(newest, e.isDirectory() ? newestMtimeMs(p) : statSync(p).mtimeMs);
  }, 0);
}

/** Builds dist/ as `npm run build` does (tsc, then the CLI bundle) when any file under src/ is newer. */
export function buildIfStale(): void {
  if (existsSync(BUNDLE) && statSync(BUNDLE).mtimeMs >= newestMtimeMs(path.join(ROOT, 'src'))) return;
  for (const args of [
    [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    ['scripts/bundle-cli.mjs'],
  ]) {
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, `building dist/ failed: node ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  }
}

/** Every server started here that has not exited yet: killed after the test file, whatever happened. */
const running = new Set<ChildProcess>();
after(() => {
  for (const child of running) child.kill('SIGKILL');
});

/** A running server. */
export interface Server {
  child: ChildProcess;
  /** http://127.0.0.1:PORT */
  base: string;
  exited: Promise<void>;
  /** The end of what the server wrote to stderr. */
  stderr: () => string;
  /** Stops it with SIGTERM and waits for it to exit. */
  stop(): Promise<void>;
}

/** Runs the bundled CLI to completion (e.g. `keys create`) and returns its stdout; fails the test if it fails. */
export function runCli(args: string[], env: NodeJS.ProcessEnv): string {
  const r = spawnSync(process.execPath, [BUNDLE, ...args], {
    cwd: ROOT,
    env: childEnv(env),
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `pledge ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

/**
 * Makes an API key of the test manifest's {@link TEST_SYSTEM} with `scopes` through the CLI (`env`
 * names that manifest in PLEDGE_MANIFEST); returns the key.
 */
export function createTestSystemKey(env: NodeJS.ProcessEnv, name: string, scopes: readonly string[]): string {
  const key = runCli(
    ['keys', 'create', '--name', name, '--system', TEST_SYSTEM, '--scope', ...scopes],
    env,
  ).trim();
  assert.match(key, /^pledge_/, 'keys create prints the key');
  return key;
}

/** Starts `pledge serve` on a free port; resolves once it logs "pledge is serving". */
export async function startServer(env: NodeJS.ProcessEnv): Promise<Server> {
  const child = spawn(process.execPath, [BUNDLE, 'serve', '--port', '0', '--host', '127.0.0.1'], {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      resolve();
    }),
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4096)));
  let stdout = '';
  let base: string | undefined;
  const ready = new Promise<string>((resolve, reject) => {
    child.once('exit', (code, signal) =>
      reject(new Error(`pledge serve ended (${signal ?? `code ${code}`}) before serving:\n${stderr}`)),
    );
    child.once('error', reject);
    // Read until the line that says where it serves; after that, drain without parsing (request
    // logs) so the pipe never fills and blocks the server.
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (base !== undefined) return;
      stdout += d;
      let nl: number;
      while ((nl = stdout.indexOf('\n')) >= 0) {
        const line = stdout.slice(0, nl);
        stdout = stdout.slice(nl + 1);
        if (!line.includes('pledge is serving')) continue;
        let url: string | undefined;
        try {
          url = (JSON.parse(line) as { url?: string }).url;
        } catch {
          continue;
        }
        if (url) {
          base = url;
          resolve(url);
          return;
        }
      }
    });
  });
  const timeout = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    const url = await ready;
    return {
      child,
      base: url,
      exited,
      stderr: () => stderr,
      async stop() {
        child.kill('SIGTERM');
        await exited;
      },
    };
  } finally {
    clearTimeout(timeout);
  }
}

/** A JSON request with a bearer key; answers status and parsed body. */
export async function jsonRequest(
  base: string,
  method: 'GET' | 'POST',
  url: string,
  key: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}
