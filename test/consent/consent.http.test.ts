/**
 * The consent API as a client sees it, on SQLite and PostgreSQL: record choices, ask decisions one
 * at a time and in batches, read a person's choices and ledger, GPC from a header or the banner.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { presentBatchDecisionsJson } from '../../src/consent/consent.presenter.js';
import type { BatchDecision } from '../../src/consent/consent.service.js';
import { createContext } from '../../src/platform/context.js';
import { DIALECTS } from '../helpers/databases.js';
import { openCollectApp, type CollectTestApp } from '../collect/collect-app.js';
import { TEST_SYSTEM } from '../helpers/manifests.js';

const cli = createContext({ kind: 'cli', id: 'test' });

for (const dialect of DIALECTS) {
  describe(`consent API on ${dialect}`, () => {
    let t: CollectTestApp;
    let key: string;
    let readOnly: string;

    before(async () => {
      t = await openCollectApp(dialect);
      key = (
        await t.app.apiKeys.createKey(cli, {
          name: 'consent',
          system: TEST_SYSTEM,
          scopes: ['consent:read', 'consent:write'],
        })
      ).key;
      readOnly = (
        await t.app.apiKeys.createKey(cli, { name: 'reader', system: TEST_SYSTEM, scopes: ['consent:read'] })
      ).key;
    });
    after(async () => t.cleanup());

    const call = (
      method: 'GET' | 'POST',
      url: string,
      payload?: unknown,
      headers: Record<string, string> = {},
    ) =>
      t.app.http.inject({
        method,
        url,
        headers: { authorization: `Bearer ${key}`, ...headers },
        ...(payload !== undefined ? { payload: payload as object } : {}),
      });
    const subject = async (jurisdiction?: string) =>
      (await t.app.vault.createSubject(cli, { kind: 'customer', ...(jurisdiction ? { jurisdiction } : {}) }))
        .id;
    const decide = async (subjectId: string, purpose: string, channel?: string) => {
      const res = await call('POST', '/api/v1/decisions', {
        subject: subjectId,
        purpose,
        ...(channel ? { channel } : {}),
      });
      assert.equal(res.statusCode, 200, res.body);
      return res.json<{ decision: { allowed: boolean; reason: string } }>().decision;
    };

    test('a withdrawal through the API is obeyed by the next decision', async () => {
      const us = await subject('US');
      assert.deepEqual(await decide(us, 'marketing-email', 'email'), {
        subject: us,
        purpose: 'marketing-email',
        channel: 'email',
        allowed: true,
        reason: 'opt_out_default',
      });
      const res = await call('POST', '/api/v1/consent', {
        subject: us,
        choices: [
          { purpose: 'marketing-email', channel: 'email', state: 'withdrawn', noticeVersion: 'footer-v3' },
        ],
        evidence: { userAgent: 'CRM/2.0', ip: '198.51.100.23' },
      });
      assert.equal(res.statusCode, 201, res.body);
      const [change] = res.json<{ changes: Array<Record<string, unknown>> }>().changes;
      assert.equal(change?.previous, 'none');
      assert.equal(change?.method, 'api');
      assert.deepEqual(await decide(us, 'marketing-email', 'email'), {
        subject: us,
        purpose: 'marketing-email',
        channel: 'email',
        allowed: false,
        reason: 'withdrawn',
      });
      const history = await call('GET', `/api/v1/subjects/${us}/consent/history`);
      const [event] = history.json<{ events: Array<Record<string, unknown>> }>().events;
      assert.deepEqual(event?.evidence, { userAgent: 'CRM/2.0', ip: '198.51.100.0' });
      assert.equal(event?.noticeVersion, 'footer-v3');
    });

    test('a batch of 10,000 subjects is decided in order', async () => {
      const us = await subject('US');
      const eu = await subject('NL');
      const subjects = Array.from({ length: 10_000 }, (_, i) => (i % 2 === 0 ? us : eu));
      subjects[9_999] = '00000000-0000-4000-8000-00000000abcd';
      const res = await call('POST', '/api/v1/decisions', {
        subjects,
        purpose: 'marketing-email',
        channel: 'email',
      });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json<{ decisions: Array<{ subject: string; allowed: boolean; reason: string }> }>();
      assert.equal(body.decisions.length, 10_000);
      assert.deepEqual(body.decisions[0], { subject: us, allowed: true, reason: 'opt_out_default' });
      assert.deepEqual(body.decisions[1], { subject: eu, allowed: false, reason: 'opt_in_missing' });
      assert.equal(body.decisions[9_999]?.reason, 'unknown_subject');
      assert.match(res.headers['content-type'] as string, /^application\/json; charset=utf-8/);

      // The answer lists exactly the documented fields, nothing else.
      const small = await call('POST', '/api/v1/decisions', {
        subjects: [eu, '00000000-0000-4000-8000-00000000abcd'],
        purpose: 'marketing-email',
      });
      assert.equal(
        small.body,
        JSON.stringify({
          purpose: 'marketing-email',
          channel: null,
          decisions: [
            { subject: eu, allowed: false, reason: 'opt_in_missing' },
            { subject: '00000000-0000-4000-8000-00000000abcd', allowed: false, reason: 'unknown_subject' },
          ],
        }),
      );
      const malformed = await call('POST', '/api/v1/decisions', {
        subjects: [us, 'not-a-uuid'],
        purpose: 'marketing-email',
      });
      assert.equal(malformed.statusCode, 400);
      const { error } = malformed.json<{
        error: { code: string; details: { issues: Array<{ path: string }> } };
      }>();
      assert.equal(error.code, 'request.invalid');
      assert.equal(error.details.issues[0]?.path, '/subjects/1');
      const tooMany = await call('POST', '/api/v1/decisions', {
        subjects: [...subjects, us],
        purpose: 'marketing-email',
      });
      assert.equal(tooMany.statusCode, 400);
    });

    test('bad requests get a clear 4xx with a stable code and record nothing', async () => {
      const us = await subject('US');
      const cases: Array<[unknown, number, string]> = [
        [{ subject: us, choices: [{ purpose: 'selling', state: 'granted' }] }, 400, 'consent.choice_invalid'],
        [{ choices: [{ purpose: 'marketing-email', state: 'granted' }] }, 400, 'consent.holder_missing'],
        [{ subject: us, choices: [{ purpose: 'marketing-email', state: 'maybe' }] }, 400, 'request.invalid'],
        [
          {
            subject: '00000000-0000-4000-8000-000000000009',
            choices: [{ purpose: 'marketing-email', state: 'granted' }],
          },
          404,
          'consent.subject_not_found',
        ],
      ];
      for (const [payload, status, code] of cases) {
        const res = await call('POST', '/api/v1/consent', payload);
        assert.equal(res.statusCode, status, res.body);
        assert.equal(res.json<{ error: { code: string } }>().error.code, code, res.body);
      }
      const both = await call('POST', '/api/v1/decisions', {
        subject: us,
        subjects: [us],
        purpose: 'marketing-email',
      });
      assert.equal(both.json<{ error: { code: string } }>().error.code, 'consent.decision_target');
      const unknownPurpose = await call('POST', '/api/v1/decisions', { subject: us, purpose: 'selling' });
      assert.equal(unknownPurpose.json<{ error: { code: string } }>().error.code, 'consent.purpose_unknown');
      const history = await call('GET', `/api/v1/subjects/${us}/consent/history`);
      assert.deepEqual(history.json<{ events: unknown[] }>().events, []);
    });

    test('scopes: reading decisions does not allow recording choices', async () => {
      const us = await subject('US');
      const res = await t.app.http.inject({
        method: 'POST',
        url: '/api/v1/consent',
        headers: { authorization: `Bearer ${readOnly}` },
        payload: { subject: us, choices: [{ purpose: 'marketing-email', state: 'withdrawn' }] },
      });
      assert.equal(res.statusCode, 403);
      const noKey = await t.app.http.inject({
        method: 'POST',
        url: '/api/v1/decisions',
        payload: { subject: us, purpose: 'marketing-email' },
      });
      assert.equal(noKey.statusCode, 401);
    });

    test("a person's page of choices: every purpose, the decision, the global opt-out", async () => {
      const eu = await subject('DE');
      await call('POST', '/api/v1/consent', { subject: eu, choices: [{ purpose: '*', state: 'withdrawn' }] });
      const res = await call('GET', `/api/v1/subjects/${eu}/consent`);
      const body = res.json<{
        globalOptOut: boolean;
        purposes: Array<{ purpose: string; optional: boolean; reason: string }>;
      }>();
      assert.equal(body.globalOptOut, true);
      const byKey = new Map(body.purposes.map((p) => [p.purpose, p]));
      assert.equal(byKey.get('provide-service')?.reason, 'required');
      assert.equal(byKey.get('provide-service')?.optional, false);
      assert.equal(byKey.get('marketing-email')?.reason, 'global_opt_out');
      assert.equal(byKey.get('marketing-email')?.optional, true);
      const missing = await call('GET', '/api/v1/subjects/00000000-0000-4000-8000-000000000009/consent');
      assert.equal(missing.statusCode, 404);
    });
  });
}

describe('the batch answer', () => {
  test('property: the JSON written for a batch is what JSON.stringify makes of its fields', () => {
    const reason = fc.constantFrom(
      'opt_out_default',
      'opt_in_missing',
      'withdrawn',
      'gpc',
      'unknown_subject',
    );
    const text = fc.oneof(fc.uuid(), fc.string(), fc.string({ unit: 'binary' }));
    fc.assert(
      fc.property(
        text,
        fc.option(text, { nil: undefined }),
        fc.array(fc.tuple(text, fc.boolean(), reason), { maxLength: 30 }),
        (purpose, channel, items) => {
          const decisions = items.map(([, allowed, why]) => ({ allowed, reason: why }) as BatchDecision);
          const written = presentBatchDecisionsJson(
            purpose,
            channel,
            items.map(([subject]) => subject),
            decisions,
          );
          const expected = JSON.stringify({
            purpose,
            channel: channel ?? null,
            decisions: items.map(([subject, allowed, why]) => ({ subject, allowed, reason: why })),
          });
          assert.equal(written.toString('utf8'), expected);
        },
      ),
    );
  });
});
