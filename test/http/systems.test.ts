/**
 * Systems bound to purposes (issue 12, finding 1): every caller is a declared system, a key of a
 * system reads, decides, sends and collects only for that system's purposes and sources, and an
 * operator key (bound to no system, or made before keys had systems) acts for no person. The walk
 * over the registered routes makes a new route that forgets the check fail here. The keyless web
 * endpoints (webRoutes) take no key: they act as the manifest's web system whatever key is sent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiKeyRepository } from '../../src/platform/auth/api-keys.repository.js';
import { MANAGEMENT_SCOPES, SCOPES } from '../../src/platform/auth/scopes.js';
import { createContext } from '../../src/platform/context.js';
import { registeredRoutes } from '../../src/platform/http/server.js';
import { webRoutes } from '../../src/tracking/web.js';
import { openCollectApp, type CollectTestApp } from '../collect/collect-app.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { randomEmail } from '../helpers/vault.js';

const cli = createContext({ kind: 'cli', id: 'test' });
const ZERO_UUID = '00000000-0000-4000-8000-000000000000';

/**
 * The API routes that manage Pledge itself and touch nobody's data: the only ones an operator key
 * may call. A route missing here must refuse an operator key.
 */
const MANAGEMENT_ROUTES = [
  /^\/api\/v1\/manifest(\/|$)/,
  /^\/api\/v1\/jobs(\/|$)/,
  /^\/api\/v1\/metrics$/,
  /^\/api\/v1\/webhooks(\/|$)/,
  // Processors' acknowledgements of the policy: recorded by the operator, about no person.
  /^\/api\/v1\/recipients(\/|$)/,
  // The transparency log's proofs (log:read): commitments and counts, never a person's data.
  /^\/api\/v1\/log(\/|$)/,
];

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

