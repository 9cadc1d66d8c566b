/**
 * No plaintext personal data at rest in the share capability, on every engine: who signed an
 * acknowledgement and a legal request's authority, reference, citation and rejection reason are
 * sealed in their rows, yet the API shows them as given; a sealed value copied to another row does
 * not open (a clear `share.seal_invalid`, never the other row's value); and rows an earlier version
 * wrote in plaintext are sealed at the next start and still read the same.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { uuidv7 } from '../../src/platform/ids.js';
import { PledgeError } from '../../src/platform/errors.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { openLegalApp, requestBody, type LegalTestApp } from './legal-app.js';

const AUTHORITY = 'Superior Court of Santa Barbara County';
const CITATION = 'Cal. Penal Code § 1524.2';
const SIGNATORY = 'Grace Hopper, Data Protection Officer';

interface RequestView {
  id: string;
  authority: { name: string; type: string };
  reference: string;
  citation?: string;
  rejectReason?: string;
}

for (const dialect of DIALECTS) {
  describe(`sealed columns of the share capability on ${dialect}`, () => {
    let t: LegalTestApp;
    let operator = '';

    before(async () => {
      t = await openLegalApp(dialect);
      operator = (
        await t.app.apiKeys.createKey(t.ctx, { name: 'operator-sealed', scopes: ['recipients:admin'] })
      ).key;
    });
    after(() => t.cleanup());

    const raw = () => tablesOf(t.database);
    const intake = async (reference: string): Promise<RequestView> => {
      const ada = await t.register();
      const res = await t.call(t.alice, 'POST', '/api/v1/legal-requests', {
        ...requestBody([ada.subjectId]),
        reference,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.request as RequestView;
    };
    const acknowledgementsOf = async (recipient: string) => {
      const res = await t.app.http.inject({
        method: 'GET',
        url: `/api/v1/recipients/${recipient}/acknowledgements`,
        headers: { authorization: `Bearer ${operator}` },
      });
      return {
        status: res.statusCode,
        body: res.json<{
          acknowledgements?: Array<{ id: string; acknowledgedBy: string; method: string }>;
          error?: { code: string; message: string };
        }>(),
      };
    };

    test('an acknowledgement, an intake and a rejection leave no plaintext in their rows; the API shows it all', async () => {
      const reference = `SB-2026-CR-${uuidv7().slice(-6)}`;
      const made = await intake(reference);
      const rejected = await intake(`${reference}-B`);
      const reject = await t.call(t.bob, 'POST', `/api/v1/legal-requests/${rejected.id}/reject`, {
        reason: 'overbroad',
      });
      assert.equal(reject.status, 200, JSON.stringify(reject.body));
      await t.app.acknowledgements.acknowledge(t.ctx, {
        recipient: 'card-processor',
        version: t.app.active.manifest.policy.version,
        by: SIGNATORY,
      });

      const requests = await raw().selectFrom('legal_requests').selectAll().execute();
      const acknowledgements = await raw().selectFrom('share_acknowledgements').selectAll().execute();
      const atRest = JSON.stringify([requests, acknowledgements]);
      for (const plaintext of [
        AUTHORITY,
        'Santa Barbara',
        CITATION,
        reference,
        'overbroad',
        'Grace Hopper',
        // The agreement's reference the first start counted as an acknowledgement.
        'DPA-2012-004',
      ]) {
        assert.ok(!atRest.includes(plaintext), `"${plaintext}" is stored in plaintext`);
      }
      assert.ok(requests.every((r) => r.sealed === 1 && /^k\d+:/.test(r.reference)));
      assert.ok(acknowledgements.every((r) => r.sealed === 1 && /^k\d+:/.test(r.acknowledged_by)));
      // What the report groups by stays as it was.
      assert.ok(requests.every((r) => r.authority_type === 'court'));

      const shown = await t.call(t.alice, 'GET', `/api/v1/legal-requests/${made.id}`);
      assert.equal(shown.status, 200);
      const view = shown.body.request as RequestView;
      assert.deepEqual(view.authority, { name: AUTHORITY, type: 'court' });
      assert.equal(view.reference, reference);
      assert.equal(view.citation, CITATION);
      const listed = await t.call(t.bob, 'GET', '/api/v1/legal-requests');
      const views = (listed.body as unknown as { requests: RequestView[] }).requests;
      assert.equal(views.find((r) => r.id === rejected.id)?.rejectReason, 'overbroad');
      assert.equal(views.find((r) => r.id === rejected.id)?.reference, `${reference}-B`);

      const record = await acknowledgementsOf('card-processor');
      assert.equal(record.status, 200);
      assert.equal(record.body.acknowledgements?.[0]?.acknowledgedBy, SIGNATORY);
      assert.match(record.body.acknowledgements?.at(-1)?.acknowledgedBy ?? '', /^agreement DPA-2012-004/);
    });

    test('a sealed value copied to another row fails to open with share.seal_invalid', async () => {
      const first = await intake('SB-COPY-1');
      const second = await intake('SB-COPY-2');
      const [from, to] = await Promise.all(
        [first.id, second.id].map((id) =>
          raw()
            .selectFrom('legal_requests')
            .select(['reference'])
            .where('id', '=', id)
            .executeTakeFirstOrThrow(),
        ),
      );
      await raw()
        .updateTable('legal_requests')
        .set({ reference: from!.reference })
        .where('id', '=', second.id)
        .execute();
      try {
        const res = await t.call(t.alice, 'GET', `/api/v1/legal-requests/${second.id}`);
        assert.equal(res.status, 500);
        assert.equal(res.body.error?.code, 'share.seal_invalid');
        assert.match(
          res.body.error?.message ?? '',
          new RegExp(
            `legal_requests\\.reference of row ${second.id} does not open .*copied from another row`,
          ),
        );
        await assert.rejects(
          t.app.legal.get(t.ctx, second.id),
          (err) => err instanceof PledgeError && err.code === 'share.seal_invalid',
        );
        // The column matters too: the authority's seal does not open as the reference of its own row.
        const own = await raw()
          .selectFrom('legal_requests')
          .select(['authority_name'])
          .where('id', '=', first.id)
          .executeTakeFirstOrThrow();
        await raw()
          .updateTable('legal_requests')
          .set({ reference: own.authority_name })
          .where('id', '=', first.id)
          .execute();
        await assert.rejects(
          t.app.legal.get(t.ctx, first.id),
          (err) => err instanceof PledgeError && err.code === 'share.seal_invalid',
        );
      } finally {
        await raw()
          .updateTable('legal_requests')
          .set({ reference: from!.reference })
          .where('id', '=', first.id)
          .execute();
        await raw()
          .updateTable('legal_requests')
          .set({ reference: to!.reference })
          .where('id', '=', second.id)
          .execute();
      }
      assert.equal(
        ((await t.call(t.alice, 'GET', `/api/v1/legal-requests/${second.id}`)).body.request as RequestView)
          .reference,
        'SB-COPY-2',
      );

      // An acknowledgement's signatory, moved to another acknowledgement of the same recipient.
      const version = t.app.active.manifest.policy.version;
      const a = await t.app.acknowledgements.acknowledge(t.ctx, {
        recipient: 'email-delivery',
        version,
        by: 'Ada Lovelace',
      });
      const b = await t.app.acknowledgements.acknowledge(t.ctx, {
        recipient: 'email-delivery',
        version,
        by: 'Alan Turing',
      });
      const sealedA = await raw()
        .selectFrom('share_acknowledgements')
        .select(['acknowledged_by'])
        .where('id', '=', a.acknowledgement.id)
        .executeTakeFirstOrThrow();
      const sealedB = await raw()
        .selectFrom('share_acknowledgements')
        .select(['acknowledged_by'])
        .where('id', '=', b.acknowledgement.id)
        .executeTakeFirstOrThrow();
      await raw()
        .updateTable('share_acknowledgements')
        .set({ acknowledged_by: sealedA.acknowledged_by })
        .where('id', '=', b.acknowledgement.id)
        .execute();
      try {
        const record = await acknowledgementsOf('email-delivery');
        assert.equal(record.status, 500);
        assert.equal(record.body.error?.code, 'share.seal_invalid');
        assert.match(
          record.body.error?.message ?? '',
          /share_acknowledgements\.acknowledged_by of row .* copied from another row/,
        );
      } finally {
        await raw()
          .updateTable('share_acknowledgements')
          .set({ acknowledged_by: sealedB.acknowledged_by })
          .where('id', '=', b.acknowledgement.id)
          .execute();
      }
      assert.equal(
        (await acknowledgementsOf('email-delivery')).body.acknowledgements?.[0]?.acknowledgedBy,
        'Alan Turing',
      );
    });

    test('rows an earlier version wrote in plaintext read as before and are sealed at the next start', async () => {
      const ada = await t.register();
      const legacyRequest = uuidv7();
      const legacyAck = uuidv7();
      const now = new Date().toISOString();
      await raw()
        .insertInto('legal_requests')
        .values({
          id: legacyRequest,
          received_at: now,
          authority_name: 'Metropolitan Police Service',
          authority_type: 'law_enforcement',
          legal_basis: 'search_warrant',
          citation: null,
          reference: 'MPS-LEGACY-77',
          scope_subjects: JSON.stringify([ada.subjectId]),
          scope_categories: JSON.stringify(['user.contact.email']),
          deadline: '2027-02-01',
          notice_prohibited: 0,
          notice_prohibited_until: null,
          decision: 'rejected',
          approved_subjects: null,
          approved_categories: null,
          reject_reason: 'data_not_held',
          intake_by: JSON.stringify({ actor: { kind: 'cli', id: 'test' }, holder: 'Carol' }),
          reviewed_at: now,
          reviewed_by: JSON.stringify({ actor: { kind: 'cli', id: 'test' }, holder: 'Dave' }),
          disclosed_at: null,
          closed_at: null,
          closed_by: null,
          sealed: 0,
        })
        .execute();
      await raw()
        .insertInto('share_acknowledgements')
        .values({
          id: legacyAck,
          recipient: 'group-companies',
          policy_version: t.app.active.manifest.policy.version,
          manifest_version_id: t.app.active.version.id,
          actor: JSON.stringify({ kind: 'cli', id: 'test' }),
          acknowledged_by: 'Katherine Johnson',
          method: 'cli',
          acknowledged_at: new Date(Date.now() + 1000).toISOString(),
          sealed: 0,
        })
        .execute();

      // Until the next start, such a row reads as it was written.
      const before = (await t.call(t.alice, 'GET', `/api/v1/legal-requests/${legacyRequest}`)).body
        .request as RequestView;
      assert.equal(before.reference, 'MPS-LEGACY-77');

      // What every start (and the legal and recipients commands) runs first.
      assert.equal(await t.app.legal.sealStored(t.ctx), 1);
      assert.equal(await t.app.acknowledgements.sealStored(t.ctx), 1);
      assert.equal(await t.app.legal.sealStored(t.ctx), 0, 'a second start seals nothing');

      const request = await raw()
        .selectFrom('legal_requests')
        .selectAll()
        .where('id', '=', legacyRequest)
        .executeTakeFirstOrThrow();
      const ack = await raw()
        .selectFrom('share_acknowledgements')
        .selectAll()
        .where('id', '=', legacyAck)
        .executeTakeFirstOrThrow();
      const atRest = JSON.stringify([request, ack]);
      for (const plaintext of [
        'Metropolitan Police',
        'MPS-LEGACY-77',
        'data_not_held',
        'Katherine Johnson',
      ]) {
        assert.ok(!atRest.includes(plaintext), `"${plaintext}" is still stored in plaintext`);
      }
      assert.equal(request.sealed, 1);
      assert.equal(ack.sealed, 1);

      const after = (await t.call(t.alice, 'GET', `/api/v1/legal-requests/${legacyRequest}`)).body
        .request as RequestView;
      assert.deepEqual(after.authority, { name: 'Metropolitan Police Service', type: 'law_enforcement' });
      assert.equal(after.reference, 'MPS-LEGACY-77');
      assert.equal(after.citation, undefined);
      assert.equal(after.rejectReason, 'data_not_held');
      const record = await acknowledgementsOf('group-companies');
      assert.equal(record.body.acknowledgements?.[0]?.acknowledgedBy, 'Katherine Johnson');
    });
  });
}
