/**
 * Rules every route keeps, checked by walking the routes the app registered, so that a route added
 * later cannot forget them: every `/api/v1` route refuses a request without a key (401, the error
 * shape, the RFC 6750 challenge) before it reads anything, and one with a key that lacks its scope
 * (403); every JSON answer carries the API security headers; every route that takes a body refuses
 * text/plain with 415 in the error shape. The keyless web endpoints (the banner's and beacons',
 * registered through registerWebScope and listed by webRoutes) are held to their own rules instead:
 * no key asked or believed, embeddable cross-origin, errors in the one shape.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { SCOPES } from '../../src/platform/auth/scopes.js';
import { registeredRoutes } from '../../src/platform/http/server.js';
import { webRoutes } from '../../src/tracking/web.js';
import { openTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';

/** A concrete path for a route pattern: every parameter an id of the right shape, a wildcard a word. */
function pathOf(url: string): string {
  return url.replace(/:[A-Za-z]+/g, '00000000-0000-4000-8000-000000000000').replace(/\*$/, 'x');
}

describe('every API route', () => {
  let database: TestDatabase;
  let dataDir: string;
  let app: App;
  let narrowKey: string;

  before(async () => {
    database = await openTestDatabase('sqlite');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-routes-'));
    app = await createApp(
      {
        ...loadConfig(
          { PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' },
          { manifest: EXAMPLE_MANIFEST },
        ),
        retentionIntervalSeconds: 0,
        rateLimitPerMinute: 100_000,
      },
      { database },
    );
    // A key of a system whose only scope is manifest:read: the manifest routes and the description
    // of a collection point (GET /api/v1/collect/:source) ask for it, no other route does.
    narrowKey = (
      await app.apiKeys.createKey(createContext({ kind: 'cli', id: 'test' }), {
        name: 'narrow',
        system: 'web-app',
        scopes: ['manifest:read'],
      })
    ).key;
  });
  after(async () => {
    await app.close();
    await database.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** Keyless by design (the banner's and beacons'): checked by the last tests, not by the key walks. */
  const isWebRoute = (r: { method: string; url: string }) =>
    webRoutes(app.http).some((w) => w.method === r.method && w.url === r.url);
  const apiRoutes = () =>
    registeredRoutes(app.http).filter(
      (r) => r.url.startsWith('/api/v1') && r.method !== 'HEAD' && !isWebRoute(r),
    );
  /**
   * The one route that takes text/plain, by design (issue 13): navigator.sendBeacon sends a string
   * body as text/plain, and a JSON Blob would need a CORS preflight.
   */
  const TEXT_PLAIN_ROUTES = new Set(['POST /api/v1/beacon']);

  test('the walk sees the routes of every capability', () => {
    const urls = new Set(apiRoutes().map((r) => r.url.split('/')[3]));
    for (const area of [
      'manifest',
      'subjects',
      'collect',
      'consent',
      'decisions',
      'webhooks',
      'campaigns',
      'jobs',
    ])
      assert.ok(urls.has(area), `routes under /api/v1/${area} are registered (saw ${[...urls].join(', ')})`);
  });

  test('without a key: 401 in the one error shape, with the challenge, and nothing read', async () => {
    for (const route of apiRoutes()) {
      const res = await app.http.inject({
        method: route.method as 'GET',
        url: pathOf(route.url),
        ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload: {} }),
      });
      const where = `${route.method} ${route.url}`;
      assert.equal(res.statusCode, 401, `${where} answers 401 without a key: ${res.body}`);
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="pledge"', where);
      assert.equal(
        res.headers['content-security-policy'],
        "default-src 'none';frame-ancestors 'none'",
        where,
      );
      const body = res.json<{ error: { code: string; message: string } }>();
      assert.equal(body.error.code, 'auth.key_missing', where);
      assert.equal(typeof body.error.message, 'string', where);
    }
  });

  test('with a key that lacks the scope: 403 naming the scope', async () => {
    for (const route of apiRoutes()) {
      // The routes of the scope this key holds.
      if (route.url.startsWith('/api/v1/manifest')) continue;
      if (route.method === 'GET' && route.url === '/api/v1/collect/:source') continue;
      const res = await app.http.inject({
        method: route.method as 'GET',
        url: pathOf(route.url),
        headers: { authorization: `Bearer ${narrowKey}` },
        ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload: {} }),
      });
      const where = `${route.method} ${route.url}`;
      assert.equal(res.statusCode, 403, `${where} answers 403 to a key without its scope: ${res.body}`);
      assert.match(
        String(res.headers['www-authenticate']),
        /error="insufficient_scope", scope="[a-z:]+"/,
        where,
      );
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'auth.scope_missing', where);
    }
  });

  test('every JSON route with a body answers 415 in the error shape to text/plain', async () => {
    const fullKey = (
      await app.apiKeys.createKey(createContext({ kind: 'cli', id: 'test' }), {
        name: 'full',
        system: 'web-app',
        scopes: [...SCOPES],
      })
    ).key;
    const withBody = [...apiRoutes(), ...webRoutes(app.http).filter((r) => r.url.startsWith('/api/'))].filter(
      (r) => ['POST', 'PUT', 'PATCH'].includes(r.method) && !TEXT_PLAIN_ROUTES.has(`${r.method} ${r.url}`),
    );
    assert.ok(withBody.length > 5, `routes with a body are walked (saw ${withBody.length})`);
    for (const route of withBody) {
      const res = await app.http.inject({
        method: route.method as 'POST',
        url: pathOf(route.url),
        headers: { authorization: `Bearer ${fullKey}`, 'content-type': 'text/plain' },
        payload: '{}',
      });
      const where = `${route.method} ${route.url}`;
      assert.equal(res.statusCode, 415, `${where} answers 415 to text/plain: ${res.body}`);
      assert.equal(
        res.headers['content-security-policy'],
        "default-src 'none';frame-ancestors 'none'",
        where,
      );
      const body = res.json<{ error: { code: string; message: string } }>();
      assert.equal(body.error.code, 'request.unsupported_media_type', where);
      assert.equal(typeof body.error.message, 'string', where);
    }
  });

  test('the keyless web routes ask for no key and believe none, answer cross-origin, and err in the one shape', async () => {
    const routes = webRoutes(app.http).filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS');
    const urls = routes.map((r) => `${r.method} ${r.url}`);
    for (const expected of ['GET /pledge.js', 'GET /api/v1/banner/context', 'POST /api/v1/banner/choices'])
      assert.ok(urls.includes(expected), `${expected} is a web route (saw ${urls.join(', ')})`);
    for (const route of routes) {
      for (const headers of [
        {},
        { authorization: `Bearer ${narrowKey}` },
        { authorization: 'Bearer nonsense' },
      ]) {
        const res = await app.http.inject({
          method: route.method as 'GET',
          url: pathOf(route.url),
          headers,
          ...(route.method === 'GET' ? {} : { payload: {} }),
        });
        const where = `${route.method} ${route.url} with ${JSON.stringify(headers)}`;
        assert.notEqual(res.statusCode, 401, `${where} asks for no key: ${res.body}`);
        assert.notEqual(res.statusCode, 500, `${where}: ${res.body}`);
        assert.equal(res.headers['www-authenticate'], undefined, where);
        assert.equal(res.headers['cross-origin-resource-policy'], 'cross-origin', where);
        if (route.url.startsWith('/api/'))
          assert.equal(
            res.headers['content-security-policy'],
            "default-src 'none';frame-ancestors 'none'",
            where,
          );
        if (res.statusCode >= 400) {
          const body = res.json<{ error: { code: string; message: string } }>();
          assert.doesNotMatch(body.error.code, /^auth\.(key|scope)_/, where);
          assert.equal(typeof body.error.message, 'string', where);
        }
      }
    }
  });
});
