/**
 * Witness cosigning against a real witness (test/helpers/witness.ts, a loopback HTTP server written
 * from C2SP tlog-witness): the client proves each checkpoint consistent with the size the witness
 * last cosigned, learns that size from a 409, keeps only cosignatures that verify with the witness's
 * key, and is refused a fork (422) and a checkpoint the log did not sign (403). The job retries while
 * the witness is down, and GET /log/checkpoint serves the cosignatures after the log's signature.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { createApp, type App } from '../../src/app.js';
import { checkpointSigner } from '../../src/audit/log.integrator.js';
import {
  formatCheckpointBody,
  NoteSigner,
  openNote,
  parseCheckpointBody,
  parseVerifierKey,
} from '../../src/audit/note.js';
import { defineWitnessJobs, WITNESS_COSIGN_JOB } from '../../src/audit/witness.jobs.js';
import {
  addCheckpoint,
  requestCosignature,
  witnessOf,
  type Witness,
} from '../../src/audit/witness.client.js';
import { loadConfig } from '../../src/platform/config.js';
import { ConfigError } from '../../src/platform/errors.js';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext } from '../../src/platform/context.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import { Keyring } from '../../src/vault/keyring.js';
import { waitFor } from '../helpers/faults.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';
import { DIALECTS, openMigratedTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { openTestLog, TEST_LOG_ORIGIN, type TestLog } from '../helpers/log-db.js';
import { startWitness, type TestWitness } from '../helpers/witness.js';

function configured(w: TestWitness): Witness {
  const config = loadConfig({ PLEDGE_DATA_DIR: os.tmpdir(), PLEDGE_LOG_WITNESSES: w.config });
  assert.equal(config.logWitnesses.length, 1);
  return witnessOf(config.logWitnesses[0]!);
}

describe('PLEDGE_LOG_WITNESSES', () => {
  it('reads comma-separated vkey=url, and stops the boot naming each entry that is not one', () => {
    const key = NoteSigner.fromSeed('w.example/w1', randomBytes(32)).verifierKey();
    const config = loadConfig({
      PLEDGE_DATA_DIR: os.tmpdir(),
      PLEDGE_LOG_WITNESSES: ` ${key}=https://w.example/w1/ ,, ${key}=http://127.0.0.1:9/x`,
    });
    assert.deepEqual(
      config.logWitnesses.map((w) => [w.name, w.url]),
      [
        ['w.example/w1', 'https://w.example/w1'],
        ['w.example/w1', 'http://127.0.0.1:9/x'],
      ],
    );
    assert.equal(witnessOf(config.logWitnesses[0]!).verifier.name, 'w.example/w1');
    assert.throws(
      () =>
        loadConfig({
          PLEDGE_DATA_DIR: os.tmpdir(),
          PLEDGE_LOG_WITNESSES: `nokey=https://x.example,${key}=ftp://x,${key}`,
        }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.filter((p) => p.startsWith('PLEDGE_LOG_WITNESSES')).length === 3,
    );
  });
});

for (const dialect of DIALECTS) {
  describe(`witness cosigning (${dialect})`, () => {
    let database: TestDatabase;
    let log: TestLog;
    let witness: TestWitness;
    let w: Witness;
    const proof = (from: number, to: number) => log.log.consistency(log.ctx, from, to).then((r) => r.proof);

    before(async () => {
      database = await openMigratedTestDatabase(dialect);
      log = await openTestLog(database);
      witness = await startWitness({ origin: TEST_LOG_ORIGIN, logVkey: log.vkey });
      w = configured(witness);
    });
    after(async () => {
      await witness.close();
      await log.cleanup();
      await database.cleanup();
    });

    it('cosigns the first checkpoint, then a later one from the size it answers in a 409', async () => {
      await log.appendAndIntegrate(1000);
      const first = (await log.log.latestCheckpoint(log.ctx))!;
      assert.equal(first.size, 1000);
      const one = await requestCosignature(w, { note: first.note, size: 1000, knownSize: 0, proof });
      assert.equal(one.kind, 'cosigned');
      assert.equal(witness.state.get(TEST_LOG_ORIGIN)?.size, 1000);

      await log.appendAndIntegrate(1500, { offset: 1000 });
      const second = (await log.log.latestCheckpoint(log.ctx))!;
      assert.equal(second.size, 2000);
      // Told nothing of the witness: old 0, a 409 answers 1000, then the proof from 1000.
      const two = await requestCosignature(w, { note: second.note, size: 2000, knownSize: 0, proof });
      assert.equal(two.kind, 'cosigned');
      assert.deepEqual(witness.statuses.slice(-2), [409, 200]);
      assert.equal(witness.state.get(TEST_LOG_ORIGIN)?.size, 2000);
      // The cosignature verifies with the witness's key on the checkpoint.
      if (two.kind !== 'cosigned') return;
      const opened = openNote(`${second.note}${two.signatures[0]!}\n`, [parseVerifierKey(witness.vkey)]);
      assert.deepEqual(opened.verifiedBy, [witness.name]);
    });

    it('is refused a fork of the tree (422) and a checkpoint the log did not sign (403)', async () => {
      const state = witness.state.get(TEST_LOG_ORIGIN)!;
      const size = await log.log.size(log.ctx);
      // The log's own key, another tree: what a log showing two histories would send.
      const fork = log.integrator.signer.sign(
        formatCheckpointBody({ origin: TEST_LOG_ORIGIN, size: size + 5, root: randomBytes(32) }),
      );
      const forked = await addCheckpoint(w, {
        oldSize: state.size,
        proof: await proof(state.size, size),
        note: fork,
      });
      assert.deepEqual(forked.kind === 'failed' ? forked.status : forked.kind, 422);
      const stranger = NoteSigner.fromSeed(TEST_LOG_ORIGIN, randomBytes(32));
      const unsigned = stranger.sign(
        formatCheckpointBody({ origin: TEST_LOG_ORIGIN, size, root: randomBytes(32) }),
      );
      const refused = await addCheckpoint(w, { oldSize: state.size, proof: [], note: unsigned });
      assert.deepEqual(refused.kind === 'failed' ? refused.status : refused.kind, 403);
      // Neither moved the witness.
      assert.equal(witness.state.get(TEST_LOG_ORIGIN)?.size, state.size);
    });

    it('retries as a job while the witness is down; GET /log/checkpoint then serves the cosignature', async () => {
      const clock = fixedClock(new Date());
      const queue = new JobQueue({ db: database.db, clock });
      const jobs = defineWitnessJobs(queue, { log: log.log, witnesses: [w] });
      await log.appendAndIntegrate(1000, { offset: 2500 });
      const latest = (await log.log.latestCheckpoint(log.ctx))!;
      assert.equal(latest.size, 3000);
      const jobCtx = createContext({ kind: 'job', id: 'test' }, { clock });
      await database.db.transaction(jobCtx, (trx) => jobs.enqueue(trx, latest.size));
      witness.failNext(2);
      assert.equal((await queue.runDue({ types: [WITNESS_COSIGN_JOB] })).retried, 1);
      clock.advance(60_000);
      assert.equal((await queue.runDue({ types: [WITNESS_COSIGN_JOB] })).retried, 1);
      clock.advance(60_000);
      assert.equal((await queue.runDue({ types: [WITNESS_COSIGN_JOB] })).done, 1);
      assert.equal(witness.state.get(TEST_LOG_ORIGIN)?.size, 3000);

      const http = Fastify();
      // The checkpoint is public: the key check of the tile routes is never reached here.
      log.registerRoutes(http, { auth: () => (_request, reply) => reply.code(401).send() });
      const res = await http.inject({ method: 'GET', url: '/log/checkpoint' });
      await http.close();
      assert.equal(res.statusCode, 200);
      const served = res.body;
      assert.ok(served.startsWith(latest.note), 'the log’s note first');
      const opened = openNote(served, [parseVerifierKey(log.vkey), parseVerifierKey(witness.vkey)]);
      assert.deepEqual([...opened.verifiedBy].sort(), [TEST_LOG_ORIGIN, witness.name].sort());
    });
  });
}

describe('witness cosigning in a running app (PLEDGE_LOG_WITNESSES)', () => {
  it('a new checkpoint is cosigned by the configured witness and served with its cosignature', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-witness-app-'));
    // The key file first, so the witness can be told the log's key before the app starts.
    const keyring = await Keyring.load({ dataDir });
    const origin = 'pledge.test/witnessed-log';
    const logVkey = checkpointSigner(origin, keyring.use('log_checkpoints')).verifierKey();
    const witness = await startWitness({ origin, logVkey });
    let app: App | undefined;
    try {
      app = await createApp(
        {
          ...loadConfig(
            {
              PLEDGE_DATA_DIR: dataDir,
              PLEDGE_LOG_LEVEL: 'silent',
              PLEDGE_LOG_ORIGIN: origin,
              PLEDGE_LOG_WITNESSES: witness.config,
            },
            { manifest: EXAMPLE_MANIFEST },
          ),
          retentionIntervalSeconds: 0,
        },
        {},
      );
      assert.equal(app.log.verifierKey, logVkey);
      await app.audit.append(createContext({ kind: 'cli', id: 'test' }), [
        { action: 'test.witnessed', details: {} },
      ]);
      const served = await waitFor(
        'the checkpoint is served with the witness’s cosignature',
        15_000,
        async () => {
          const res = await app!.http.inject({ method: 'GET', url: '/log/checkpoint' });
          return res.statusCode === 200 && res.body.includes(`— ${witness.name} `) ? res.body : undefined;
        },
      );
      const opened = openNote(served, [parseVerifierKey(logVkey), parseVerifierKey(witness.vkey)]);
      assert.deepEqual([...opened.verifiedBy].sort(), [origin, witness.name].sort());
      // The witness holds the size it cosigned: the served checkpoint's (the entries written at start, and ours).
      assert.equal(witness.state.get(origin)?.size, parseCheckpointBody(opened.body).size);
    } finally {
      await app?.close();
      await witness.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
