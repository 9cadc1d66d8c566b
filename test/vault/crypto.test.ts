/**
 * The envelope under attack, property by property: whatever goes in comes out under its own key and
 * binding, and nothing else opens. A ciphertext moved to another record, field, subject or key
 * version, cut short, or changed by one bit, fails with `vault.decrypt_failed` every time; so does a
 * wrapped data key moved to another subject, version or KEK. Then the same on stored rows, on both
 * engines: a sealed value copied into another record makes the read fail instead of lying.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { PledgeError } from '../../src/platform/errors.js';
import {
  dataKeyAad,
  fieldAad,
  generateKey,
  open,
  seal,
  type FieldBinding,
} from '../../src/vault/vault.crypto.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { openTestVault, randomEmail, type TestVault } from '../helpers/vault.js';

const RUNS = { numRuns: 500 };

const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b));
const bytes = fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b));
const binding: fc.Arbitrary<FieldBinding> = fc.record({
  subjectId: fc.string({ unit: 'binary' }),
  recordId: fc.string({ unit: 'binary' }),
  field: fc.string({ unit: 'binary' }),
  keyVersion: fc.nat(),
});

/** Asserts that `work` throws `vault.decrypt_failed`. */
function failsToDecrypt(work: () => unknown): void {
  assert.throws(work, (err: unknown) => {
    assert.ok(err instanceof PledgeError, `expected a PledgeError, got ${String(err)}`);
    assert.equal(err.code, 'vault.decrypt_failed');
    return true;
  });
}

/** `b` with one part replaced by a different value. */
const bindingAndAnotherPart = fc
  .tuple(binding, fc.constantFrom('subjectId', 'recordId', 'field', 'keyVersion'), fc.string(), fc.nat())
  .filter(([b, part, text, n]) => (part === 'keyVersion' ? b.keyVersion !== n : b[part] !== text))
  .map(([b, part, text, n]): [FieldBinding, FieldBinding] => [
    b,
    part === 'keyVersion' ? { ...b, keyVersion: n } : { ...b, [part]: text },
  ]);

describe('the envelope (AES-256-GCM with a bound AAD)', () => {
  test('seal then open gives back any bytes, under any binding', () => {
    fc.assert(
      fc.property(key32, bytes, binding, (key, plaintext, b) => {
        const sealed = seal(key, plaintext, fieldAad(b));
        assert.equal(sealed.length, 1 + 12 + plaintext.length + 16);
        assert.deepEqual(open(key, sealed, fieldAad(b)), plaintext);
      }),
      RUNS,
    );
  });

  test('a field value round-trips any JSON value', () => {
    fc.assert(
      fc.property(key32, fc.jsonValue(), binding, (key, value, b) => {
        const sealed = seal(key, Buffer.from(JSON.stringify(value), 'utf8'), fieldAad(b));
        const opened: unknown = JSON.parse(open(key, sealed, fieldAad(b)).toString('utf8'));
        assert.deepEqual(opened, JSON.parse(JSON.stringify(value)));
      }),
      RUNS,
    );
  });

  test('a ciphertext moved to another record, field, subject or key version never opens', () => {
    fc.assert(
      fc.property(key32, bytes, bindingAndAnotherPart, (key, plaintext, [b, moved]) => {
        const sealed = seal(key, plaintext, fieldAad(b));
        failsToDecrypt(() => open(key, sealed, fieldAad(moved)));
      }),
      RUNS,
    );
  });

  test('no two different bindings share an AAD (parts cannot be shifted from one to the next)', () => {
    fc.assert(
      fc.property(
        binding,
        binding,
        (a, b) => JSON.stringify(a) === JSON.stringify(b) || !fieldAad(a).equals(fieldAad(b)),
      ),
      RUNS,
    );
    // The classic ambiguity of plain concatenation: "ab" + "c" against "a" + "bc".
    const key = generateKey();
    const sealed = seal(
      key,
      Buffer.from('x'),
      fieldAad({ subjectId: 's', recordId: 'ab', field: 'c', keyVersion: 1 }),
    );
    failsToDecrypt(() =>
      open(key, sealed, fieldAad({ subjectId: 's', recordId: 'a', field: 'bc', keyVersion: 1 })),
    );
  });

  test('any truncation of a sealed value fails', () => {
    fc.assert(
      fc.property(
        key32,
        bytes,
        binding,
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (key, plaintext, b, cut) => {
          const sealed = seal(key, plaintext, fieldAad(b));
          const length = Math.floor(cut * sealed.length);
          failsToDecrypt(() => open(key, sealed.subarray(0, length), fieldAad(b)));
        },
      ),
      RUNS,
    );
  });

  test('a single bit flipped anywhere (format, nonce, body, tag) fails', () => {
    fc.assert(
      fc.property(
        key32,
        bytes,
        binding,
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (key, plaintext, b, position, bit) => {
          const sealed = seal(key, plaintext, fieldAad(b));
          const tampered = Buffer.from(sealed);
          const at = position % tampered.length;
          tampered[at] = (tampered[at] ?? 0) ^ (1 << bit);
          failsToDecrypt(() => open(key, tampered, fieldAad(b)));
        },
      ),
      RUNS,
    );
    // And every bit of one short value, exhaustively: no position is left unauthenticated.
    const key = generateKey();
    const aad = fieldAad({ subjectId: 's', recordId: 'r', field: 'f', keyVersion: 1 });
    const sealed = seal(key, Buffer.from('four'), aad);
    for (let i = 0; i < sealed.length * 8; i++) {
      const tampered = Buffer.from(sealed);
      tampered[i >> 3] = (tampered[i >> 3] ?? 0) ^ (1 << (i & 7));
      failsToDecrypt(() => open(key, tampered, aad));
    }
  });

  test('any other key fails, including keys of the wrong length', () => {
    fc.assert(
      fc.property(
        fc.tuple(key32, key32).filter(([a, b]) => !a.equals(b)),
        bytes,
        binding,
        ([key, other], plaintext, b) => {
          failsToDecrypt(() => open(other, seal(key, plaintext, fieldAad(b)), fieldAad(b)));
        },
      ),
      RUNS,
    );
    const sealed = seal(generateKey(), Buffer.from('x'), Buffer.alloc(0));
    failsToDecrypt(() => open(Buffer.alloc(16), sealed, Buffer.alloc(0)));
    assert.throws(() => seal(Buffer.alloc(31), Buffer.from('x'), Buffer.alloc(0)), {
      code: 'vault.key_invalid',
    });
  });

  test('every seal uses a fresh nonce: the same value twice gives two different ciphertexts', () => {
    const key = generateKey();
    const aad = fieldAad({ subjectId: 's', recordId: 'r', field: 'f', keyVersion: 1 });
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) seen.add(seal(key, Buffer.from('same'), aad).toString('hex'));
    assert.equal(seen.size, 1000);
  });

  test('a wrapped data key opens only for its own subject, data-key version and KEK version', () => {
    const wrapping = fc.record({ subject: fc.string(), version: fc.nat(), kek: fc.nat() });
    fc.assert(
      fc.property(
        key32,
        key32,
        fc.tuple(wrapping, wrapping).filter(([a, b]) => JSON.stringify(a) !== JSON.stringify(b)),
        (kek, dataKey, [a, b]) => {
          const wrapped = seal(kek, dataKey, dataKeyAad(a.subject, a.version, a.kek));
          assert.deepEqual(open(kek, wrapped, dataKeyAad(a.subject, a.version, a.kek)), dataKey);
          failsToDecrypt(() => open(kek, wrapped, dataKeyAad(b.subject, b.version, b.kek)));
        },
      ),
      RUNS,
    );
    // A wrapped data key is never mistaken for a field value with the same parts, nor the reverse.
    const kek = generateKey();
    const wrapped = seal(kek, generateKey(), dataKeyAad('s', 1, 1));
    failsToDecrypt(() =>
      open(kek, wrapped, fieldAad({ subjectId: 's', recordId: '1', field: '1', keyVersion: 1 })),
    );
  });
});

