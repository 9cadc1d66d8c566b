/**
 * Erasure on Pledge's side, on every engine: the person's records become unreadable with their data
 * key destroyed, a later collection of the same person is recognized by the tombstone, every
 * recipient that received the data is sent a signed `subject.erased` (and nothing else of them), and
 * each step is in the log. Under a legal hold, what the hold covers is kept and readable for the
 * authority, the rest is deleted, and the key is destroyed only once the request is closed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { verifyWebhookSignature } from '../../src/consent/webhooks.signature.js';
import { createContext } from '../../src/platform/context.js';
import { RECIPIENT_ERASED_JOB } from '../../src/rights/erasure.service.js';
import { deriveRecipientNoticeSecret } from '../../src/share/acknowledgements.notices.js';
import { DIALECTS } from '../helpers/databases.js';
import { waitFor } from '../helpers/faults.js';
import { requestBody } from '../share/legal-app.js';
import { NOTIFIED_RECIPIENT, openRightsApp, type RightsTestApp } from './pledge-rights-app.js';

// Four eyes: who records a legal request and who approves it are two accounts.
const cli = createContext({ kind: 'cli', id: 'alice' });
const reviewer = createContext({ kind: 'cli', id: 'bob' });

for (const dialect of DIALECTS) {
  describe(`erasure on ${dialect}`, () => {
    let t: RightsTestApp;
    before(async () => {
      t = await openRightsApp(dialect, { holdRecheckMs: 100 });
    });
    after(async () => t.cleanup());

    const recordsOf = async (subjectId: string) =>
      t.database.tables
        .selectFrom('records')
        .select(['id', 'source'])
        .where('subject_id', '=', subjectId)
        .execute();

    test('records unreadable, key destroyed, tombstone recognized, recipients told, every step logged', async () => {
      const ada = await t.register();
      const bob = await t.register('Bob');
      const shared = await t.app.share.disclose(t.ctx, {
        recipient: NOTIFIED_RECIPIENT,
        purpose: 'provide-service',
        subjects: [ada.id],
        fields: ['email', 'last_name'],
      });
      assert.equal(shared.subjects[0]?.disclosed, true);
      assert.ok(await t.app.dataKeys.forRead(t.ctx, ada.id, 1), 'Ada has a data key before');

      const holds = await t.app.pledgeRights.holds.holdsOn(t.ctx, ada.id);
      assert.deepEqual(holds, []);
      const result = await t.app.pledgeRights.erasure.erasePledgeData(t.ctx, ada.id, holds);
      assert.equal(result.ok, true, JSON.stringify(result.steps));
      assert.equal(result.keyDestroyed, true);
      assert.deepEqual(
        result.steps.map((s) => [s.step, s.ok]),
        [
          ['recipients', true],
          ['tombstone', true],
          ['vault', true],
          ['notify', true],
        ],
      );
      assert.deepEqual(result.held, []);
      assert.deepEqual(result.steps[3]?.details.queued, [NOTIFIED_RECIPIENT]);

      // Unreadable: the key is gone, the records are gone, the use gate knows no such person.
      assert.equal(await t.app.dataKeys.forRead(t.ctx, ada.id, 1), undefined);
      assert.deepEqual(await recordsOf(ada.id), []);
      await assert.rejects(
        t.app.vault.read(t.ctx, ada.id, 'provide-service'),
        (err: Error & { code?: string }) => err.code === 'vault.subject_not_found',
      );
      assert.equal(await t.app.vault.findSubjectByIdentifier(t.ctx, 'email', ada.email), undefined);
      // Bob is untouched.
      assert.equal((await recordsOf(bob.id)).length, 1);

      // The recipient is told, signed as its policy notices are, with only what it already had.
      const hit = await waitFor('the recipient is told', 10_000, () =>
        t.received.find((r) => r.body.includes('subject.erased')),
      );
      const secret = deriveRecipientNoticeSecret(
        t.app.keyring.use('recipient_notices').current().secret,
        NOTIFIED_RECIPIENT,
      );
      assert.equal(
        verifyWebhookSignature({ secret, header: hit.headers['pledge-signature'], body: hit.body }).valid,
        true,
      );
      const event = JSON.parse(hit.body) as { type: string; data: Record<string, unknown> };
      assert.equal(event.type, 'subject.erased');
      assert.equal(event.data.subject, ada.id);
      assert.equal(event.data.recipient, NOTIFIED_RECIPIENT);
      assert.deepEqual([...(event.data.categories as string[])].sort(), [
        'user.contact.email',
        'user.name.last',
      ]);
      assert.ok(!hit.body.includes(ada.email), 'no value is sent');
      const jobs = await t.app.jobs.list(t.ctx, { type: RECIPIENT_ERASED_JOB });
      assert.equal(jobs.filter((j) => j.key === `subject-erased:${ada.id}:${NOTIFIED_RECIPIENT}`).length, 1);

      // Every step is in the log, with counts and ids only.
      const entries = await t.app.audit.listBySubject(t.ctx, ada.id);
      const steps = entries.filter((e) => e.action === 'rights.erasure_step').map((e) => e.details?.step);
      assert.deepEqual(steps, ['recipients', 'tombstone', 'vault', 'notify']);
      assert.ok(entries.some((e) => e.action === 'subject.erase'));
      assert.ok(!JSON.stringify(entries).includes(ada.email));

      // The same person collected again is a new subject, recognized as erased before; Bob's twin is not.
      const again = await t.app.collect.collect(t.ctx, 'registration', {
        jurisdiction: 'US',
        data: {
          email: ada.email.toUpperCase(),
          first_name: 'Ada',
          last_name: 'L',
          password: 'correct horse battery staple',
        },
      });
      assert.notEqual(again.subject.id, ada.id);
      const created = (await t.app.audit.listBySubject(t.ctx, again.subject.id)).find(
        (e) => e.action === 'subject.create',
      );
      assert.equal(created?.details?.previouslyErased, true);
      const fresh = await t.register();
      const freshCreated = (await t.app.audit.listBySubject(t.ctx, fresh.id)).find(
        (e) => e.action === 'subject.create',
      );
      assert.equal(freshCreated?.details?.previouslyErased, undefined);

      // A second erasure of the same person is harmless: every step succeeds again, nothing is sent twice.
      const twice = await t.app.pledgeRights.erasure.erasePledgeData(t.ctx, ada.id, []);
      assert.equal(twice.ok, true, JSON.stringify(twice.steps));
      assert.deepEqual(twice.steps[3]?.details.queued, [NOTIFIED_RECIPIENT]);
      assert.equal(
        (await t.app.jobs.list(t.ctx, { type: RECIPIENT_ERASED_JOB })).filter(
          (j) => j.key === `subject-erased:${ada.id}:${NOTIFIED_RECIPIENT}`,
        ).length,
        1,
      );
    });

    test('a legal hold keeps what it covers, deletes the rest, and the key goes only after the request closes', async () => {
      const ada = await t.register();
      await t.app.collect.collect(t.ctx, 'feedback', {
        subject: { id: ada.id },
        data: { message: 'hi', rating: 4 },
      });
      const received = await t.app.legal.receive(cli, requestBody([ada.id]), { by: 'Alice Martin' });
      await t.app.legal.approve(reviewer, received.id, { by: 'Bob Okafor' });

      const holds = await t.app.pledgeRights.holds.holdsOn(t.ctx, ada.id);
      assert.deepEqual(
        holds.map((h) => h.requestId),
        [received.id],
      );
      const result = await t.app.pledgeRights.erasure.erasePledgeData(t.ctx, ada.id, holds);
      assert.equal(result.ok, true, JSON.stringify(result.steps));
      assert.equal(result.keyDestroyed, false);
      assert.equal(result.held.length, 1);
      assert.equal(result.held[0]?.requestId, received.id);
      assert.equal(result.held[0]?.recordsKept, 1);
      assert.match(result.held[0]?.why ?? '', /SB-2026-CR-0142/);
      assert.deepEqual(result.held[0]?.categories, ['user.contact.email', 'user.name']);

      // The registration (e-mail and name, held) stays readable for the authority; the feedback went.
      assert.deepEqual(
        (await recordsOf(ada.id)).map((r) => r.source),
        ['registration'],
      );
      assert.ok(await t.app.dataKeys.forRead(t.ctx, ada.id, 1), 'the key is kept while the hold lasts');
      const legal = await t.app.vault.read(t.ctx, ada.id, 'legal-compliance', {}, { requiredByLaw: true });
      assert.equal(legal.records[0]?.fields.email?.value, ada.email);
      // No longer found by an identifier: the blind-index entries went at once.
      assert.equal(await t.app.vault.findSubjectByIdentifier(t.ctx, 'email', ada.email), undefined);

      await t.app.legal.close(cli, received.id, { by: 'Alice Martin' });
      // The waiting job finishes the erasure and logs it once done (the key first, then the records).
      const finished = await waitFor('the erasure finished once the hold ended', 15_000, async () =>
        (await t.app.audit.listBySubject(t.ctx, ada.id)).find(
          (e) => e.action === 'rights.erasure_step' && e.details?.afterHold === true,
        ),
      );
      assert.equal(finished.details?.keyDestroyed, true);
      assert.equal(await t.app.dataKeys.forRead(t.ctx, ada.id, 1), undefined);
      assert.deepEqual(await recordsOf(ada.id), []);
    });
  });
}
