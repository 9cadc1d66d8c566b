/**
 * Durability under `kill -9`: a real `pledge serve` takes a stream of collect requests and is killed
 * with SIGKILL at a random moment, PLEDGE_CRASH_ITERATIONS times (200 by default) on the same data,
 * on SQLite and on PostgreSQL. Pledge answers only after the commit that holds a record, so after a
 * last restart every request that was answered 2xx must be there and decrypt through the use gate,
 * and on SQLite `PRAGMA integrity_check` must say ok. PLEDGE_CRASH_SEED draws a run's kill delays again.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { before, describe, test, type TestContext } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { DIALECTS, type TestDialect } from '../helpers/databases.js';
import { createPostgresDatabase } from '../helpers/postgres.js';
import { buildIfStale, createTestSystemKey, startServer, type Server } from '../helpers/serve.js';
import { exampleWithTestSystem } from '../helpers/manifests.js';

const ITERATIONS = Number(process.env.PLEDGE_CRASH_ITERATIONS ?? 200);
const SEED = Number(process.env.PLEDGE_CRASH_SEED ?? randomBytes(4).readUInt32LE(0));
/** Collect requests in flight at once. */
const IN_FLIGHT = 4;
/** The kill comes after a delay drawn from [0, this) once the server serves. */
const MAX_KILL_DELAY_MS = 250;
/** The subjects the feedback records are spread over (registered on the first start). */
const SUBJECTS = 4;

/** A small seeded generator (mulberry32), so a failing run's kill points can be replayed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function kill(server: Server): Promise<void> {
  server.child.kill('SIGKILL');
  await server.exited;
}

interface HttpAnswer {
  status: number;
  body: unknown;
}

/** One HTTP request with a JSON body (or none); rejects when the connection fails. */
function request(
  agent: http.Agent,
  url: string,
  key: string,
  method: 'GET' | 'POST',
  body?: unknown,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      url,
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${key}`,
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('response aborted')));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A request answered 2xx: the record it made. */
interface Acknowledged {
  recordId: string;
  subjectId: string;
  /** The feedback message sent; undefined for the registrations. */
  message: string | undefined;
}

interface CollectAnswer {
  subject: { id: string };
  record: { id: string };
}

interface EngineSetup {
  env: NodeJS.ProcessEnv;
  dataDir: string;
  cleanup(): Promise<void>;
}

/** A fresh data directory (the key file; SQLite's files) and, on PostgreSQL, a database of its own. */
async function setUpEngine(dialect: TestDialect): Promise<EngineSetup> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `pledge-crash-${dialect}-`));
  const common = {
    PLEDGE_DATA_DIR: dataDir,
    PLEDGE_MANIFEST: exampleWithTestSystem(),
    PLEDGE_LOG_LEVEL: 'info',
    PLEDGE_RATE_LIMIT: '1000000',
  };
  if (dialect === 'sqlite') {
    return {
      env: { ...common, DATABASE_URL: '' },
      dataDir,
      cleanup() {
        rmSync(dataDir, { recursive: true, force: true });
        return Promise.resolve();
      },
    };
  }
  const database = await createPostgresDatabase('pledge_crash');
  return {
    env: { ...common, DATABASE_URL: database.url },
    dataDir,
    async cleanup() {
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Registers the subjects the feedback is about (answered 2xx, so acknowledged too). */
async function registerSubjects(server: Server, key: string, acked: Acknowledged[]): Promise<string[]> {
  const agent = new http.Agent({ keepAlive: true });
  try {
    const ids: string[] = [];
    for (let i = 0; i < SUBJECTS; i++) {
      const res = await request(agent, `${server.base}/api/v1/collect/registration`, key, 'POST', {
        jurisdiction: 'US',
        data: {
          email: `crash-${i}-${randomBytes(4).toString('hex')}@example.test`,
          first_name: 'Ada',
          last_name: 'Lovelace',
          password: 'correct horse battery staple',
        },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const body = res.body as CollectAnswer;
      ids.push(body.subject.id);
      acked.push({ recordId: body.record.id, subjectId: body.subject.id, message: undefined });
    }
    return ids;
  } finally {
    agent.destroy();
  }
}

interface Stream {
  /** Requests sent so far (the sequence number of the next one). */
  next: number;
  /** Messages of every feedback request sent, answered or not. */
  sent: Set<string>;
  acked: Acknowledged[];
  /** Answers that were neither 201 nor a broken connection. */
  unexpected: string[];
}

/**
 * Sends feedback requests, IN_FLIGHT at a time, until the server is killed after `killAfterMs`.
 * Every 201 is recorded with its record id, including those that arrive as the kill happens.
 */
async function streamAndKill(
  server: Server,
  key: string,
  subjects: readonly string[],
  stream: Stream,
  killAfterMs: number,
): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  let killed = false;
  const worker = async () => {
    while (!killed) {
      const n = stream.next++;
      const subjectId = subjects[n % subjects.length]!;
      const message = `crash feedback ${n}`;
      stream.sent.add(message);
      let res: HttpAnswer;
      try {
        res = await request(agent, `${server.base}/api/v1/collect/feedback`, key, 'POST', {
          subject: { id: subjectId },
          data: { message, rating: n % 5 },
        });
      } catch (err) {
        // Expected once the server is killed; before that, the server failed on its own.
        if (!killed) stream.unexpected.push(`request ${n} failed before the kill: ${String(err)}`);
        return;
      }
      if (res.status === 201) {
        stream.acked.push({ recordId: (res.body as CollectAnswer).record.id, subjectId, message });
      } else {
        stream.unexpected.push(`request ${n}: ${res.status} ${JSON.stringify(res.body)}`);
      }
    }
  };
  const workers = Array.from({ length: IN_FLIGHT }, worker);
  try {
    // The random point of the kill: part of the test, not a synchronization.
    await delay(killAfterMs);
    killed = true;
    await kill(server);
    await Promise.all(workers);
  } finally {
    killed = true;
    agent.destroy();
  }
}

interface ReadAnswer {
  decision: { allowed: boolean };
  records: Array<{ id: string; source: string; fields: Record<string, { value: unknown }> }>;
  unreadable: number;
  /** The cursor of the next page; null on the last. */
  nextCursor: string | null;
}

/** Reads every subject's records through the use gate and checks each acknowledged one. */
async function verify(server: Server, key: string, subjects: readonly string[], stream: Stream) {
  const agent = new http.Agent({ keepAlive: true });
  try {
    const found = new Map<string, ReadAnswer['records'][number]>();
    for (const id of subjects) {
      // The use gate answers a page at a time (at most 1,000 records): every page is read.
      let cursor: string | undefined;
      do {
        const page = cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`;
        const res = await request(
          agent,
          `${server.base}/api/v1/subjects/${id}/data?purpose=provide-service${page}`,
          key,
          'GET',
        );
        assert.equal(res.status, 200, `reading subject ${id}: ${JSON.stringify(res.body).slice(0, 500)}`);
        const body = res.body as ReadAnswer;
        assert.equal(body.decision.allowed, true);
        assert.equal(body.unreadable, 0, `subject ${id} has records whose keys are gone`);
        for (const r of body.records) found.set(r.id, r);
        cursor = body.nextCursor ?? undefined;
      } while (cursor !== undefined);
    }
    const missing = stream.acked.filter((a) => !found.has(a.recordId));
    assert.deepEqual(
      missing.slice(0, 10),
      [],
      `${missing.length} of ${stream.acked.length} acknowledged records are missing`,
    );
    for (const a of stream.acked) {
      if (a.message === undefined) continue;
      assert.equal(found.get(a.recordId)?.fields.message?.value, a.message, `record ${a.recordId}`);
    }
    // Records committed whose answer was lost in the kill are fine; records nobody sent are not.
    const feedback = [...found.values()].filter((r) => r.source === 'feedback');
    for (const r of feedback) {
      assert.ok(stream.sent.has(String(r.fields.message?.value)), `record ${r.id} was never sent`);
    }
    return { stored: feedback.length };
  } finally {
    agent.destroy();
  }
}

