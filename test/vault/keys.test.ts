/**
 * KEK rotation on both engines: a new KEK version rewraps every data key and leaves every record
 * byte for byte as it was; an old version is retired (its key material gone from the key file) only
 * once nothing uses it; the key file stays 0600. With PLEDGE_KEYS nothing is rewrapped until the new
 * value is deployed. Then the data-key counter, and the `pledge keys` commands.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { PledgeError } from '../../src/platform/errors.js';
import { DataKeysRepository } from '../../src/vault/data-keys.repository.js';
import { DataKeys } from '../../src/vault/data-keys.service.js';
import { KeyRotationService } from '../../src/vault/key-rotation.service.js';
import { KEY_FILE_NAME, Keyring } from '../../src/vault/keyring.js';
import type { KeystoreTables } from '../../src/vault/vault.tables.js';
import type { ReadResult, Vault } from '../../src/vault/vault.service.js';
import { runPledge } from '../helpers/cli.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST, newVault, openTestVault, randomEmail, type TestVault } from '../helpers/vault.js';

interface Person {
  id: string;
  email: string;
  feedback: string;
}

/** Registers a person (one data key) and records a feedback message for them, through `vault`. */
async function register(t: TestVault, vault: Vault = t.vault): Promise<Person> {
  const id = randomUUID();
  const email = randomEmail();
  const feedback = `feedback from ${id}`;
  await vault.write(
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
      {
        subjectId: id,
        source: 'feedback',
        fields: { message: { category: 'user.feedback', value: feedback } },
      },
    ],
    { id, kind: 'customer', jurisdiction: 'US', identifiers: { email } },
  );
  return { id, email, feedback };
}

/** The key store's raw handle, for looking at what it holds. */
function keystoreTables(t: TestVault): Kysely<KeystoreTables> {
  return t.keystore.kysely as unknown as Kysely<KeystoreTables>;
}

/**
 * A vault as a freshly started instance has it: the keyring read from `keys` (default: the key
 * file), and no data key in memory, so every read unwraps from the key store.
 */
async function restartedVault(t: TestVault, keys: { envKeys?: string } = {}): Promise<Vault> {
  const keyring = await Keyring.load({ dataDir: t.dataDir, ...keys });
  return newVault(t.database, {
    dataKeys: new DataKeys(new DataKeysRepository(t.keystore.db), keyring),
    keyring,
    manifest: { manifest: t.active.manifest, versionId: t.active.version.id },
  });
}

/** Asserts that every person's records read back whole through `vault`. */
async function assertReadable(t: TestVault, vault: Vault, people: readonly Person[]): Promise<void> {
  for (const p of people) {
    const read = await vault.read(t.ctx, p.id, 'provide-service');
    assert.equal(read.unreadable, 0);
    assert.deepEqual(
      plainValues(read),
      plainValues([{ email: p.email, first_name: 'Ada' }, { message: p.feedback }]),
    );
  }
}

/**
 * The decrypted values of a read (or the expected values), in a stable order: records written in the
 * same millisecond come back in id order, which is random.
 */
function plainValues(from: ReadResult | Array<Record<string, unknown>>): string[] {
  const records = Array.isArray(from)
    ? from
    : from.records.map((r) => Object.fromEntries(Object.entries(r.fields).map(([k, f]) => [k, f.value])));
  return records.map((r) => JSON.stringify(r)).sort();
}

const snapshotRecords = (t: TestVault) =>
  tablesOf(t.database).selectFrom('records').selectAll().orderBy('id').execute();
const keyFile = (t: TestVault) => path.join(t.dataDir, KEY_FILE_NAME);
const modeOf = async (file: string) => (await stat(file)).mode & 0o777;

