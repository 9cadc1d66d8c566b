/**
 * The vault on both engines: what goes in comes out only through the use gate, only for the
 * purposes that may use it, encrypted at rest, and gone (backups included) after erasure.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { PledgeError } from '../../src/platform/errors.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { openTestVault, randomEmail, type TestVault } from '../helpers/vault.js';

async function register(t: TestVault, email: string, jurisdiction?: string) {
  const id = randomUUID();
  await t.vault.write(
    t.ctx,
    [
      {
        subjectId: id,
        source: 'registration',
        fields: {
          email: { category: 'user.contact.email', value: email },
          first_name: { category: 'user.name.first', value: 'Ada' },
          password: { category: 'user.authorization.credentials', value: 'correct horse battery staple' },
        },
      },
    ],
    { id, kind: 'customer', jurisdiction, identifiers: { email } },
  );
  return id;
}

for (const dialect of DIALECTS) {
  describe(`vault on ${dialect}`, () => {
    let t: TestVault;
    before(async () => {
      t = await openTestVault(dialect);
    });
    after(async () => {
      await t.cleanup();
    });

    test('a registration creates a subject found by its e-mail, in any letter case', async () => {
      const email = randomEmail();
      const id = await register(t, email);
      const found = await t.vault.findSubjectByIdentifier(t.ctx, 'email', `  ${email.toUpperCase()} `);
      assert.equal(found?.id, id);
      assert.equal(await t.vault.findSubjectByIdentifier(t.ctx, 'email', randomEmail()), undefined);
    });

    test('nothing personal rests in plaintext: not in records, not in the blind index, not in the audit', async () => {
      const email = randomEmail();
      await register(t, email);
      const dump = JSON.stringify([
        await tablesOf(t.database).selectFrom('records').selectAll().execute(),
        await tablesOf(t.database).selectFrom('subject_identifiers').selectAll().execute(),
        await tablesOf(t.database).selectFrom('audit_events').selectAll().execute(),
      ]);
      assert.ok(!dump.includes(email), 'the e-mail address is not stored in plaintext');
      assert.ok(!dump.includes('correct horse'), 'the password is not stored in plaintext');
      assert.ok(!dump.includes('Ada'), 'the name is not stored in plaintext');
    });

    test('the use gate returns only the categories a purpose may use, on records collected for it', async () => {
      const id = await register(t, randomEmail(), 'US');
      const service = await t.vault.read(t.ctx, id, 'provide-service');
      assert.equal(service.decision.allowed, true);
      // The password is kept only as a verifier, which no purpose reads (test/vault/credentials.test.ts).
      assert.deepEqual(Object.keys(service.records[0]?.fields ?? {}).sort(), ['email', 'first_name']);
      // Marketing (opt-out in the US) may use the e-mail address and name, never the password.
      const marketing = await t.vault.read(t.ctx, id, 'marketing-email');
      assert.deepEqual(marketing.decision, { allowed: true, reason: 'opt_out_default' });
      assert.deepEqual(Object.keys(marketing.records[0]?.fields ?? {}).sort(), ['email', 'first_name']);
      // Improving products uses e-mail addresses, but registration did not collect for it.
      const improve = await t.vault.read(t.ctx, id, 'improve-products');
      assert.equal(improve.records.length, 0);
    });

    test('opt-in purposes are refused until consent exists; unknown jurisdictions get the strictest mode', async () => {
      const eu = await register(t, randomEmail(), 'DE');
      const r = await t.vault.read(t.ctx, eu, 'marketing-email');
      assert.deepEqual(r.decision, { allowed: false, reason: 'opt_in_missing' });
      assert.equal(r.records.length, 0);
      const unknown = await register(t, randomEmail());
      assert.equal((await t.vault.read(t.ctx, unknown, 'marketing-email')).decision.allowed, false);
    });

    test('every read is in the audit, with the purpose and what was returned', async () => {
      const id = await register(t, randomEmail(), 'US');
      await t.vault.read(t.ctx, id, 'marketing-email');
      const events = await t.audit.listBySubject(t.ctx, id);
      const read = events.find((e) => e.action === 'vault.read');
      assert.equal(read?.purpose, 'marketing-email');
      assert.deepEqual(read?.details, { allowed: true, reason: 'opt_out_default', records: 1, fields: 2 });
      assert.deepEqual(read?.actor, { kind: 'cli', id: 'test' });
    });

    test('a read of many subjects answers each as a read of one would, and audits each', async () => {
      const us = await register(t, randomEmail(), 'US');
      const eu = await register(t, randomEmail(), 'DE');
      const erased = await register(t, randomEmail(), 'US');
      await t.vault.erase(t.ctx, erased);
      const unknown = randomUUID();
      const many = await t.vault.readMany(t.ctx, [eu, unknown, us, erased, us], 'marketing-email');
      assert.equal(many.length, 5, 'one answer per id asked, in order');
      assert.deepEqual(many[0]?.decision, { allowed: false, reason: 'opt_in_missing' });
      assert.equal(many[0]?.records.length, 0);
      assert.equal(many[1], undefined, 'an unknown subject has no answer');
      assert.equal(many[3], undefined, 'nor has an erased one');
      const alone = await t.vault.read(t.ctx, us, 'marketing-email');
      for (const answer of [many[2], many[4]]) {
        assert.deepEqual(answer?.decision, alone.decision);
        assert.deepEqual(
          answer?.records.map((r) => [r.id, r.fields]),
          alone.records.map((r) => [r.id, r.fields]),
        );
      }
      for (const [id, allowed] of [
        [us, true],
        [eu, false],
      ] as const) {
        const reads = (await t.audit.listBySubject(t.ctx, id)).filter((e) => e.action === 'vault.read');
        assert.equal(reads.length, id === us ? 2 : 1, 'one entry per subject per read');
        assert.equal(reads[0]?.details?.allowed, allowed);
      }
      await assert.rejects(t.vault.read(t.ctx, unknown, 'marketing-email'), /no subject with this id/);
    });

    test('the audit table refuses updates and deletes', async () => {
      await assert.rejects(
        sql`update audit_events set action = 'x'`.execute(t.database.kysely),
        /append-only/,
      );
      await assert.rejects(sql`delete from audit_events`.execute(t.database.kysely), /append-only/);
    });

    test('a field of a category the source does not declare is refused and nothing is stored', async () => {
      const id = randomUUID();
      const email = randomEmail();
      await assert.rejects(
        t.vault.write(
          t.ctx,
          [
            {
              subjectId: id,
              source: 'registration',
              fields: {
                email: { category: 'user.contact.email', value: email },
                health: { category: 'user.health_and_medical', value: 'x' },
              },
            },
          ],
          { id, kind: 'customer', jurisdiction: undefined, identifiers: { email } },
        ),
        (err: unknown) => err instanceof PledgeError && err.code === 'vault.category_undeclared',
      );
      assert.equal(await t.vault.findSubjectByIdentifier(t.ctx, 'email', email), undefined);
    });

    test('a second registration with the same e-mail does not create a second subject', async () => {
      const email = randomEmail();
      await register(t, email);
      await assert.rejects(
        register(t, email),
        (err: unknown) => err instanceof PledgeError && err.code === 'vault.identifier_taken',
      );
    });

    test('concurrent writes are each answered after their own commit, and one bad write fails alone', async () => {
      const ids = await Promise.all(Array.from({ length: 20 }, () => register(t, randomEmail())));
      const bad = t.vault.write(t.ctx, [
        {
          subjectId: randomUUID(),
          source: 'feedback',
          fields: { message: { category: 'user.feedback', value: 'hi' } },
        },
      ]);
      const good = t.vault.write(t.ctx, [
        {
          subjectId: ids[0] ?? '',
          source: 'feedback',
          fields: { message: { category: 'user.feedback', value: 'hi' } },
        },
      ]);
      await assert.rejects(
        bad,
        (err: unknown) => err instanceof PledgeError && err.code === 'vault.subject_not_found',
      );
      assert.equal((await good).length, 1);
      for (const [i, id] of ids.entries()) {
        const sources = (await t.vault.read(t.ctx, id, 'provide-service')).records.map((r) => r.source);
        assert.deepEqual(sources, i === 0 ? ['registration', 'feedback'] : ['registration']);
      }
    });

    test('erasure destroys the keys: a copy of the records taken before it no longer opens', async () => {
      const id = await register(t, randomEmail(), 'US');
      // The copy a backup would hold, taken before the erasure.
      const backup = await tablesOf(t.database)
        .selectFrom('records')
        .selectAll()
        .where('subject_id', '=', id)
        .execute();
      const subjectRow = await tablesOf(t.database)
        .selectFrom('subjects')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      const result = await t.vault.erase(t.ctx, id);
      assert.deepEqual(result, { keysDestroyed: 1, recordsDeleted: 1 });
      await assert.rejects(t.vault.read(t.ctx, id, 'provide-service'), /erased/);
      // Restore the backup: the subject and its records are back, their keys are not.
      await tablesOf(t.database)
        .updateTable('subjects')
        .set({ erased_at: null, jurisdiction: subjectRow.jurisdiction })
        .where('id', '=', id)
        .execute();
      await tablesOf(t.database).insertInto('records').values(backup).execute();
      t.dataKeys.forget(id);
      const restored = await t.vault.read(t.ctx, id, 'provide-service');
      assert.equal(restored.records.length, 0);
      assert.equal(restored.unreadable, 1);
      // Writing to the restored subject makes a new key; the old records stay unreadable, the new one reads.
      await t.vault.write(t.ctx, [
        {
          subjectId: id,
          source: 'feedback',
          fields: { message: { category: 'user.feedback', value: 'after' } },
        },
      ]);
      const after = await t.vault.read(t.ctx, id, 'provide-service');
      assert.equal(after.unreadable, 1);
      assert.deepEqual(
        after.records.map((r) => r.fields.message?.value),
        ['after'],
      );
    });

    test('erasure drops the cached data key at once: a restored copy is unreadable without a restart', async () => {
      const id = await register(t, randomEmail(), 'US');
      // Read first, so this process holds the subject's unwrapped key.
      assert.equal((await t.vault.read(t.ctx, id, 'provide-service')).records.length, 1);
      const backup = await tablesOf(t.database)
        .selectFrom('records')
        .selectAll()
        .where('subject_id', '=', id)
        .execute();
      await t.vault.erase(t.ctx, id);
      await tablesOf(t.database)
        .updateTable('subjects')
        .set({ erased_at: null })
        .where('id', '=', id)
        .execute();
      await tablesOf(t.database).insertInto('records').values(backup).execute();
      const restored = await t.vault.read(t.ctx, id, 'provide-service');
      assert.equal(restored.records.length, 0);
      assert.equal(restored.unreadable, 1);
    });

    test('large writes and reads (sealed and opened on worker threads) round-trip every value', async () => {
      const id = await register(t, randomEmail(), 'US');
      const events = Array.from({ length: 300 }, (_, i) => ({
        subjectId: id,
        source: 'feedback',
        fields: {
          message: { category: 'user.feedback', value: `message ${i} ✓` },
          rating: { category: 'user.feedback', value: { stars: i % 5, tags: ['a', i] } },
        },
      }));
      const written = await t.vault.write(t.ctx, events);
      assert.equal(written.length, 300);
      const read = await t.vault.read(t.ctx, id, 'provide-service');
      const feedback = read.records.filter((r) => r.source === 'feedback');
      assert.deepEqual(
        feedback.map((r) => r.id),
        written,
      );
      feedback.forEach((r, i) => {
        assert.deepEqual(r.fields, {
          message: { category: 'user.feedback', value: `message ${i} ✓` },
          rating: { category: 'user.feedback', value: { stars: i % 5, tags: ['a', i] } },
        });
      });
      const [audit] = (await t.audit.listBySubject(t.ctx, id)).slice(-1);
      assert.deepEqual(audit?.details, {
        allowed: true,
        reason: read.decision.reason,
        records: read.records.length,
        fields: read.records.reduce((n, r) => n + Object.keys(r.fields).length, 0),
      });
      assert.ok(read.records.length === 301);
    });

    test('records carry their source, purposes, policy version and retention deadline', async () => {
      const id = await register(t, randomEmail());
      const row = await tablesOf(t.database)
        .selectFrom('records')
        .selectAll()
        .where('subject_id', '=', id)
        .executeTakeFirstOrThrow();
      assert.equal(row.source, 'registration');
      assert.deepEqual(JSON.parse(row.purposes), ['provide-service', 'marketing-email']);
      assert.equal(row.policy_version_id, t.active.version.id);
      const years = (Date.parse(row.retain_until) - Date.parse(row.collected_at)) / (365.25 * 86_400_000);
      assert.ok(Math.abs(years - 7) < 0.01, `registration is kept 7 years (got ${years})`);
    });
  });
}
