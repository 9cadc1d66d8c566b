/**
 * Integrator takeover under `kill -9`: two real `pledge serve` processes on one PostgreSQL database
 * take a stream of collect requests (each writes log entries in its transaction); the process whose
 * worker runs the `audit.integrate` job is killed with SIGKILL while entries are being written, the
 * stream goes on against the other, and the survivor alone must integrate every committed entry:
 * leaf indexes 0..n-1, each once, and a checkpoint of size n, within a bounded time of the kill
 * (read by polling the database against a deadline, never by sleeping). PostgreSQL only: several
 * processes on one SQLite file is not a deployment Pledge supports.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as poll } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { exampleWithTestSystem } from '../helpers/manifests.js';
import { createPostgresDatabase, type PostgresDatabase } from '../helpers/postgres.js';
import {
  buildIfStale,
  createTestSystemKey,
  jsonRequest,
  startServer,
  type Server,
} from '../helpers/serve.js';

/**
 * From the kill until every committed entry is integrated and under a checkpoint: the survivor runs
 * the next slot's job (slots of 5 s) and signs a checkpoint at most 10 s after the last one, so 30 s
 * leaves room for a loaded machine; a takeover through the dead job's lease (5 s, the watchdog's
 * clock skew 5 s and its interval 5 s) and then the checkpoint interval would come close to it.
 */
const TAKEOVER_DEADLINE_MS = 30_000;
/**
 * From the kill until the survivor integrates an entry committed after it: the next slot's job (slots
 * of 5 s, seeded 250 ms after the boundary) on a loaded machine. A takeover through the dead job's
 * lease takes at least 7.5 s (what is left of the 5 s lease, then the watchdog's clock skew of 5 s).
 */
const TAKEOVER_MS = 7_000;
/** Entries the survivor must take after the kill, so the takeover covers writes of its own too. */
const AFTER_KILL_REQUESTS = 40;

interface CollectAnswer {
  subject: { id: string };
  record: { id: string };
}

/** Polls `read` until it answers something other than undefined, or fails at the deadline. */
async function until<T>(what: string, deadline: number, read: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    // A poll interval, not a synchronization: the deadline decides, the condition is re-read.
    await poll(20);
  }
}

