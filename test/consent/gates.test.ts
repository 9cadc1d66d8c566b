/**
 * The gates obey people's choices, on every engine: the use gate returns marketing data only after
 * an EU person opts in, the collect gate refuses optional collection after the global opt-out (and
 * any collection whose every purpose is denied), and erasure takes the person's ledger with it and
 * tells the manifest's webhooks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContext } from '../../src/platform/context.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { randomEmail } from '../helpers/vault.js';
import { countRows, openCollectApp, type CollectTestApp } from '../collect/collect-app.js';
import { TEST_SYSTEM } from '../helpers/manifests.js';

const cli = createContext({ kind: 'cli', id: 'test' });

interface ReadBody {
  decision: { allowed: boolean; reason: string };
  records: Array<{ source: string; fields: Record<string, { value: unknown }> }>;
}

for (const dialect of DIALECTS) {
  describe(`the gates ask decide, on ${dialect}`, () => {
    let t: CollectTestApp;
    let key: string;

    before(async () => {
      t = await openCollectApp(dialect);
      key = (
        await t.app.apiKeys.createKey(cli, {
          name: 'gates',
          system: TEST_SYSTEM,
          scopes: ['collect:write', 'subjects:read', 'subjects:write', 'consent:read', 'consent:write'],
        })
      ).key;
    });
    after(async () => t.cleanup());

    const request = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
      t.app.http.inject({
        method,
        url,
        headers: { authorization: `Bearer ${key}` },
        ...(payload !== undefined ? { payload: payload as object } : {}),
      });
    const register = async (jurisdiction: string, email = randomEmail()) => {
      const res = await request('POST', '/api/v1/collect/registration', {
        jurisdiction,
        data: { email, first_name: 'Ada', last_name: 'Lovelace', password: 'correct horse battery' },
      });
      assert.equal(res.statusCode, 201, res.body);
      return { id: res.json<{ subject: { id: string } }>().subject.id, email };
    };
    const choose = async (subject: string, purpose: string, state: string) => {
      const res = await request('POST', '/api/v1/consent', { subject, choices: [{ purpose, state }] });
      assert.equal(res.statusCode, 201, res.body);
    };

    test('an EU person’s e-mail address reaches marketing only after they opt in', async () => {
      const person = await register('DE');
      const before = await request('GET', `/api/v1/subjects/${person.id}/data?purpose=marketing-email`);
      assert.equal(before.statusCode, 200, before.body);
      assert.deepEqual(before.json<ReadBody>().decision, { allowed: false, reason: 'opt_in_missing' });
      assert.deepEqual(before.json<ReadBody>().records, []);

      await choose(person.id, 'marketing-email', 'granted');
      const after = await request('GET', `/api/v1/subjects/${person.id}/data?purpose=marketing-email`);
      const body = after.json<ReadBody>();
      assert.deepEqual(body.decision, { allowed: true, reason: 'opt_in_granted' });
      assert.equal(body.records[0]?.fields.email?.value, person.email);
    });

    test('after the global opt-out, voluntary collection is refused and nothing is stored', async () => {
      const person = await register('US');
      await choose(person.id, '*', 'withdrawn');
      const records = await countRows(t.database, 'records');
      const feedback = await request('POST', '/api/v1/collect/feedback', {
        subject: { id: person.id },
        data: { message: 'The export is slow.', rating: 3 },
      });
      assert.equal(feedback.statusCode, 403, feedback.body);
      assert.equal(feedback.json<{ error: { code: string } }>().error.code, 'collect.opted_out');
      assert.equal(await countRows(t.database, 'records'), records, 'nothing stored');
      // Product use is needed for the service the person asked for: it still comes in.
      const events = await request('POST', '/api/v1/collect/product-events/events', {
        subject: { id: person.id },
        events: [{ event: 'meeting.start', meeting_id: 'm-1' }],
      });
      assert.equal(events.statusCode, 201, events.body);
      const read = await request('GET', `/api/v1/subjects/${person.id}/data?purpose=improve-products`);
      assert.equal(read.json<ReadBody>().decision.reason, 'global_opt_out');
    });

    test('a collection whose every purpose is denied to the person is refused', async () => {
      const person = await register('US');
      await choose(person.id, 'improve-products', 'withdrawn');
      const survey = await request('POST', '/api/v1/collect/customer-survey', {
        subject: { id: person.id },
        data: { answers: { satisfaction: 4 } },
      });
      assert.equal(survey.statusCode, 403, survey.body);
      const error = survey.json<{ error: { code: string; details: { decisions: unknown[] } } }>().error;
      assert.equal(error.code, 'collect.not_allowed');
      assert.deepEqual(error.details.decisions, [{ purpose: 'improve-products', reason: 'withdrawn' }]);
      const unknown = await request('POST', '/api/v1/collect/feedback', {
        subject: { id: '00000000-0000-4000-8000-0000000000ff' },
        data: { message: 'hello' },
      });
      assert.equal(unknown.statusCode, 404);
      assert.equal(unknown.json<{ error: { code: string } }>().error.code, 'vault.subject_not_found');
    });

    test("erasure takes the person's choices with it and queues subject.erased for the webhooks", async () => {
      const person = await register('US');
      await choose(person.id, 'marketing-email', 'withdrawn');
      const erased = await request('DELETE', `/api/v1/subjects/${person.id}`);
      assert.equal(erased.statusCode, 200, erased.body);
      const events = await tablesOf(t.database)
        .selectFrom('consent_events')
        .select('id')
        .where('subject_id', '=', person.id)
        .execute();
      assert.deepEqual(events, []);
      const decision = await request('POST', '/api/v1/decisions', {
        subject: person.id,
        purpose: 'marketing-email',
      });
      assert.equal(decision.statusCode, 404, 'an erased person is not decided about');
      const deliveries = await tablesOf(t.database)
        .selectFrom('webhook_deliveries')
        .select(['event_type'])
        .where('event_type', '=', 'subject.erased')
        .execute();
      assert.ok(deliveries.length >= 1, 'the manifest’s webhook hears of the erasure');
    });
  });
}
