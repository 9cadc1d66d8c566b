/**
 * No silent account merge, over HTTP on both engines: a registration or trial sign-up that names a
 * person only by an address already on file is refused (409 `collect.identifier_taken`) and stores
 * nothing, so nobody can attach their name and password to someone else's subject by typing that
 * person's address. Data joins an existing subject when the calling system names it by id (a trial
 * upgraded to a customer, a new phone number); by an identifier alone, only data that says nothing
 * about who the person is (feedback, survey answers) still joins.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { createContext } from '../../src/platform/context.js';
import { DIALECTS } from '../helpers/databases.js';
import { randomEmail } from '../helpers/vault.js';
import { countRows, openCollectApp, type CollectTestApp } from './collect-app.js';

interface ReadBody {
  records: Array<{ fields: Record<string, { value: unknown }> }>;
}

const CARD = '4242 4242 4242 4242';
const FUTURE_YEAR = new Date().getUTCFullYear() + 3;

for (const dialect of DIALECTS) {
  describe(`no silent account merge on ${dialect}`, () => {
    let t: CollectTestApp;
    let app: App;
    let webApp: string;
    let billing: string;
    before(async () => {
      t = await openCollectApp(dialect);
      app = t.app;
      const ctx = createContext({ kind: 'cli', id: 'test' });
      ({ key: webApp } = await app.apiKeys.createKey(ctx, {
        name: 'web-app',
        system: 'web-app',
        scopes: ['collect:write', 'subjects:read', 'credentials:verify'],
      }));
      ({ key: billing } = await app.apiKeys.createKey(ctx, {
        name: 'billing',
        system: 'billing',
        scopes: ['collect:write'],
      }));
    });
    after(() => t.cleanup());

    const post = (url: string, payload: object, key = webApp) =>
      app.http.inject({ method: 'POST', url, headers: { authorization: `Bearer ${key}` }, payload });
    const get = (url: string) =>
      app.http.inject({ method: 'GET', url, headers: { authorization: `Bearer ${webApp}` } });
    const registration = (email: string, firstName: string, extra: object = {}) => ({
      jurisdiction: 'US',
      data: { email, first_name: firstName, last_name: 'Lovelace', password: `${firstName}'s secret` },
      ...extra,
    });
    const created = async (url: string, payload: object) => {
      const res = await post(url, payload);
      assert.equal(res.statusCode, 201, res.body);
      return res.json<{ subject: { id: string; created: boolean } }>().subject;
    };
    const counts = async () => ({
      records: await countRows(t.database, 'records'),
      subjects: await countRows(t.database, 'subjects'),
      identifiers: await countRows(t.database, 'subject_identifiers'),
    });
    const assertTaken = (res: { statusCode: number; body: string }) => {
      assert.equal(res.statusCode, 409, res.body);
      const { error } = JSON.parse(res.body) as { error: { code: string; message: string } };
      assert.equal(error.code, 'collect.identifier_taken');
      assert.match(error.message, /subject"?: \{ "id"/);
    };

    test('a registration with an address already on file is refused with 409 and stores nothing', async () => {
      const email = randomEmail();
      const ada = await created('/api/v1/collect/registration', registration(email, 'Ada'));
      const before = await counts();
      const res = await post(
        '/api/v1/collect/registration',
        registration(`  ${email.toUpperCase()} `, 'Mallory'),
      );
      assertTaken(res);
      assert.deepEqual(await counts(), before, 'nothing stored');
      const read = await get(`/api/v1/subjects/${ada.id}/data?purpose=provide-service`);
      assert.equal(read.statusCode, 200, read.body);
      const { records } = read.json<ReadBody>();
      assert.deepEqual(
        records.map((r) => r.fields.first_name?.value),
        ['Ada'],
        'the person is still greeted by their own name',
      );
      const verify = (secret: string) =>
        post(`/api/v1/subjects/${ada.id}/credentials/verify`, { field: 'password', secret });
      assert.deepEqual((await verify("Mallory's secret")).json(), { match: false });
      assert.deepEqual((await verify("Ada's secret")).json(), { match: true });
    });

    test('a trial sign-up with an address already on file is refused the same way', async () => {
      const customer = randomEmail();
      await created('/api/v1/collect/registration', registration(customer, 'Ada'));
      const trial = randomEmail();
      await created('/api/v1/collect/trial-signup', { data: { email: trial } });
      const before = await counts();
      assertTaken(
        await post('/api/v1/collect/trial-signup', { data: { email: customer, first_name: 'Mallory' } }),
      );
      assertTaken(await post('/api/v1/collect/trial-signup', { data: { email: trial } }));
      assertTaken(await post('/api/v1/collect/registration', registration(trial, 'Mallory')));
      assert.deepEqual(await counts(), before, 'nothing stored');
    });

    test('a trial user becomes a customer by subject id, and a new phone number and account id join them', async () => {
      const email = randomEmail();
      const trial = await created('/api/v1/collect/trial-signup', { data: { email } });
      const upgraded = await created(
        '/api/v1/collect/registration',
        registration(email, 'Grace', {
          subject: { id: trial.id, phone: '+1 805 555 0147', account_id: `acct-${trial.id.slice(0, 8)}` },
        }),
      );
      assert.deepEqual(upgraded, { id: trial.id, created: false });
      const byPhone = await get(
        `/api/v1/subjects?kind=phone&identifier=${encodeURIComponent('+18055550147')}`,
      );
      assert.equal(byPhone.statusCode, 200, byPhone.body);
      assert.equal(byPhone.json<{ subject: { id: string } }>().subject.id, trial.id);
      const byAccount = await get(`/api/v1/subjects?kind=account_id&identifier=acct-${trial.id.slice(0, 8)}`);
      assert.equal(byAccount.json<{ subject: { id: string } }>().subject.id, trial.id);
      const read = await get(`/api/v1/subjects/${trial.id}/data?purpose=provide-service`);
      assert.ok(read.json<ReadBody>().records.some((r) => r.fields.first_name?.value === 'Grace'));
      const verify = await post(`/api/v1/subjects/${trial.id}/credentials/verify`, {
        field: 'password',
        secret: "Grace's secret",
      });
      assert.deepEqual(verify.json(), { match: true });
    });

    test("an identifier that is someone else's is refused even by subject id, and nothing is stored", async () => {
      const owner = await created('/api/v1/collect/registration', registration(randomEmail(), 'Ada'));
      await created('/api/v1/collect/feedback', {
        subject: { id: owner.id, phone: '+1 805 555 0199' },
        data: { message: 'hi' },
      });
      const other = await created('/api/v1/collect/registration', registration(randomEmail(), 'Bob'));
      const before = await counts();
      assertTaken(
        await post('/api/v1/collect/feedback', {
          subject: { id: other.id, phone: '+1 805 555 0199' },
          data: { message: 'me too' },
        }),
      );
      assert.deepEqual(await counts(), before, 'nothing stored');
      const byPhone = await get(
        `/api/v1/subjects?kind=phone&identifier=${encodeURIComponent('+18055550199')}`,
      );
      assert.equal(byPhone.json<{ subject: { id: string } }>().subject.id, owner.id);
    });

    test('by an address alone, feedback still joins the person; billing or a new identifier is refused', async () => {
      const email = randomEmail();
      const person = await created('/api/v1/collect/registration', registration(email, 'Ada'));
      const feedback = await created('/api/v1/collect/feedback', {
        subject: { email },
        data: { message: 'great' },
      });
      assert.deepEqual(feedback, { id: person.id, created: false });
      const before = await counts();
      assertTaken(
        await post(
          '/api/v1/collect/billing',
          {
            subject: { email },
            data: {
              cardholder_name: 'Mallory',
              billing_address: '1 Elsewhere Road',
              card_number: CARD,
              card_expiry: `12/${FUTURE_YEAR % 100}`,
            },
          },
          billing,
        ),
      );
      assertTaken(
        await post('/api/v1/collect/feedback', {
          subject: { email, phone: '+1 805 555 0123' },
          data: { message: 'x' },
        }),
      );
      assert.deepEqual(await counts(), before, 'nothing stored');
    });
  });
}
