/**
 * Rate limits as a client sees them: the budget in headers, a 429 with retry-after past it, routes
 * with their own budget or none, and IPv6 clients counted by /64.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { installErrorHandlers } from '../../src/platform/http/errors.handler.js';
import { clientKey, installRateLimit } from '../../src/platform/http/rate-limit.js';

async function appWithLimits(): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  installRateLimit(app, { max: 3, timeWindow: 60_000 });
  installErrorHandlers(app);
  app.get('/limited', () => ({ ok: true }));
  app.get('/other', () => ({ ok: true }));
  app.get('/health', { config: { rateLimit: false } }, () => ({ ok: true }));
  app.post('/form', { config: { rateLimit: { max: 1, timeWindow: 60_000 } } }, () => ({ ok: true }));
  await app.ready();
  return app;
}

describe('rate limits', () => {
  test('each answer tells the budget; past it, 429 with retry-after and the one error shape', async () => {
    const app = await appWithLimits();
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ method: 'GET', url: '/limited' });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-ratelimit-limit'], '3');
      assert.equal(res.headers['x-ratelimit-reset'], '60');
      assert.equal(res.headers['retry-after'], undefined);
      remaining.push(res.headers['x-ratelimit-remaining'] as string);
    }
    assert.deepEqual(remaining, ['2', '1', '0']);
    // The budget is the client's, across routes that share the server's limit.
    const over = await app.inject({ method: 'GET', url: '/other' });
    assert.equal(over.statusCode, 429);
    assert.equal(over.headers['x-ratelimit-remaining'], '0');
    assert.equal(over.headers['retry-after'], '60');
    const { error } = over.json<{ error: { code: string; message: string } }>();
    assert.equal(error.code, 'request.rate_limited');
    assert.match(error.message, /try again in 60 s/);
    await app.close();
  });

  test('a route with its own budget counts apart; a route without one is never limited', async () => {
    const app = await appWithLimits();
    for (let i = 0; i < 4; i++) await app.inject({ method: 'GET', url: '/limited' });
    const first = await app.inject({ method: 'POST', url: '/form' });
    assert.equal(first.statusCode, 200, 'the server-wide budget is spent, the route has its own');
    assert.equal(first.headers['x-ratelimit-limit'], '1');
    assert.equal((await app.inject({ method: 'POST', url: '/form' })).statusCode, 429);
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({ method: 'GET', url: '/health' });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-ratelimit-limit'], undefined);
    }
    await app.close();
  });

  test('a HEAD request is counted once, like the GET it mirrors', async () => {
    const app = await appWithLimits();
    const head = await app.inject({ method: 'HEAD', url: '/limited' });
    assert.equal(head.headers['x-ratelimit-remaining'], '2');
    await app.close();
  });

  test('past its capacity the counter forgets the client seen least recently, not a busy one', async () => {
    const app = Fastify({ logger: false });
    installRateLimit(app, { max: 3, timeWindow: 60_000, capacity: 2 });
    installErrorHandlers(app);
    app.get('/', () => ({ ok: true }));
    const from = (remoteAddress: string) => app.inject({ method: 'GET', url: '/', remoteAddress });
    await from('192.0.2.1');
    await from('192.0.2.1');
    await from('192.0.2.2');
    assert.equal((await from('192.0.2.1')).headers['x-ratelimit-remaining'], '0');
    await from('192.0.2.3'); // a third client: 192.0.2.2, seen least recently, is forgotten
    assert.equal((await from('192.0.2.1')).statusCode, 429, 'the busy client is still counted');
    assert.equal((await from('192.0.2.2')).headers['x-ratelimit-remaining'], '2', 'the idle one starts over');
    await app.close();
  });

  test('clients are counted by IPv4 address, and by /64 block for IPv6', () => {
    assert.equal(clientKey('203.0.113.7'), '203.0.113.7');
    assert.equal(clientKey('::ffff:203.0.113.7'), '203.0.113.7');
    assert.equal(clientKey('::ffff:cb00:7107'), '203.0.113.7');
    assert.equal(clientKey('2001:db8:1:2::1'), clientKey('2001:0DB8:0001:0002:ffff:ffff:ffff:ffff'));
    assert.equal(clientKey('fe80::1%eth0'), clientKey('fe80::2'));
    assert.notEqual(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'));
    assert.notEqual(clientKey('::1'), clientKey('127.0.0.1'));
  });

  test('property: two IPv6 addresses share a key exactly when their first 64 bits are equal', () => {
    const group = fc.integer({ min: 0, max: 0xffff });
    const address = fc.array(group, { minLength: 8, maxLength: 8 });
    const text = (groups: number[]) => groups.map((g) => g.toString(16)).join(':');
    fc.assert(
      fc.property(address, address, (a, b) => {
        // Mapped IPv4 addresses are keyed by their IPv4 address instead.
        fc.pre(!(a.slice(0, 6).join() === '0,0,0,0,0,65535' || b.slice(0, 6).join() === '0,0,0,0,0,65535'));
        const same = a.slice(0, 4).join() === b.slice(0, 4).join();
        assert.equal(clientKey(text(a)) === clientKey(text(b)), same);
      }),
    );
  });
});
