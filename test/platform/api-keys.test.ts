import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ApiKeyRepository } from '../../src/platform/auth/api-keys.repository.js';
import { API_KEY_PATTERN, ApiKeyService, requireScope } from '../../src/platform/auth/api-keys.service.js';
import { isDataScope, isScope, MANAGEMENT_SCOPES, SCOPES } from '../../src/platform/auth/scopes.js';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext } from '../../src/platform/context.js';
import {
  AuthenticationError,
  ForbiddenError,
  NotFoundError,
  PledgeError,
  ValidationError,
} from '../../src/platform/errors.js';
import { DIALECTS, openMigratedTestDatabase, type TestDatabase, tablesOf } from '../helpers/databases.js';

const ctx = createContext({ kind: 'cli', id: 'test' });

/** Asserts that `promise` fails as an invalid key, and returns the message for comparison. */
async function rejectsAsInvalid(promise: Promise<unknown>): Promise<string> {
  let message = '';
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof AuthenticationError, `expected an AuthenticationError, got ${String(err)}`);
    assert.equal(err.code, 'auth.key_invalid');
    assert.equal(err.status, 401);
    message = err.message;
    return true;
  });
  return message;
}

/** Replaces the character at `index` with a different one of the same alphabet. */
function changeChar(text: string, index: number, alphabet: string): string {
  const current = text[index] ?? '';
  const replacement = alphabet[(alphabet.indexOf(current) + 1) % alphabet.length] ?? 'x';
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

void describe('scopes', () => {
  void test('isScope knows every scope and nothing else', () => {
    for (const scope of SCOPES) assert.ok(isScope(scope));
    for (const other of ['', 'ADMIN', 'manifest', 'manifest:write', 'admin ', 42, undefined])
      assert.ok(!isScope(other));
  });

  void test('admin implies every scope; other scopes imply only themselves', () => {
    const system = 'web-app';
    for (const scope of SCOPES)
      assert.doesNotThrow(() => requireScope({ id: 'k', scopes: ['admin'], system }, scope));
    assert.doesNotThrow(() => requireScope({ id: 'k', scopes: ['consent:read'], system }, 'consent:read'));
    assert.throws(() => requireScope({ id: 'k', scopes: ['consent:read'], system }, 'consent:write'), {
      code: 'auth.scope_missing',
    });
    assert.throws(() => requireScope({ id: 'k', scopes: ['subjects:write'], system }, 'admin'), {
      code: 'auth.scope_missing',
    });
  });

  void test('an operator key (no system) holds its management scopes and no scope that acts for a person', () => {
    const operator = { id: 'k', scopes: ['admin'] as const, system: undefined };
    for (const scope of MANAGEMENT_SCOPES) assert.doesNotThrow(() => requireScope(operator, scope));
    for (const scope of SCOPES.filter(isDataScope)) {
      assert.throws(() => requireScope(operator, scope), { code: 'auth.system_required' });
    }
    assert.ok(SCOPES.filter(isDataScope).includes('subjects:read'));
  });
});

for (const dialect of DIALECTS) {
  void describe(dialect, () => {
    let database: TestDatabase;
    let service: ApiKeyService;
    before(async () => {
      database = await openMigratedTestDatabase(dialect);
      service = new ApiKeyService({ keys: new ApiKeyRepository(database.db) });
    });
    after(async () => {
      await database?.cleanup();
    });

    void test('a created key authenticates with its scopes', async () => {
      const created = await service.createKey(ctx, {
        name: '  billing-service ',
        system: 'web-app',
        scopes: ['consent:read', 'manifest:read', 'consent:read'],
      });
      assert.match(created.key, API_KEY_PATTERN);
      assert.ok(created.key.startsWith(`pledge_${created.id}_`));
      assert.equal(created.name, 'billing-service');
      assert.deepEqual(created.scopes, ['manifest:read', 'consent:read']);

      const principal = await service.authenticate(created.key);
      assert.deepEqual(principal, {
        id: created.id,
        scopes: ['manifest:read', 'consent:read'],
        system: 'web-app',
      });
    });

    void test('wrong secret, unknown id, malformed and revoked keys fail alike', async () => {
      const { id, key } = await service.createKey(ctx, {
        name: 'victim',
        system: 'web-app',
        scopes: ['subjects:read'],
      });
      const secretStart = `pledge_${id}_`.length;
      const messages = [
        await rejectsAsInvalid(service.authenticate(changeChar(key, secretStart + 5, BASE64URL))),
        await rejectsAsInvalid(service.authenticate(changeChar(key, 'pledge_'.length, BASE32))),
        await rejectsAsInvalid(service.authenticate(key.slice(0, -1))),
        await rejectsAsInvalid(service.authenticate(`${key} `)),
        await rejectsAsInvalid(service.authenticate('')),
        await rejectsAsInvalid(service.authenticate(`Bearer ${key}`)),
      ];
      await service.revokeKey(ctx, id);
      messages.push(await rejectsAsInvalid(service.authenticate(key)));
      assert.equal(new Set(messages).size, 1, 'every failure has the same message');
    });

    void test('a missing scope is a 403 naming the scope', async () => {
      const { key } = await service.createKey(ctx, {
        name: 'reader',
        system: 'web-app',
        scopes: ['consent:read'],
      });
      const principal = await service.authenticate(key);
      assert.throws(
        () => service.requireScope(principal, 'consent:write'),
        (err: unknown) => {
          assert.ok(err instanceof ForbiddenError);
          assert.equal(err.status, 403);
          assert.equal(err.code, 'auth.scope_missing');
          assert.deepEqual(err.details, { required: 'consent:write' });
          return true;
        },
      );
      const admin = await service.authenticate(
        (await service.createKey(ctx, { name: 'ops', system: 'web-app', scopes: ['admin'] })).key,
      );
      for (const scope of SCOPES) service.requireScope(admin, scope);
    });

    void test('a key stops working when it expires, and its holder and expiry are listed', async () => {
      const clock = fixedClock(new Date('2026-12-01T10:00:00.000Z'));
      const timed = new ApiKeyService({ keys: new ApiKeyRepository(database.db), clock, credentialTtlMs: 0 });
      const at = createContext({ kind: 'cli', id: 't' }, { clock });
      const { id, key } = await timed.createKey(at, {
        name: 'temporary',
        system: 'web-app',
        holder: 'ada@ops',
        scopes: ['subjects:read'],
        expiresAt: new Date('2026-12-01T11:00:00.000Z'),
      });
      assert.equal((await timed.authenticate(key)).id, id);
      const listed = (await timed.listKeys(at)).find((k) => k.id === id);
      assert.equal(listed?.holder, 'ada@ops');
      assert.equal(listed?.expiresAt?.toISOString(), '2026-12-01T11:00:00.000Z');
      clock.advance(3_600_000);
      await rejectsAsInvalid(timed.authenticate(key));
      await assert.rejects(
        timed.createKey(at, {
          name: 'past',
          scopes: ['admin'],
          expiresAt: new Date('2026-12-01T10:00:00.000Z'),
        }),
        {
          code: 'auth.key_expiry_invalid',
        },
      );
    });

    void test('a system is checked against the manifest when a key is made or bound', async () => {
      const bound = new ApiKeyService({
        keys: new ApiKeyRepository(database.db),
        systems: () => ['billing'],
      });
      await assert.rejects(bound.createKey(ctx, { name: 'x', system: 'crm', scopes: ['subjects:read'] }), {
        code: 'auth.system_unknown',
      });
      await assert.rejects(bound.createKey(ctx, { name: 'x', scopes: ['subjects:read', 'admin'] }), {
        code: 'auth.system_required',
      });
      const operator = await bound.createKey(ctx, { name: 'ops', scopes: ['admin'] });
      assert.equal(operator.system, undefined);
      await assert.rejects(bound.bindKey(ctx, operator.id, 'crm'), { code: 'auth.system_unknown' });
      assert.equal((await bound.bindKey(ctx, operator.id, 'billing')).system, 'billing');
      assert.equal((await bound.authenticate(operator.key)).system, 'billing');
    });

    void test('unknown or missing scopes are refused, listing the valid ones', async () => {
      await assert.rejects(
        service.createKey(ctx, {
          name: 'x',
          system: 'web-app',
          scopes: ['manifest:read', 'subjects:delete'],
        }),
        (err) => {
          assert.ok(err instanceof ValidationError);
          assert.equal(err.code, 'auth.scope_unknown');
          assert.match(err.message, /"subjects:delete"/);
          for (const scope of SCOPES) assert.ok(err.message.includes(scope));
          return true;
        },
      );
      await assert.rejects(service.createKey(ctx, { name: 'x', scopes: [] }), {
        code: 'auth.scope_required',
      });
      await assert.rejects(service.createKey(ctx, { name: '   ', scopes: ['admin'] }), {
        code: 'auth.key_name_invalid',
      });
    });

    void test('the stored row holds no part of the secret, and listings hold no digest', async () => {
      const { id, key } = await service.createKey(ctx, {
        name: 'scan-me',
        system: 'web-app',
        scopes: ['collect:write'],
      });
      const secret = key.slice(`pledge_${id}_`.length);
      const row = await tablesOf(database)
        .selectFrom('api_keys')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      const stored = JSON.stringify(row);
      assert.ok(!stored.includes(key));
      // Any 8 consecutive characters of the secret would be a leak; by chance a hex digest matches
      // none of them (about 2^-40 per window).
      for (let i = 0; i + 8 <= secret.length; i++) {
        assert.ok(
          !stored.includes(secret.slice(i, i + 8)),
          `stored row contains secret characters ${i}..${i + 8}`,
        );
      }

      const listed = (await service.listKeys(ctx)).find((k) => k.id === id);
      assert.deepEqual(Object.keys(listed ?? {}).sort(), [
        'createdAt',
        'expiresAt',
        'holder',
        'id',
        'lastUsedAt',
        'name',
        'revokedAt',
        'scopes',
        'system',
      ]);
      assert.ok(!JSON.stringify(listed).includes(row.secret_hash));
    });

    void test('revoking: listed as revoked, idempotent, unknown ids are 404', async () => {
      const { id } = await service.createKey(ctx, { name: 'to-revoke', scopes: ['admin'] });
      const revoked = await service.revokeKey(ctx, id);
      assert.ok(revoked.revokedAt instanceof Date);
      assert.deepEqual((await service.revokeKey(ctx, id)).revokedAt, revoked.revokedAt);
      assert.deepEqual((await service.listKeys(ctx)).find((k) => k.id === id)?.revokedAt, revoked.revokedAt);
      for (const unknown of ['aaaaaaaaaaaa', 'not-an-id', '']) {
        await assert.rejects(service.revokeKey(ctx, unknown), (err) => {
          assert.ok(err instanceof NotFoundError);
          assert.equal(err.code, 'auth.key_not_found');
          return true;
        });
      }
    });

    void test('a key revoked by this process fails at once, even while its credential is cached', async () => {
      const { id, key } = await service.createKey(ctx, {
        name: 'cached',
        system: 'web-app',
        scopes: ['collect:write'],
      });
      assert.equal((await service.authenticate(key)).id, id);
      assert.equal((await service.authenticate(key)).id, id);
      await service.revokeKey(ctx, id);
      await rejectsAsInvalid(service.authenticate(key));
    });

    void test('a key revoked by another process fails once the cached credential expires', async () => {
      const clock = fixedClock(new Date('2026-12-01T10:00:00.000Z'));
      const keys = new ApiKeyRepository(database.db);
      const server = new ApiKeyService({ keys, clock, credentialTtlMs: 5_000 });
      const cli = new ApiKeyService({ keys });
      const { id, key } = await cli.createKey(ctx, {
        name: 'revoked-elsewhere',
        system: 'web-app',
        scopes: ['collect:write'],
      });
      assert.equal((await server.authenticate(key)).id, id);
      await cli.revokeKey(ctx, id);
      // Within the TTL the server still uses what it read: the documented revocation delay.
      clock.advance(4_999);
      assert.equal((await server.authenticate(key)).id, id);
      clock.advance(1);
      await rejectsAsInvalid(server.authenticate(key));
      // A wrong secret never passes on a cached credential.
      const fresh = await cli.createKey(ctx, { name: 'fresh', system: 'web-app', scopes: ['collect:write'] });
      assert.equal((await server.authenticate(fresh.key)).id, fresh.id);
      await rejectsAsInvalid(server.authenticate(changeChar(fresh.key, fresh.key.length - 1, BASE64URL)));
    });

    void test('with credentialTtlMs 0 every request reads the key, so revocation elsewhere is immediate', async () => {
      const keys = new ApiKeyRepository(database.db);
      const server = new ApiKeyService({ keys, credentialTtlMs: 0 });
      const { id, key } = await service.createKey(ctx, {
        name: 'uncached',
        system: 'web-app',
        scopes: ['collect:write'],
      });
      assert.equal((await server.authenticate(key)).id, id);
      await service.revokeKey(ctx, id);
      await rejectsAsInvalid(server.authenticate(key));
    });

    void test('last_used_at is written at most once a minute per key', async () => {
      const clock = fixedClock(new Date('2026-12-01T10:00:00.000Z'));
      const keys = new ApiKeyRepository(database.db);
      const timed = new ApiKeyService({ keys, clock });
      const { id, key } = await timed.createKey(createContext({ kind: 'cli', id: 't' }, { clock }), {
        name: 'busy',
        system: 'web-app',
        scopes: ['consent:read'],
      });
      const lastUsed = async () =>
        (await keys.get(createContext({ kind: 'cli', id: 't' }), id))?.lastUsedAt?.toISOString();
      assert.equal(await lastUsed(), undefined);

      await timed.authenticate(key);
      assert.equal(await lastUsed(), '2026-12-01T10:00:00.000Z');
      clock.advance(59_000);
      await timed.authenticate(key);
      assert.equal(await lastUsed(), '2026-12-01T10:00:00.000Z');
      clock.advance(1_000);
      await timed.authenticate(key);
      assert.equal(await lastUsed(), '2026-12-01T10:01:00.000Z');
    });

    void test('property: anything but a created key fails with auth.key_invalid and nothing else', async () => {
      const { id, key } = await service.createKey(ctx, { name: 'property', scopes: ['manifest:read'] });
      const prefix = `pledge_${id}_`;
      const nearMiss = fc
        .tuple(fc.nat({ max: key.length - 1 }), fc.constantFrom(...BASE64URL, '', '\u0000', 'é', '🔑'))
        .map(([i, c]) => key.slice(0, i) + c + key.slice(i + 1));
      const wellFormed = fc
        .tuple(
          fc.oneof(
            fc.constant(id),
            fc.string({ unit: fc.constantFrom(...BASE32), minLength: 12, maxLength: 12 }),
          ),
          fc.string({ unit: fc.constantFrom(...BASE64URL), minLength: 43, maxLength: 43 }),
        )
        .map(([i, s]) => `pledge_${i}_${s}`);
      const candidates = fc.oneof(
        fc.string(),
        fc.string({ unit: 'binary' }),
        fc.string().map((s) => prefix + s),
        nearMiss,
        wellFormed,
      );
      await fc.assert(
        fc.asyncProperty(
          candidates.filter((candidate) => candidate !== key),
          async (candidate) => {
            try {
              await service.authenticate(candidate);
            } catch (err) {
              return (
                err instanceof PledgeError &&
                err instanceof AuthenticationError &&
                err.code === 'auth.key_invalid'
              );
            }
            return false;
          },
        ),
        { numRuns: 300 },
      );
    });
  });
}
