/**
 * The server as a client and a reader see it: the published policy, health, the manifest API behind
 * scoped keys, one error shape, security headers, rate limits and logs free of personal data.
 * Runs on SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { PledgeError } from '../../src/platform/errors.js';
import { ROOT } from '../helpers/cli.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { forgeSignature } from '../helpers/tokens.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const cli = createContext({ kind: 'cli', id: 'test' });

function configFor(dataDir: string, overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'info' }, { manifest: EXAMPLE }),
    ...overrides,
  };
}

for (const dialect of DIALECTS) {
  describe(`server on ${dialect}`, () => {
    let database: TestDatabase;
    let app: App;
    let logs = '';
    let readKey = '';
    let otherKey = '';

    before(async () => {
      database = await openTestDatabase(dialect);
      const logStream = new PassThrough();
      logStream.on('data', (d: Buffer) => (logs += d.toString('utf8')));
      const dataDir = await mkdtemp(path.join(tmpdir(), 'pledge-http-'));
      app = await createApp(configFor(dataDir), { database, logStream });
      readKey = (await app.apiKeys.createKey(cli, { name: 'reader', scopes: ['manifest:read'] })).key;
      otherKey = (
        await app.apiKeys.createKey(cli, { name: 'other', system: 'web-app', scopes: ['subjects:read'] })
      ).key;
    });
    after(async () => {
      await app.close();
      await database.cleanup();
    });

    test('/privacy is the policy rendered from the manifest, readable without JavaScript', async () => {
      const res = await app.http.inject({ method: 'GET', url: '/privacy' });
      assert.equal(res.statusCode, 200);
      assert.match(res.headers['content-type'] as string, /^text\/html; charset=utf-8/);
      const page = res.body;
      assert.match(page, /<html lang="en"/);
      for (const heading of [
        'Introduction',
        'Information We Collect',
        'How We Use Your Information',
        'How We Share Your Information',
        'Communication Choices',
      ]) {
        assert.ok(page.includes(heading), `the page has the section "${heading}"`);
      }
      assert.ok(page.includes('We do not sell, trade, or rent your personal information to third parties.'));
      assert.ok(page.includes('privacy@example-online.test'));
      assert.ok(page.includes('2012-09-07'), 'shows when it was last updated');
      assert.ok(page.includes('data-manifest-path="pledges[0]"'), 'sentences are traceable to the manifest');
      assert.doesNotMatch(page, /<script/i);
    });

    test('/privacy carries the security headers', async () => {
      const res = await app.http.inject({ method: 'GET', url: '/privacy' });
      const csp = res.headers['content-security-policy'] as string;
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /script-src/);
      assert.match(res.headers['strict-transport-security'] as string, /max-age=\d+/);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      const css = await app.http.inject({ method: 'GET', url: '/assets/policy.css' });
      assert.equal(css.statusCode, 200);
      assert.match(css.headers['content-type'] as string, /^text\/css/);
    });

    test('API answers carry the security headers that act on JSON; pages carry every one', async () => {
      const api = await app.http.inject({
        method: 'GET',
        url: '/api/v1/manifest',
        headers: { authorization: `Bearer ${readKey}` },
      });
      assert.equal(api.statusCode, 200);
      assert.equal(api.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'");
      assert.equal(api.headers['x-content-type-options'], 'nosniff');
      assert.equal(api.headers['x-frame-options'], 'SAMEORIGIN');
      assert.equal(api.headers['cross-origin-resource-policy'], 'same-origin');
      assert.match(api.headers['strict-transport-security'] as string, /max-age=\d+; includeSubDomains/);
      assert.match(api.headers['x-request-id'] as string, /^[0-9a-f-]{36}$/);
      // Refusals and unknown API paths are JSON too.
      const refused = await app.http.inject({ method: 'GET', url: '/api/v1/manifest' });
      assert.equal(refused.headers['x-content-type-options'], 'nosniff');
      assert.match(refused.headers['content-security-policy'] as string, /frame-ancestors 'none'/);

      const page = await app.http.inject({ method: 'GET', url: '/privacy' });
      for (const name of [
        'content-security-policy',
        'cross-origin-opener-policy',
        'cross-origin-resource-policy',
        'origin-agent-cluster',
        'referrer-policy',
        'strict-transport-security',
        'x-content-type-options',
        'x-dns-prefetch-control',
        'x-download-options',
        'x-frame-options',
        'x-permitted-cross-domain-policies',
        'x-xss-protection',
      ]) {
        assert.ok(page.headers[name] !== undefined, `a page carries ${name}`);
      }
      assert.equal(page.headers['referrer-policy'], 'no-referrer');
    });

    test('/privacy answers 304 to a reader that has the current version', async () => {
      const first = await app.http.inject({ method: 'GET', url: '/privacy' });
      const again = await app.http.inject({
        method: 'GET',
        url: '/privacy',
        headers: { 'if-none-match': first.headers.etag as string },
      });
      assert.equal(again.statusCode, 304);
    });

    test('/healthz reports the database and the policy version', async () => {
      const res = await app.http.inject({ method: 'GET', url: '/healthz' });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { status: 'ok', database: dialect, policyVersion: '2012-09-07' });
    });

    test('/api/v1/manifest needs a key: 401 without, 401 wrong, 403 wrong scope, 200 right scope', async () => {
      const none = await app.http.inject({ method: 'GET', url: '/api/v1/manifest' });
      assert.equal(none.statusCode, 401);
      assert.equal(none.json<{ error: { code: string } }>().error.code, 'auth.key_missing');
      assert.match(none.headers['www-authenticate'] as string, /^Bearer/);

      const forged = forgeSignature(readKey);
      const wrong = await app.http.inject({
        method: 'GET',
        url: '/api/v1/manifest',
        headers: { authorization: `Bearer ${forged}` },
      });
      assert.equal(wrong.statusCode, 401);
      assert.equal(wrong.json<{ error: { code: string } }>().error.code, 'auth.key_invalid');
      assert.equal(wrong.headers['www-authenticate'], 'Bearer realm="pledge", error="invalid_token"');

      const scope = await app.http.inject({
        method: 'GET',
        url: '/api/v1/manifest',
        headers: { authorization: `Bearer ${otherKey}` },
      });
      assert.equal(scope.statusCode, 403);
      assert.deepEqual(
        scope.json<{ error: { code: string; details: unknown } }>().error.code,
        'auth.scope_missing',
      );
      assert.equal(
        scope.headers['www-authenticate'],
        'Bearer realm="pledge", error="insufficient_scope", scope="manifest:read"',
      );

      const ok = await app.http.inject({
        method: 'GET',
        url: '/api/v1/manifest',
        headers: { authorization: `Bearer ${readKey}` },
      });
      assert.equal(ok.statusCode, 200);
      assert.equal(ok.headers['www-authenticate'], undefined, 'no challenge on an answer');
      const body = ok.json<{
        version: { policyVersion: string; hash: string };
        manifest: { organization: { name: string } };
      }>();
      assert.equal(body.version.policyVersion, '2012-09-07');
      assert.equal(body.version.hash.length, 64);
      assert.equal(body.manifest.organization.name, 'Example Online');
    });

    test('every manifest version in force is kept and readable', async () => {
      const res = await app.http.inject({
        method: 'GET',
        url: '/api/v1/manifest/versions',
        headers: { authorization: `Bearer ${readKey}` },
      });
      const { versions } = res.json<{ versions: Array<{ id: number; hash: string }> }>();
      assert.equal(versions.length, 1);
      const one = await app.http.inject({
        method: 'GET',
        url: `/api/v1/manifest/versions/${versions[0]?.id}`,
        headers: { authorization: `Bearer ${readKey}` },
      });
      assert.equal(one.statusCode, 200);
      assert.equal(one.json<{ source: string }>().source, await readFile(EXAMPLE, 'utf8'));
      const missing = await app.http.inject({
        method: 'GET',
        url: '/api/v1/manifest/versions/9999',
        headers: { authorization: `Bearer ${readKey}` },
      });
      assert.equal(missing.statusCode, 404);
      assert.equal(missing.json<{ error: { code: string } }>().error.code, 'manifest.version_not_found');
      const bad = await app.http.inject({
        method: 'GET',
        url: '/api/v1/manifest/versions/abc',
        headers: { authorization: `Bearer ${readKey}` },
      });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json<{ error: { code: string } }>().error.code, 'request.invalid');
    });

    test('/api/openapi.json documents the API and its security scheme', async () => {
      const res = await app.http.inject({ method: 'GET', url: '/api/openapi.json' });
      assert.equal(res.statusCode, 200);
      const doc = res.json<{
        openapi: string;
        paths: Record<string, unknown>;
        components: { securitySchemes: object };
      }>();
      assert.match(doc.openapi, /^3\./);
      assert.ok(doc.paths['/api/v1/manifest']);
      assert.ok(doc.paths['/healthz']);
      assert.ok('apiKey' in doc.components.securitySchemes);
    });

    test('an unknown route gets the one error shape', async () => {
      const res = await app.http.inject({ method: 'GET', url: '/nope' });
      assert.equal(res.statusCode, 404);
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'route.not_found');
    });

    test('logs never carry query strings, identifiers or keys', async () => {
      await app.http.inject({
        method: 'GET',
        url: '/api/v1/manifest?email=alice%40example.com',
        headers: { authorization: `Bearer ${readKey}`, cookie: 'sid=secret-cookie' },
      });
      assert.ok(logs.length > 0, 'requests are logged');
      assert.ok(!logs.includes('alice'), 'no e-mail address in the logs');
      assert.ok(!logs.includes(readKey.slice(20)), 'no API key in the logs');
      assert.ok(!logs.includes('secret-cookie'), 'no cookie in the logs');
      await app.http.inject({ method: 'GET', url: '/api/v1/subjects/4111111111111111' });
      await app.http.inject({ method: 'GET', url: '/nowhere/alice@example.com' });
      assert.ok(!logs.includes('4111111111111111'), 'a card number typed into a path is not logged');
      assert.ok(!logs.includes('alice@example.com'), 'an address typed into a path is not logged');
      assert.ok(logs.includes('/api/v1/subjects/:id'), 'the route pattern is logged instead');
      const completed = logs
        .split('\n')
        .filter((l) => l.includes('"request completed"'))
        .map((l) => JSON.parse(l) as { reqId?: string });
      assert.ok(completed.length > 0);
      for (const line of completed)
        assert.match(line.reqId ?? '', /^[0-9a-f-]{36}$/, 'each line names its request');
    });

    test('restarting with the same manifest adds no version; a changed one adds one', async () => {
      const dataDir = await mkdtemp(path.join(tmpdir(), 'pledge-http-'));
      const again = await createApp(configFor(dataDir), { database });
      assert.equal(again.active.version.id, app.active.version.id);
      await again.close();
      const changedFile = path.join(dataDir, 'pledge.yaml');
      await writeFile(
        changedFile,
        (await readFile(EXAMPLE, 'utf8')).replace('version: "2012-09-07"', 'version: "2012-10-01"'),
      );
      const changed = await createApp(configFor(dataDir, { manifestPath: changedFile }), { database });
      assert.notEqual(changed.active.version.id, app.active.version.id);
      assert.equal(changed.active.version.version, '2012-10-01');
      await changed.close();
    });

    test('a manifest that breaks a pledge is refused at start, with its locations', async () => {
      const dataDir = await mkdtemp(path.join(tmpdir(), 'pledge-http-'));
      const file = path.join(dataDir, 'pledge.yaml');
      await writeFile(
        file,
        (await readFile(EXAMPLE, 'utf8')).replace(
          '    agreement: { reference: DPA-2012-004, signed: "2012-03-01" }\n',
          '',
        ),
      );
      await assert.rejects(
        createApp(configFor(dataDir, { manifestPath: file }), { database }),
        (err: unknown) => {
          assert.ok(err instanceof PledgeError);
          assert.equal(err.code, 'manifest.invalid');
          assert.match(err.message, /pledge\.yaml:\d+:\d+: check\.pledge_violated/);
          return true;
        },
      );
    });
  });
}

describe('rate limits and body limits', () => {
  let database: TestDatabase;
  let app: App;
  before(async () => {
    database = await openTestDatabase('sqlite');
    const dataDir = await mkdtemp(path.join(tmpdir(), 'pledge-http-'));
    app = await createApp(configFor(dataDir, { rateLimitPerMinute: 3, logLevel: 'silent' }), { database });
  });
  after(async () => {
    await app.close();
    await database.cleanup();
  });

  test('a client over the limit gets 429 with the one error shape', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 4; i++)
      codes.push((await app.http.inject({ method: 'GET', url: '/privacy' })).statusCode);
    assert.deepEqual(codes, [200, 200, 200, 429]);
    const res = await app.http.inject({ method: 'GET', url: '/privacy' });
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'request.rate_limited');
  });

  test('health checks are not rate limited', async () => {
    for (let i = 0; i < 5; i++)
      assert.equal((await app.http.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  });
});

describe('configuration is checked at boot', () => {
  test('every problem is listed at once', () => {
    assert.throws(
      () => loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', PLEDGE_LOG_LEVEL: 'loud' }),
      (err: unknown) => {
        assert.ok(err instanceof PledgeError);
        const problems = (err as PledgeError & { problems: string[] }).problems;
        assert.equal(problems.length, 3);
        assert.match(problems.join('\n'), /PORT/);
        assert.match(problems.join('\n'), /DATABASE_URL/);
        assert.match(problems.join('\n'), /PLEDGE_LOG_LEVEL/);
        return true;
      },
    );
  });

  test('defaults: port 8080, SQLite in ./data, the example manifest', () => {
    const config = loadConfig({});
    assert.equal(config.port, 8080);
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.dataDir, path.resolve('data'));
    assert.equal(config.manifestPath, path.resolve('examples/example-online/pledge.yaml'));
  });

  test('--port and --manifest win over the environment', () => {
    const config = loadConfig(
      { PORT: '9000', PLEDGE_MANIFEST: 'a.yaml' },
      { port: '9100', manifest: 'b.yaml' },
    );
    assert.equal(config.port, 9100);
    assert.equal(config.manifestPath, path.resolve('b.yaml'));
  });
});
