/**
 * Signed webhooks on both engines, against a real HTTP receiver on 127.0.0.1 that verifies every
 * signature: a change recorded through the consent service reaches it; failures are retried with
 * growing delays (driven by an injected clock, no sleeps) and the delivery log shows each attempt; a
 * change that rolls back is never sent; concurrent dispatchers never send one delivery twice; each
 * webhook gets only the purposes it asked for. Then the HTTP log and the CLI.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { createApp } from '../../src/app.js';
import type { ConsentService } from '../../src/consent/consent.service.js';
import { type ConsentChange, type PropagateChanges } from '../../src/consent/consent.service.js';
import { WebhookDeliveriesRepository, type NewDelivery } from '../../src/consent/webhooks.repository.js';
import { registerWebhookRoutes } from '../../src/consent/webhooks.routes.js';
import {
  WebhookService,
  type WebhookLogger,
  type WebhookPayload,
  type WebhookServiceDeps,
} from '../../src/consent/webhooks.service.js';
import { deriveWebhookSecret, verifyWebhookSignature } from '../../src/consent/webhooks.signature.js';
import type { Webhook } from '../../src/manifest/manifest.schema.js';
import { ApiKeyRepository } from '../../src/platform/auth/api-keys.repository.js';
import { ApiKeyService } from '../../src/platform/auth/api-keys.service.js';
import { fixedClock, type Clock } from '../../src/platform/clock.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { openDatabase, type Database } from '../../src/platform/db/database.js';
import { requireApiKey } from '../../src/platform/http/auth.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import { createHttpServer } from '../../src/platform/http/server.js';
import { Keyring } from '../../src/vault/keyring.js';
import { runPledge } from '../helpers/cli.js';
import { newConsentService } from '../helpers/consent.js';
import { DIALECTS, getTestDatabaseUrlOrThrow } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST, openTestVault, randomEmail, type TestVault } from '../helpers/vault.js';

/** One request the receiver got. */
interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  payload: WebhookPayload;
  /** The test clock's time when it arrived. */
  at: Date;
  verified: ReturnType<typeof verifyWebhookSignature>;
}

/**
 * A webhook receiver on 127.0.0.1 that verifies each delivery (with the secret of the webhook its
 * path names: /hooks/<key>) and answers as told.
 */
class Receiver {
  readonly received: Received[] = [];
  /** Statuses to answer with, in order; 200 once they run out. */
  statuses: number[] = [];
  /** Called on each request (to observe arrivals without polling). */
  onRequest: ((r: Received) => void) | undefined;
  /** The receiver's clock, for checking signature timestamps. */
  now: () => Date = () => new Date();
  #server: Server | undefined;
  #indexKey: Buffer = Buffer.alloc(0);

