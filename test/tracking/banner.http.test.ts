/**
 * The cookie banner's server side over HTTP: the script under its plain and hashed URLs (cache
 * headers, ETag, embeddable cross-origin), what the server tells the script of the visitor (modes
 * by jurisdiction, GPC), and choices recorded in the consent ledger with their proof, on every
 * engine, so that the browser merge carries them to the person who signs up.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { parseDocument, type Document } from 'yaml';
import { createApp, type App } from '../../src/app.js';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import { SystemGate } from '../../src/manifest/systems.gate.js';
import { createHttpServer } from '../../src/platform/http/server.js';
import { registerBannerRoutes } from '../../src/tracking/banner.routes.js';
import { WebEndpoints } from '../../src/tracking/web.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import type { BannerChoicesRequest, BannerConfig } from '../../src/tracking/banner.contract.js';
import { bannerConfigOf, bannerReceiptsOf } from '../../src/tracking/banner.config.js';
import { DIALECTS, type TestDialect } from '../helpers/databases.js';
import { PARTNER_ADS } from '../helpers/manifests.js';
import { forgeSignature } from '../helpers/tokens.js';
import { EXAMPLE_MANIFEST, openTestStores, type TestStores } from '../helpers/vault.js';

const cli = createContext({ kind: 'cli', id: 'test' });
const SITE = 'https://www.example.com';
const PUBLIC_URL = 'https://pledge.example.com';
const UA = 'Mozilla/5.0 (BannerTest)';

interface ErrorBody {
  error: { code: string; message: string; details?: { problems?: Array<{ path: string; code: string }> } };
}

interface TestApp {
  app: App;
  config: BannerConfig;
  close(): Promise<void>;
}

/** The example manifest changed by `edit`, in a file of its own. */
async function manifestWith(edit: (doc: Document) => void): Promise<string> {
  const doc = parseDocument(await readFile(EXAMPLE_MANIFEST, 'utf8'));
  edit(doc);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-banner-'));
  const file = path.join(dir, 'pledge.yaml');
  await writeFile(file, doc.toString());
  return file;
}

/** The index of the item of `list` whose key is `key`. */
function indexOf(doc: Document, list: string, key: string): number {
  const items = (doc.get(list) as { items: Array<{ get(k: string): unknown }> }).items;
  const i = items.findIndex((item) => item.get('key') === key);
  assert.ok(i >= 0, `${list} has ${key}`);
  return i;
}

/** The example with a targeted-advertising purpose covered by GPC, asked by the banner, served by the web system. */
const withPartnerAds = (doc: Document) => {
  doc.addIn(['purposes'], doc.createNode({ ...PARTNER_ADS, domains: ['ads.partner.example'] }));
  const banner = indexOf(doc, 'choices', 'cookie-banner');
  doc.setIn(['choices', banner, 'purposes'], doc.createNode(['site-analytics', 'partner-ads']));
  const website = indexOf(doc, 'systems', 'website');
  doc.setIn(['systems', website, 'purposes'], doc.createNode(['site-analytics', 'partner-ads']));
};

async function openApp(dialect: TestDialect, manifest: string, stores?: TestStores): Promise<TestApp> {
  const own = stores ?? (await openTestStores(dialect, 'pledge-banner-'));
  const config = {
    ...loadConfig(
      {
        PLEDGE_DATA_DIR: own.dataDir,
        PLEDGE_LOG_LEVEL: 'silent',
        PLEDGE_PUBLIC_URL: PUBLIC_URL,
        PLEDGE_SITE_ORIGINS: `${SITE},https://shop.example.com`,
        PLEDGE_COUNTRY_HEADER: 'cf-ipcountry',
      },
      { manifest },
    ),
    retentionIntervalSeconds: 0,
    rateLimitPerMinute: 100_000,
  };
  const app = await createApp(config, { database: own.database, keystore: own.keystore });
  const banner = bannerConfigOf(app.active.manifest, { publicUrl: PUBLIC_URL });
  return {
    app,
    config: banner ?? ({} as BannerConfig),
    async close() {
      await app.close();
      if (stores === undefined) await own.cleanup();
    },
  };
}

const browserId = () => randomBytes(18).toString('base64url');

