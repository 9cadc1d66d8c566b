/**
 * One key per job: each use of a secret rotates on its own, and what was made before a rotation
 * (or before keys had versions at all) still works until it expires, then is refused. The blind
 * index refuses to rotate, with the reason.
 */
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { createMailtoToken, verifyMailtoToken } from '../../src/comms/mailto-tokens.js';
import { EvidenceSeal } from '../../src/consent/consent.evidence.js';
import {
  createLinkToken,
  deriveLinkTokenKey,
  deriveLinkTokenKeys,
  MAX_PREFERENCES_TTL_SECONDS,
  verifyLinkToken,
} from '../../src/consent/link-tokens.js';
import {
  deriveWebhookSecret,
  signWebhookPayload,
  verifyWebhookSignature,
} from '../../src/consent/webhooks.signature.js';
import { createReturnToken, returnTokenKeysOf, verifyReturnToken } from '../../src/comms/return-tokens.js';
import { PledgeError } from '../../src/platform/errors.js';
import { KeyRotationService } from '../../src/vault/key-rotation.service.js';
import { KEY_FILE_NAME, Keyring } from '../../src/vault/keyring.js';
import { DIALECTS } from '../helpers/databases.js';
import { openTestVault, type TestVault } from '../helpers/vault.js';

const NOW = new Date('2026-12-01T12:00:00Z');
const DAY_MS = 86_400_000;

/** A link token exactly as Pledge wrote them before keys had versions (format 1). */
function legacyLinkToken(secret: Buffer, subjectId: string, purpose: string, expires: Date): string {
  const fields = [subjectId, purpose, 'email'].map((f) => Buffer.from(f));
  const header = Buffer.alloc(6);
  header.writeUInt8(1, 0);
  header.writeUInt8(1, 1);
  header.writeUInt32BE(Math.floor(expires.getTime() / 1000), 2);
  const payload = Buffer.concat([header, ...fields.flatMap((f) => [Buffer.from([f.length]), f])]);
  const mac = createHmac('sha256', deriveLinkTokenKey(secret)).update(payload).digest();
  return Buffer.concat([payload, mac]).toString('base64url');
}