  async start(indexKey: Buffer, now: () => Date): Promise<void> {
    this.#indexKey = indexKey;
    this.now = now;
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const at = this.now();
        const key = /^\/hooks\/([a-z0-9_-]+)$/.exec(req.url ?? '')?.[1] ?? '';
        const verified = verifyWebhookSignature({
          secret: deriveWebhookSecret(this.#indexKey, key),
          header: req.headers['pledge-signature'],
          body,
          now: at,
        });
        const r: Received = {
          headers: req.headers,
          body,
          payload: JSON.parse(body) as WebhookPayload,
          at,
          verified,
        };
        this.received.push(r);
        this.onRequest?.(r);
        res.statusCode = verified.valid ? (this.statuses.shift() ?? 200) : 401;
        res.end(verified.valid ? 'ok' : 'bad signature');
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
  }

  /** The URL of webhook `key`. */
  urlFor(key: string): string {
    return `http://127.0.0.1:${(this.#server?.address() as AddressInfo).port}/hooks/${key}`;
  }

  async close(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}

/** A logger that keeps what it is told. */
function memoryLog(): WebhookLogger & { lines: Array<{ level: string; msg: string; obj: object }> } {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', msg, obj }),
    warn: (obj, msg) => lines.push({ level: 'warn', msg, obj }),
    error: (obj, msg) => lines.push({ level: 'error', msg, obj }),
  };
}

const T0 = new Date('2026-12-01T09:00:00.000Z');
const CLI_CTX = createContext({ kind: 'cli', id: 'test' });

/** One delivery to the `crm` webhook, due at T0, for tests that fill the log by hand. */
const PENDING_DELIVERY: NewDelivery = {
  id: '00000000-0000-7000-8000-000000000001',
  webhook: 'crm',
  eventId: 'e1',
  eventType: 'consent.changed',
  payload: '{}',
  createdAt: T0,
  dueAt: T0,
};

for (const dialect of DIALECTS) {
  describe(`webhooks on ${dialect}`, () => {
    let t: TestVault;
    let receiver: Receiver;
    let clock: ReturnType<typeof fixedClock>;
    let log: ReturnType<typeof memoryLog>;
    const queues: JobQueue[] = [];

    beforeEach(async () => {
      t = await openTestVault(dialect);
      clock = fixedClock(T0);
      log = memoryLog();
      receiver = new Receiver();
      await receiver.start(t.keyring.indexKey, () => clock.now());
    });
    afterEach(async () => {
      for (const q of queues.splice(0)) await q.stop();
      await receiver.close();
      await t.cleanup();
    });

    /** How a test instance's job queue runs: its clock and how often it polls. */
    interface InstanceOptions {
      clock?: Clock | undefined;
      pollIntervalMs?: number;
      /** The database this instance reaches (another pool to the same schema, on PostgreSQL). */
      database?: Pick<Database, 'db'>;
    }

    /** A consent service over the test database that propagates its changes with `propagate`. */
    function consentWith(propagate: PropagateChanges, manifest = t.active.manifest): ConsentService {
      return newConsentService(t, { propagate, manifest });
    }

    /**
     * An instance's webhook service (with a job queue of its own, as each `pledge serve` has) and a
     * consent service that queues to it, over the test database.
     */
    function build(
      webhooks: Array<Partial<Webhook> & { key: string }>,
      options: Partial<Omit<WebhookServiceDeps, 'db' | 'repo' | 'jobs'>> & InstanceOptions = {},
    ): { webhooks: WebhookService; consent: ConsentService; queue: JobQueue } {
      const manifest = {
        ...t.active.manifest,
        webhooks: webhooks.map((w): Webhook => ({
          name: `Webhook ${w.key}`,
          url: receiver.urlFor(w.key),
          events: ['consent.changed', 'subject.erased'],
          purposes: 'all',
          ...w,
        })),
      };
      const { database = t.database, pollIntervalMs, ...deps } = options;
      const instanceClock = 'clock' in options ? options.clock : clock;
      const queue = new JobQueue({
        db: database.db,
        ...(instanceClock ? { clock: instanceClock } : {}),
        random: () => 0,
        log,
        ...(pollIntervalMs !== undefined ? { pollIntervalMs } : {}),
      });
      queues.push(queue);
      const service = new WebhookService({
        db: database.db,
        repo: new WebhookDeliveriesRepository(database.db),
        jobs: queue,
        manifest,
        signingSecret: t.keyring.indexKey,
        log,
        clock,
        random: () => 0,
        ...deps,
        ...('clock' in options ? { clock: options.clock } : {}),
      });
      const consent = consentWith((ctx, changes) => service.enqueue(ctx, changes), manifest);
      return { webhooks: service, consent, queue };
    }

    async function newSubject(): Promise<string> {
      const s = await t.vault.createSubject(t.ctx, {
        kind: 'customer',
        jurisdiction: 'US',
        identifiers: { email: randomEmail() },
      });
      return s.id;
    }

    async function withdrawMarketing(consent: ConsentService, subjectId: string): Promise<ConsentChange> {
      const [change] = await consent.record(t.ctx, [
        {
          holder: { subjectId },
          purpose: 'marketing-email',
          channel: 'email',
          state: 'withdrawn',
          method: 'unsubscribe_link',
        },
      ]);
      return change ?? assert.fail('no change recorded');
    }

    async function log_(): Promise<Awaited<ReturnType<WebhookDeliveriesRepository['list']>>> {
      return new WebhookDeliveriesRepository(t.database.db).list(t.ctx, { limit: 500 });
    }

    test('a change recorded through the consent service reaches the receiver, signed, without personal data', async () => {
      const { webhooks, consent } = build([{ key: 'crm', purposes: ['marketing-email'] }]);
      const subjectId = await newSubject();
      const change = await withdrawMarketing(consent, subjectId);

      assert.deepEqual(await webhooks.runOnce(), { claimed: 1, delivered: 1, retried: 0, failed: 0 });
      assert.equal(receiver.received.length, 1);
      const [got] = receiver.received;
      assert.ok(got);
      assert.deepEqual(got.verified, { valid: true, timestamp: T0 });
      assert.equal(got.headers['content-type'], 'application/json');
      assert.equal(got.headers['pledge-event-id'], change.eventId);
      assert.deepEqual(got.payload, {
        id: change.eventId,
        type: 'consent.changed',
        at: change.at.toISOString(),
        data: {
          subjectId,
          purpose: 'marketing-email',
          channel: 'email',
          state: 'withdrawn',
          previous: 'none',
          method: 'unsubscribe_link',
        },
      });
      assert.doesNotMatch(got.body, /@/, 'no e-mail address (nor any identifier) leaves in a payload');

      const [row] = await log_();
      assert.ok(row);
      assert.equal(got.headers['pledge-delivery-id'], row.id);
      assert.equal(row.status, 'delivered');
      assert.equal(row.attempts, 1);
      assert.equal(row.lastStatus, 'HTTP 200');
      assert.deepEqual(row.deliveredAt, T0);
      // Nothing is sent twice.
      assert.deepEqual(await webhooks.runOnce(), { claimed: 0, delivered: 0, retried: 0, failed: 0 });
    });

    test('the dispatcher inside serve sends a change on its own, at once', async () => {
      // The wall clock here: this is the path `pledge serve` takes.
      const { consent, queue } = build([{ key: 'crm' }], { clock: undefined, pollIntervalMs: 60_000 });
      receiver.now = () => new Date();
      const arrived = new Promise<Received>((resolve) => (receiver.onRequest = resolve));
      queue.start();
      const subjectId = await newSubject();
      const started = Date.now();
      await withdrawMarketing(consent, subjectId);
      const got = await arrived;
      // Woken by the commit, not by the (here, one-minute) poll.
      assert.ok(Date.now() - started < 5_000, `delivered after ${Date.now() - started} ms`);
      assert.equal(got.payload.type, 'consent.changed');
      await queue.stop();
      const [row] = await log_();
      assert.equal(row?.status, 'delivered');
    });

    test('in the app, a person who unsubscribes is announced to the manifest’s webhook at once', async () => {
      const example = await readFile(EXAMPLE_MANIFEST, 'utf8');
      const declared = 'https://crm.example-online.test/hooks/pledge';
      assert.ok(example.includes(declared));
      const manifestFile = path.join(t.dataDir, 'pledge.yaml');
      await writeFile(manifestFile, example.replace(declared, receiver.urlFor('marketing-automation')));
      receiver.now = () => new Date();
      const app = await createApp(
        {
          ...loadConfig(
            { PLEDGE_DATA_DIR: t.dataDir, PLEDGE_LOG_LEVEL: 'silent' },
            { manifest: manifestFile },
          ),
          retentionIntervalSeconds: 0,
        },
        { database: t.database, keystore: t.keystore },
      );
      try {
        const arrived = new Promise<Received>((resolve) => (receiver.onRequest = resolve));
        const subject = await app.vault.createSubject(t.ctx, { kind: 'customer', jurisdiction: 'US' });
        const [change] = await app.consent.record(t.ctx, [
          { holder: { subjectId: subject.id }, purpose: '*', state: 'denied', method: 'unsubscribe_link' },
        ]);
        const got = await arrived;
        assert.equal(got.verified.valid, true);
        assert.equal(got.headers['pledge-event-id'], change?.eventId);
        assert.deepEqual(got.payload.data, {
          subjectId: subject.id,
          purpose: '*',
          channel: null,
          state: 'denied',
          previous: 'none',
          method: 'unsubscribe_link',
        });
      } finally {
        await app.close();
      }
      const [row] = await log_();
      assert.equal(row?.status, 'delivered', 'close() waits for the attempt in flight to be recorded');
    });

    test('a receiver that fails twice gets three attempts with growing delays, and the log shows them', async () => {
      const { webhooks, consent } = build([{ key: 'crm' }], { retry: { baseDelayMs: 10_000 } });
      receiver.statuses = [500, 503];
      await withdrawMarketing(consent, await newSubject());

      assert.deepEqual(await webhooks.runOnce(), { claimed: 1, delivered: 0, retried: 1, failed: 0 });
      let [row] = await log_();
      assert.equal(row?.status, 'pending');
      assert.equal(row?.attempts, 1);
      assert.equal(row?.lastStatus, 'HTTP 500');
      assert.deepEqual(row?.nextAttemptAt, new Date(T0.getTime() + 10_000));

      clock.advance(9_999);
      assert.equal((await webhooks.runOnce()).claimed, 0, 'not before its time');
      clock.advance(1);
      assert.deepEqual(await webhooks.runOnce(), { claimed: 1, delivered: 0, retried: 1, failed: 0 });
      [row] = await log_();
      assert.equal(row?.attempts, 2);
      assert.equal(row?.lastStatus, 'HTTP 503');
      assert.deepEqual(row?.nextAttemptAt, new Date(T0.getTime() + 10_000 + 20_000));

      clock.advance(19_999);
      assert.equal((await webhooks.runOnce()).claimed, 0);
      clock.advance(1);
      assert.deepEqual(await webhooks.runOnce(), { claimed: 1, delivered: 1, retried: 0, failed: 0 });
      [row] = await log_();
      assert.equal(row?.status, 'delivered');
      assert.equal(row?.attempts, 3);
      assert.equal(row?.lastStatus, 'HTTP 200');

      const times = receiver.received.map((r) => r.at.getTime() - T0.getTime());
      assert.deepEqual(times, [0, 10_000, 30_000], 'delays of 10 s, then 20 s');
      assert.ok(receiver.received.every((r) => r.verified.valid));
      assert.equal(
        new Set(receiver.received.map((r) => r.headers['pledge-event-id'])).size,
        1,
        'one event id',
      );
      assert.equal(new Set(receiver.received.map((r) => r.body)).size, 1, 'the same body each time');
      assert.equal(log.lines.filter((l) => l.level === 'warn').length, 2);
    });

    test('after the last attempt a delivery is failed; `redeliver` queues it again', async () => {
      const { webhooks, consent } = build([{ key: 'crm' }], {
        retry: { baseDelayMs: 1000, maxAttempts: 3 },
      });
      receiver.statuses = [500, 500, 500];
      await withdrawMarketing(consent, await newSubject());
      for (const delay of [0, 1000, 2000]) {
        clock.advance(delay);
        assert.equal((await webhooks.runOnce()).claimed, 1);
      }
      let [row] = await log_();
      assert.equal(row?.status, 'failed');
      assert.equal(row?.attempts, 3);
      clock.advance(3_600_000);
      assert.equal((await webhooks.runOnce()).claimed, 0, 'a failed delivery is not retried');
      assert.ok(log.lines.some((l) => l.level === 'error' && l.msg.includes('failed after 3 attempts')));

      assert.equal(await webhooks.redeliver(t.ctx, [row?.id ?? '']), 1);
      assert.deepEqual(await webhooks.runOnce(), { claimed: 1, delivered: 1, retried: 0, failed: 0 });
      [row] = await log_();
      assert.equal(row?.status, 'delivered');
    });

    test('the retry delay doubles from the base, with jitter, up to one hour', () => {
      const { webhooks } = build([{ key: 'crm' }], { random: () => 0.5 });
      const delays = [1, 2, 3, 4, 9, 10, 15].map((n) => webhooks.retryDelayMs(n));
      assert.deepEqual(delays, [11_000, 22_000, 44_000, 88_000, 2_816_000, 3_600_000, 3_600_000]);
    });

    test('an unreachable receiver and one that does not answer are retried, with the reason logged', async () => {
      const silent = createServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`;
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/`;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      try {
        const { webhooks, consent } = build(
          [
            { key: 'silent', url: silentUrl },
            { key: 'closed', url: closedUrl },
          ],
          { timeoutMs: 200 },
        );
        await withdrawMarketing(consent, await newSubject());
        assert.deepEqual(await webhooks.runOnce(), { claimed: 2, delivered: 0, retried: 2, failed: 0 });
        const rows = new Map((await log_()).map((r) => [r.webhook, r]));
        assert.equal(rows.get('silent')?.lastStatus, 'no answer within 0.2 s');
        assert.match(rows.get('closed')?.lastStatus ?? '', /ECONNREFUSED/);
      } finally {
        silent.closeAllConnections();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      }
    });

    test('a change that rolls back queues nothing and sends nothing', async () => {
      const { webhooks } = build([{ key: 'crm' }]);
      const consent = consentWith(async (ctx, changes) => {
        await webhooks.enqueue(ctx, changes);
        // Whatever fails after the queueing, in the same transaction.
        throw new Error('the disk is full');
      });
      const subjectId = await newSubject();
      await assert.rejects(withdrawMarketing(consent, subjectId), /the disk is full/);
      assert.deepEqual(await log_(), []);
      assert.equal((await webhooks.runOnce()).claimed, 0);
      assert.equal(receiver.received.length, 0);
      assert.deepEqual(await consent.history(t.ctx, { subjectId }), [], 'the change itself rolled back too');
    });

    test('each webhook gets the purposes it asked for; a global opt-out goes to all; browsers are not sent', async () => {
      const { webhooks, consent } = build([
        { key: 'crm', purposes: ['marketing-email'] },
        { key: 'warehouse', purposes: 'all' },
        { key: 'erasures-only', events: ['subject.erased'] },
      ]);
      const subjectId = await newSubject();
      await consent.record(t.ctx, [
        { holder: { subjectId }, purpose: 'improve-products', state: 'denied', method: 'preference_center' },
        { holder: { subjectId }, purpose: 'marketing-email', state: 'granted', method: 'preference_center' },
        { holder: { subjectId }, purpose: '*', state: 'denied', method: 'unsubscribe_link' },
        {
          holder: { browserId: randomBytes(16).toString('hex') },
          purpose: 'site-analytics',
          state: 'denied',
          method: 'banner',
        },
      ]);
      const sent = (await log_()).map((r) => {
        const p = JSON.parse(r.payload) as WebhookPayload & { data: { purpose: string } };
        return `${r.webhook} ${p.data.purpose}`;
      });
      assert.deepEqual(sent.sort(), [
        'crm *',
        'crm marketing-email',
        'warehouse *',
        'warehouse improve-products',
        'warehouse marketing-email',
      ]);
      assert.equal((await webhooks.runOnce()).delivered, 5);
    });

    test('an erasure is sent to the webhooks that receive subject.erased, with the subject id only', async () => {
      const { webhooks } = build([
        { key: 'crm', events: ['subject.erased'] },
        { key: 'consent-only', events: ['consent.changed'] },
      ]);
      const subjectId = await newSubject();
      await t.database.db.transaction(t.ctx, (trx) => webhooks.enqueueErasure(trx, subjectId));
      await webhooks.runOnce();
      assert.equal(receiver.received.length, 1);
      const [got] = receiver.received;
      assert.equal(got?.payload.type, 'subject.erased');
      assert.deepEqual(got?.payload.data, { subjectId });
      assert.equal(got?.headers['pledge-event-id'], got?.payload.id);
    });

    test('concurrent dispatchers (two instances) never send one delivery twice', async () => {
      // Two instances: on PostgreSQL each has its own connection pool to the same schema.
      let second: Database | undefined;
      if (dialect === 'postgres') {
        second = await openDatabase({
          databaseUrl: getTestDatabaseUrlOrThrow(),
          dataDir: os.tmpdir(),
          schema: t.database.schema,
        });
      }
      try {
        const { webhooks: a } = build([{ key: 'crm' }], { concurrency: 7 });
        const { webhooks: b } = build([{ key: 'crm' }], { concurrency: 7, database: second ?? t.database });
        const n = 120;
        const now = clock.now();
        await a.enqueue(
          t.ctx,
          Array.from({ length: n }, (_, i): ConsentChange => ({
            eventId: `event-${i}`,
            holder: { subjectId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` },
            purpose: 'marketing-email',
            channel: 'email',
            state: 'withdrawn',
            method: 'api',
            previous: 'granted',
            at: now,
          })),
        );
        const drain = async (s: WebhookService) => {
          let delivered = 0;
          for (;;) {
            const r = await s.runOnce();
            delivered += r.delivered;
            if (r.claimed === 0) return delivered;
          }
        };
        // Two loops per instance, as a batch is attempted while the next is claimed.
        const [a1, b1, a2, b2] = await Promise.all([drain(a), drain(b), drain(a), drain(b)]);
        const da = a1 + a2;
        const db = b1 + b2;
        const ids = receiver.received.map((r) => r.headers['pledge-delivery-id']);
        assert.equal(ids.length, n, 'every delivery sent');
        assert.equal(new Set(ids).size, n, 'none sent twice');
        assert.equal(da + db, n);
        if (dialect === 'postgres') assert.ok(da > 0 && db > 0, `both worked: ${da} and ${db}`);
        assert.ok((await log_()).every((r) => r.status === 'delivered' && r.attempts === 1));
      } finally {
        await second?.close();
      }
    });

    test('a delivery whose instance stops heart-beating is taken over, and the late outcome is not recorded', async () => {
      // The first instance's receiver never answers: its attempt hangs as if its process had frozen.
      const silent = createServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`;
      try {
        const { webhooks: frozen, consent } = build([{ key: 'crm', url: silentUrl }], { timeoutMs: 100_000 });
        await withdrawMarketing(consent, await newSubject());
        const attempt = frozen.runOnce();
        await new Promise<void>((resolve) => silent.once('request', () => resolve()));
        // Another instance, later than the frozen one's lease (three times the receiver's timeout).
        const later = fixedClock(new Date(T0.getTime() + 300_000 + 10_000));
        const { webhooks: survivor, queue } = build([{ key: 'crm' }], { clock: later });
        receiver.now = () => later.now();
        assert.equal((await queue.watchdog()).requeued, 1, 'the frozen attempt is found past its lease');
        // Re-queued as a failed attempt, after the first retry delay.
        later.advance(survivor.retryDelayMs(1));
        assert.deepEqual(await survivor.runOnce(), { claimed: 1, delivered: 1, retried: 0, failed: 0 });
        silent.closeAllConnections();
        const late = await attempt;
        assert.equal(late.delivered + late.retried + late.failed, 0, 'the late outcome is not recorded');
        const [row] = await log_();
        assert.equal(row?.status, 'delivered');
        assert.equal(row?.lastStatus, 'HTTP 200');
        assert.equal(receiver.received.length, 1);
      } finally {
        silent.closeAllConnections();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      }
    });

    test('GET /api/v1/webhooks/deliveries lists the log for admin keys only, without payloads', async () => {
      const { webhooks, consent } = build([{ key: 'crm' }]);
      receiver.statuses = [502];
      await withdrawMarketing(consent, await newSubject());
      await webhooks.runOnce();
      const apiKeys = new ApiKeyService({ keys: new ApiKeyRepository(t.database.db) });
      const admin = await apiKeys.createKey(t.ctx, { name: 'ops', scopes: ['admin'] });
      const reader = await apiKeys.createKey(t.ctx, {
        name: 'reader',
        system: 'marketing-automation',
        scopes: ['consent:read'],
      });
      const http = await createHttpServer({
        logLevel: 'silent',
        bodyLimitBytes: 65_536,
        rateLimitPerMinute: 1000,
      });
      registerWebhookRoutes(http, { webhooks, auth: requireApiKey(apiKeys) });
      try {
        const ok = await http.inject({
          url: '/api/v1/webhooks/deliveries?status=pending',
          headers: { authorization: `Bearer ${admin.key}` },
        });
        assert.equal(ok.statusCode, 200, ok.body);
        const { deliveries } = ok.json<{ deliveries: Array<Record<string, unknown>> }>();
        assert.equal(deliveries.length, 1);
        assert.deepEqual(Object.keys(deliveries[0] ?? {}).sort(), [
          'attempts',
          'createdAt',
          'deliveredAt',
          'eventId',
          'eventType',
          'id',
          'lastAttemptAt',
          'lastStatus',
          'nextAttemptAt',
          'status',
          'webhook',
        ]);
        assert.equal(deliveries[0]?.lastStatus, 'HTTP 502');
        const none = await http.inject({
          url: '/api/v1/webhooks/deliveries?status=delivered',
          headers: { authorization: `Bearer ${admin.key}` },
        });
        assert.deepEqual(none.json(), { deliveries: [] });
        const forbidden = await http.inject({
          url: '/api/v1/webhooks/deliveries',
          headers: { authorization: `Bearer ${reader.key}` },
        });
        assert.equal(forbidden.statusCode, 403);
      } finally {
        await http.close();
      }
    });
  });
}

describe('pledge webhooks', () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-webhooks-cli-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });
  const env = () => ({ PLEDGE_DATA_DIR: dataDir, DATABASE_URL: '', PLEDGE_KEYS: '' });

  test('`secret KEY` prints the secret the server signs with; an unknown key is an error', async () => {
    const run = await runPledge(['webhooks', 'secret', 'marketing-automation'], { env: env() });
    assert.equal(run.code, 0, run.stderr);
    const keyring = await Keyring.load({ dataDir });
    assert.equal(run.stdout, `${deriveWebhookSecret(keyring.indexKey, 'marketing-automation')}\n`);

    const unknown = await runPledge(['webhooks', 'secret', 'crm'], { env: env() });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no webhook "crm".*marketing-automation/);
  });

  test('`deliveries` lists the log', async () => {
    const empty = await runPledge(['webhooks', 'deliveries', '--format', 'json'], { env: env() });
    assert.equal(empty.code, 0, empty.stderr);
    assert.deepEqual(JSON.parse(empty.stdout), []);
    const database = await openDatabase({ dataDir });
    try {
      await new WebhookDeliveriesRepository(database.db).insertMany(CLI_CTX, [PENDING_DELIVERY]);
    } finally {
      await database.close();
    }
    const list = await runPledge(['webhooks', 'deliveries', '--status', 'pending'], { env: env() });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /00000000-0000-7000-8000-000000000001\s+crm\s+consent\.changed\s+pending\s+0/);
    const bad = await runPledge(['webhooks', 'deliveries', '--status', 'lost'], { env: env() });
    assert.notEqual(bad.code, 0);
  });
});
