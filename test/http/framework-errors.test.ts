/**
 * Errors that Fastify or Node's HTTP parser answer before any route or hook runs leave as every
 * other error does: the one shape `{ error: { code, message } }` with a stable code, the security
 * headers, and nothing of the request echoed back (a malformed URL, headers too large, a body that
 * is not JSON on a JSON route).
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createHttpServer } from '../../src/platform/http/server.js';

const API_CSP = "default-src 'none';frame-ancestors 'none'";

/** One request on a real socket: what the client sees. */
function rawRequest(
  port: number,
  options: { path: string; headers?: Record<string, string> },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path: options.path, method: 'GET', headers: options.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('errors answered before routing', () => {
  let app: FastifyInstance;
  let port: number;

  before(async () => {
    app = await createHttpServer({ logLevel: 'silent', bodyLimitBytes: 1024, rateLimitPerMinute: 1000 });
    app.post('/api/v1/things', { schema: { body: { type: 'object' } } }, () => ({ ok: true }));
    app.get('/pages/:name', () => 'a page');
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  });
  after(async () => app.close());

  test('a malformed URL is a 400 in the error shape that does not quote the URL', async () => {
    for (const [url, csp] of [
      ['/api/v1/things/%E0%A4%A<script>', API_CSP],
      ['/pages/%E0%A4%A<script>', /base-uri 'none'/],
    ] as const) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 400, url);
      const body = res.json<{ error: { code: string; message: string } }>();
      assert.equal(body.error.code, 'request.bad_url');
      assert.doesNotMatch(res.body, /script|%E0/i, 'nothing of the URL comes back');
      assert.match(String(res.headers['content-security-policy']), typeof csp === 'string' ? /./ : csp);
      if (typeof csp === 'string') assert.equal(res.headers['content-security-policy'], csp);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.match(String(res.headers['strict-transport-security']), /max-age=\d+/);
    }
  });

  test('headers larger than Node accepts: a 431 in the error shape with the security headers', async () => {
    const res = await rawRequest(port, { path: '/api/v1/things', headers: { 'x-big': 'a'.repeat(20_000) } });
    assert.equal(res.status, 431);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(res.body), {
      error: {
        code: 'request.headers_too_large',
        message: 'the request headers are larger than this server accepts',
      },
    });
    assert.equal(res.headers['content-security-policy'], API_CSP);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-frame-options'], 'SAMEORIGIN');
  });

  test('a JSON route answers 415 to text/plain and to a body without a content type', async () => {
    for (const headers of [{ 'content-type': 'text/plain' }, {}]) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/things', headers, payload: '{"a":1}' });
      assert.equal(res.statusCode, 415, JSON.stringify(headers));
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'request.unsupported_media_type');
      assert.equal(res.headers['content-security-policy'], API_CSP);
    }
    const ok = await app.inject({ method: 'POST', url: '/api/v1/things', payload: { a: 1 } });
    assert.equal(ok.statusCode, 200, 'JSON is still taken');
  });
});
