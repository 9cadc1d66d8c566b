/**
 * The web endpoints' common ground (src/tracking/web.ts): several capabilities each register their
 * keyless routes in a web scope of their own on one server; each path answers its own preflight to
 * the site origins only, and no other path of the server answers one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Manifest } from '../../src/manifest/manifest.schema.js';
import { createHttpServer } from '../../src/platform/http/server.js';
import { registerWebScope, webRoutes, WebEndpoints } from '../../src/tracking/web.js';

const SITE = 'https://www.example.com';

describe('web scopes', () => {
  let app: FastifyInstance;
  const web = new WebEndpoints(
    { manifest: { systems: [] } as unknown as Manifest },
    { siteOrigins: [SITE], countryHeader: 'cf-ipcountry' },
  );
  before(async () => {
    app = await createHttpServer({ logLevel: 'silent', bodyLimitBytes: 10_000, rateLimitPerMinute: 100_000 });
    // Two capabilities, two scopes on one server (the banner's and the beacons').
    await registerWebScope(app, web, (scope) => {
      scope.get('/one.js', () => 'one');
    });
    await registerWebScope(app, web, (scope) => {
      scope.post('/api/v1/two', () => ({ two: true }));
    });
    app.post('/api/v1/other', () => ({ other: true }));
    await app.ready();
  });
  after(() => app.close());

  const preflight = (url: string, origin = SITE) =>
    app.inject({
      method: 'OPTIONS',
      url,
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });

  test('each scope answers its own preflights, to the site origins only', async () => {
    for (const url of ['/one.js', '/api/v1/two']) {
      const ok = await preflight(url);
      assert.equal(ok.statusCode, 204, `${url}: ${ok.body}`);
      assert.equal(ok.headers['access-control-allow-origin'], SITE);
      assert.equal(ok.headers['cross-origin-resource-policy'], 'cross-origin');
      const refused = await preflight(url, 'https://evil.example');
      assert.equal(refused.statusCode, 403);
      assert.equal(refused.json<{ error: { code: string } }>().error.code, 'web.preflight_refused');
    }
  });

  test('a route outside the web scopes answers no preflight and stays same-origin', async () => {
    const res = await preflight('/api/v1/other');
    assert.equal(res.statusCode, 404);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    const post = await app.inject({
      method: 'POST',
      url: '/api/v1/other',
      headers: { origin: SITE },
      payload: {},
    });
    assert.equal(post.headers['access-control-allow-origin'], undefined);
    assert.equal(post.headers['cross-origin-resource-policy'], 'same-origin');
  });

  test('webRoutes lists what the scopes registered, and nothing else', () => {
    const listed = webRoutes(app).map((r) => `${r.method} ${r.url}`);
    for (const r of [
      'GET /one.js',
      'HEAD /one.js',
      'OPTIONS /one.js',
      'POST /api/v1/two',
      'OPTIONS /api/v1/two',
    ])
      assert.ok(listed.includes(r), `${r} in ${listed.join(', ')}`);
    assert.ok(!listed.some((r) => r.includes('/api/v1/other')));
  });

  test('the country comes from the configured header only, and XX is unknown', () => {
    const of = (headers: Record<string, string>) =>
      web.jurisdictionOf({ headers } as unknown as Parameters<WebEndpoints['jurisdictionOf']>[0]);
    assert.equal(of({ 'cf-ipcountry': 'de' }), 'DE');
    assert.equal(of({ 'cf-ipcountry': 'XX' }), undefined);
    assert.equal(of({ 'x-country': 'DE' }), undefined);
    assert.throws(() => web.context({ id: 'r' } as never), { code: 'auth.web_system_missing' });
  });
});
