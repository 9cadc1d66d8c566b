/**
 * Authorized agents (Data Rights Protocol 1.0) on each engine: staff register an agent's Ed25519
 * key; the agent's signed request files a request whose codes go to the person, and only the
 * person's code lets it proceed; a bad signature, an unknown or revoked agent, an expired message
 * and a replay are each refused with their code and leave no request behind.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DIALECTS } from '../helpers/databases.js';
import { openRequestsApp, randomEmail, type RequestsTestApp } from './requests-app.js';

const BUSINESS = 'pledge.example';

function newAgentKey(): { privateKey: KeyObject; raw: string; hex: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  const key = der.subarray(der.length - 32);
  return { privateKey, raw: key.toString('base64'), hex: key.toString('hex') };
}

/** A libsodium combined signed message: the signature, then the message. */
function signed(privateKey: KeyObject, claims: Record<string, unknown>): string {
  const message = Buffer.from(JSON.stringify(claims));
  return Buffer.concat([sign(null, message, privateKey), message]).toString('base64');
}

for (const dialect of DIALECTS) {
  describe(`authorized agents (${dialect})`, () => {
    let t: RequestsTestApp;
    const agent = newAgentKey();
    before(async () => {
      t = await openRequestsApp(dialect, { publicUrl: `https://${BUSINESS}` });
      const res = await t.call('POST', '/api/v1/requests/agents', {
        id: 'agent.example',
        name: 'Example Agent',
        public_key: agent.hex,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    });
    after(async () => {
      await t.cleanup();
    });

    const claimsFor = (email: string, over: Record<string, unknown> = {}) => {
      const now = Date.now();
      return {
        'agent-id': 'agent.example',
        'business-id': BUSINESS,
        'issued-at': new Date(now).toISOString(),
        'expires-at': new Date(now + 15 * 60_000).toISOString(),
        'drp.version': '1.0',
        exercise: 'deletion',
        regime: 'ccpa',
        email,
        ...over,
      };
    };
    const post = async (signedMessage: string) => {
      const res = await t.app.http.inject({
        method: 'POST',
        url: '/v1/data-rights-request/',
        payload: { signed_message: signedMessage },
      });
      return { status: res.statusCode, body: res.json<Record<string, unknown>>() };
    };
    const requestCount = async () => {
      const res = await t.call('GET', '/api/v1/requests?all=true&limit=500');
      return (res.body.requests as unknown[]).length;
    };

    test('staff see the agent, with its key and who registered it', async () => {
      const res = await t.call('GET', '/api/v1/requests/agents');
      assert.equal(res.status, 200);
      const [a] = res.body.agents as Array<Record<string, unknown>>;
      assert.equal(a?.id, 'agent.example');
      assert.equal(a?.status, 'active');
      assert.equal(a?.public_key, agent.raw);
      assert.match(String(a?.registered_by), /privacy-office/);
      const again = await t.call('POST', '/api/v1/requests/agents', {
        id: 'agent.example',
        name: 'Again',
        public_key: agent.raw,
      });
      assert.equal(again.status, 409);
      const bad = await t.call('POST', '/api/v1/requests/agents', { id: 'x', name: 'X', public_key: 'abc' });
      assert.equal(bad.status, 400);
      assert.equal((bad.body.error as { code: string }).code, 'requests.agent_invalid');
    });

    test('a signed request sends the person a code and proceeds only once they confirm it', async () => {
      const known = await t.register();
      const res = await post(signed(agent.privateKey, claimsFor(known.address)));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'open');
      const id = String(res.body.request_id);
      const mail = t.mailTo(known.address);
      assert.equal(mail.length, 1);
      assert.match(mail[0] ?? '', /verification code is \d{6}/);
      const before = await t.app.requests.getOrThrow(t.ctx, id);
      assert.equal(before.status, 'verifying');
      assert.equal(before.type, 'erasure');
      assert.equal(before.jurisdiction, 'US-CA');
      assert.equal(before.agent, 'drp:agent.example');
      assert.equal(before.subjectId, undefined);
      // Staff cannot start it before the person confirms.
      const early = await t.call('POST', `/api/v1/requests/${id}/approve`, {});
      assert.equal(early.status, 409);
      const verified = await t.app.requests.verify(t.ctx, id, { email: t.lastCode(known.address) });
      assert.equal(verified.request.status, 'verified');
      assert.equal(verified.request.subjectId, known.subjectId);
    });

    test('an opt-out of sale is an objection', async () => {
      const res = await post(
        signed(agent.privateKey, claimsFor(randomEmail(), { exercise: 'sale:opt-out' })),
      );
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const r = await t.app.requests.getOrThrow(t.ctx, String(res.body.request_id));
      assert.equal(r.type, 'objection');
    });

    test('a bad signature, an unknown agent, an expired message and a replay are refused and leave nothing', async () => {
      const email = randomEmail();
      const good = signed(agent.privateKey, claimsFor(email, { exercise: 'access' }));
      const accepted = await post(good);
      assert.equal(accepted.status, 200);
      const count = await requestCount();
      const codeOf = (r: { body: Record<string, unknown> }) => (r.body.error as { code: string }).code;

      const replay = await post(good);
      assert.equal(replay.status, 409);
      assert.equal(codeOf(replay), 'requests.agent_replay');

      // The same message twice at once: one request, the other a replay (never a 500).
      const twice = signed(agent.privateKey, claimsFor(randomEmail(), { exercise: 'access' }));
      const both = await Promise.all([post(twice), post(twice)]);
      assert.deepEqual(both.map((r) => r.status).sort(), [200, 409]);
      assert.equal(codeOf(both.find((r) => r.status === 409)!), 'requests.agent_replay');
      assert.equal(await requestCount(), count + 1);

      const other = newAgentKey();
      const forged = await post(signed(other.privateKey, claimsFor(randomEmail())));
      assert.equal(forged.status, 403);
      assert.equal(codeOf(forged), 'requests.agent_signature_invalid');

      const tampered = Buffer.from(signed(agent.privateKey, claimsFor(randomEmail())), 'base64');
      tampered[tampered.length - 3] = (tampered[tampered.length - 3] ?? 0) ^ 1;
      const changed = await post(tampered.toString('base64'));
      assert.equal(changed.status, 403);
      assert.equal(codeOf(changed), 'requests.agent_signature_invalid');

      const unknown = await post(
        signed(other.privateKey, claimsFor(randomEmail(), { 'agent-id': 'nobody' })),
      );
      assert.equal(unknown.status, 403);
      assert.equal(codeOf(unknown), 'requests.agent_unknown');

      const hourAgo = Date.now() - 3_600_000;
      const expired = await post(
        signed(
          agent.privateKey,
          claimsFor(randomEmail(), {
            'issued-at': new Date(hourAgo).toISOString(),
            'expires-at': new Date(hourAgo + 15 * 60_000).toISOString(),
          }),
        ),
      );
      assert.equal(expired.status, 400);
      assert.equal(codeOf(expired), 'requests.agent_message_expired');

      const garbage = await post('not a signed message');
      assert.equal(garbage.status, 400);
      assert.equal(codeOf(garbage), 'requests.agent_message_invalid');

      assert.equal(await requestCount(), count + 1, 'only the first of the two at once made a request');
    });

    test('a revoked agent is refused', async () => {
      const revoked = newAgentKey();
      await t.call('POST', '/api/v1/requests/agents', {
        id: 'gone.example',
        name: 'Gone',
        public_key: revoked.raw,
      });
      const res = await t.call('POST', '/api/v1/requests/agents/gone.example/revoke', {});
      assert.equal(res.status, 200);
      assert.equal((res.body.agent as { status: string }).status, 'revoked');
      const count = await requestCount();
      const email = randomEmail();
      const refused = await post(
        signed(revoked.privateKey, claimsFor(email, { 'agent-id': 'gone.example' })),
      );
      assert.equal(refused.status, 403);
      assert.equal((refused.body.error as { code: string }).code, 'requests.agent_revoked');
      assert.equal(t.mailTo(email).length, 0);
      assert.equal(await requestCount(), count);
    });
  });
}