function integrityCheck(file: string): string {
  const db = new BetterSqlite3(file);
  try {
    return (db.pragma('integrity_check') as Array<{ integrity_check: string }>)
      .map((r) => r.integrity_check)
      .join('; ');
  } finally {
    db.close();
  }
}

async function crashLoop(t: TestContext, dialect: TestDialect): Promise<void> {
  const random = seededRandom(SEED + (dialect === 'sqlite' ? 0 : 1));
  const engine = await setUpEngine(dialect);
  let server: Server | undefined;
  try {
    const key = createTestSystemKey(engine.env, 'crash', ['collect:write', 'subjects:read']);
    const stream: Stream = { next: 0, sent: new Set(), acked: [], unexpected: [] };
    server = await startServer(engine.env);
    const subjects = await registerSubjects(server, key, stream.acked);
    for (let i = 0; i < ITERATIONS; i++) {
      if (i > 0) server = await startServer(engine.env);
      await streamAndKill(server, key, subjects, stream, random() * MAX_KILL_DELAY_MS);
      assert.deepEqual(stream.unexpected, [], `iteration ${i} (seed ${SEED}):\n${server.stderr()}`);
    }

    server = await startServer(engine.env);
    const { stored } = await verify(server, key, subjects, stream);
    await kill(server);
    const feedbackAcked = stream.acked.filter((a) => a.message !== undefined).length;
    assert.ok(feedbackAcked > 0, 'no request was answered before a kill: the test tested nothing');
    t.diagnostic(
      `${dialect}: ${ITERATIONS} kills (seed ${SEED}), ${stream.next} requests sent, ${feedbackAcked} ` +
        `answered 201, all present and decrypting; ${stored - feedbackAcked} more committed whose answer ` +
        `the kill cut off`,
    );
    if (dialect === 'sqlite') {
      for (const file of ['pledge.db', 'keys.db'])
        assert.equal(integrityCheck(path.join(engine.dataDir, file)), 'ok', file);
    }
  } finally {
    if (server) await kill(server);
    await engine.cleanup();
  }
}

// The two engines run side by side: an iteration is mostly a server start, which keeps one core
// busy, and this file runs alone after the other test files (scripts/run-tests.mjs), with a time
// limit of its own since it takes minutes.
describe('kill -9 during a stream of collect requests', { concurrency: DIALECTS.length }, () => {
  before(buildIfStale);

  for (const dialect of DIALECTS) {
    test(`on ${dialect}: every request answered 2xx is there and decrypts after ${ITERATIONS} kills`, (t) =>
      crashLoop(t, dialect));
  }
});