function choiceBody(t: TestApp, overrides: Partial<BannerChoicesRequest> = {}): BannerChoicesRequest {
  return {
    browser: browserId(),
    notice: t.config.v,
    language: 'en',
    control: 'accept_all',
    gpc: false,
    choices: Object.fromEntries(t.config.u.map((p) => [p.k, true])),
    ...overrides,
  };
}

function postChoices(
  t: TestApp,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return t.app.http.inject({
    method: 'POST',
    url: '/api/v1/banner/choices',
    headers: { origin: SITE, 'user-agent': UA, 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('the banner script and context', () => {
  let t: TestApp;
  before(async () => {
    t = await openApp('sqlite', EXAMPLE_MANIFEST);
  });
  after(() => t.close());

  test('/pledge.js is the script for the manifest in force, briefly cached, revalidated by its hash', async () => {
    const res = await t.app.http.inject({ url: '/pledge.js' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'public, max-age=300');
    // Embeddable by the company's sites: Chromium refuses a same-origin-only script cross-origin.
    assert.equal(res.headers['cross-origin-resource-policy'], 'cross-origin');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    // The manifest's configuration is inside: its notice version, purposes and texts.
    assert.ok(res.body.includes(`"v":"${t.config.v}"`), 'the notice version is in the script');
    assert.ok(
      res.body.includes('Nutzung unserer Websites messen'),
      'the German purpose name is in the script',
    );
    const etag = String(res.headers.etag);
    const hash = /^"([A-Za-z0-9_-]+)"$/.exec(etag)?.[1];
    assert.ok(hash !== undefined, `a strong ETag of the hash: ${etag}`);

    const again = await t.app.http.inject({ url: '/pledge.js', headers: { 'if-none-match': etag } });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
    assert.equal(again.headers.etag, etag);
    const weak = await t.app.http.inject({
      url: '/pledge.js',
      headers: { 'if-none-match': `"x", W/${etag}` },
    });
    assert.equal(weak.statusCode, 304);
    const stale = await t.app.http.inject({ url: '/pledge.js', headers: { 'if-none-match': '"other"' } });
    assert.equal(stale.statusCode, 200);

    const hashed = await t.app.http.inject({ url: `/pledge.${hash}.js` });
    assert.equal(hashed.statusCode, 200);
    assert.equal(hashed.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(hashed.headers['cross-origin-resource-policy'], 'cross-origin');
    assert.equal(hashed.body, res.body);

    const old = await t.app.http.inject({ url: '/pledge.0000000000000000.js' });
    assert.equal(old.statusCode, 404);
    assert.equal(old.json<ErrorBody>().error.code, 'banner.script_not_found');
  });

  test("the page CSP of Pledge's own answers does not stop a site loading the script", async () => {
    // A CSP on a script's answer governs no page (only documents and workers): the site's own CSP
    // decides. What could stop a cross-origin <script src> is CORP, COEP or a wrong type, checked here.
    const res = await t.app.http.inject({ url: '/pledge.js', headers: { origin: SITE } });
    assert.equal(res.headers['cross-origin-resource-policy'], 'cross-origin');
    assert.equal(res.headers['cross-origin-embedder-policy'], undefined);
    assert.match(String(res.headers['content-type']), /^text\/javascript/);
    assert.equal(res.headers['access-control-allow-origin'], SITE);
    assert.match(String(res.headers.vary), /origin/i);
  });

  test('context: opt-in in Germany, opt-out in the US, the strictest where the country is unknown', async () => {
    const context = async (headers: Record<string, string>) => {
      const res = await t.app.http.inject({ url: '/api/v1/banner/context', headers });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.deepEqual(
        String(res.headers.vary)
          .split(',')
          .map((v) => v.trim()),
        ['origin', 'sec-gpc', 'cf-ipcountry'],
      );
      return res.json<{ jurisdiction: string | null; modes: Record<string, string>; gpc: boolean }>();
    };
    assert.deepEqual(await context({ 'cf-ipcountry': 'DE' }), {
      jurisdiction: 'DE',
      modes: { 'site-analytics': 'opt_in' },
      gpc: false,
    });
    assert.deepEqual(await context({ 'cf-ipcountry': 'us' }), {
      jurisdiction: 'US',
      modes: { 'site-analytics': 'opt_out' },
      gpc: false,
    });
    for (const unknown of [{}, { 'cf-ipcountry': 'XX' }, { 'cf-ipcountry': 'T1' }] as Array<
      Record<string, string>
    >) {
      assert.deepEqual(await context(unknown), {
        jurisdiction: null,
        modes: { 'site-analytics': 'opt_in' },
        gpc: false,
      });
    }
    assert.equal((await context({ 'cf-ipcountry': 'US', 'sec-gpc': '1' })).gpc, true);
  });

  test('context is readable cross-origin by the site origins only, and changes nothing', async () => {
    const listed = await t.app.http.inject({ url: '/api/v1/banner/context', headers: { origin: SITE } });
    assert.equal(listed.headers['access-control-allow-origin'], SITE);
    assert.equal(listed.headers['cross-origin-resource-policy'], 'cross-origin');
    const other = await t.app.http.inject({
      url: '/api/v1/banner/context',
      headers: { origin: 'https://evil.example' },
    });
    assert.equal(other.statusCode, 200);
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });

  test('preflights: the site origins may POST JSON choices; other origins, methods and headers are refused', async () => {
    const preflight = (origin: string, method = 'POST', headers = 'content-type') =>
      t.app.http.inject({
        method: 'OPTIONS',
        url: '/api/v1/banner/choices',
        headers: {
          origin,
          'access-control-request-method': method,
          'access-control-request-headers': headers,
        },
      });
    const ok = await preflight('https://shop.example.com');
    assert.equal(ok.statusCode, 204);
    assert.equal(ok.headers['access-control-allow-origin'], 'https://shop.example.com');
    assert.equal(ok.headers['access-control-allow-methods'], 'GET, POST');
    assert.equal(ok.headers['access-control-allow-headers'], 'content-type');
    assert.equal(ok.headers['access-control-allow-credentials'], undefined);
    for (const refused of [
      await preflight('https://evil.example'),
      await preflight(SITE, 'DELETE'),
      await preflight(SITE, 'POST', 'content-type, authorization'),
    ]) {
      assert.equal(refused.statusCode, 403);
      assert.equal(refused.headers['access-control-allow-methods'], undefined);
      assert.equal(refused.json<ErrorBody>().error.code, 'web.preflight_refused');
    }
    // Only the web endpoints answer preflights: the API is not callable from pages.
    const api = await t.app.http.inject({
      method: 'OPTIONS',
      url: '/api/v1/consent',
      headers: { origin: SITE, 'access-control-request-method': 'POST' },
    });
    assert.equal(api.statusCode, 404);
    assert.equal(api.headers['access-control-allow-origin'], undefined);
  });
});

for (const dialect of DIALECTS) {
  describe(`banner choices on ${dialect}`, () => {
    let t: TestApp;
    let webAppKey = '';
    let analyticsKey = '';
    before(async () => {
      t = await openApp(dialect, EXAMPLE_MANIFEST);
      webAppKey = (
        await t.app.apiKeys.createKey(cli, { name: 'web-app', system: 'web-app', scopes: ['consent:write'] })
      ).key;
      analyticsKey = (
        await t.app.apiKeys.createKey(cli, {
          name: 'analytics',
          system: 'product-analytics',
          scopes: ['consent:read'],
        })
      ).key;
    });
    after(() => t.close());

    const api = (method: 'GET' | 'POST', url: string, key: string, payload?: object) =>
      t.app.http.inject({
        method,
        url,
        headers: { authorization: `Bearer ${key}` },
        ...(payload ? { payload } : {}),
      });
    const decide = async (subject: string) =>
      (
        await api('POST', '/api/v1/decisions', analyticsKey, {
          subject,
          purpose: 'site-analytics',
          channel: 'web',
        })
      ).json<{ decision: { allowed: boolean; reason: string } }>().decision;

    test('a choice is recorded for the browser with its proof, and a signed receipt comes back', async () => {
      const body = choiceBody(t, { language: 'de' });
      const res = await postChoices(t, body, { 'cf-ipcountry': 'DE' });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.headers['access-control-allow-origin'], SITE);
      const answer = res.json<{ decisions: Record<string, boolean>; receipt: string }>();
      assert.deepEqual(answer.decisions, { 'site-analytics': true });
      const receipts = bannerReceiptsOf(t.app.active.manifest, t.app.keyring.use('banner_receipts'));
      const receipt = receipts?.verify(answer.receipt, new Date());
      assert.ok(receipt, 'the receipt verifies');
      assert.equal(receipt.browser, body.browser);
      assert.deepEqual([...receipt.allowed], ['site-analytics']);
      assert.equal(receipt.jurisdiction, 'DE');
      assert.equal(receipts?.verify(forgeSignature(answer.receipt), new Date()), undefined);

      const history = await t.app.consent.history(cli, { browserId: body.browser });
      assert.equal(history.length, 1);
      const event = history[0]!;
      assert.equal(event.purpose, 'site-analytics');
      assert.equal(event.channel, 'web');
      assert.equal(event.state, 'granted');
      assert.equal(event.method, 'banner');
      assert.equal(event.noticeVersion, t.config.v);
      assert.equal(event.jurisdiction, 'DE');
      assert.deepEqual(event.evidence, {
        userAgent: UA,
        ip: '127.0.0.0',
        language: 'de',
        control: 'accept_all',
        gpc: false,
      });
    });

    test('the choice follows the person who signs up: merged with a web-app key, their decision is the choice', async () => {
      // Accepted in Germany (opt-in there), refused in the US (opt-out there): each the opposite of
      // what the person would get without a choice.
      for (const [country, control, allowed, reasonBefore, reasonAfter] of [
        ['DE', 'accept_all', true, 'opt_in_missing', 'opt_in_granted'],
        ['US', 'reject_all', false, 'opt_out_default', 'denied'],
      ] as const) {
        const body = choiceBody(t, {
          control,
          choices: { 'site-analytics': allowed },
        });
        const chosen = await postChoices(t, body, { 'cf-ipcountry': country });
        assert.equal(chosen.statusCode, 201, chosen.body);
        const subject = (await t.app.vault.createSubject(cli, { kind: 'customer', jurisdiction: country }))
          .id;
        assert.equal((await decide(subject)).reason, reasonBefore);
        const merged = await api('POST', '/api/v1/consent/merge', webAppKey, {
          browser: body.browser,
          subject,
        });
        assert.equal(merged.statusCode, 200, merged.body);
        assert.equal(merged.json<{ merged: number }>().merged, 1);
        const after = await decide(subject);
        assert.deepEqual({ allowed: after.allowed, reason: after.reason }, { allowed, reason: reasonAfter });
        // The subject's ledger, through the history route, keeps the banner's proof.
        const history = await api('GET', `/api/v1/subjects/${subject}/consent/history`, analyticsKey);
        assert.equal(history.statusCode, 200, history.body);
        const events = history.json<{ events: Array<Record<string, unknown>> }>().events;
        assert.equal(events.length, 1);
        assert.deepEqual(
          { ...events[0], id: undefined, at: undefined, policyVersionId: undefined, mergedFrom: undefined },
          {
            id: undefined,
            at: undefined,
            policyVersionId: undefined,
            mergedFrom: undefined,
            purpose: 'site-analytics',
            channel: 'web',
            state: allowed ? 'granted' : 'denied',
            method: 'banner',
            noticeVersion: t.config.v,
            jurisdiction: country,
            evidence: { userAgent: UA, ip: '127.0.0.0', language: 'en', control, gpc: false },
          },
        );
        assert.equal(typeof events[0]?.mergedFrom, 'string');
      }
    });

    test('the jurisdiction is the CDN header, never the body; withdrawing is recorded as a withdrawal', async () => {
      const spoof = await postChoices(t, { ...choiceBody(t), jurisdiction: 'US' }, { 'cf-ipcountry': 'DE' });
      assert.equal(spoof.statusCode, 400, spoof.body);
      assert.equal(spoof.json<ErrorBody>().error.code, 'banner.field_unknown');
      const body = choiceBody(t);
      assert.equal((await postChoices(t, body)).statusCode, 201);
      const withdrawn = await postChoices(t, {
        ...body,
        control: 'withdraw',
        choices: { 'site-analytics': false },
      });
      assert.equal(withdrawn.statusCode, 201, withdrawn.body);
      assert.deepEqual(withdrawn.json<{ decisions: unknown }>().decisions, { 'site-analytics': false });
      const history = await t.app.consent.history(cli, { browserId: body.browser });
      assert.deepEqual(
        history.map((e) => [e.state, e.jurisdiction, e.evidence?.control]),
        [
          ['granted', undefined, 'accept_all'],
          ['withdrawn', undefined, 'withdraw'],
        ],
      );
    });

    test('an origin not listed is refused before anything is read or recorded, even without a preflight', async () => {
      const body = choiceBody(t);
      for (const origin of ['https://evil.example', 'null', 'https://www.example.com:8443']) {
        const res = await postChoices(t, body, { origin });
        assert.equal(res.statusCode, 403, res.body);
        assert.equal(res.json<ErrorBody>().error.code, 'banner.origin_not_allowed');
        assert.equal(res.headers['access-control-allow-origin'], undefined);
      }
      // Even a body that is not JSON: the origin is checked first.
      const garbage = await postChoices(t, '{', { origin: 'https://evil.example' });
      assert.equal(garbage.json<ErrorBody>().error.code, 'banner.origin_not_allowed');
      assert.deepEqual(await t.app.consent.history(cli, { browserId: body.browser }), []);
      // Pledge's own pages may post (same origin).
      assert.equal((await postChoices(t, body, { origin: PUBLIC_URL })).statusCode, 201);
    });

    test('a purpose the banner does not ask about is refused, and nothing is recorded', async () => {
      const body = choiceBody(t, {
        choices: { 'site-analytics': true, 'marketing-email': true, 'provide-service': false },
      });
      const res = await postChoices(t, body);
      assert.equal(res.statusCode, 400, res.body);
      const error = res.json<ErrorBody>().error;
      assert.equal(error.code, 'banner.purpose_not_offered');
      assert.deepEqual(
        error.details?.problems?.map((p) => p.path),
        ['choices.marketing-email', 'choices.provide-service'],
      );
      assert.match(error.message, /"site-analytics"/);
      assert.deepEqual(await t.app.consent.history(cli, { browserId: body.browser }), []);
    });

    test('malformed bodies: 4xx in the one error shape, every problem listed, never 500', async () => {
      const empty = await postChoices(t, {});
      assert.equal(empty.statusCode, 400);
      const error = empty.json<ErrorBody>().error;
      assert.equal(error.code, 'banner.choices_invalid');
      assert.deepEqual(
        error.details?.problems?.map((p) => [p.path, p.code]),
        [
          ['browser', 'banner.browser_invalid'],
          ['notice', 'banner.notice_invalid'],
          ['language', 'banner.language_unknown'],
          ['control', 'banner.control_invalid'],
          ['gpc', 'banner.gpc_invalid'],
          ['choices', 'banner.choices_invalid'],
        ],
      );
      const cases: Array<[unknown, number, string, Record<string, string>?]> = [
        ['{', 400, 'request.invalid_json'],
        ['', 400, 'request.invalid_json'],
        ['[]', 400, 'request.invalid'],
        ['"text"', 400, 'request.invalid'],
        [{ ...choiceBody(t), browser: 'short' }, 400, 'banner.browser_invalid'],
        [{ ...choiceBody(t), browser: 'x'.repeat(129) }, 400, 'banner.browser_invalid'],
        [{ ...choiceBody(t), language: 'es' }, 400, 'banner.language_unknown'],
        [{ ...choiceBody(t), control: 'click' }, 400, 'banner.control_invalid'],
        [{ ...choiceBody(t), gpc: 'yes' }, 400, 'banner.gpc_invalid'],
        [{ ...choiceBody(t), choices: [] }, 400, 'banner.choices_invalid'],
        [{ ...choiceBody(t), choices: { 'site-analytics': 'yes' } }, 400, 'banner.choices_invalid'],
        [{ ...choiceBody(t), choices: {} }, 400, 'banner.choice_missing'],
        [{ ...choiceBody(t), choices: { __proto__: true } }, 400, 'banner.choice_missing'],
        [{ ...choiceBody(t), control: 'gpc' }, 400, 'banner.gpc_missing'],
        [{ ...choiceBody(t), notice: 'AAAAAAAAAAAA' }, 409, 'banner.notice_outdated'],
        ['{}', 415, 'request.unsupported_media_type', { 'content-type': 'text/plain' }],
        [JSON.stringify({ ...choiceBody(t), pad: 'x'.repeat(20_000) }), 413, 'request.too_large'],
      ];
      for (const [payload, status, code, headers] of cases) {
        const res = await postChoices(t, payload, headers);
        const where = `${JSON.stringify(payload).slice(0, 80)} -> ${res.body.slice(0, 200)}`;
        assert.equal(res.statusCode, status, where);
        assert.equal(res.json<ErrorBody>().error.code, code, where);
        assert.equal(typeof res.json<ErrorBody>().error.message, 'string', where);
        assert.equal(res.headers['cross-origin-resource-policy'], 'cross-origin', where);
      }
    });
  });
}

for (const dialect of DIALECTS) {
  describe(`Global Privacy Control in the banner on ${dialect}`, () => {
    let t: TestApp;
    let manifest: string;
    before(async () => {
      manifest = await manifestWith(withPartnerAds);
      t = await openApp(dialect, manifest);
    });
    after(async () => {
      await t.close();
      await rm(path.dirname(manifest), { recursive: true, force: true });
    });

    test('the script holds the GPC purpose and its domain; context reports GPC', async () => {
      assert.deepEqual(
        t.config.u.map((p) => [p.k, p.g]),
        [
          ['site-analytics', false],
          ['partner-ads', true],
        ],
      );
      assert.deepEqual(t.config.h, [['ads.partner.example', ['partner-ads']]]);
      const res = await t.app.http.inject({
        url: '/api/v1/banner/context',
        headers: { 'cf-ipcountry': 'US', 'sec-gpc': '1' },
      });
      assert.deepEqual(res.json(), {
        jurisdiction: 'US',
        modes: { 'site-analytics': 'opt_out', 'partner-ads': 'opt_out' },
        gpc: true,
      });
    });

    for (const [how, headers, gpcInBody] of [
      ['the Sec-GPC header', { 'sec-gpc': '1' }, false],
      ['the navigator flag in the body', {}, true],
    ] as const) {
      test(`GPC by ${how} refuses the purposes it covers whatever the body says, and is recorded`, async () => {
        const body = choiceBody(t, { gpc: gpcInBody });
        const res = await postChoices(t, body, { 'cf-ipcountry': 'US', ...headers });
        assert.equal(res.statusCode, 201, res.body);
        const answer = res.json<{ decisions: Record<string, boolean>; receipt: string }>();
        assert.deepEqual(answer.decisions, { 'site-analytics': true, 'partner-ads': false });
        const receipts = bannerReceiptsOf(t.app.active.manifest, t.app.keyring.use('banner_receipts'));
        assert.deepEqual(
          [...(receipts?.verify(answer.receipt, new Date())?.allowed ?? [])],
          ['site-analytics'],
        );
        const history = await t.app.consent.history(cli, { browserId: body.browser });
        assert.deepEqual(
          history.map((e) => [e.purpose, e.state, e.method, e.evidence?.gpc]),
          [
            ['partner-ads', 'denied', 'gpc', true],
            ['site-analytics', 'granted', 'banner', true],
          ],
        );
      });
    }
  });
}

describe('banner endpoints of other manifests', () => {
  test('pledge serve refuses a banner without a web system, or one whose web system does not serve it', async () => {
    for (const edit of [
      (doc: Document) => doc.deleteIn(['systems', indexOf(doc, 'systems', 'website'), 'web']),
      (doc: Document) => {
        withPartnerAds(doc);
        doc.setIn(
          ['systems', indexOf(doc, 'systems', 'website'), 'purposes'],
          doc.createNode(['site-analytics']),
        );
      },
    ]) {
      const manifest = await manifestWith(edit);
      try {
        await assert.rejects(openApp('sqlite', manifest), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'manifest.invalid');
          assert.match(err.message, /check\.web_system/);
          return true;
        });
      } finally {
        await rm(path.dirname(manifest), { recursive: true, force: true });
      }
    }
  });

  test('without a web system (and so without a banner): choices are refused with 403, nothing recorded', async () => {
    const manifest = await manifestWith((doc) => {
      doc.deleteIn(['systems', indexOf(doc, 'systems', 'website'), 'web']);
      doc.deleteIn(['choices', indexOf(doc, 'choices', 'cookie-banner'), 'banner']);
    });
    const t = await openApp('sqlite', manifest);
    try {
      const body = {
        browser: browserId(),
        notice: 'AAAAAAAAAAAA',
        language: 'en',
        control: 'accept_all',
        gpc: false,
        choices: { 'site-analytics': true },
      };
      const res = await postChoices(t, body);
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json<ErrorBody>().error.code, 'auth.web_system_missing');
      assert.deepEqual(await t.app.consent.history(cli, { browserId: body.browser }), []);
    } finally {
      await t.close();
      await rm(path.dirname(manifest), { recursive: true, force: true });
    }
  });

  test('the routes hold even a manifest the checker would refuse: no web system, or one not serving an asked purpose', async () => {
    // What `pledge serve` refuses to start with, built by hand around the real consent ledger: the
    // routes do not rely on the checker having run.
    const t = await openApp('sqlite', EXAMPLE_MANIFEST);
    try {
      for (const [edit, code, recorded] of [
        [
          (doc: Document) => doc.deleteIn(['systems', indexOf(doc, 'systems', 'website'), 'web']),
          'auth.web_system_missing',
          0,
        ],
        [
          (doc: Document) =>
            doc.setIn(
              ['systems', indexOf(doc, 'systems', 'website'), 'purposes'],
              doc.createNode(['provide-service']),
            ),
          'auth.purpose_not_allowed',
          1,
        ],
      ] as const) {
        const doc = parseDocument(await readFile(EXAMPLE_MANIFEST, 'utf8'));
        edit(doc);
        const parsed = parseManifest(doc.toString(), 'pledge.yaml');
        assert.ok(parsed.manifest, JSON.stringify(parsed.problems));
        const source = { manifest: parsed.manifest };
        const http = await createHttpServer({
          logLevel: 'silent',
          bodyLimitBytes: 1_000_000,
          rateLimitPerMinute: 100_000,
        });
        await registerBannerRoutes(http, {
          web: new WebEndpoints(source, {
            siteOrigins: [SITE],
            countryHeader: 'cf-ipcountry',
            publicUrl: PUBLIC_URL,
          }),
          consent: t.app.consent,
          systems: new SystemGate(source),
          manifest: source,
          publicUrl: PUBLIC_URL,
          receiptKeys: t.app.keyring.use('banner_receipts'),
        });
        await http.ready();
        try {
          const body = choiceBody(t);
          const res = await http.inject({
            method: 'POST',
            url: '/api/v1/banner/choices',
            headers: { origin: SITE },
            payload: body,
          });
          assert.equal(res.statusCode, 403, res.body);
          assert.equal(res.json<ErrorBody>().error.code, code);
          assert.deepEqual(await t.app.consent.history(cli, { browserId: body.browser }), []);
          // A refusal may be passed on by any system: "no" is always honoured.
          const refused = await http.inject({
            method: 'POST',
            url: '/api/v1/banner/choices',
            headers: { origin: SITE },
            payload: { ...body, control: 'reject_all', choices: { 'site-analytics': false } },
          });
          assert.equal(refused.statusCode, recorded === 1 ? 201 : 403, refused.body);
          assert.equal((await t.app.consent.history(cli, { browserId: body.browser })).length, recorded);
        } finally {
          await http.close();
        }
      }
    } finally {
      await t.close();
    }
  });

  test('without a banner: every banner endpoint answers 404 banner.not_configured', async () => {
    const manifest = await manifestWith((doc) => {
      doc.deleteIn(['choices', indexOf(doc, 'choices', 'cookie-banner'), 'banner']);
    });
    const t = await openApp('sqlite', manifest);
    try {
      for (const [method, url] of [
        ['GET', '/pledge.js'],
        ['GET', '/pledge.abc.js'],
        ['GET', '/api/v1/banner/context'],
        ['POST', '/api/v1/banner/choices'],
      ] as const) {
        const res = await t.app.http.inject({
          method,
          url,
          headers: { origin: SITE },
          ...(method === 'POST' ? { payload: {} } : {}),
        });
        assert.equal(res.statusCode, 404, `${url}: ${res.body}`);
        assert.equal(res.json<ErrorBody>().error.code, 'banner.not_configured', url);
      }
    } finally {
      await t.close();
      await rm(path.dirname(manifest), { recursive: true, force: true });
    }
  });
});
