/**
 * Checkpoints leave the database by a webhook too: each signed checkpoint is a job that POSTs its
 * note to PLEDGE_LOG_CHECKPOINT_WEBHOOK (a real HTTP server on 127.0.0.1 here), retried with
 * backoff until the receiver takes it. On every engine; the queue runs on a fixed clock.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CHECKPOINT_WEBHOOK_JOB } from '../../src/audit/log.jobs.js';
import { createAuditCapability, type AuditCapability } from '../../src/audit/log.setup.js';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext } from '../../src/platform/context.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import { Keyring } from '../../src/vault/keyring.js';
import { DIALECTS, openMigratedTestDatabase, type TestDatabase } from '../helpers/databases.js';

interface Received {
  contentType: string | undefined;
  body: string;
}

for (const dialect of DIALECTS) {
  describe(`the checkpoint webhook on ${dialect}`, () => {
    let database: TestDatabase;
    let dataDir: string;
    let server: Server;
    let cap: AuditCapability;
    let queue: JobQueue;
    const clock = fixedClock(new Date('2026-12-07T12:00:00.000Z'));
    const received: Received[] = [];
    let failNext = 1;

    before(async () => {
      database = await openMigratedTestDatabase(dialect);
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-log-webhook-'));
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          received.push({
            contentType: req.headers['content-type'],
            body: Buffer.concat(chunks).toString('utf8'),
          });
          res.statusCode = failNext-- > 0 ? 503 : 204;
          res.end();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      const keyring = await Keyring.load({ dataDir });
      queue = new JobQueue({ db: database.db, clock });
      cap = createAuditCapability({
        db: database.db,
        queue,
        subjectKeys: keyring.use('log_subjects'),
        checkpointKeys: keyring.use('log_checkpoints'),
        settings: {
          origin: 'pledge.test/log',
          checkpointFile: path.join(dataDir, 'checkpoints.jsonl'),
          checkpointWebhook: `http://127.0.0.1:${port}/checkpoints`,
          publicTiles: false,
        },
        log: { info: () => undefined, warn: () => undefined },
      });
    });
    after(async () => {
      await new Promise<void>((resolve) => server?.close(() => resolve()));
      await database?.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    });

    test('a checkpoint is POSTed as its note, and again after a refusal until the receiver takes it', async () => {
      const ctx = createContext({ kind: 'cli', id: 'test' }, { clock });
      await cap.audit.append(ctx, [{ action: 'test.webhook', details: {} }]);
      const { checkpoint } = await cap.integrateNow(ctx);
      assert.ok(checkpoint !== undefined, 'the first pass signs a checkpoint');

      const first = await queue.runDue({ types: [CHECKPOINT_WEBHOOK_JOB] });
      assert.equal(first.retried, 1, 'a 503 is retried');
      assert.equal(received.length, 1);
      assert.equal(received[0]?.contentType, 'text/plain; charset=utf-8');
      assert.equal(received[0]?.body, checkpoint.note);

      clock.advance(60_000);
      const second = await queue.runDue({ types: [CHECKPOINT_WEBHOOK_JOB] });
      assert.equal(second.done, 1);
      assert.equal(received.length, 2);
      assert.equal(received[1]?.body, checkpoint.note);

      clock.advance(3_600_000);
      assert.equal(
        (await queue.runDue({ types: [CHECKPOINT_WEBHOOK_JOB] })).claimed,
        0,
        'once taken, never again',
      );
    });
  });
}