describe('keys per use', () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-use-keys-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test('a key file from before uses had versions loads unchanged: version 1 of every use is the index key', async () => {
    const before = await Keyring.load({ dataDir });
    const file = path.join(dataDir, KEY_FILE_NAME);
    const text = await readFile(file, 'utf8');
    assert.doesNotMatch(text, /use_keys/);
    for (const use of ['index', 'links', 'webhooks', 'evidence', 'message_id'] as const) {
      const keys = before.use(use);
      assert.equal(keys.current().version, 1);
      assert.deepEqual(keys.secret(1), before.indexKey);
    }
    // Saving a keyring no use has rotated in writes the same file.
    await before.save();
    assert.equal(await readFile(file, 'utf8'), text);
  });

  test('rotating one use adds a fresh version to it alone, saved in the key file', async () => {
    const keyring = await Keyring.load({ dataDir });
    const next = keyring.withNewUseVersion('links', NOW);
    await next.save();
    const loaded = await Keyring.load({ dataDir });
    const links = loaded.use('links');
    assert.equal(links.current().version, 2);
    assert.notDeepEqual(links.secret(2), loaded.indexKey);
    assert.deepEqual(links.secret(1), loaded.indexKey);
    assert.equal(loaded.use('webhooks').current().version, 1);
    assert.equal(loaded.use('evidence').current().version, 1);
    assert.equal(loaded.currentKek().version, 1);
    assert.equal(loaded.withNewUseVersion('links', NOW).use('links').current().version, 3);
  });

  test('the blind index refuses to rotate, saying why', async () => {
    const keyring = await Keyring.load({ dataDir });
    assert.throws(
      () => keyring.withNewUseVersion('index', NOW),
      (err: unknown) =>
        err instanceof PledgeError &&
        err.code === 'vault.index_key_fixed' &&
        /suppressed addresses/.test(err.message),
    );
  });

  test('a key file naming an unknown use, or versions out of order, is refused', async () => {
    const keyring = await Keyring.load({ dataDir });
    const file = JSON.parse(keyring.withNewUseVersion('links', NOW).serialize()) as Record<string, unknown>;
    const bad = [
      { ...file, use_keys: { passwords: [] } },
      { ...file, use_keys: { links: [{ version: 3, key: 'x', created_at: '' }] } },
    ];
    for (const content of bad) {
      await writeFile(path.join(dataDir, KEY_FILE_NAME), JSON.stringify(content));
      await assert.rejects(Keyring.load({ dataDir }), { code: 'vault.keys_invalid' });
    }
  });

  test('link tokens: a token of today, and one of the previous version, work until they expire; then refused', async () => {
    const v1 = await Keyring.load({ dataDir });
    const subjectId = randomUUID();
    const legacy = legacyLinkToken(
      v1.indexKey,
      subjectId,
      'marketing-email',
      new Date(NOW.getTime() + 90 * DAY_MS),
    );
    const underV1 = createLinkToken(
      deriveLinkTokenKeys(v1.use('links')),
      { scope: 'unsubscribe', subjectId, purpose: 'marketing-email', channel: 'email' },
      { now: NOW },
    );
    const v2 = v1.withNewUseVersion('links', NOW);
    const keys = deriveLinkTokenKeys(v2.use('links'));
    for (const token of [legacy, underV1]) {
      const ok = verifyLinkToken(keys, token, { now: NOW, scope: 'unsubscribe' });
      assert.equal(ok.ok, true);
      assert.equal(ok.ok && ok.keyVersion, 1);
      assert.equal(ok.ok && ok.token.subjectId, subjectId);
      const late = verifyLinkToken(keys, token, { now: new Date(NOW.getTime() + 91 * DAY_MS) });
      assert.deepEqual(late, { ok: false, problem: 'expired' });
    }
    const fresh = createLinkToken(keys, { scope: 'preferences', subjectId }, { now: NOW });
    const checked = verifyLinkToken(keys, fresh, { now: NOW, scope: 'preferences' });
    assert.equal(checked.ok && checked.keyVersion, 2);
    // An instance that holds only version 1 does not accept what version 2 signed.
    assert.deepEqual(verifyLinkToken(deriveLinkTokenKeys(v1.use('links')), fresh, { now: NOW }), {
      ok: false,
      problem: 'bad_signature',
    });
  });

  test('preference links live 30 days at most', async () => {
    const keys = deriveLinkTokenKeys((await Keyring.load({ dataDir })).use('links'));
    const claims = { scope: 'preferences' as const, subjectId: randomUUID() };
    assert.throws(
      () => createLinkToken(keys, claims, { now: NOW, ttlSeconds: MAX_PREFERENCES_TTL_SECONDS + 1 }),
      RangeError,
    );
    const token = createLinkToken(keys, claims, { now: NOW, ttlSeconds: MAX_PREFERENCES_TTL_SECONDS });
    assert.equal(verifyLinkToken(keys, token, { now: new Date(NOW.getTime() + 29 * DAY_MS) }).ok, true);
    assert.equal(verifyLinkToken(keys, token, { now: new Date(NOW.getTime() + 30 * DAY_MS) }).ok, false);
  });

  test('mailto tokens say their key version in their first byte; those made before still work', async () => {
    const v1 = await Keyring.load({ dataDir });
    const subjectId = randomUUID();
    const purposes = ['marketing-email'];
    // A lone key was how tokens were made before versions: the same bytes as version 1 now.
    const before = createMailtoToken(
      deriveLinkTokenKey(v1.indexKey),
      { subjectId, purpose: 'marketing-email' },
      { now: NOW },
    );
    const keys = deriveLinkTokenKeys(v1.withNewUseVersion('links', NOW).use('links'));
    const old = verifyMailtoToken(keys, before, { now: NOW, purposes });
    assert.equal(old.ok && old.keyVersion, 1);
    const fresh = createMailtoToken(keys, { subjectId, purpose: 'marketing-email' }, { now: NOW });
    assert.equal(fresh.length, before.length);
    const checked = verifyMailtoToken(keys, fresh, { now: NOW, purposes });
    assert.equal(checked.ok && checked.keyVersion, 2);
    assert.equal(checked.ok && checked.token.subjectId, subjectId);
    assert.equal(verifyMailtoToken(deriveLinkTokenKey(v1.indexKey), fresh, { now: NOW, purposes }).ok, false);
  });

  test('webhook signatures name their key version; a receiver holding both secrets checks either', async () => {
    const v1 = await Keyring.load({ dataDir });
    const v2 = v1.withNewUseVersion('webhooks', NOW);
    const webhooks = v2.use('webhooks');
    const old = deriveWebhookSecret(webhooks.secret(1) as Buffer, 'crm');
    const fresh = deriveWebhookSecret(webhooks.secret(2) as Buffer, 'crm');
    // Version 1 is the secret receivers hold today.
    assert.equal(old, deriveWebhookSecret(v1.indexKey, 'crm'));
    assert.notEqual(fresh, old);
    const body = '{"id":"1"}';
    const header = signWebhookPayload({ secret: fresh, keyVersion: 2, body, at: NOW });
    assert.match(header, /^t=\d+,k=2,v1=[0-9a-f]{64}$/);
    assert.equal(
      verifyWebhookSignature({ secret: { 1: old, 2: fresh }, header, body, now: NOW }).valid,
      true,
    );
    assert.equal(verifyWebhookSignature({ secret: { 1: old }, header, body, now: NOW }).valid, false);
    assert.equal(verifyWebhookSignature({ secret: old, header, body, now: NOW }).valid, false);
    // A header without k= (made before key versions) is of version 1.
    const legacy = signWebhookPayload({ secret: old, body, at: NOW }).replace(',k=1', '');
    assert.equal(
      verifyWebhookSignature({ secret: { 1: old, 2: fresh }, header: legacy, body, now: NOW }).valid,
      true,
    );
  });

  test('evidence seals record their key version; seals made before still open after a rotation', async () => {
    const v1 = await Keyring.load({ dataDir });
    const eventId = randomUUID();
    const evidence = { userAgent: 'Firefox', ip: '203.0.113.7' };
    const sealed = new EvidenceSeal(v1.indexKey).seal(eventId, evidence) ?? '';
    assert.match(sealed, /^k1:/);
    // Seals written before keys had versions carry no prefix.
    const legacy = sealed.slice('k1:'.length);
    const rotated = new EvidenceSeal(v1.withNewUseVersion('evidence', NOW).use('evidence'));
    assert.deepEqual(rotated.open(eventId, legacy), { userAgent: 'Firefox', ip: '203.0.113.0' });
    assert.deepEqual(rotated.open(eventId, sealed), { userAgent: 'Firefox', ip: '203.0.113.0' });
    const fresh = rotated.seal(eventId, evidence) ?? '';
    assert.match(fresh, /^k2:/);
    assert.deepEqual(rotated.open(eventId, fresh), { userAgent: 'Firefox', ip: '203.0.113.0' });
    assert.throws(() => new EvidenceSeal(v1.indexKey).open(eventId, fresh), {
      code: 'consent.evidence_key_missing',
    });
  });

  test('Message-ID return tokens rotate with the message_id use: old ones verify within their window, new ones say version 2', async () => {
    const v1 = await Keyring.load({ dataDir });
    const subjectId = randomUUID();
    const lists = ['marketing-email'];
    const before = createReturnToken(
      returnTokenKeysOf(v1.use('message_id')),
      { subjectId, list: 'marketing-email' },
      { now: NOW },
    );
    // Version 1 of the use is what a lone index key gave before uses had versions.
    assert.equal(
      before,
      createReturnToken(returnTokenKeysOf(v1.indexKey), { subjectId, list: 'marketing-email' }, { now: NOW }),
    );
    const keys = returnTokenKeysOf(v1.withNewUseVersion('message_id', NOW).use('message_id'));
    assert.equal(keys.current, 2);
    assert.equal(verifyReturnToken(keys, before, { now: NOW, lists }).ok, true);
    const fresh = createReturnToken(keys, { subjectId, list: 'marketing-email' }, { now: NOW });
    assert.equal(verifyReturnToken(keys, fresh, { now: NOW, lists }).ok, true);
    assert.deepEqual(verifyReturnToken(returnTokenKeysOf(v1.use('message_id')), fresh, { now: NOW, lists }), {
      ok: false,
      problem: 'unknown_key',
    });
    const late = new Date(NOW.getTime() + 31 * DAY_MS);
    assert.deepEqual(verifyReturnToken(keys, before, { now: late, lists }), {
      ok: false,
      problem: 'expired',
    });
  });
});

