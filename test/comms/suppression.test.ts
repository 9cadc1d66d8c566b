/**
 * The suppression list on every engine: an address suppressed once stays suppressed for its list or
 * for all, whatever its spelling and whichever subject it comes back as; the list holds no address.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SuppressionRepository } from '../../src/comms/suppression.repository.js';
import { SuppressionService } from '../../src/comms/suppression.service.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { openTestVault, randomEmail, type TestVault } from '../helpers/vault.js';

for (const dialect of DIALECTS) {
  describe(`suppression list on ${dialect}`, () => {
    let t: TestVault;
    let suppression: SuppressionService;

    before(async () => {
      t = await openTestVault(dialect);
      suppression = new SuppressionService({
        db: t.database.db,
        repo: new SuppressionRepository(t.database.db),
        audit: t.audit,
        subjects: t.subjects,
        indexKey: t.keyring.indexKey,
        softBounceLimit: 3,
      });
    });
    after(async () => t.cleanup());

    test('an opt-out of one list suppresses that list only, under any spelling of the address', async () => {
      const address = randomEmail();
      assert.equal(
        await suppression.suppress(t.ctx, { address, reason: 'unsubscribe', list: 'marketing-email' }),
        true,
      );
      assert.equal(
        await suppression.suppress(t.ctx, { address, reason: 'unsubscribe', list: 'marketing-email' }),
        false,
      );
      assert.equal(
        await suppression.isSuppressed(t.ctx, `  ${address.toUpperCase()} `, 'marketing-email'),
        true,
      );
      assert.equal(await suppression.isSuppressed(t.ctx, address, 'partner-news'), false);
      const rows = await tablesOf(t.database).selectFrom('suppressions').selectAll().execute();
      assert.ok(
        rows.every((r) => !JSON.stringify(r).includes(address.split('@')[0]!)),
        'no address at rest',
      );
    });

    test('a hard bounce or a complaint suppresses every list; soft bounces only at the limit', async () => {
      const bounced = randomEmail();
      const complained = randomEmail();
      const soft = randomEmail();
      await suppression.suppress(t.ctx, { address: bounced, reason: 'hard_bounce' });
      await suppression.suppress(t.ctx, { address: complained, reason: 'complaint' });
      assert.deepEqual(
        await suppression.suppressedAmong(
          t.ctx,
          [bounced, complained, soft, 'not an address'],
          'marketing-email',
        ),
        new Set([bounced, complained, 'not an address']),
      );
      assert.equal(await suppression.softBounce(t.ctx, soft), false);
      assert.equal(await suppression.softBounce(t.ctx, soft), false);
      assert.equal(await suppression.isSuppressed(t.ctx, soft, 'marketing-email'), false);
      assert.equal(await suppression.softBounce(t.ctx, soft), true, 'the third soft bounce suppresses');
      assert.equal(await suppression.isSuppressed(t.ctx, soft, 'marketing-email'), true);
      assert.deepEqual(
        (await suppression.suppressionsOf(t.ctx, soft)).map((s) => [s.list, s.reason]),
        [['*', 'soft_bounces']],
      );
      const audit = await tablesOf(t.database)
        .selectFrom('audit_events')
        .select(['details'])
        .where('action', '=', 'mail.suppress')
        .execute();
      assert.ok(audit.length >= 3);
    });
  });
}
