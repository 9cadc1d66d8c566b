/**
 * Legal requests by the book, over HTTP on every engine: a request is recorded, reviewed by someone
 * else, answered with the approved minimum through the share gate, the person is told by e-mail (a
 * real SMTP server), and the request is closed; each step is in the audit log with ids and counts
 * only. A review by the same key or the same holder is refused, a narrowing never widens, and
 * nothing leaves before approval, beyond it or after closure.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DIALECTS } from '../helpers/databases.js';
import { waitFor } from '../helpers/faults.js';
import { decodeQuotedPrintable, openLegalApp, requestBody, type LegalTestApp } from './legal-app.js';

type Json = Record<string, unknown>;

for (const dialect of DIALECTS) {
  describe(`legal requests on ${dialect}`, () => {
    let t: LegalTestApp;

    before(async () => {
      t = await openLegalApp(dialect);
    });
    after(async () => t.cleanup());

    const receive = async (subjects: string[], over: Json = {}) => {
      const res = await t.call(t.alice, 'POST', '/api/v1/legal-requests', requestBody(subjects, over));
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return (res.body.request as Json).id as string;
    };

    test('the whole life of a request: intake, approval by another, disclosure, notice by e-mail, closure', async () => {
      const ada = await t.register();
      const res = await t.call(t.alice, 'POST', '/api/v1/legal-requests', requestBody([ada.subjectId]));
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const request = res.body.request as Json;
      assert.equal(request.status, 'received');
      assert.deepEqual(request.intakeBy, { key: t.alice.id, holder: 'Alice Martin' });
      const id = request.id as string;

      const approved = await t.call(t.bob, 'POST', `/api/v1/legal-requests/${id}/approve`, {});
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal((approved.body.request as Json).status, 'approved');
      assert.deepEqual((approved.body.request as Json).approved, {
        subjects: [ada.subjectId],
        categories: ['user.contact.email', 'user.name'],
      });

      const disclosed = await t.call(t.alice, 'POST', `/api/v1/legal-requests/${id}/disclose`, {
        fields: ['email'],
      });
      assert.equal(disclosed.status, 200, JSON.stringify(disclosed.body));
      assert.equal((disclosed.body.request as Json).status, 'disclosed');
      const gate = disclosed.body.disclosure as { recipient: string; legalRequest: string; subjects: Json[] };
      assert.equal(gate.recipient, 'authorities');
      assert.equal(gate.legalRequest, id);
      assert.equal(gate.subjects.length, 1);
      assert.equal(gate.subjects[0]?.subjectId, ada.subjectId);
      // What the law requires leaves, though it was collected to provide the service, not for legal-compliance.
      assert.deepEqual(gate.subjects[0]?.fields, { email: ada.address });
      // Only a purpose of legal obligation reads past the collection purposes.
      await assert.rejects(
        t.app.vault.readMany(t.as(t.alice), [ada.subjectId], 'provide-service', { requiredByLaw: true }),
        (err: Error & { code?: string }) => err.code === 'vault.legal_basis_required',
      );

      // The person is told, at the address the vault holds.
      await t.sink.waitForAccepted(1);
      const message = t.sink.messages.find((m) => m.to === ada.address.toLowerCase());
      assert.ok(message, 'the notice was mailed to the person');
      const raw = decodeQuotedPrintable(message.raw.toString('latin1'));
      assert.match(raw, /Superior Court of Santa Barbara County/);
      assert.match(raw, /SB-2026-CR-0142/);
      assert.match(raw, /Legal basis: court order \(Cal\. Penal Code § 1524\.2\)/);
      // The notice is recorded once its job has committed.
      const shown = await waitFor('the notice recorded', 10_000, async () => {
        const r = await t.call(t.alice, 'GET', `/api/v1/legal-requests/${id}`);
        const d = (r.body.disclosures as Json[])[0];
        return d?.noticeStatus === 'sent' ? r : undefined;
      });
      const disclosure = (shown.body.disclosures as Json[])[0] as Json;
      assert.equal(disclosure.subjectId, ada.subjectId);
      assert.equal(typeof disclosure.noticeAt, 'string');
      assert.equal(disclosure.noticeHeldUntil, undefined);

      const closedRes = await t.call(t.bob, 'POST', `/api/v1/legal-requests/${id}/close`, {});
      assert.equal(closedRes.status, 200, JSON.stringify(closedRes.body));
      assert.equal((closedRes.body.request as Json).status, 'closed');

      // After closure nothing more leaves.
      const late = await t.call(t.alice, 'POST', `/api/v1/legal-requests/${id}/disclose`, {
        fields: ['email'],
      });
      assert.equal(late.status, 409);
      assert.equal(late.body.error?.code, 'legal.request_closed');
      // The share gate itself refuses a closed request, whoever asks it.
      await assert.rejects(
        t.app.share.disclose(t.as(t.alice), {
          recipient: 'authorities',
          purpose: 'legal-compliance',
          subjects: [ada.subjectId],
          fields: ['email'],
          legalRequest: id,
        }),
        (err: Error & { code?: string }) => err.code === 'share.legal_request_not_approved',
      );

      // Every step in the audit log, with ids and counts, never the address or the authority's name.
      const rows = await t.database.tables
        .selectFrom('audit_events')
        .select(['action', 'details', 'subject_id'])
        .where('action', 'like', 'legal.%')
        .orderBy('id')
        .execute();
      const ours = rows.filter((r) => r.details.includes(id));
      assert.deepEqual(
        ours.map((r) => r.action),
        ['legal.intake', 'legal.approve', 'legal.disclose', 'legal.notice', 'legal.close'],
      );
      for (const r of ours) {
        assert.ok(!r.details.includes(ada.address), 'no address in the log');
        assert.ok(!r.details.includes('Santa Barbara'), "no authority's name in the log");
      }
      assert.ok(!t.logs().includes(ada.address), 'no address in the server logs');
    });

    test('intake is checked field by field, each problem with its JSON path', async () => {
      const res = await t.call(t.alice, 'POST', '/api/v1/legal-requests', {
        authority: { name: '', type: 'police' },
        legalBasis: 'hunch',
        reference: 'X-1',
        scope: { subjects: ['not-an-id'], categories: ['user.contact.email', 'no.such.category'] },
        deadline: '2026-02-30',
        notice: { prohibited: false, until: '2027-01-01' },
        extra: 1,
      });
      assert.equal(res.status, 400);
      assert.equal(res.body.error?.code, 'legal.request_invalid');
      const problems = (res.body.error as unknown as { details: { problems: Array<{ path: string }> } })
        .details.problems;
      assert.deepEqual(problems.map((p) => p.path).sort(), [
        'authority.name',
        'authority.type',
        'deadline',
        'extra',
        'legalBasis',
        'notice.until',
        'scope.categories[1]',
        'scope.subjects[0]',
      ]);
      const unknown = await t.call(
        t.alice,
        'POST',
        '/api/v1/legal-requests',
        requestBody(['0190a000-0000-7000-8000-000000000000']),
      );
      assert.equal(unknown.status, 400);
      assert.match(unknown.body.error?.message ?? '', /scope\.subjects\[0\]: no subject has this id/);
    });

    test('a review by the key, or the holder, that made the intake is refused', async () => {
      const ada = await t.register();
      const id = await receive([ada.subjectId]);
      const sameKey = await t.call(t.alice, 'POST', `/api/v1/legal-requests/${id}/approve`, {});
      assert.equal(sameKey.status, 403);
      assert.equal(sameKey.body.error?.code, 'legal.self_review');
      assert.match(sameKey.body.error?.message ?? '', /the same API key/);
      // Another key, but Alice's (the holder compares without case).
      const sameHolder = await t.call(t.aliceReview, 'POST', `/api/v1/legal-requests/${id}/reject`, {
        reason: 'overbroad',
      });
      assert.equal(sameHolder.status, 403);
      assert.equal(sameHolder.body.error?.code, 'legal.self_review');
      assert.match(sameHolder.body.error?.message ?? '', /the same holder/);
      const shown = await t.call(t.bob, 'GET', `/api/v1/legal-requests/${id}`);
      assert.equal((shown.body.request as Json).status, 'received', 'nothing was reviewed');
      // Nothing leaves before an approval.
      const early = await t.call(t.alice, 'POST', `/api/v1/legal-requests/${id}/disclose`, {
        fields: ['email'],
      });
      assert.equal(early.status, 409);
      assert.equal(early.body.error?.code, 'legal.not_approved');
      // A key without a holder cannot take part at all.
      const anonymous = await t.app.apiKeys.createKey(t.ctx, {
        name: 'no-holder',
        system: 'legal-team',
        scopes: ['legal:review'],
      });
      const res = await t.call(anonymous, 'POST', `/api/v1/legal-requests/${id}/approve`, {});
      assert.equal(res.status, 403);
      assert.equal(res.body.error?.code, 'legal.holder_required');
    });

    test('a narrowing takes a subset and never widens; a disclosure never exceeds it', async () => {
      const ada = await t.register();
      const grace = await t.register();
      const id = await receive([ada.subjectId, grace.subjectId]);
      const wider = await t.call(t.bob, 'POST', `/api/v1/legal-requests/${id}/narrow`, {
        subjects: [ada.subjectId, '0190a000-0000-7000-8000-000000000001'],
        categories: ['user.contact', 'user.name'],
      });
      assert.equal(wider.status, 400);
      assert.equal(wider.body.error?.code, 'legal.narrow_widens');
      assert.match(wider.body.error?.message ?? '', /subjects\[1\]: was not asked for/);
      assert.match(
        wider.body.error?.message ?? '',
        /categories\[0\]: "user\.contact" is not within what was asked/,
      );

      const narrowed = await t.call(t.bob, 'POST', `/api/v1/legal-requests/${id}/narrow`, {
        subjects: [ada.subjectId],
        categories: ['user.contact.email'],
      });
      assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
      assert.equal((narrowed.body.request as Json).decision, 'narrowed');
      assert.deepEqual((narrowed.body.request as Json).approved, {
        subjects: [ada.subjectId],
        categories: ['user.contact.email'],
      });
      const again = await t.call(t.bob, 'POST', `/api/v1/legal-requests/${id}/approve`, {});
      assert.equal(again.status, 409);
      assert.equal(again.body.error?.code, 'legal.already_reviewed');

      // A subject asked for but not approved.
      const other = await t.call(t.alice, 'POST', `/api/v1/legal-requests/${id}/disclose`, {
        fields: ['email'],
        subjects: [grace.subjectId],
      });
      assert.equal(other.status, 403);
      assert.equal(other.body.error?.code, 'legal.beyond_approval');
      // A field whose category was asked for but not approved.
      const name = await t.call(t.alice, 'POST', `/api/v1/legal-requests/${id}/disclose`, {
        fields: ['email', 'first_name'],
      });
      assert.equal(name.status, 403);
      assert.equal(name.body.error?.code, 'legal.beyond_approval');
      assert.match(name.body.error?.message ?? '', /fields\[1\]: "first_name" holds user\.name/);
      // The card processor's token fields are checked by category like any other, as the gate sees them.
      const token = await t.call(t.alice, 'POST', `/api/v1/legal-requests/${id}/disclose`, {
        fields: ['card_last_four'],
      });
      assert.equal(token.status, 403);
      assert.equal(token.body.error?.code, 'legal.beyond_approval');
      assert.match(token.body.error?.message ?? '', /fields\[0\]: "card_last_four" holds user\.financial/);
      // And the gate, asked directly, holds to the same scope.
      await assert.rejects(
        t.app.share.disclose(t.as(t.alice), {
          recipient: 'authorities',
          purpose: 'legal-compliance',
          subjects: [ada.subjectId, grace.subjectId],
          fields: ['email'],
          legalRequest: id,
        }),
        (err: Error & { code?: string }) => err.code === 'share.legal_scope_exceeded',
      );
      const rows = await t.database.tables
        .selectFrom('legal_notices')
        .selectAll()
        .where('request_id', '=', id)
        .execute();
      assert.equal(rows.length, 0, 'nothing left for the request');

      const ok = await t.call(t.alice, 'POST', `/api/v1/legal-requests/${id}/disclose`, {
        fields: ['email'],
      });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const left = (ok.body.disclosure as { subjects: Json[] }).subjects;
      assert.deepEqual(
        left.map((s) => s.subjectId),
        [ada.subjectId],
      );
    });

    test('a rejected request discloses nothing and keeps its reason code', async () => {
      const ada = await t.register();
      const id = await receive([ada.subjectId]);
      const bad = await t.call(t.bob, 'POST', `/api/v1/legal-requests/${id}/reject`, { reason: 'because' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error?.code, 'legal.reason_invalid');
      const res = await t.call(t.bob, 'POST', `/api/v1/legal-requests/${id}/reject`, { reason: 'overbroad' });
      assert.equal(res.status, 200);
      assert.equal((res.body.request as Json).rejectReason, 'overbroad');
      const disclose = await t.call(t.alice, 'POST', `/api/v1/legal-requests/${id}/disclose`, {
        fields: ['email'],
      });
      assert.equal(disclose.status, 409);
      assert.equal(disclose.body.error?.code, 'legal.request_rejected');
      assert.equal(await t.app.legal.approvedScopeOf(t.ctx, id), undefined);
    });
  });
}