for (const dialect of DIALECTS) {
  describe(`pledge keys rotate --use on ${dialect}`, () => {
    let t: TestVault;
    beforeEach(async () => {
      t = await openTestVault(dialect);
    });
    afterEach(async () => {
      await t.cleanup();
    });

    test('rotating a use saves its new version in the key file and audits it; the KEK and data keys are untouched', async () => {
      const service = new KeyRotationService({
        audit: t.audit,
        dataKeys: t.dataKeys,
        keys: { dataDir: t.dataDir },
      });
      const before = await readFile(path.join(t.dataDir, KEY_FILE_NAME), 'utf8');
      const result = await service.rotateUse(t.ctx, 'links');
      assert.deepEqual(result, { use: 'links', newVersion: 2 });
      const loaded = await Keyring.load({ dataDir: t.dataDir });
      assert.equal(loaded.use('links').current().version, 2);
      assert.deepEqual(loaded.versions(), t.keyring.versions());
      const indexKeyOf = (text: string) => (JSON.parse(text) as { index_key: string }).index_key;
      assert.equal(
        indexKeyOf(before),
        indexKeyOf(await readFile(path.join(t.dataDir, KEY_FILE_NAME), 'utf8')),
      );
      const audit = await t.audit.listRecent(t.ctx, 10);
      assert.deepEqual(audit.find((e) => e.action === 'keys.rotate_use')?.details, {
        use: 'links',
        version: 2,
        source: 'file',
      });
      await assert.rejects(service.rotateUse(t.ctx, 'index'), { code: 'vault.index_key_fixed' });
    });

    test('with PLEDGE_KEYS, rotating a use returns the new value and saves nothing', async () => {
      const envKeys = t.keyring.serialize();
      const service = new KeyRotationService({
        audit: t.audit,
        dataKeys: t.dataKeys,
        keys: { dataDir: t.dataDir, envKeys },
      });
      const result = await service.rotateUse(t.ctx, 'webhooks');
      assert.equal(result.newVersion, 2);
      const next = await Keyring.load({ dataDir: t.dataDir, envKeys: result.keys ?? '' });
      assert.equal(next.use('webhooks').current().version, 2);
      assert.equal((await Keyring.load({ dataDir: t.dataDir })).use('webhooks').current().version, 1);
    });
  });
}
