/**
 * The use gate reads in pages: `limit` records (default and most 1,000) collected for the
 * purpose, oldest first, and a `nextCursor` while more follow; a bad limit or cursor is a 400 that
 * reads nothing. Records of other purposes never fill a page. Over the API and the service, on
 * SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { PledgeError } from '../../src/platform/errors.js';
import { MAX_READ_RECORDS } from '../../src/vault/vault.types.js';
import { DIALECTS } from '../helpers/databases.js';
import { openTestVault, randomEmail, type TestVault } from '../helpers/vault.js';

for (const dialect of DIALECTS) {
  describe(`use gate pages on ${dialect}`, () => {
    let t: TestVault;
    let subjectId: string;
    /** The ids of the records written for provide-service, oldest first. */
    const serviceRecords: string[] = [];

    before(async () => {
      t = await openTestVault(dialect);
      subjectId = randomUUID();
      const email = randomEmail();
      for (let i = 0; i < 5; i++) {
        const [id] = await t.vault.write(
          t.ctx,
          [
            {
              subjectId,
              source: 'registration',
              fields: { first_name: { category: 'user.name.first', value: `Ada ${i}` } },
            },
          ],
          i === 0
            ? { id: subjectId, kind: 'customer', jurisdiction: 'US', identifiers: { email } }
            : undefined,
        );
        serviceRecords.push(id ?? '');
        // A survey answer between each: collected for improve-products only.
        await t.vault.write(t.ctx, [
          {
            subjectId,
            source: 'customer-survey',
            fields: { email: { category: 'user.contact.email', value: email } },
          },
        ]);
      }
    });
    after(async () => t.cleanup());

    test('pages of `limit` records of the purpose, oldest first, until nextCursor is absent', async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      const sizes: number[] = [];
      for (let page = 0; page < 10; page++) {
        const r = await t.vault.read(t.ctx, subjectId, 'provide-service', { limit: 2, cursor });
        assert.equal(r.decision.allowed, true);
        sizes.push(r.records.length);
        seen.push(...r.records.map((rec) => rec.id));
        cursor = r.nextCursor;
        if (cursor === undefined) break;
      }
      assert.deepEqual(sizes, [2, 2, 1]);
      assert.deepEqual(seen, serviceRecords, 'every record of the purpose once, in order; no survey record');
      const whole = await t.vault.read(t.ctx, subjectId, 'provide-service');
      assert.deepEqual(
        whole.records.map((r) => r.id),
        serviceRecords,
      );
      assert.equal(whole.nextCursor, undefined, 'the default page holds them all');
    });

    test('readMany keeps each subject to the newest records of the purpose', async () => {
      const [many] = await t.vault.readMany(t.ctx, [subjectId], 'provide-service');
      assert.deepEqual(
        many?.records.map((r) => r.id),
        serviceRecords,
      );
      assert.ok(MAX_READ_RECORDS >= 1000, 'documented maximum');
    });

    test('a limit outside 1 to 1,000, or a cursor that is not one, is refused', async () => {
      for (const page of [
        { limit: 0 },
        { limit: MAX_READ_RECORDS + 1 },
        { limit: 1.5 },
        { cursor: 'page-2' },
      ]) {
        await assert.rejects(
          t.vault.read(t.ctx, subjectId, 'provide-service', page),
          (err: unknown) =>
            err instanceof PledgeError &&
            err.status === 400 &&
            err.code === ('limit' in page ? 'vault.limit_invalid' : 'vault.cursor_invalid'),
          JSON.stringify(page),
        );
      }
    });
  });
}
