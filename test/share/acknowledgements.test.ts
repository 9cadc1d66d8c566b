/**
 * Processors bound to the policy they signed, on every engine: the first activation counts a
 * recipient with an agreement as acknowledging the version in force; a later material change pauses
 * exactly the recipients whose entries it touches, sends each a notice (an e-mail through a real SMTP
 * server, a signed POST to a real HTTP receiver), and standingOf refuses until the new version is
 * acknowledged; a non-material change, a restart and a new sub-processor pause no one.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { parseDocument, type Document } from 'yaml';
import { AuditLog } from '../../src/audit/audit.service.js';
import { verifyWebhookSignature } from '../../src/consent/webhooks.signature.js';
import { ManifestVersionRepository } from '../../src/manifest/manifest.repository.js';
import { activateManifest } from '../../src/manifest/manifest.service.js';
import { createContext, type Context } from '../../src/platform/context.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import { MailTransport } from '../../src/platform/mail/mail.transport.js';
import {
  NOTICE_EMAIL_JOB,
  NOTICE_WEBHOOK_JOB,
  RecipientNotices,
  type NoticeWebhookPayload,
} from '../../src/share/acknowledgements.notices.js';
import { AcknowledgementsRepository } from '../../src/share/acknowledgements.repository.js';
import { AcknowledgementService } from '../../src/share/acknowledgements.service.js';
import { ColumnSeal } from '../../src/share/sealed-columns.js';
import { UseKeys } from '../../src/vault/use-keys.js';
import { DIALECTS, openMigratedTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { ROOT } from '../helpers/cli.js';
import { startSmtpSink, type SmtpSink } from '../comms/smtp-sink.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const exampleText = await readFile(EXAMPLE, 'utf8');
const BOUND = ['card-processor', 'email-delivery', 'group-companies', 'group-companies-uk', 'sms-delivery'];

/** The example manifest with changes made through its YAML document. */
function mutate(change: (doc: Document) => void): string {
  const doc = parseDocument(exampleText);
  change(doc);
  return doc.toString({ lineWidth: 0 });
}

/** Index of the recipient `key` in the example. */
function recipientIndex(doc: Document, key: string): number {
  const list = (doc.toJS() as { recipients: Array<{ key: string }> }).recipients;
  const i = list.findIndex((r) => r.key === key);
  assert.ok(i >= 0, `test setup: recipient ${key}`);
  return i;
}

