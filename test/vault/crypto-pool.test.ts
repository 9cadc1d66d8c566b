/**
 * Crypto batches, inline and on worker threads: whatever thread seals a value, any thread opens it,
 * byte-compatible with the single-value envelope (`open` and `fieldAad`) that stored records were
 * written with, in however many parts the pool splits a batch; a value that does not open fails the
 * batch on a worker as it does inline; and a worker that cannot start leaves the pool running
 * everything inline.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { PledgeError } from '../../src/platform/errors.js';
import { CryptoPool } from '../../src/vault/crypto-pool.js';
import { OpenBatch, SealBatch } from '../../src/vault/field-batch.js';
import { fieldAad, open, seal } from '../../src/vault/vault.crypto.js';

/** Pools whose every batch goes to their workers, in up to 1, 2 or 3 parts (one per worker). */
const pools = [1, 2, 3].map((n) => new CryptoPool({ workers: n, inlineBelow: 1 }));
const inline = new CryptoPool({ workers: 0 });
const workers = pools[0]!;
/** The worker pool that splits a batch into up to `parts` parts (one per worker). */
const split = (parts: number) => pools[Math.min(parts, pools.length) - 1]!;

after(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

interface Rec {
  subjectId: string;
  recordId: string;
  keyVersion: number;
  fields: Array<{ name: string; category: string; value: unknown }>;
}

const text = fc.string({ unit: 'binary', maxLength: 40 });
const records = fc.array(
  fc.record({
    subjectId: text,
    recordId: text,
    keyVersion: fc.nat(),
    fields: fc.uniqueArray(
      fc.record({
        name: text,
        category: fc.constantFrom('user.contact.email', 'user.name.first', 'user.device.cookie_id'),
        value: fc.jsonValue(),
      }),
      { selector: (f) => f.name, maxLength: 5 },
    ),
  }),
  { minLength: 1, maxLength: 20 },
);

async function sealAll(
  pool: CryptoPool,
  key: Buffer,
  recs: readonly Rec[],
  parts: number,
): Promise<string[]> {
  const batch = new SealBatch();
  const k = batch.addKey(key);
  for (const r of recs) {
    batch.addRecord(k, r.subjectId, r.recordId, r.keyVersion);
    for (const f of r.fields) batch.addField(f.name, f.category, JSON.stringify(f.value) ?? 'null');
  }
  return (pool === workers ? split(parts) : pool).seal(batch);
}

async function openAll(
  pool: CryptoPool,
  key: Buffer,
  subjectId: string,
  recs: ReadonlyArray<{ recordId: string; keyVersion: number; fieldsJson: string }>,
  categories: readonly string[],
  parts: number,
) {
  const batch = new OpenBatch(categories);
  const k = batch.addKey(key);
  for (const r of recs) batch.addRecord(k, subjectId, r.recordId, r.keyVersion, r.fieldsJson);
  return (pool === workers ? split(parts) : pool).open(batch);
}

describe('crypto batches', () => {
  test('a worker seals what the single-value envelope opens, under the same binding', async () => {
    await fc.assert(
      fc.asyncProperty(records, fc.integer({ min: 1, max: 3 }), async (recs, parts) => {
        const key = randomBytes(32);
        const texts = await sealAll(workers, key, recs, parts);
        assert.equal(texts.length, recs.length);
        recs.forEach((r, i) => {
          const stored = JSON.parse(texts[i] ?? '') as Record<string, { c: string; v: string }>;
          assert.deepEqual(Object.keys(stored).sort(), r.fields.map((f) => f.name).sort());
          for (const f of r.fields) {
            const field = stored[f.name];
            assert.equal(field?.c, f.category);
            const binding = {
              subjectId: r.subjectId,
              recordId: r.recordId,
              field: f.name,
              keyVersion: r.keyVersion,
            };
            const plaintext = open(key, Buffer.from(field?.v ?? '', 'base64'), fieldAad(binding));
            assert.deepEqual(
              JSON.parse(plaintext.toString('utf8')),
              JSON.parse(JSON.stringify(f.value) ?? 'null'),
            );
          }
        });
      }),
      { numRuns: 30 },
    );
  });

  test('a worker opens values sealed one by one, and only the categories asked for', async () => {
    const key = randomBytes(32);
    const subjectId = 'subject-1';
    const recs = [1, 2, 3].map((n) => {
      const recordId = `record-${n}`;
      const fields: Record<string, { c: string; v: string }> = {};
      for (const [name, category, value] of [
        ['email', 'user.contact.email', `person-${n}@example.test`],
        ['cookie', 'user.device.cookie_id', { id: n }],
      ] as const) {
        const sealed = seal(
          key,
          Buffer.from(JSON.stringify(value)),
          fieldAad({ subjectId, recordId, field: name, keyVersion: 2 }),
        );
        fields[name] = { c: category, v: sealed.toString('base64') };
      }
      return { recordId, keyVersion: 2, fieldsJson: JSON.stringify(fields) };
    });
    for (const pool of [workers, inline]) {
      const opened = await openAll(pool, key, subjectId, recs, ['user.contact'], 2);
      assert.deepEqual(opened, [
        { email: { category: 'user.contact.email', value: 'person-1@example.test' } },
        { email: { category: 'user.contact.email', value: 'person-2@example.test' } },
        { email: { category: 'user.contact.email', value: 'person-3@example.test' } },
      ]);
      const none = await openAll(pool, key, subjectId, recs, ['user.financial'], 1);
      assert.deepEqual(none, [{}, {}, {}]);
    }
  });

  test('sealed on a worker, opened inline and the other way round, in any number of parts', async () => {
    await fc.assert(
      fc.asyncProperty(records, fc.integer({ min: 1, max: 4 }), async (recs, parts) => {
        const key = randomBytes(32);
        const subjectId = recs[0]?.subjectId ?? '';
        const same = recs.map((r) => ({ ...r, subjectId }));
        for (const [sealer, opener] of [
          [workers, inline],
          [inline, workers],
        ] as const) {
          const texts = await sealAll(sealer, key, same, parts);
          const opened = await openAll(
            opener,
            key,
            subjectId,
            same.map((r, i) => ({
              recordId: r.recordId,
              keyVersion: r.keyVersion,
              fieldsJson: texts[i] ?? '',
            })),
            ['user'],
            parts,
          );
          assert.deepEqual(
            opened,
            same.map((r) =>
              Object.fromEntries(
                r.fields.map((f) => [
                  f.name,
                  { category: f.category, value: JSON.parse(JSON.stringify(f.value) ?? 'null') as unknown },
                ]),
              ),
            ),
          );
        }
      }),
      { numRuns: 30 },
    );
  });

  test('a value moved to another record fails the batch with vault.decrypt_failed on a worker too', async () => {
    const key = randomBytes(32);
    const recs: Rec[] = ['a', 'b'].map((id) => ({
      subjectId: 's',
      recordId: id,
      keyVersion: 1,
      fields: [{ name: 'email', category: 'user.contact.email', value: `${id}@example.test` }],
    }));
    const [a, b] = await sealAll(workers, key, recs, 1);
    const swapped = [
      { recordId: 'a', keyVersion: 1, fieldsJson: b ?? '' },
      { recordId: 'b', keyVersion: 1, fieldsJson: a ?? '' },
    ];
    for (const pool of [workers, inline]) {
      await assert.rejects(openAll(pool, key, 's', swapped, ['user'], 1), (err: unknown) => {
        assert.ok(err instanceof PledgeError);
        assert.equal(err.code, 'vault.decrypt_failed');
        assert.ok(!err.message.includes('example.test'), 'the error quotes no value');
        return true;
      });
    }
  });

  test('a worker that cannot start leaves the pool running every batch inline', async () => {
    const broken = new CryptoPool({
      workers: 2,
      inlineBelow: 0,
      workerUrl: new URL('./no-such-crypto-worker.mjs', import.meta.url),
    });
    try {
      const key = randomBytes(32);
      const recs: Rec[] = [
        { subjectId: 's', recordId: 'r', keyVersion: 1, fields: [{ name: 'x', category: 'user', value: 1 }] },
      ];
      for (let i = 0; i < 3; i++) {
        const [sealed] = await sealAll(broken, key, recs, 2);
        const opened = await openAll(
          broken,
          key,
          's',
          [{ recordId: 'r', keyVersion: 1, fieldsJson: sealed ?? '' }],
          ['user'],
          1,
        );
        assert.deepEqual(opened, [{ x: { category: 'user', value: 1 } }]);
      }
      assert.equal(broken.workers, 0);
    } finally {
      await broken.close();
    }
  });
});
