/**
 * Crash-resume of a request with a real kill -9, on each engine: a child process runs a request's
 * collect step, then is killed by SIGKILL in the middle of its assemble step (the job's lease still
 * held). Another instance's watchdog re-queues the step only once that lease has expired (a fake
 * clock past it), runs it again and flags it; the finished collect step is not repeated.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext } from '../../src/platform/context.js';
import { childEnv, ROOT } from '../helpers/cli.js';
import { DIALECTS, getTestDatabaseUrlOrThrow, openMigratedTestDatabase } from '../helpers/databases.js';
import { crashInstance } from './fixtures/crash-instance.js';

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url));

function runChild(env: NodeJS.ProcessEnv): Promise<{ stdout: string; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      cwd: ROOT,
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', reject);
    child.on('exit', (_code, signal) => resolve({ stdout, signal }));
  });
}

for (const dialect of DIALECTS) {
  describe(`a request across a kill -9 (${dialect})`, () => {
    test('killed mid-step: resumed elsewhere after the lease, the step flagged, no finished step repeated', async () => {
      const database = await openMigratedTestDatabase(dialect);
      try {
        const secret = randomBytes(32).toString('base64');
        const markers = path.join(os.tmpdir(), `pledge-crash-${randomBytes(6).toString('hex')}.log`);
        const child = await runChild({
          CRASH_DATABASE_URL: dialect === 'postgres' ? getTestDatabaseUrlOrThrow() : '',
          CRASH_SCHEMA: database.schema ?? '',
          CRASH_DATA_DIR: path.dirname(database.location),
          CRASH_SECRET: secret,
          CRASH_MARKERS: markers,
        });
        assert.equal(child.signal, 'SIGKILL', 'the child was killed, not ended');
        assert.doesNotMatch(child.stdout, /not killed/);
        const requestId = child.stdout.trim().split('\n')[0] ?? '';
        const callsIn = () =>
          readFileSync(markers, 'utf8')
            .trim()
            .split('\n')
            .map((l) => l.split(' ')[0]);
        assert.deepEqual(callsIn(), ['collect', 'assemble']);

        // Another instance, its clock past the dead worker's lease (60 s) and the skew allowance.
        const clock = fixedClock(new Date(Date.now() + 70_000));
        const ctx = createContext({ kind: 'cli', id: 'test' }, { clock });
        const alive = crashInstance(database, { clock, secret, markers, killOnAssemble: false });
        const before = await alive.requests.service.view(ctx, requestId);
        assert.equal(before.steps[2]?.status, 'running', 'the killed step was left running');
        assert.equal((await alive.queue.watchdog()).requeued, 1);
        clock.advance(3_600_000);
        for (let i = 0; i < 10 && (await alive.queue.runDue()).claimed > 0; i++);
        const view = await alive.requests.service.view(ctx, requestId);
        assert.equal(view.request.status, 'done');
        assert.deepEqual(callsIn(), ['collect', 'assemble', 'assemble', 'deliver'], 'collect ran once');
        assert.equal(view.steps[2]?.requeued, 1, 'the re-run step is flagged');
        assert.equal(view.request.requeued, true, 'and the request');
        assert.deepEqual(
          view.steps.map((s) => s.status),
          ['done', 'done', 'done', 'done'],
        );
        await alive.queue.stop({ abortAfterMs: 0 });
      } finally {
        await database.cleanup();
      }
    });
  });
}
