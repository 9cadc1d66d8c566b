/**
 * Behind a proxy (PLEDGE_TRUST_PROXY), the client's address is the one the trusted proxy names in
 * X-Forwarded-For: the rate limit counts each client, not the proxy, and the consent evidence keeps
 * the client's truncated address; a proxy that is not trusted is not believed (a client cannot
 * pick its own address). Evidence on SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createHttpServer } from '../../src/platform/http/server.js';
import { MARKETING, openMailApp, type MailTestApp } from '../comms/mail-app.js';
import { DIALECTS } from '../helpers/databases.js';

/** A server with one limited route (2 a minute) that tells the address it saw. */
async function limitedServer(trustProxy: false | number | string[]): Promise<FastifyInstance> {
  const app = await createHttpServer({
    logLevel: 'silent',
    bodyLimitBytes: 1024,
    rateLimitPerMinute: 2,
    trustProxy,
  });
  app.get('/api/v1/whoami', (request) => ({ ip: request.ip }));
  await app.ready();
  return app;
}

const ask = (app: FastifyInstance, forwardedFor?: string) =>
  app.inject({
    method: 'GET',
    url: '/api/v1/whoami',
    remoteAddress: '10.0.0.5',
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
  });

describe('the rate limit behind a proxy', () => {
  test('counts each client a trusted proxy names, not the proxy', async () => {
    for (const trust of [['10.0.0.0/8'], 1] as const) {
      const app = await limitedServer(typeof trust === 'number' ? trust : [...trust]);
      try {
        const first = await ask(app, '203.0.113.7');
        assert.deepEqual(first.json(), { ip: '203.0.113.7' }, String(trust));
        assert.equal((await ask(app, '198.51.100.1, 203.0.113.7')).statusCode, 200);
        assert.equal((await ask(app, '203.0.113.7')).statusCode, 429, 'the third from that client');
        // Another client behind the same proxy has its own budget.
        assert.equal((await ask(app, '203.0.113.8')).statusCode, 200);
      } finally {
        await app.close();
      }
    }
  });

  test('does not believe X-Forwarded-For from a proxy it does not trust', async () => {
    for (const trust of [false, ['192.0.2.1']] as const) {
      const app = await limitedServer(trust === false ? false : [...trust]);
      try {
        assert.deepEqual((await ask(app, '203.0.113.7')).json(), { ip: '10.0.0.5' });
        assert.equal((await ask(app, '203.0.113.8')).statusCode, 200);
        // Naming a new address each time does not buy a new budget.
        assert.equal((await ask(app, '203.0.113.9')).statusCode, 429);
      } finally {
        await app.close();
      }
    }
  });
});

for (const dialect of DIALECTS) {
  describe(`consent evidence behind a proxy on ${dialect}`, () => {
    let t: MailTestApp;
    before(async () => {
      t = await openMailApp(dialect, { trustProxy: ['127.0.0.1'] });
    });
    after(async () => t.cleanup());

    test("a one-click unsubscribe keeps the client's truncated address, not the proxy's", async () => {
      const { subjectId } = await t.newSubject();
      const res = await t.app.http.inject({
        method: 'POST',
        url: `/unsubscribe/one-click/${t.unsubscribeToken(subjectId)}`,
        payload: 'List-Unsubscribe=One-Click',
        remoteAddress: '127.0.0.1',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-forwarded-for': '203.0.113.77',
        },
      });
      assert.equal(res.statusCode, 200, res.body);
      const [event] = await t.app.consent.history(t.ctx, { subjectId });
      assert.equal(event?.purpose, MARKETING);
      assert.equal(event?.evidence?.ip, '203.0.113.0');
    });
  });
}