for (const dialect of DIALECTS) {
  describe(`sealed values at rest on ${dialect}`, () => {
    let t: TestVault;
    before(async () => {
      // A new data key every two encryptions, so a subject soon has several key versions.
      t = await openTestVault(dialect, { rotateAfter: 2, reserveBlock: 1 });
    });
    after(async () => {
      await t.cleanup();
    });

    async function register(): Promise<string> {
      const id = randomUUID();
      const email = randomEmail();
      await t.vault.write(
        t.ctx,
        [
          {
            subjectId: id,
            source: 'registration',
            fields: {
              email: { category: 'user.contact.email', value: email },
              first_name: { category: 'user.name.first', value: 'Ada' },
            },
          },
        ],
        { id, kind: 'customer', jurisdiction: 'US', identifiers: { email } },
      );
      return id;
    }

    const fieldsOf = async (subjectId: string) =>
      await tablesOf(t.database)
        .selectFrom('records')
        .select(['id', 'fields'])
        .where('subject_id', '=', subjectId)
        .where('source', '=', 'registration')
        .executeTakeFirstOrThrow();

    async function setFields(recordId: string, fields: Record<string, { c: string; v: string }>) {
      await tablesOf(t.database)
        .updateTable('records')
        .set({ fields: JSON.stringify(fields) })
        .where('id', '=', recordId)
        .execute();
    }

    test('a sealed value swapped into another field of the same record fails to read', async () => {
      const id = await register();
      const row = await fieldsOf(id);
      const fields = JSON.parse(row.fields) as Record<string, { c: string; v: string }>;
      const { email, first_name: name } = fields;
      assert.ok(email && name);
      await setFields(row.id, {
        ...fields,
        email: { ...email, v: name.v },
        first_name: { ...name, v: email.v },
      });
      await assert.rejects(t.vault.read(t.ctx, id, 'provide-service'), { code: 'vault.decrypt_failed' });
    });

    test("a sealed value copied from another subject's record fails to read", async () => {
      const victim = await register();
      const attacker = await register();
      const from = JSON.parse((await fieldsOf(victim)).fields) as Record<string, { c: string; v: string }>;
      const row = await fieldsOf(attacker);
      await setFields(row.id, from);
      await assert.rejects(t.vault.read(t.ctx, attacker, 'provide-service'), {
        code: 'vault.decrypt_failed',
      });
    });

    test("a record pointed at another of its subject's key versions fails to read", async () => {
      const id = await register();
      // Two more encryptions than the first key allows: the feedback is sealed under key version 2.
      await t.vault.write(t.ctx, [
        {
          subjectId: id,
          source: 'feedback',
          fields: { message: { category: 'user.feedback', value: 'hi' } },
        },
      ]);
      const versions = await tablesOf(t.database)
        .selectFrom('records')
        .select(['source', 'key_version'])
        .where('subject_id', '=', id)
        .orderBy('source')
        .execute();
      assert.deepEqual(
        versions.map((v) => [v.source, v.key_version]),
        [
          ['feedback', 2],
          ['registration', 1],
        ],
      );
      const row = await fieldsOf(id);
      await tablesOf(t.database)
        .updateTable('records')
        .set({ key_version: 2 })
        .where('id', '=', row.id)
        .execute();
      await assert.rejects(t.vault.read(t.ctx, id, 'provide-service'), { code: 'vault.decrypt_failed' });
    });
  });
}