describe('the integrator is taken over when its instance is killed', () => {
  let database: PostgresDatabase;
  let client: pg.Client;
  let dataDir: string;
  const servers: Server[] = [];

  before(async () => {
    buildIfStale();
    database = await createPostgresDatabase('pledge_takeover');
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-takeover-'));
  });
  after(async () => {
    for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) await s.stop();
    await client?.end();
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the survivor integrates every committed entry, 0..n-1 once each, under a checkpoint of size n', async (t) => {
    // One data directory (the key file), as instances of one deployment share their keys; a
    // checkpoint file each.
    const env = (name: string) => ({
      PLEDGE_DATA_DIR: dataDir,
      PLEDGE_MANIFEST: exampleWithTestSystem(),
      PLEDGE_LOG_LEVEL: 'info',
      PLEDGE_RATE_LIMIT: '1000000',
      DATABASE_URL: database.url,
      PLEDGE_LOG_CHECKPOINT_FILE: path.join(dataDir, `checkpoints-${name}.jsonl`),
    });
    const key = createTestSystemKey(env('cli'), 'takeover', ['collect:write']);
    const a = await startServer(env('a'));
    servers.push(a);
    const b = await startServer(env('b'));
    servers.push(b);
    const byPid = new Map(servers.map((s) => [s.child.pid, s]));

    const registered = await jsonRequest(a.base, 'POST', '/api/v1/collect/registration', key, {
      jurisdiction: 'US',
      data: {
        email: `takeover-${randomBytes(4).toString('hex')}@example.test`,
        first_name: 'Ada',
        last_name: 'Lovelace',
        password: 'correct horse battery staple',
      },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const subjectId = (registered.body as CollectAnswer).subject.id;

    // Writers on both instances until told to stop; those on the killed one end at its kill.
    let sent = 0;
    const answered = new Map<Server, number>(servers.map((s) => [s, 0]));
    const failures: string[] = [];
    let stopWriting = false;
    const killed = new Set<Server>();
    const writer = async (server: Server) => {
      while (!stopWriting) {
        const n = sent++;
        let res: { status: number; body: unknown };
        try {
          res = await jsonRequest(server.base, 'POST', '/api/v1/collect/feedback', key, {
            subject: { id: subjectId },
            data: { message: `takeover ${n}`, rating: n % 5 },
          });
        } catch (err) {
          if (killed.has(server)) return;
          failures.push(`request ${n} failed: ${String(err)}`);
          return;
        }
        if (res.status === 201) answered.set(server, (answered.get(server) ?? 0) + 1);
        else failures.push(`request ${n}: ${res.status} ${JSON.stringify(res.body)}`);
      }
    };
    const writers = servers.flatMap((s) => [writer(s), writer(s)]);

    try {
      // The holder: the instance whose worker runs the integrate job while entries are being
      // integrated (the chain moves between instances from slot to slot).
      const holder = await until('an instance integrating', performance.now() + 30_000, async () => {
        const r = await client.query<{ worker: string }>(
          `select worker from jobs where type = 'audit.integrate' and state = 'running' and worker is not null`,
        );
        const sizes = await client.query<{ n: string }>(
          'select count(*) as n from audit_events where leaf_index is not null',
        );
        if (Number(sizes.rows[0]?.n ?? 0) < 20 || r.rows.length !== 1) return undefined;
        return byPid.get(Number(r.rows[0]!.worker.split(':')[1]));
      });
      const survivor = servers.find((s) => s !== holder)!;
      const killedAt = performance.now();
      killed.add(holder);
      holder.child.kill('SIGKILL');
      await holder.exited;

      const count = async () =>
        Number((await client.query<{ n: string }>('select count(*) as n from audit_events')).rows[0]!.n);
      const integrated = async () =>
        Number(
          (await client.query<{ size: string }>('select size from log_state where id = 1')).rows[0]?.size ??
            0,
        );
      // An entry committed after the kill: integrating it takes a pass by the survivor.
      const atKill = await count();
      const target = await until(
        'an entry committed after the kill',
        killedAt + TAKEOVER_DEADLINE_MS,
        async () => {
          const c = await count();
          return c > atKill ? c : undefined;
        },
      );
      await until('the survivor to integrate', killedAt + TAKEOVER_DEADLINE_MS, async () =>
        (await integrated()) >= target ? true : undefined,
      );
      const takeoverMs = performance.now() - killedAt;
      assert.ok(
        takeoverMs <= TAKEOVER_MS,
        `the survivor integrated ${Math.round(takeoverMs)} ms after the kill, more than ${TAKEOVER_MS} ms`,
      );

      const afterKill = answered.get(survivor) ?? 0;
      await until('the survivor to answer more requests', killedAt + TAKEOVER_DEADLINE_MS, () =>
        Promise.resolve((answered.get(survivor) ?? 0) >= afterKill + AFTER_KILL_REQUESTS ? true : undefined),
      );
      stopWriting = true;
      await Promise.all(writers);
      assert.deepEqual(failures, [], `the survivor failed requests:\n${survivor.stderr()}`);

      // Every committed entry: the killed instance's uncommitted transactions rolled back with it.
      const n = Number(
        (await client.query<{ n: string }>('select count(*) as n from audit_events')).rows[0]!.n,
      );
      const checkpoint = await until(
        'a checkpoint of every entry',
        killedAt + TAKEOVER_DEADLINE_MS,
        async () => {
          const r = await client.query<{ size: string }>('select max(size) as size from log_checkpoints');
          const size = Number(r.rows[0]?.size ?? 0);
          return size >= n ? size : undefined;
        },
      );
      const tookMs = performance.now() - killedAt;
      assert.equal(checkpoint, n, 'the checkpoint covers exactly the committed entries');

      const leaves = await client.query<{ leaf_index: string | null }>(
        'select leaf_index from audit_events order by leaf_index',
      );
      assert.equal(leaves.rows.length, n);
      assert.deepEqual(
        leaves.rows.map((r) => (r.leaf_index === null ? null : Number(r.leaf_index))),
        Array.from({ length: n }, (_, i) => i),
        'leaf indexes 0..n-1, each once, none left out',
      );
      const state = await client.query<{ size: string }>('select size from log_state where id = 1');
      assert.equal(Number(state.rows[0]?.size), n, "the tree's size is n");
      t.diagnostic(
        `killed the holder (pid ${holder.child.pid}) with ${n} entries committed by the end; ` +
          `the survivor integrated ${Math.round(takeoverMs)} ms after the kill, and all of them under a ` +
          `checkpoint ${Math.round(tookMs)} ms after it`,
      );
    } finally {
      stopWriting = true;
      await Promise.all(writers);
    }
  });
});
