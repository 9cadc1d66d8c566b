/**
 * Collection points as a client sees them over HTTP, on SQLite and PostgreSQL: registration
 * creates or matches a person, undeclared fields and card numbers are refused with nothing stored,
 * billing keeps only the processor's token, product events are minimized, and bad input always
 * gets a 4xx with a stable code.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContext } from '../../src/platform/context.js';
import { TEST_SYSTEM } from '../helpers/manifests.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { randomEmail } from '../helpers/vault.js';
import { countRows, openCollectApp, type CollectTestApp } from './collect-app.js';

interface ErrorBody {
  error: {
    code: string;
    message: string;
    details?: {
      source?: string;
      path?: string;
      field?: string;
      pledge?: { key: string; text: string };
      problems?: Array<{ code: string; path: string; field?: string }>;
    };
  };
}

interface ReadBody {
  records: Array<{ source: string; fields: Record<string, { category: string; value: unknown }> }>;
}

const cli = createContext({ kind: 'cli', id: 'test' });
const CARD = '4111111111111111';
const CARD_SPACED = '4111 1111 1111 1111';
const OTHER_CARD = '5555555555554444';
const FUTURE_YEAR = new Date().getUTCFullYear() + 3;

function registration(email: string, extra: Record<string, unknown> = {}) {
  return {
    jurisdiction: 'US',
    data: { email, first_name: 'Ada', last_name: 'Lovelace', password: 'correct horse battery', ...extra },
  };
}

/** Every way a card number could be written in a text that leaked it. */
function leaks(text: string, digits: string): boolean {
  const groups = digits.match(/.{1,4}/g) ?? [];
  return [digits, groups.join(' '), groups.join('-'), digits.slice(4, 12)].some((form) =>
    text.includes(form),
  );
}