for (const dialect of DIALECTS) {
  describe(`systems bound to purposes on ${dialect}`, () => {
    let t: CollectTestApp;
    /** A key of the test system that may do everything, to set up what the tests read. */
    let setup = '';
    const call = (method: string, url: string, key: string, payload?: unknown) =>
      t.app.http.inject({
        method: method as 'GET',
        url,
        headers: { authorization: `Bearer ${key}` },
        ...(payload !== undefined ? { payload: payload as object } : {}),
      });
    const keyOf = async (system: string | undefined, scopes: string[]) =>
      (await t.app.apiKeys.createKey(cli, { name: `${system ?? 'operator'}-key`, system, scopes })).key;
    /** A registered person who then withdrew from marketing, as in the review's reproduction. */
    const registerAndWithdraw = async () => {
      const res = await call('POST', '/api/v1/collect/registration', t.key, {
        jurisdiction: 'US',
        data: {
          email: randomEmail(),
          first_name: 'Ada',
          last_name: 'Lovelace',
          password: 'correct horse battery',
        },
      });
      assert.equal(res.statusCode, 201, res.body);
      const subject = res.json<{ subject: { id: string } }>().subject.id;
      const withdrawn = await call('POST', '/api/v1/consent', setup, {
        subject,
        choices: [{ purpose: 'marketing-email', state: 'withdrawn' }],
      });
      assert.equal(withdrawn.statusCode, 201, withdrawn.body);
      return subject;
    };

    before(async () => {
      t = await openCollectApp(dialect);
      setup = await keyOf('test-all', [...SCOPES]);
    });
    after(async () => {
      await t.cleanup();
    });

    test("the marketing tool's key cannot read a person's data by naming another purpose", async () => {
      const subject = await registerAndWithdraw();
      const marketing = await keyOf('marketing-automation', ['subjects:read']);
      const before = await tablesOf(t.database).selectFrom('audit_events').select('id').execute();
      const res = await call('GET', `/api/v1/subjects/${subject}/data?purpose=provide-service`, marketing);
      assert.equal(res.statusCode, 403, res.body);
      const body = res.json<ErrorBody>();
      assert.equal(body.error.code, 'auth.purpose_not_allowed');
      assert.deepEqual(body.error.details, {
        system: 'marketing-automation',
        purpose: 'provide-service',
        purposes: ['marketing-email'],
      });
      assert.match(body.error.message, /marketing-automation/);
      assert.doesNotMatch(res.body, /Lovelace|correct horse/);
      // Its own purpose it may ask for; the person withdrew, so nothing comes back.
      const own = await call('GET', `/api/v1/subjects/${subject}/data?purpose=marketing-email`, marketing);
      assert.equal(own.statusCode, 200, own.body);
      assert.equal(own.json<{ decision: { allowed: boolean } }>().decision.allowed, false);
      assert.doesNotMatch(own.body, /Lovelace/);
      // The refused read left no trace of data read; the allowed one is audited as the system's.
      const earlier = new Set(before.map((r) => Number(r.id)));
      const entries = (await t.app.audit.listBySubject(cli, subject)).filter((e) => !earlier.has(e.id));
      const reads = entries.filter((e) => e.action.includes('read'));
      assert.equal(reads.length, 1, JSON.stringify(entries));
      assert.equal(reads[0]?.purpose, 'marketing-email');
      const actor = (reads[0]?.actor ?? {}) as { kind: string; id: string; key: string };
      assert.equal(actor.kind, 'system');
      assert.equal(actor.id, 'marketing-automation');
      assert.match(actor.key, /^[a-z2-7]{12}$/);
    });

    test('a system reads only its own categories of a purpose it serves', async () => {
      const res = await call('POST', '/api/v1/collect/registration', t.key, {
        jurisdiction: 'US',
        data: {
          email: randomEmail(),
          first_name: 'Grace',
          last_name: 'Hopper',
          password: 'x-y-z-w-v-u',
          phone: '+1 202 555 0100',
        },
      });
      assert.equal(res.statusCode, 201, res.body);
      const subject = res.json<{ subject: { id: string } }>().subject.id;
      const fields = async (system: string) => {
        const read = await call(
          'GET',
          `/api/v1/subjects/${subject}/data?purpose=provide-service`,
          await keyOf(system, ['subjects:read']),
        );
        assert.equal(read.statusCode, 200, read.body);
        return read
          .json<{ records: Array<{ fields: Record<string, { category: string }> }> }>()
          .records.flatMap((r) => Object.values(r.fields).map((f) => f.category))
          .sort();
      };
      const all = await fields('test-all');
      assert.ok(all.includes('user.contact.phone_number'), all.join());
      // Billing's declared categories: name, contact, account and payment cards; never credentials.
      const billing = await fields('billing');
      assert.ok(
        billing.includes('user.name.first') && billing.includes('user.contact.email'),
        billing.join(),
      );
      assert.ok(billing.every((c) => /^user\.(name|contact|account|financial\.payment_card)(\.|$)/.test(c)));
    });

    test('decisions, consent, campaigns and suppression checks hold a system to its purposes', async () => {
      const subject = await registerAndWithdraw();
      const analytics = await keyOf('product-analytics', ['consent:read', 'consent:write', 'mail:send']);
      const refused = async (method: string, url: string, payload: unknown, purpose: string) => {
        const res = await call(method, url, analytics, payload);
        assert.equal(res.statusCode, 403, `${method} ${url}: ${res.body}`);
        const body = res.json<ErrorBody>();
        assert.equal(body.error.code, 'auth.purpose_not_allowed', url);
        assert.equal(body.error.details?.purpose, purpose, url);
        assert.equal(body.error.details?.system, 'product-analytics', url);
      };
      await refused('POST', '/api/v1/decisions', { subject, purpose: 'marketing-email' }, 'marketing-email');
      await refused(
        'POST',
        '/api/v1/consent',
        { subject, choices: [{ purpose: 'marketing-email', state: 'granted' }] },
        'marketing-email',
      );
      await refused(
        'POST',
        '/api/v1/campaigns',
        {
          name: 'x',
          list: 'marketing-email',
          template: { subject: 'Hi', text: 'Hello', html: '<p>Hello</p>' },
          audience: { subjects: [subject] },
        },
        'marketing-email',
      );
      await refused(
        'POST',
        '/api/v1/mail/suppressions/check',
        { list: 'marketing-email', addresses: ['a@example.com'] },
        'marketing-email',
      );
      // Its own purposes it may decide; a withdrawal it may pass on for any purpose.
      const own = await call('POST', '/api/v1/decisions', analytics, {
        subject,
        purpose: 'improve-products',
      });
      assert.equal(own.statusCode, 200, own.body);
      const stop = await call('POST', '/api/v1/consent', analytics, {
        subject,
        choices: [{ purpose: 'provide-service', state: 'withdrawn' }],
      });
      assert.notEqual(stop.statusCode, 403, stop.body);
      // Its consent view lists its purposes only.
      const view = await call('GET', `/api/v1/subjects/${subject}/consent`, analytics);
      assert.equal(view.statusCode, 200, view.body);
      assert.deepEqual(
        view
          .json<{ purposes: Array<{ purpose: string | { key: string } }> }>()
          .purposes.map((p) => (typeof p.purpose === 'string' ? p.purpose : p.purpose.key))
          .sort(),
        ['improve-products', 'site-analytics'],
      );
    });

    test('a system collects only through its own collection points', async () => {
      const web = await keyOf('web-app', ['collect:write']);
      const before = await tablesOf(t.database).selectFrom('records').select('id').execute();
      const res = await call('POST', '/api/v1/collect/product-events', web, {
        subject: { email: randomEmail() },
        data: {},
      });
      assert.equal(res.statusCode, 403, res.body);
      const body = res.json<ErrorBody>();
      assert.equal(body.error.code, 'auth.source_not_allowed');
      assert.equal(body.error.details?.system, 'web-app');
      assert.equal(body.error.details?.source, 'product-events');
      assert.ok((body.error.details?.sources as string[]).includes('registration'));
      assert.equal(
        (await tablesOf(t.database).selectFrom('records').select('id').execute()).length,
        before.length,
      );
      const own = await call('POST', '/api/v1/collect/feedback', web, {
        subject: { id: await registerAndWithdraw() },
        data: { message: 'Nice' },
      });
      assert.equal(own.statusCode, 201, own.body);
    });

    test('an operator key reads, collects, decides and sends nothing for a person, on every route', async () => {
      const operator = await keyOf(undefined, [...MANAGEMENT_SCOPES]);
      // A key made before keys had systems: its data scopes are stored, and refused.
      const legacyId = 'legacy2key2a';
      const legacySecret = 'A'.repeat(43);
      await new ApiKeyRepository(t.database.db).insert(cli, {
        id: legacyId,
        name: 'made before systems',
        secretHash: (await import('node:crypto')).hash('sha256', legacySecret, 'hex'),
        scopes: [...SCOPES],
        createdAt: new Date(),
        system: undefined,
        holder: undefined,
        expiresAt: undefined,
      });
      const legacy = `pledge_${legacyId}_${legacySecret}`;
      // The keyless web endpoints believe no key (tested below): not walked here.
      const web = webRoutes(t.app.http);
      const routes = registeredRoutes(t.app.http).filter(
        (r) =>
          r.url.startsWith('/api/v1') &&
          r.method !== 'HEAD' &&
          !web.some((w) => w.method === r.method && w.url === r.url),
      );
      assert.ok(routes.length > 15, `the walk sees the API (${routes.length} routes)`);
      let refusedCount = 0;
      for (const route of routes) {
        const url = route.url
          .replace(/:id\b/g, ZERO_UUID)
          .replace(/:source\b/g, 'registration')
          .replace(/:[a-zA-Z]+/g, 'x');
        // The description of a collection point reads the manifest (manifest:read), not anyone's data.
        const management =
          MANAGEMENT_ROUTES.some((m) => m.test(route.url)) ||
          (route.method === 'GET' && route.url === '/api/v1/collect/:source');
        for (const key of [operator, legacy]) {
          const res = await call(
            route.method,
            url,
            key,
            route.method === 'GET' || route.method === 'DELETE' ? undefined : {},
          );
          const where = `${route.method} ${route.url}`;
          if (management) {
            assert.doesNotMatch(res.body, /auth\.system_required/, `${where} is management`);
            continue;
          }
          assert.equal(res.statusCode, 403, `${where} refuses an operator key: ${res.body}`);
          assert.equal(res.json<ErrorBody>().error.code, 'auth.system_required', where);
          assert.match(res.json<ErrorBody>().error.message, /pledge keys (create|bind)/, where);
          refusedCount++;
        }
      }
      assert.ok(refusedCount >= 20, `data routes refused (${refusedCount})`);
      // Bound, the legacy key works for its system's purposes.
      await t.app.apiKeys.bindKey(cli, legacyId, 'support-desk');
      const subject = await registerAndWithdraw();
      const read = await call('GET', `/api/v1/subjects/${subject}/data?purpose=provide-service`, legacy);
      assert.equal(read.statusCode, 200, read.body);
      const other = await call('GET', `/api/v1/subjects/${subject}/data?purpose=legal-compliance`, legacy);
      assert.equal(other.json<ErrorBody>().error.code, 'auth.purpose_not_allowed');
    });

    test('the keyless web routes act as the web system: a key sent to them widens nothing', async () => {
      const operator = await keyOf(undefined, [...MANAGEMENT_SCOPES]);
      const all = await keyOf('test-all', [...SCOPES]);
      const routes = webRoutes(t.app.http).filter((r) => r.method === 'POST');
      assert.ok(
        routes.some((r) => r.url === '/api/v1/banner/choices'),
        'the banner choices are walked',
      );
      for (const route of routes) {
        for (const key of [operator, all]) {
          const res = await call(route.method, route.url, key, {});
          const where = `${route.method} ${route.url}`;
          assert.notEqual(res.statusCode, 401, `${where}: ${res.body}`);
          if (res.statusCode >= 400)
            assert.doesNotMatch(
              res.json<ErrorBody>().error.code,
              /^auth\.(system_required|key_|scope_)/,
              where,
            );
        }
      }
      // A key that may do everything does not let the banner record a purpose the web system does
      // not serve: the banner asks only about its own, and anything else is refused.
      const config = (await t.app.http.inject({ url: '/pledge.js' })).body;
      const notice = /"v":"([A-Za-z0-9_-]+)"/.exec(config)?.[1] ?? '';
      const res = await call('POST', '/api/v1/banner/choices', all, {
        browser: 'b'.repeat(22),
        notice,
        language: 'en',
        control: 'accept_all',
        gpc: false,
        choices: { 'site-analytics': true, 'provide-service': true },
      });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json<ErrorBody>().error.code, 'banner.purpose_not_offered');
    });

    test('keys are made for declared systems only, and data scopes need one', async () => {
      await assert.rejects(keyOf('no-such-system', ['subjects:read']), { code: 'auth.system_unknown' });
      await assert.rejects(keyOf(undefined, ['subjects:read']), { code: 'auth.system_required' });
      await assert.rejects(
        t.app.apiKeys.createKey(cli, {
          name: 'late',
          system: 'web-app',
          scopes: ['subjects:read'],
          expiresAt: new Date(Date.now() - 1000),
        }),
        { code: 'auth.key_expiry_invalid' },
      );
      const made = await t.app.apiKeys.createKey(cli, {
        name: 'desk',
        system: 'support-desk',
        holder: 'ops-team',
        scopes: ['subjects:read'],
        expiresAt: new Date(Date.now() + 86_400_000),
      });
      const listed = (await t.app.apiKeys.listKeys(cli)).find((k) => k.id === made.id);
      assert.equal(listed?.system, 'support-desk');
      assert.equal(listed?.holder, 'ops-team');
      assert.ok(listed?.expiresAt !== undefined && listed.expiresAt.getTime() > Date.now());
      await assert.rejects(t.app.apiKeys.bindKey(cli, made.id, 'billing'), {
        code: 'auth.key_already_bound',
      });
    });
  });
}
