/**
 * A notice the law forbids for a while: nothing is sent while the prohibition lasts (the person's
 * "who got my data" view holds the disclosure back), and the job queued with the intake for its end
 * date sends it then, on a fake clock, through a real SMTP server; on every engine. A prohibition
 * without an end holds the notice for good.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fixedClock } from '../../src/platform/clock.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import { MailTransport } from '../../src/platform/mail/mail.transport.js';
import { LEGAL_NOTICE_JOB, LEGAL_NOTICES_DUE_JOB, type LegalService } from '../../src/share/legal.service.js';
import { createLegal } from '../../src/share/legal.setup.js';
import { DIALECTS } from '../helpers/databases.js';
import { waitFor } from '../helpers/faults.js';
import { decodeQuotedPrintable, openLegalApp, requestBody, type LegalTestApp } from './legal-app.js';

const DAY = 86_400_000;
const TYPES = [LEGAL_NOTICE_JOB, LEGAL_NOTICES_DUE_JOB];

for (const dialect of DIALECTS) {
  describe(`legal notices under a prohibition on ${dialect}`, () => {
    let t: LegalTestApp;
    let clock: ReturnType<typeof fixedClock>;
    let queue: JobQueue;
    let legal: LegalService;
    let mail: MailTransport;

    before(async () => {
      t = await openLegalApp(dialect);
      // A queue of its own on a clock the test moves; the app's worker runs on the wall clock, so
      // it never finds these jobs due.
      clock = fixedClock(new Date());
      queue = new JobQueue({ db: t.app.database.db, clock });
      mail = new MailTransport({
        smtpUrl: t.sink.url,
        from: 'privacy@example-online.test',
        log: { warn() {}, info() {} },
      });
      legal = createLegal({
        db: t.app.database.db,
        queue,
        audit: t.app.audit,
        manifest: { manifest: t.app.active.manifest },
        apiKeys: t.app.apiKeys,
        subjects: t.app.subjects,
        vault: t.app.vault,
        mail,
        share: () => t.app.share,
        sealKeys: t.app.keyring.use('legal_requests'),
      }).service;
    });
    after(async () => {
      mail.close();
      await t.cleanup();
    });

    const answered = async (subjectId: string, notice: Record<string, unknown>) => {
      const r = await legal.receive(t.as(t.alice, clock), requestBody([subjectId], { notice }));
      await legal.approve(t.as(t.bob, clock), r.id);
      const out = await legal.disclose(t.as(t.alice, clock), r.id, { fields: ['email'] });
      assert.deepEqual(out.disclosedSubjects, [subjectId]);
      return r.id;
    };

    test('no notice while the prohibition lasts; at its end date the notice is sent', async () => {
      const ada = await t.register();
      const until = new Date(clock.now().getTime() + 30 * DAY);
      const id = await answered(ada.subjectId, { prohibited: true, until: until.toISOString() });

      // Everything due now runs: no notice leaves, and the person's view holds the disclosure back.
      await queue.runDue({ types: TYPES });
      clock.advance(29 * DAY);
      await queue.runDue({ types: TYPES });
      assert.equal(t.sink.countFor(ada.address), 0, 'no notice during the prohibition');
      const held = await legal.disclosuresOf(t.as(t.alice, clock), ada.subjectId);
      assert.deepEqual(
        held.map((d) => [d.requestId, d.heldUntil instanceof Date ? d.heldUntil.toISOString() : d.heldUntil]),
        [[id, until.toISOString()]],
      );
      const view = await t.call(t.bob, 'GET', `/api/v1/legal-requests/${id}`);
      const disclosure = (view.body.disclosures as Array<Record<string, unknown>>)[0];
      assert.equal(disclosure?.noticeHeldUntil, until.toISOString());
      assert.equal(disclosure?.noticeAt, undefined);

      // The prohibition ends: the job queued with the intake queues the notice, which is sent.
      clock.advance(1 * DAY + 1_000);
      const due = await queue.runDue({ types: TYPES });
      assert.ok(due.done >= 1, 'the end-date job ran');
      await queue.runDue({ types: TYPES });
      await t.sink.waitForAccepted(1);
      const message = t.sink.messages.find((m) => m.to === ada.address.toLowerCase());
      assert.ok(message, 'the notice reached the person');
      assert.match(
        decodeQuotedPrintable(message.raw.toString('latin1')),
        /disclosed information about you to Superior Court/,
      );

      const after = await legal.disclosuresOf(t.as(t.alice, clock), ada.subjectId);
      assert.equal(after[0]?.heldUntil, undefined, 'shown to the person from now on');
      const [notice] = await legal.notices(t.as(t.alice, clock), id);
      assert.equal(notice?.noticeStatus, 'sent');
      assert.equal(notice?.noticeAt?.toISOString(), clock.now().toISOString(), 'recorded when it went out');
      // Sent once: another pass finds nothing to do.
      await queue.runDue({ types: TYPES });
      assert.equal(t.sink.countFor(ada.address), 1);
    });

    test('a prohibition without an end date holds the notice for good', async () => {
      const grace = await t.register();
      await answered(grace.subjectId, { prohibited: true });
      clock.advance(400 * DAY);
      await queue.runDue({ types: TYPES });
      await queue.runDue({ types: TYPES });
      assert.equal(t.sink.countFor(grace.address), 0);
      const held = await legal.disclosuresOf(t.as(t.alice, clock), grace.subjectId);
      assert.equal(held[0]?.heldUntil, 'indefinite');
    });

    test('without a prohibition the notice is queued by the disclosure itself', async () => {
      const alan = await t.register();
      const id = await answered(alan.subjectId, { prohibited: false });
      await queue.runDue({ types: TYPES });
      // The first test's notice and this one.
      await t.sink.waitForAccepted(2);
      assert.equal(t.sink.countFor(alan.address), 1);
      const [notice] = await legal.notices(t.as(t.alice, clock), id);
      assert.equal(notice?.noticeStatus, 'sent');
    });

    test('a prohibition extended before its end holds the notice to the new end; one lifted sends it at once', async () => {
      const ada = await t.register();
      const first = new Date(clock.now().getTime() + 10 * DAY);
      const id = await answered(ada.subjectId, { prohibited: true, until: first.toISOString() });
      clock.advance(5 * DAY);
      const second = new Date(clock.now().getTime() + 15 * DAY);
      const extended = await legal.setNoticeTerms(t.as(t.alice, clock), id, {
        prohibited: true,
        until: second.toISOString(),
      });
      assert.equal(extended.notice.until?.toISOString(), second.toISOString());
      clock.advance(6 * DAY);
      await queue.runDue({ types: TYPES });
      await queue.runDue({ types: TYPES });
      assert.equal(t.sink.countFor(ada.address), 0, 'the first end date passed, the extension holds');
      clock.advance(10 * DAY);
      await queue.runDue({ types: TYPES });
      await queue.runDue({ types: TYPES });
      await waitFor('the notice after the extension', 10_000, () =>
        t.sink.countFor(ada.address) > 0 ? true : undefined,
      );
      assert.equal(t.sink.countFor(ada.address), 1);

      const grace = await t.register();
      const held = await answered(grace.subjectId, { prohibited: true });
      const bad = await t.call(t.alice, 'POST', `/api/v1/legal-requests/${held}/notice`, {
        prohibited: 'no',
      });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error?.code, 'legal.notice_invalid');
      await legal.setNoticeTerms(t.as(t.alice, clock), held, { prohibited: false });
      await queue.runDue({ types: TYPES });
      await waitFor('the notice after the lift', 10_000, () =>
        t.sink.countFor(grace.address) > 0 ? true : undefined,
      );
      const [notice] = await legal.notices(t.as(t.alice, clock), held);
      assert.equal(notice?.noticeStatus, 'sent');
      const log = await t.database.tables
        .selectFrom('audit_events')
        .select('details')
        .where('action', '=', 'legal.notice_terms')
        .execute();
      assert.equal(log.filter((r) => r.details.includes(held)).length, 1);
    });
  });
}