for (const dialect of DIALECTS) {
  describe(`collection points over HTTP on ${dialect}`, () => {
    let t: CollectTestApp;
    const post = (url: string, payload: unknown, key = t.key) =>
      t.app.http.inject({
        method: 'POST',
        url,
        headers: { authorization: `Bearer ${key}` },
        payload: payload as object,
      });
    const get = (url: string) =>
      t.app.http.inject({ method: 'GET', url, headers: { authorization: `Bearer ${t.key}` } });
    const register = async (email = randomEmail()) => {
      const res = await post('/api/v1/collect/registration', registration(email));
      assert.equal(res.statusCode, 201, res.body);
      return res.json<{ subject: { id: string; created: boolean }; record: { id: string } }>();
    };

    before(async () => {
      t = await openCollectApp(dialect);
    });
    after(async () => {
      await t.cleanup();
    });

    test('registration creates a subject, more joins it by subject id, and the use gate returns the data', async () => {
      const email = randomEmail();
      const first = await register(email);
      assert.equal(first.subject.created, true);
      // By subject id: the calling system authenticated the person (test/collect/account-merge.test.ts).
      const again = await post('/api/v1/collect/registration', {
        ...registration(`  ${email.toUpperCase()} `, { organization: 'Analytical Engines' }),
        subject: { id: first.subject.id },
      });
      assert.equal(again.statusCode, 201, again.body);
      const second = again.json<{ subject: { id: string; created: boolean }; record: { id: string } }>();
      assert.deepEqual(second.subject, { id: first.subject.id, created: false });
      assert.notEqual(second.record.id, first.record.id);

      const read = await get(`/api/v1/subjects/${first.subject.id}/data?purpose=provide-service`);
      assert.equal(read.statusCode, 200);
      const { records } = read.json<ReadBody>();
      assert.equal(records.length, 2);
      assert.equal(records[0]?.fields.email?.value, email);
      assert.equal(records[0]?.fields.first_name?.value, 'Ada');
      assert.equal(records[1]?.fields.organization?.value, 'Analytical Engines');
      assert.equal(records[1]?.fields.organization?.category, 'user.contact.organization');
    });

    test('trial sign-ups create trial users, matched by e-mail', async () => {
      const email = randomEmail();
      const res = await post('/api/v1/collect/trial-signup', { jurisdiction: 'de', data: { email } });
      assert.equal(res.statusCode, 201, res.body);
      const { subject } = res.json<{ subject: { id: string; created: boolean } }>();
      assert.equal(subject.created, true);
      const shown = await get(`/api/v1/subjects/${subject.id}`);
      assert.equal(
        shown.json<{ subject: { kind: string; jurisdiction: string } }>().subject.kind,
        'trial_user',
      );
      assert.equal(shown.json<{ subject: { jurisdiction: string } }>().subject.jurisdiction, 'DE');
    });

    test('concurrent registrations of one address make one subject, and the others are refused as taken', async () => {
      const email = randomEmail();
      const answers = await Promise.all(
        Array.from({ length: 6 }, () => post('/api/v1/collect/registration', registration(email))),
      );
      const created = answers.filter((a) => a.statusCode === 201);
      assert.equal(created.length, 1, 'exactly one created it');
      for (const a of answers.filter((x) => x.statusCode !== 201)) {
        assert.equal(a.statusCode, 409, a.body);
        assert.equal(a.json<{ error: { code: string } }>().error.code, 'collect.identifier_taken');
      }
    });

    test('an undeclared field is refused with its name, path and source, and nothing is stored', async () => {
      const email = randomEmail();
      const [records, subjects, audit] = await Promise.all([
        countRows(t.database, 'records'),
        countRows(t.database, 'subjects'),
        countRows(t.database, 'audit_events'),
      ]);
      const res = await post(
        '/api/v1/collect/registration',
        registration(email, { favourite_colour: 'blue' }),
      );
      assert.equal(res.statusCode, 422);
      const { error } = res.json<ErrorBody>();
      assert.equal(error.code, 'collect.field_undeclared');
      assert.equal(error.details?.field, 'favourite_colour');
      assert.equal(error.details?.path, 'data.favourite_colour');
      assert.equal(error.details?.source, 'registration');
      assert.match(error.message, /favourite_colour/);
      assert.match(error.message, /registration/);

      const lookup = await get(`/api/v1/subjects?identifier=${encodeURIComponent(email)}`);
      assert.equal(lookup.statusCode, 404, 'no subject was created');
      assert.equal(await countRows(t.database, 'records'), records);
      assert.equal(await countRows(t.database, 'subjects'), subjects);
      assert.equal(await countRows(t.database, 'audit_events'), audit);
    });

    test('every problem is listed at once, each with its path', async () => {
      const res = await post('/api/v1/collect/registration', {
        data: { email: 'not-an-address', first_name: { nested: true }, shoe_size: 44 },
      });
      assert.equal(res.statusCode, 422);
      const problems = res.json<ErrorBody>().error.details?.problems ?? [];
      const byPath = Object.fromEntries(problems.map((p) => [p.path, p.code]));
      assert.deepEqual(byPath, {
        'data.shoe_size': 'collect.field_undeclared',
        'data.email': 'vault.identifier_invalid',
        'data.first_name': 'collect.field_invalid',
        'data.last_name': 'collect.field_missing',
        'data.password': 'collect.field_missing',
      });
    });

    test('billing passes the card to the processor and keeps only token, brand, last four and expiry', async () => {
      const { subject } = await register();
      const res = await post('/api/v1/collect/billing', {
        subject: { id: subject.id },
        data: {
          cardholder_name: 'Ada Lovelace',
          billing_address: '12 St James’s Square, London',
          card_number: CARD_SPACED,
          card_security_code: '737',
          card_expiry: `12/${FUTURE_YEAR % 100}`,
        },
      });
      assert.equal(res.statusCode, 201, res.body);
      const body = res.json<{ card: { token: string; brand: string; lastFour: string; expiry: string } }>();
      assert.match(body.card.token, /^tok_test_[0-9a-f]+$/);
      assert.equal(body.card.brand, 'visa');
      assert.equal(body.card.lastFour, '1111');
      assert.equal(body.card.expiry, `12/${FUTURE_YEAR}`);
      assert.ok(!leaks(res.body, CARD));

      const read = await get(`/api/v1/subjects/${subject.id}/data?purpose=provide-service`);
      const billing = read.json<ReadBody>().records.find((r) => r.source === 'billing');
      assert.ok(billing);
      assert.deepEqual(Object.keys(billing.fields).sort(), [
        'billing_address',
        'card_brand',
        'card_expiry',
        'card_last_four',
        'card_token',
        'cardholder_name',
      ]);
      assert.equal(billing.fields.card_token?.value, body.card.token);
      assert.equal(billing.fields.card_token?.category, 'user.financial.payment_card.token');
      assert.equal(billing.fields.card_last_four?.category, 'user.financial.payment_card.last_four');
      // The brand under its own category: a purpose that may use last four digits need not see it.
      assert.equal(billing.fields.card_brand?.category, 'user.financial.payment_card.brand');
      assert.equal(billing.fields.card_brand?.value, 'visa');
      assert.ok(!leaks(read.body, CARD));

      const records = JSON.stringify(
        await tablesOf(t.database)
          .selectFrom('records')
          .selectAll()
          .where('subject_id', '=', subject.id)
          .execute(),
      );
      const audit = JSON.stringify(
        await tablesOf(t.database).selectFrom('audit_events').selectAll().execute(),
      );
      assert.ok(!leaks(records + audit, CARD), 'the card number is nowhere in the records or the audit');
      assert.ok(!records.includes('payment_card.number'), 'not even its category was stored');
      assert.ok(!leaks(t.logs(), CARD), 'nor in the logs');
      // The hand-over is a disclosure to the card processor: the log names what went, never the value.
      const passed = (await t.app.audit.listBySubject(cli, subject.id)).filter(
        (e) => e.action === 'share.pass_through',
      );
      assert.equal(passed.length, 1);
      const details = passed[0]!.details as {
        recipient: string;
        categories: string[];
        fields: string[];
      };
      assert.equal(details.recipient, 'card-processor');
      assert.equal(passed[0]!.purpose, 'provide-service');
      assert.ok(details.categories.includes('user.financial.payment_card.number'));
      assert.deepEqual([...details.fields].sort(), [
        'card_expiry',
        'card_number',
        'card_security_code',
        'cardholder_name',
      ]);
    });

    test('an invalid card is refused by the processor without echoing it, and nothing is stored', async () => {
      const { subject } = await register();
      const before = await countRows(t.database, 'records');
      const bad = '4111111111111112';
      const res = await post('/api/v1/collect/billing', {
        subject: { id: subject.id },
        data: {
          cardholder_name: 'Ada',
          billing_address: 'London',
          card_number: bad,
          card_expiry: `01/${FUTURE_YEAR}`,
        },
      });
      assert.equal(res.statusCode, 422);
      assert.equal(res.json<ErrorBody>().error.code, 'collect.card_invalid');
      assert.equal(res.json<ErrorBody>().error.details?.path, 'data.card_number');
      assert.ok(!res.body.includes(bad));
      assert.equal(await countRows(t.database, 'records'), before);
    });

    test('a card number hidden in feedback or in a survey answer is refused, naming the pledge', async () => {
      const { subject } = await register();
      const before = await countRows(t.database, 'records');
      const feedback = await post('/api/v1/collect/feedback', {
        subject: { id: subject.id },
        data: { message: `Great product! My card is ${CARD_SPACED}, please charge it.`, rating: 5 },
      });
      assert.equal(feedback.statusCode, 422);
      const f = feedback.json<ErrorBody>().error;
      assert.equal(f.code, 'collect.card_number_refused');
      assert.equal(f.details?.pledge?.key, 'card-numbers-pass-through');
      assert.match(f.message, /card-numbers-pass-through/);
      assert.equal(f.details?.path, 'data.message');
      assert.equal(f.details?.field, 'message');
      assert.ok(!leaks(feedback.body, CARD));

      const survey = await post('/api/v1/collect/customer-survey', {
        subject: { id: subject.id },
        data: {
          answers: {
            q1: 'fine',
            q2: ['yes', { other: `use ${OTHER_CARD.replace(/(\d{4})/g, '$1-').slice(0, -1)} ok` }],
          },
        },
      });
      assert.equal(survey.statusCode, 422);
      const s = survey.json<ErrorBody>().error;
      assert.equal(s.code, 'collect.card_number_refused');
      assert.equal(s.details?.path, 'data.answers.q2[1].other');
      assert.equal(s.details?.pledge?.key, 'card-numbers-pass-through');
      assert.ok(!leaks(survey.body, OTHER_CARD));

      // Under any name, even as a key, and even at a source that has a card field.
      const keyed = await post('/api/v1/collect/customer-survey', {
        subject: { id: subject.id },
        data: { answers: { [CARD]: 'yes' } },
      });
      assert.equal(keyed.json<ErrorBody>().error.code, 'collect.card_number_refused');
      assert.ok(!leaks(keyed.body, CARD));
      const misplaced = await post('/api/v1/collect/billing', {
        subject: { id: subject.id },
        data: {
          cardholder_name: CARD,
          billing_address: 'London',
          card_number: OTHER_CARD,
          card_expiry: `01/${FUTURE_YEAR}`,
        },
      });
      assert.equal(misplaced.json<ErrorBody>().error.details?.path, 'data.cardholder_name');

      assert.equal(await countRows(t.database, 'records'), before, 'nothing was stored');
      assert.ok(!leaks(t.logs(), CARD) && !leaks(t.logs(), OTHER_CARD), 'no card number in the logs');
    });

    test('surveys store each answer with its category and the source purposes', async () => {
      const { subject } = await register();
      const res = await post('/api/v1/collect/customer-survey', {
        subject: { id: subject.id },
        data: { answers: { q1: 'weekly', q2: [3, 4], q3: { likes: ['video'] } } },
      });
      assert.equal(res.statusCode, 201, res.body);
      const read = await get(`/api/v1/subjects/${subject.id}/data?purpose=improve-products`);
      const survey = read.json<ReadBody>().records.find((r) => r.source === 'customer-survey');
      assert.deepEqual(survey?.fields.answers, {
        category: 'user.survey',
        value: { q1: 'weekly', q2: [3, 4], q3: { likes: ['video'] } },
      });
    });

    test('product events: undeclared fields dropped and reported, IP addresses truncated, one write', async () => {
      const { subject } = await register();
      const res = await post('/api/v1/collect/product-events/events', {
        subject: { id: subject.id },
        events: [
          { event: 'meeting.start', meeting_id: 'm-1', ip: '203.0.113.77', screen_size: '1920x1080' },
          { event: 'meeting.end', duration_ms: 5400000, ip: '2001:db8:85a3:8d3:1319:8a2e:370:7348' },
          { event: 'feature.used', user_agent: 'Mozilla/5.0', mood: 'happy', gps: { lat: 1 } },
        ],
      });
      assert.equal(res.statusCode, 201, res.body);
      const body = res.json<{
        accepted: number;
        records: string[];
        dropped: Array<{ index: number; field: string; path: string }>;
      }>();
      assert.equal(body.accepted, 3);
      assert.equal(body.records.length, 3);
      assert.deepEqual(body.dropped, [
        { index: 0, field: 'screen_size', path: 'events[0].screen_size' },
        { index: 2, field: 'mood', path: 'events[2].mood' },
        { index: 2, field: 'gps', path: 'events[2].gps' },
      ]);
      const read = await get(`/api/v1/subjects/${subject.id}/data?purpose=provide-service`);
      const events = read.json<ReadBody>().records.filter((r) => r.source === 'product-events');
      assert.equal(events.length, 3);
      const ips = events.flatMap((e) => (e.fields.ip ? [e.fields.ip.value] : []));
      assert.deepEqual(ips.sort(), ['2001:db8:85a3::', '203.0.113.0']);
      assert.ok(
        !read.body.includes('1920x1080') && !read.body.includes('happy'),
        'dropped fields are not stored',
      );
      assert.ok(!read.body.includes('203.0.113.77'));
    });

    test('more than 1,000 events are refused with collect.batch_too_large and nothing is stored', async () => {
      const { subject } = await register();
      const before = await countRows(t.database, 'records');
      const res = await post('/api/v1/collect/product-events/events', {
        subject: { id: subject.id },
        events: Array.from({ length: 1001 }, (_, i) => ({ event: `e${i}` })),
      });
      assert.equal(res.statusCode, 413);
      assert.equal(res.json<ErrorBody>().error.code, 'collect.batch_too_large');
      assert.equal(await countRows(t.database, 'records'), before);
      const ok = await post('/api/v1/collect/product-events/events', {
        subject: { id: subject.id },
        events: Array.from({ length: 1000 }, (_, i) => ({ event: `e${i}` })),
      });
      assert.equal(ok.statusCode, 201);
      assert.equal(await countRows(t.database, 'records'), before + 1000);
    });

    test('an event with a card number anywhere refuses the whole batch', async () => {
      const { subject } = await register();
      const before = await countRows(t.database, 'records');
      const res = await post('/api/v1/collect/product-events/events', {
        subject: { id: subject.id },
        events: [{ event: 'ok' }, { event: 'typed', note: `paid with ${CARD}` }],
      });
      assert.equal(res.statusCode, 422);
      assert.equal(res.json<ErrorBody>().error.code, 'collect.card_number_refused');
      assert.equal(res.json<ErrorBody>().error.details?.path, 'events[1].note');
      assert.equal(await countRows(t.database, 'records'), before);
    });

    test('bad input gets a 4xx with a stable code, never a 500, and nothing is stored', async () => {
      const { subject } = await register();
      const before = await countRows(t.database, 'records');
      const raw = (url: string, payload: string) =>
        t.app.http.inject({
          method: 'POST',
          url,
          headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
          payload,
        });
      const cases: Array<[string, Promise<{ statusCode: number; json: <T>() => T }>, number, string]> = [
        [
          'malformed JSON',
          raw('/api/v1/collect/feedback', '{"data": {"message": "hi"'),
          400,
          'request.invalid_json',
        ],
        ['an array body', raw('/api/v1/collect/feedback', '[1, 2]'), 400, 'request.invalid'],
        ['a string body', raw('/api/v1/collect/feedback', '"hello"'), 400, 'request.invalid'],
        [
          'data of the wrong type',
          post('/api/v1/collect/feedback', { data: 'hello' }),
          400,
          'request.invalid',
        ],
        [
          'a subject id that is not a UUID',
          post('/api/v1/collect/feedback', { subject: { id: 'x' }, data: {} }),
          400,
          'request.invalid',
        ],
        [
          'a field of the wrong type',
          post('/api/v1/collect/feedback', { subject: { id: subject.id }, data: { message: ['a'] } }),
          422,
          'collect.field_invalid',
        ],
        [
          'a missing required field',
          post('/api/v1/collect/feedback', { subject: { id: subject.id }, data: { rating: 3 } }),
          422,
          'collect.field_missing',
        ],
        [
          'an over-long string',
          post('/api/v1/collect/feedback', {
            subject: { id: subject.id },
            data: { message: 'a'.repeat(10_001) },
          }),
          422,
          'collect.value_too_long',
        ],
        [
          'an unknown top-level key',
          post('/api/v1/collect/feedback', {
            subject: { id: subject.id },
            data: { message: 'hi' },
            extra: 1,
          }),
          422,
          'collect.body_invalid',
        ],
        [
          'an unknown subject',
          post('/api/v1/collect/feedback', {
            subject: { id: '00000000-0000-4000-8000-000000000000' },
            data: { message: 'hi' },
          }),
          404,
          'vault.subject_not_found',
        ],
        [
          'an unknown e-mail at a source that does not register',
          post('/api/v1/collect/feedback', { subject: { email: randomEmail() }, data: { message: 'hi' } }),
          404,
          'vault.subject_not_found',
        ],
        [
          'no subject at a source that does not register',
          post('/api/v1/collect/feedback', { data: { message: 'hi' } }),
          422,
          'collect.subject_missing',
        ],
        [
          'an unknown source',
          post('/api/v1/collect/newsletter', { data: {} }),
          404,
          'collect.source_unknown',
        ],
        [
          'events without an events array',
          post('/api/v1/collect/product-events/events', { subject: { id: subject.id }, events: 'x' }),
          400,
          'request.invalid',
        ],
        [
          'events at a source that is not product use',
          post('/api/v1/collect/feedback/events', { subject: { id: subject.id }, events: [{}] }),
          422,
          'collect.events_unsupported',
        ],
        [
          'an event that is not an IP address where one is declared',
          post('/api/v1/collect/product-events/events', {
            subject: { id: subject.id },
            events: [{ event: 'x', ip: 'localhost' }],
          }),
          422,
          'collect.ip_invalid',
        ],
      ];
      for (const [what, pending, status, code] of cases) {
        const res = await pending;
        assert.equal(res.statusCode, status, what);
        assert.equal(res.json<ErrorBody>().error.code, code, what);
      }
      assert.equal(await countRows(t.database, 'records'), before);
    });

    test('collecting needs a key with collect:write', async () => {
      const none = await t.app.http.inject({
        method: 'POST',
        url: '/api/v1/collect/feedback',
        payload: { data: {} },
      });
      assert.equal(none.statusCode, 401);
      const reader = await t.app.apiKeys.createKey(cli, {
        name: 'reader',
        system: TEST_SYSTEM,
        scopes: ['subjects:read'],
      });
      const res = await post('/api/v1/collect/feedback', { data: {} }, reader.key);
      assert.equal(res.statusCode, 403);
    });

    test('an oversize body is refused with request.too_large', async () => {
      const small = await t.sibling({ bodyLimitBytes: 2048, logLevel: 'silent' });
      const { key } = await small.apiKeys.createKey(cli, {
        name: 'small',
        system: TEST_SYSTEM,
        scopes: ['collect:write'],
      });
      const res = await small.http.inject({
        method: 'POST',
        url: '/api/v1/collect/feedback',
        headers: { authorization: `Bearer ${key}` },
        payload: { data: { message: 'a'.repeat(4096) } },
      });
      assert.equal(res.statusCode, 413);
      assert.equal(res.json<ErrorBody>().error.code, 'request.too_large');
    });

    test('GET of a collection point needs manifest:read, a read scope, and not collect:write', async () => {
      const ctx = createContext({ kind: 'cli', id: 'test' });
      const writer = await t.app.apiKeys.createKey(ctx, {
        name: 'writer',
        system: TEST_SYSTEM,
        scopes: ['collect:write'],
      });
      const reader = await t.app.apiKeys.createKey(ctx, { name: 'form', scopes: ['manifest:read'] });
      const as = (key: string) =>
        t.app.http.inject({
          method: 'GET',
          url: '/api/v1/collect/registration',
          headers: { authorization: `Bearer ${key}` },
        });
      const refused = await as(writer.key);
      assert.equal(refused.statusCode, 403, refused.body);
      assert.equal(refused.json<ErrorBody>().error.code, 'auth.scope_missing');
      assert.match(String(refused.headers['www-authenticate']), /scope="manifest:read"/);
      assert.equal((await as(reader.key)).statusCode, 200, 'an operator key that reads the manifest');
    });

    test('GET shows the collection point as a form would, with the notice and the policy link, and changes nothing', async () => {
      const [records, audit] = [
        await countRows(t.database, 'records'),
        await countRows(t.database, 'audit_events'),
      ];
      const res = await get('/api/v1/collect/registration');
      assert.equal(res.statusCode, 200);
      const d = res.json<{
        key: string;
        kind: string;
        voluntary: boolean;
        notice: string;
        privacyPolicy: { url: string; version: string };
        retention: { period: string; text: string };
        fields: Array<{ name: string; category: string; categoryName: string; required: boolean }>;
        purposes: Array<{ key: string; name: string; description: string }>;
      }>();
      assert.equal(d.key, 'registration');
      assert.equal(d.kind, 'registration');
      assert.equal(d.voluntary, false);
      assert.match(d.notice, /We use these details to run your account/);
      assert.equal(d.privacyPolicy.url, '/privacy');
      assert.equal(d.privacyPolicy.version, '2012-09-07');
      assert.deepEqual(d.retention, { period: 'P7Y', text: 'up to 7 years' });
      assert.deepEqual(d.fields[0], {
        name: 'email',
        category: 'user.contact.email',
        categoryName: 'E-mail address',
        required: true,
        description: null,
        passedTo: null,
      });
      assert.deepEqual(
        d.purposes.map((p) => p.key),
        ['provide-service', 'marketing-email'],
      );

      const billing = await get('/api/v1/collect/billing');
      const card = billing
        .json<{ fields: Array<{ name: string; passedTo: { key: string } | null }> }>()
        .fields.find((f) => f.name === 'card_number');
      assert.equal(card?.passedTo?.key, 'card-processor');
      const survey = await get('/api/v1/collect/customer-survey');
      assert.equal(survey.json<{ voluntary: boolean }>().voluntary, true);

      const missing = await get('/api/v1/collect/newsletter');
      assert.equal(missing.statusCode, 404);
      assert.equal(missing.json<ErrorBody>().error.code, 'collect.source_unknown');
      assert.equal(await countRows(t.database, 'records'), records);
      assert.equal(await countRows(t.database, 'audit_events'), audit);
    });

    test('the collection endpoints are in the OpenAPI document', async () => {
      const doc = (await t.app.http.inject({ method: 'GET', url: '/api/openapi.json' })).json<{
        paths: Record<string, unknown>;
      }>();
      assert.ok(doc.paths['/api/v1/collect/{source}']);
      assert.ok(doc.paths['/api/v1/collect/{source}/events']);
    });
  });
}