/** A real HTTP receiver of notices that keeps what it is sent. */
class Receiver {
  received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  /** Statuses to answer with, in order; 204 once they run out. */
  statuses: number[] = [];
  #server: Server | undefined;
  #waiters: Array<() => void> = [];

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.statusCode = this.statuses.shift() ?? 204;
        res.end();
        for (const w of this.#waiters.splice(0)) w();
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server?.address() as AddressInfo).port}/pledge/notices`;
  }

  async close(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}

for (const dialect of DIALECTS) {
  describe(`acknowledgements on ${dialect}`, () => {
    let database: TestDatabase;
    let dir: string;
    let sink: SmtpSink;
    let receiver: Receiver;
    let transport: MailTransport;
    // The log's subject commitments, under a key of the test's own.
    const logKeys = new UseKeys('log_subjects', [
      { version: 1, secret: randomBytes(32), createdAt: undefined },
    ]);
    const keys = new UseKeys('recipient_notices', [
      { version: 1, secret: randomBytes(32), createdAt: undefined },
    ]);
    const ctx: Context = createContext({ kind: 'job', id: 'startup' });
    // Who acknowledged is sealed under a key of the test's own.
    const signatories = new ColumnSeal(
      new UseKeys('share_signatories', [{ version: 1, secret: randomBytes(32), createdAt: undefined }]),
    );
    let n = 0;

    before(async () => {
      database = await openMigratedTestDatabase(dialect);
      dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-ack-'));
      sink = await startSmtpSink();
      receiver = new Receiver();
      await receiver.start();
      const silent = { warn: () => undefined, info: () => undefined };
      transport = new MailTransport({ smtpUrl: sink.url, from: 'privacy@example-online.test', log: silent });
    });
    after(async () => {
      transport.close();
      await receiver.close();
      await sink.close();
      await database.cleanup();
      await rm(dir, { recursive: true, force: true });
    });

    /** Brings `text` into force as a server starting with it would, and weighs it. */
    async function start(text: string) {
      const file = path.join(dir, `pledge-${++n}.yaml`);
      await writeFile(file, text);
      const versions = new ManifestVersionRepository(database.db);
      const active = await activateManifest(ctx, { file, versions });
      const repo = new AcknowledgementsRepository(database.db, signatories);
      const jobs = new JobQueue({ db: database.db, random: () => 0 });
      const notices = new RecipientNotices({
        repo,
        jobs,
        manifest: active.manifest,
        mail: transport,
        signingKeys: keys,
        publicUrl: 'https://www.example-online.test',
      });
      const audit = AuditLog.over(database.db, logKeys);
      const service = new AcknowledgementService({
        db: database.db,
        repo,
        audit,
        notifications: database,
        manifest: { manifest: active.manifest, versionId: active.version.id },
        versions,
        notices,
      });
      const result = await service.activate(ctx, active.version);
      return { active, service, notices, jobs, audit, result };
    }

    /** The example with its card processor's webhook at the test receiver (and a version of its own). */
    const base = () =>
      mutate((d) => {
        d.setIn(['recipients', recipientIndex(d, 'card-processor'), 'webhook'], receiver.url);
      });

    test('the first activation counts every recipient with an agreement as acknowledging the version in force', async () => {
      const { service, result, active } = await start(base());
      assert.equal(result.weighed, true);
      assert.deepEqual([...result.acknowledged].sort(), [...BOUND].sort());
      assert.deepEqual(result.paused, []);
      for (const key of BOUND) {
        const standing = await service.standingOf(ctx, key);
        assert.deepEqual(standing, { ok: true, acknowledgedVersion: active.manifest.policy.version }, key);
        const record = await service.recordOf(ctx, key);
        assert.equal(record.acknowledgements.length, 1);
        assert.equal(record.acknowledgements[0]?.method, 'agreement');
        assert.match(
          record.acknowledgements[0]?.acknowledgedBy ?? '',
          /^agreement (DPA|IGA)-\d{4}-\d{3} \(signed \d{4}-/,
        );
        assert.deepEqual(record.acknowledgements[0]?.actor, { kind: 'job', id: 'startup' });
      }
      // An authority acknowledges nothing: it stands as the policy in force.
      assert.equal((await service.standingOf(ctx, 'authorities')).ok, true);
      // An undeclared recipient never stands.
      const unknown = await service.standingOf(ctx, 'data-broker');
      assert.equal(unknown.ok, false);

      // A restart with the same manifest weighs nothing again and records nothing twice.
      const again = await start(base());
      assert.deepEqual(again.result, { weighed: false, acknowledged: [], paused: [] });
      assert.equal((await again.service.recordOf(ctx, 'card-processor')).acknowledgements.length, 1);
    });

    test('a non-material change, and a new sub-processor, pause no one', async () => {
      const text = mutate((d) => {
        d.setIn(['recipients', recipientIndex(d, 'card-processor'), 'webhook'], receiver.url);
        d.setIn(['policy', 'version'], '2026-02-01-wording');
        d.setIn(
          ['recipients', recipientIndex(d, 'card-processor'), 'description'],
          'Processes your card payments.',
        );
        (
          d.getIn(['recipients', recipientIndex(d, 'email-delivery'), 'sub_processors']) as {
            add(v: unknown): void;
          }
        ).add(d.createNode({ name: 'Bounce handling service', country: 'US', purpose: 'provide-service' }));
      });
      const { service, result } = await start(text);
      assert.equal(result.weighed, true);
      assert.deepEqual(result.paused, []);
      for (const key of BOUND) assert.equal((await service.standingOf(ctx, key)).ok, true, key);
    });

    test('a material change pauses exactly the recipients it touches, notices them, and standing returns on acknowledgement', async () => {
      const mailsBefore = sink.messages.length;
      const text = mutate((d) => {
        const card = recipientIndex(d, 'card-processor');
        d.setIn(['recipients', card, 'webhook'], receiver.url);
        d.setIn(['policy', 'version'], '2026-03-01');
        // The card processor moves the data to Ireland; the UK company now also gets usage data.
        d.setIn(['recipients', card, 'country'], 'IE');
        (
          d.getIn(['recipients', recipientIndex(d, 'group-companies-uk'), 'categories']) as {
            add(v: unknown): void;
          }
        ).add('user.behavior.product_usage');
        // Not a recipient's change: a purpose's description.
        d.setIn(['purposes', 0, 'description'], 'Run your account, and the services you use, well.');
      });
      const { service, notices, jobs, audit, result } = await start(text);
      assert.deepEqual([...result.paused].sort(), ['card-processor', 'group-companies-uk']);

      const card = await service.standingOf(ctx, 'card-processor');
      assert.equal(card.ok, false);
      assert.ok(!card.ok);
      assert.equal(card.code, 'share.recipient_paused');
      assert.equal(card.policyVersion, '2026-03-01');
      assert.match(card.message, /recipient\.country_changed/);
      assert.match(
        card.message,
        /pledge recipients acknowledge card-processor --version 2026-03-01 --by NAME/,
      );
      const uk = await service.standingOf(ctx, 'group-companies-uk');
      assert.ok(!uk.ok && uk.code === 'share.recipient_paused');
      for (const key of ['email-delivery', 'group-companies'])
        assert.equal((await service.standingOf(ctx, key)).ok, true, `${key} is untouched`);

      // The notices: an e-mail to each contact, and a signed POST to the card processor's webhook.
      let done = 0;
      // Each type runs one job at a time: run until nothing is due (bounded).
      for (let round = 0; round < 10; round++) {
        const ran = await jobs.runDue({ types: [NOTICE_EMAIL_JOB, NOTICE_WEBHOOK_JOB] });
        assert.equal(ran.retried + ran.dead, 0, JSON.stringify(ran));
        done += ran.done;
        if (ran.claimed === 0) break;
      }
      assert.equal(done, 3, 'two e-mails and one webhook POST');
      await sink.waitForAccepted(mailsBefore + 2);
      const mailTo = (address: string) => sink.messages.find((m) => m.to === address);
      const cardMail = mailTo('privacy@card-processor.example');
      assert.ok(cardMail, 'the card processor is mailed');
      const parsed = await simpleParser(cardMail.raw);
      assert.equal(parsed.subject, 'Example Online: please acknowledge privacy policy version 2026-03-01');
      assert.match(
        parsed.text ?? '',
        /- Card processor will hold your information in Ireland instead of the United States\./,
      );
      assert.match(parsed.text ?? '', /paused every disclosure of personal information to you/);
      assert.match(parsed.text ?? '', /https:\/\/www\.example-online\.test\/privacy\/processors/);
      assert.ok(mailTo('privacy@example-systems.co.uk'), 'the UK company is mailed');
      assert.equal(mailTo('dpo@mail-delivery.example'), undefined, 'an untouched processor is not');
      assert.equal(receiver.received.length, 1);
      const post = receiver.received[0]!;
      const verified = verifyWebhookSignature({
        secret: notices.secretOf('card-processor') ?? '',
        header: post.headers['pledge-signature'],
        body: post.body,
      });
      assert.equal(verified.valid, true);
      const payload = JSON.parse(post.body) as NoticeWebhookPayload;
      assert.equal(payload.type, 'policy.acknowledgement_required');
      assert.equal(payload.data.policyVersion, '2026-03-01');
      assert.deepEqual(
        payload.data.changes.map((c) => c.kind),
        ['recipient.country_changed'],
      );
      const record = await service.recordOf(ctx, 'card-processor');
      assert.deepEqual(record.notices.map((x) => [x.channel, x.status]).sort(), [
        ['email', 'sent'],
        ['webhook', 'sent'],
      ]);
      assert.equal(record.pauses[0]?.liftedAt, undefined);

      // Only the version in force can be acknowledged.
      await assert.rejects(
        service.acknowledge(ctx, {
          recipient: 'card-processor',
          version: '2026-02-01-wording',
          by: 'Ada Lovelace',
        }),
        { code: 'share.acknowledgement_version' },
      );
      await assert.rejects(
        service.acknowledge(ctx, { recipient: 'authorities', version: '2026-03-01', by: 'X' }),
        {
          code: 'share.acknowledgement_not_needed',
        },
      );
      await assert.rejects(
        service.acknowledge(ctx, { recipient: 'nobody', version: '2026-03-01', by: 'X' }),
        {
          code: 'share.recipient_undeclared',
        },
      );
      await assert.rejects(
        service.acknowledge(ctx, { recipient: 'card-processor', version: '2026-03-01', by: 'Ada\nLovelace' }),
        { code: 'share.acknowledged_by_invalid' },
      );

      const operator = createContext({ kind: 'api_key', id: 'key-1' });
      const { acknowledgement, lifted } = await service.acknowledge(operator, {
        recipient: 'card-processor',
        version: '2026-03-01',
        by: 'Ada Lovelace, DPO',
      });
      assert.equal(lifted.length, 1);
      assert.deepEqual(acknowledgement.actor, { kind: 'api_key', id: 'key-1' });
      assert.deepEqual(await service.standingOf(ctx, 'card-processor'), {
        ok: true,
        acknowledgedVersion: '2026-03-01',
      });
      // The UK company is still paused until it acknowledges too.
      assert.equal((await service.standingOf(ctx, 'group-companies-uk')).ok, false);
      const after = await service.recordOf(ctx, 'card-processor');
      assert.equal(after.pauses[0]?.liftedBy, acknowledgement.id);
      assert.equal(after.acknowledgements[0]?.acknowledgedBy, 'Ada Lovelace, DPO');

      // Each step is in the audit log, without the person's name.
      const entries = await audit.listRecent(ctx, 50);
      const actions = entries.map((e) => e.action);
      assert.ok(actions.includes('share.paused'));
      assert.ok(actions.includes('share.acknowledged'));
      assert.ok(actions.includes('share.pause_lifted'));
      assert.ok(!JSON.stringify(entries).includes('Ada Lovelace'));
    });

    test('two instances starting with the same new manifest weigh it once', async () => {
      const text = mutate((d) => {
        d.setIn(['recipients', recipientIndex(d, 'card-processor'), 'webhook'], receiver.url);
        d.setIn(['policy', 'version'], '2026-04-01');
        d.setIn(['recipients', recipientIndex(d, 'email-delivery'), 'country'], 'CA');
      });
      const file = path.join(dir, `pledge-${++n}.yaml`);
      await writeFile(file, text);
      const versions = new ManifestVersionRepository(database.db);
      const active = await activateManifest(ctx, { file, versions });
      const instance = () =>
        new AcknowledgementService({
          db: database.db,
          repo: new AcknowledgementsRepository(database.db, signatories),
          audit: AuditLog.over(database.db, logKeys),
          notifications: database,
          manifest: { manifest: active.manifest, versionId: active.version.id },
          versions,
        });
      const [a, b] = await Promise.all([
        instance().activate(ctx, active.version),
        instance().activate(ctx, active.version),
      ]);
      assert.deepEqual([a.weighed, b.weighed].sort(), [false, true]);
      const record = await instance().recordOf(ctx, 'email-delivery');
      assert.equal(
        record.pauses.filter((p) => p.policyVersion === '2026-04-01').length,
        1,
        'one pause, not two',
      );
    });

    test('a recipient without an agreement must acknowledge before it stands', async () => {
      const text = mutate((d) => {
        const uk = recipientIndex(d, 'group-companies-uk');
        d.setIn(['recipients', uk, 'key'], 'group-companies-ie');
        d.deleteIn(['recipients', uk, 'agreement']);
        d.setIn(['recipients', uk, 'since'], '2026-03-01');
        const pledges = (d.toJS() as { pledges: Array<{ kind: string }> }).pledges;
        d.deleteIn(['pledges', pledges.findIndex((p) => p.kind === 'processor_agreement')]);
        // A processor added later, with an agreement, counts as acknowledging from its first version.
        (d.get('recipients') as { add(v: unknown): void }).add(
          d.createNode({
            key: 'hosting',
            name: 'Hosting provider',
            kind: 'processor',
            categories: ['user.name'],
            purposes: ['provide-service'],
            agreement: { reference: 'DPA-2026-001', signed: '2026-02-15' },
            contact: 'privacy@hosting.example',
            country: 'US',
          }),
        );
      });
      const { service, result, active } = await start(text);
      assert.ok(result.acknowledged.includes('hosting'), JSON.stringify(result));
      assert.deepEqual(await service.standingOf(ctx, 'hosting'), {
        ok: true,
        acknowledgedVersion: active.manifest.policy.version,
      });
      assert.ok(!result.acknowledged.includes('group-companies-ie'));
      const standing = await service.standingOf(ctx, 'group-companies-ie');
      assert.ok(!standing.ok && standing.code === 'share.acknowledgement_required');
      await service.acknowledge(ctx, {
        recipient: 'group-companies-ie',
        version: active.manifest.policy.version,
        by: 'Grace Hopper',
      });
      assert.equal((await service.standingOf(ctx, 'group-companies-ie')).ok, true);
    });
    test('a notice its webhook refuses is recorded with the answer and stays queued for a retry', async () => {
      receiver.statuses.push(503);
      const posts = receiver.received.length;
      const text = mutate((d) => {
        const card = recipientIndex(d, 'card-processor');
        d.setIn(['recipients', card, 'webhook'], receiver.url);
        d.setIn(['policy', 'version'], '2026-06-01');
        d.setIn(['recipients', card, 'country'], 'CA');
      });
      const { service, jobs, result } = await start(text);
      assert.ok(result.paused.includes('card-processor'));
      const ran = await jobs.runDue({ types: [NOTICE_WEBHOOK_JOB] });
      assert.equal(ran.retried, 1, JSON.stringify(ran));
      assert.equal(receiver.received.length, posts + 1, 'the POST was made');
      const webhook = (await service.recordOf(ctx, 'card-processor')).notices.find(
        (x) => x.channel === 'webhook' && x.status !== 'sent',
      );
      assert.ok(webhook);
      assert.equal(webhook.status, 'pending');
      assert.equal(webhook.attempts, 1);
      assert.equal(webhook.lastStatus, 'HTTP 503');
      // The refusal changes nothing about the pause.
      assert.equal((await service.standingOf(ctx, 'card-processor')).ok, false);
    });
  });
}