function rejectsWith(code: string, status: number) {
  return (err: unknown) => {
    assert.ok(err instanceof PledgeError, `expected a PledgeError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    return true;
  };
}

for (const dialect of DIALECTS) {
  describe(`KEK rotation on ${dialect}`, () => {
    let t: TestVault;
    let service: KeyRotationService;
    beforeEach(async () => {
      t = await openTestVault(dialect);
      service = new KeyRotationService({
        audit: t.audit,
        dataKeys: t.dataKeys,
        keys: { dataDir: t.dataDir },
      });
    });
    afterEach(async () => {
      await t.cleanup();
    });

    test('rotate rewraps every data key under the new KEK and leaves the records byte for byte as they were', async () => {
      const people = [await register(t), await register(t), await register(t), await register(t)];
      assert.equal(await modeOf(keyFile(t)), 0o600, 'the key file is created 0600');
      const before = await snapshotRecords(t);
      const wrappedBefore = await keystoreTables(t)
        .selectFrom('data_keys')
        .selectAll()
        .orderBy('subject_id')
        .execute();
      assert.deepEqual(await t.dataKeys.countByKek(t.ctx), new Map([[1, 4]]));

      const result = await service.rotate(t.ctx);
      assert.deepEqual(result, { newVersion: 2, rewrapped: 4 });
      assert.deepEqual(await t.dataKeys.countByKek(t.ctx), new Map([[2, 4]]));
      assert.deepEqual(await snapshotRecords(t), before, 'records are not touched');
      const wrappedAfter = await keystoreTables(t)
        .selectFrom('data_keys')
        .selectAll()
        .orderBy('subject_id')
        .execute();
      for (const [i, row] of wrappedAfter.entries()) assert.notEqual(row.wrapped, wrappedBefore[i]?.wrapped);
      assert.equal(await modeOf(keyFile(t)), 0o600, 'the key file stays 0600 after rotation');
      await assert.rejects(stat(`${keyFile(t)}.lock`), /ENOENT/, 'the lock is released');

      // This process (its data keys cached) and a restarted one (unwrapping with the new KEK) both read.
      await assertReadable(t, t.vault, people);
      await assertReadable(t, await restartedVault(t), people);
      const audit = await t.audit.listRecent(t.ctx, 10);
      assert.deepEqual(audit.find((e) => e.action === 'keys.rotate')?.details, {
        version: 2,
        rewrapped: 4,
        source: 'file',
      });
    });

    test('an instance started before a rotation reads keys rewrapped by another process', async () => {
      const people = [await register(t), await register(t)];
      // Another instance, started now, with the keyring of today and nothing cached.
      const keyring = await Keyring.load({ dataDir: t.dataDir });
      const other = newVault(t.database, {
        dataKeys: new DataKeys(new DataKeysRepository(t.keystore.db), keyring, {
          reloadKeyring: () => Keyring.load({ dataDir: t.dataDir }),
        }),
        keyring,
        manifest: { manifest: t.active.manifest, versionId: t.active.version.id },
      });
      await service.rotate(t.ctx);
      await service.retire(t.ctx, 1);
      // The other instance's keyring has only version 1, now retired: it reloads and reads on.
      await assertReadable(t, other, people);
    });

    test('retire removes the old key material from the key file once nothing uses it', async () => {
      const people = [await register(t), await register(t)];
      const oldKey = (JSON.parse(await readFile(keyFile(t), 'utf8')) as { keks: Array<{ key: string }> })
        .keks[0]?.key;
      assert.ok(oldKey !== undefined && oldKey.length === 44);
      await service.rotate(t.ctx);

      assert.deepEqual(await service.retire(t.ctx, 1), { version: 1, alreadyRetired: false });
      const text = await readFile(keyFile(t), 'utf8');
      assert.ok(!text.includes(oldKey), 'the old KEK is gone from the key file');
      const file = JSON.parse(text) as { keks: Array<{ version: number; key: string; retired_at?: string }> };
      assert.equal(file.keks[0]?.key, Buffer.alloc(32).toString('base64'));
      assert.ok(file.keks[0]?.retired_at !== undefined);
      assert.equal(await modeOf(keyFile(t)), 0o600, 'the key file stays 0600 after retirement');
      assert.deepEqual((await Keyring.load({ dataDir: t.dataDir })).activeVersions(), [2]);
      await assertReadable(t, await restartedVault(t), people);

      assert.deepEqual(await service.retire(t.ctx, 1), { version: 1, alreadyRetired: true });
      const status = await service.status(t.ctx);
      assert.equal(status.source, 'file');
      assert.equal(status.currentVersion, 2);
      assert.deepEqual(
        status.versions.map((v) => [v.version, v.current, v.retiredAt !== undefined, v.dataKeys]),
        [
          [1, false, true, 0],
          [2, true, false, 2],
        ],
      );
    });

    test('retire refuses a version that still wraps a data key, the current version and an unknown one', async () => {
      await register(t);
      const staleKeyring = t.keyring;
      await service.rotate(t.ctx);
      // An instance not yet restarted still has KEK 1 as current and wraps a new subject's key with it.
      const stale = newVault(t.database, {
        dataKeys: new DataKeys(new DataKeysRepository(t.keystore.db), staleKeyring),
        keyring: staleKeyring,
        manifest: { manifest: t.active.manifest, versionId: t.active.version.id },
      });
      const late = await register(t, stale);
      const fileBefore = await readFile(keyFile(t), 'utf8');

      await assert.rejects(service.retire(t.ctx, 1), (err: unknown) => {
        rejectsWith('vault.kek_in_use', 409)(err);
        assert.deepEqual((err as PledgeError).details, { version: 1, dataKeys: 1 });
        return true;
      });
      assert.equal(await readFile(keyFile(t), 'utf8'), fileBefore, 'a refused retirement changes nothing');
      await assert.rejects(service.retire(t.ctx, 2), rejectsWith('vault.kek_current', 409));
      await assert.rejects(service.retire(t.ctx, 9), rejectsWith('vault.kek_missing', 404));

      assert.deepEqual(await service.rewrap(t.ctx), { currentVersion: 2, rewrapped: 1 });
      assert.deepEqual(await service.retire(t.ctx, 1), { version: 1, alreadyRetired: false });
      await assertReadable(t, await restartedVault(t), [late]);
    });

    test('a second `pledge keys` change while one holds the lock is refused and changes nothing', async () => {
      await register(t);
      const before = await readFile(keyFile(t), 'utf8');
      await writeFile(`${keyFile(t)}.lock`, '12345\n');
      await assert.rejects(service.rotate(t.ctx), rejectsWith('vault.keys_locked', 409));
      await assert.rejects(service.retire(t.ctx, 1), rejectsWith('vault.keys_locked', 409));
      assert.equal(await readFile(keyFile(t), 'utf8'), before);
      assert.deepEqual(await t.dataKeys.countByKek(t.ctx), new Map([[1, 1]]));
    });

    test('with PLEDGE_KEYS, rotate returns the new value and rewraps only once it is deployed', async () => {
      const people = [await register(t), await register(t), await register(t)];
      const envKeys = await readFile(keyFile(t), 'utf8');
      const noFileDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-env-keys-'));
      try {
        const before = await snapshotRecords(t);
        const withEnv = (keys: string) =>
          new KeyRotationService({
            audit: t.audit,
            dataKeys: t.dataKeys,
            keys: { dataDir: noFileDir, envKeys: keys },
          });

        const rotated = await withEnv(envKeys).rotate(t.ctx);
        assert.equal(rotated.newVersion, 2);
        assert.equal(rotated.rewrapped, 0);
        assert.ok(rotated.keys !== undefined);
        assert.deepEqual(
          await t.dataKeys.countByKek(t.ctx),
          new Map([[1, 3]]),
          'nothing is wrapped under an undeployed KEK',
        );
        await assert.rejects(stat(path.join(noFileDir, KEY_FILE_NAME)), /ENOENT/, 'no key file is written');

        // The operator sets PLEDGE_KEYS to the new value everywhere, then rewraps.
        assert.deepEqual(await withEnv(rotated.keys).rewrap(t.ctx), { currentVersion: 2, rewrapped: 3 });
        assert.deepEqual(await t.dataKeys.countByKek(t.ctx), new Map([[2, 3]]));
        assert.deepEqual(await snapshotRecords(t), before);
        await assertReadable(t, await restartedVault(t, { envKeys: rotated.keys }), people);

        const retired = await withEnv(rotated.keys).retire(t.ctx, 1);
        assert.ok(retired.keys !== undefined);
        const oldKey = (JSON.parse(envKeys) as { keks: Array<{ key: string }> }).keks[0]?.key ?? '';
        assert.ok(!retired.keys.includes(oldKey), 'the new value has no old key material');
        await assertReadable(t, await restartedVault(t, { envKeys: retired.keys }), people);
        // The value also works base64-encoded on one line, as `pledge keys rotate` prints it.
        const oneLine = Buffer.from(retired.keys).toString('base64');
        assert.deepEqual(
          (await Keyring.load({ dataDir: noFileDir, envKeys: oneLine })).activeVersions(),
          [2],
        );
      } finally {
        await rm(noFileDir, { recursive: true, force: true });
      }
    });
  });

  describe(`data-key counter on ${dialect}`, () => {
    let t: TestVault;
    beforeEach(async () => {
      t = await openTestVault(dialect, { rotateAfter: 10, reserveBlock: 4 });
    });
    afterEach(async () => {
      await t.cleanup();
    });

    test('a data key is replaced before its limit, and every record still decrypts, across a KEK rotation too', async () => {
      const person = await register(t);
      const messages: string[] = [];
      for (let i = 0; i < 30; i++) {
        const message = `message ${i}`;
        messages.push(message);
        await t.vault.write(t.ctx, [
          {
            subjectId: person.id,
            source: 'feedback',
            fields: { message: { category: 'user.feedback', value: message } },
          },
        ]);
      }
      const versions = await keystoreTables(t)
        .selectFrom('data_keys')
        .select('version')
        .where('subject_id', '=', person.id)
        .execute();
      assert.ok(
        versions.length >= 4,
        `33 encryptions at 10 per key need at least 4 keys (got ${versions.length})`,
      );
      // The limit holds for what was really encrypted: count the sealed fields under each key version.
      const rows = await tablesOf(t.database)
        .selectFrom('records')
        .select(['key_version', 'fields'])
        .execute();
      const perKey = new Map<number, number>();
      for (const r of rows)
        perKey.set(
          r.key_version,
          (perKey.get(r.key_version) ?? 0) + Object.keys(JSON.parse(r.fields) as object).length,
        );
      for (const [version, n] of perKey) assert.ok(n <= 10, `data key ${version} encrypted ${n} values`);

      const expected = [
        { email: person.email, first_name: 'Ada' },
        { message: person.feedback },
        ...messages.map((message) => ({ message })),
      ];
      const readAll = async (vault: Vault) => {
        const read = await vault.read(t.ctx, person.id, 'provide-service');
        assert.equal(read.unreadable, 0);
        return plainValues(read);
      };
      assert.deepEqual(await readAll(t.vault), plainValues(expected));

      const rotation = new KeyRotationService({
        audit: t.audit,
        dataKeys: t.dataKeys,
        keys: { dataDir: t.dataDir },
      });
      assert.equal((await rotation.rotate(t.ctx)).rewrapped, versions.length);
      assert.deepEqual(await readAll(await restartedVault(t)), plainValues(expected));
    });
  });
}

describe('pledge keys status|rotate|rewrap|retire', () => {
  let dataDir: string;
  const env = { DATABASE_URL: '', PLEDGE_KEYS: '', PLEDGE_LOG_LEVEL: 'silent' };
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-keys-cli-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test('rotate, status and retire work on a data directory, beside the API-key commands', async () => {
    // Two subjects, written by an app on the data directory as `pledge serve` would.
    const app = await createApp({
      ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' }, { manifest: EXAMPLE_MANIFEST }),
      retentionIntervalSeconds: 0,
    });
    const ctx = createContext({ kind: 'cli', id: 'test' });
    for (let i = 0; i < 2; i++) {
      const id = randomUUID();
      const email = randomEmail();
      await app.vault.write(
        ctx,
        [
          {
            subjectId: id,
            source: 'registration',
            fields: { email: { category: 'user.contact.email', value: email } },
          },
        ],
        { id, kind: 'customer', jurisdiction: undefined, identifiers: { email } },
      );
    }
    await app.close();

    const rotate = await runPledge(['keys', 'rotate', '--data-dir', dataDir], { env });
    assert.equal(rotate.code, 0, rotate.stderr);
    assert.match(rotate.stdout, /KEK version 2 is current; 2 data keys rewrapped/);
    assert.match(rotate.stderr, /restart every `pledge serve`/);

    const status = await runPledge(['keys', 'status', '--data-dir', dataDir, '--format', 'json'], { env });
    assert.equal(status.code, 0, status.stderr);
    const json = JSON.parse(status.stdout) as {
      currentVersion: number;
      versions: Array<{ status: string; dataKeys: number }>;
    };
    assert.equal(json.currentVersion, 2);
    assert.deepEqual(
      json.versions.map((v) => [v.status, v.dataKeys]),
      [
        ['active', 0],
        ['current', 2],
      ],
    );
    assert.ok(!status.stdout.includes('"key"'), 'status never shows key material');

    const refused = await runPledge(['keys', 'retire', '2', '--data-dir', dataDir], { env });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /current one; rotate first/);

    const retire = await runPledge(['keys', 'retire', '1', '--data-dir', dataDir], { env });
    assert.equal(retire.code, 0, retire.stderr);
    assert.match(retire.stdout, /KEK version 1 is retired/);

    const text = await runPledge(['keys', 'status', '--data-dir', dataDir], { env });
    assert.match(text.stdout, /^1\s+retired/m);
    assert.match(text.stdout, /^2\s+current\s+\S+\s+-\s+2$/m);

    const list = await runPledge(['keys', 'list', '--data-dir', dataDir], { env });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stderr, /no API keys yet/);
  });
});
