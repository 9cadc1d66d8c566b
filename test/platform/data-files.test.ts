/**
 * Data files and where the keys live: the SQLite databases (with their WAL and shared-memory files)
 * and the key file are 0600 and their folder 0700, whether the folder existed or not; the key store
 * can live in a backup unit of its own (PLEDGE_KEYSTORE_URL: a SQLite path or a PostgreSQL
 * database), and what still shares one with the data is named at start, with no key material.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { ConfigError } from '../../src/platform/errors.js';
import { openDatabase } from '../../src/platform/db/database.js';
import { KEY_FILE_NAME, Keyring } from '../../src/vault/keyring.js';
import { keyFileDirOf, openKeystore, sharedBackupUnits } from '../../src/vault/keystore.js';
import { dropTestSchema, getTestDatabaseUrlOrThrow } from '../helpers/databases.js';
import { captureLogs } from '../helpers/logs.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';

async function modeOf(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}

describe('data files', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'pledge-files-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  for (const existed of [true, false]) {
    test(`the database, its WAL and the key file are 0600 and the folder 0700 (folder ${existed ? 'made beforehand, 0755' : 'made by Pledge'})`, async () => {
      const dataDir = path.join(root, 'data');
      if (existed) await mkdir(dataDir, { mode: 0o755 });
      const database = await openDatabase({ dataDir });
      try {
        // A write makes SQLite create the write-ahead log and its shared memory.
        await database.kysely.schema.createTable('t').addColumn('x', 'integer').execute();
        const keyring = await Keyring.load({ dataDir });
        assert.equal(keyring.source.kind, 'file');
        assert.equal(await modeOf(dataDir), 0o700);
        for (const name of ['pledge.db', 'pledge.db-wal', 'pledge.db-shm', KEY_FILE_NAME]) {
          assert.equal(await modeOf(path.join(dataDir, name)), 0o600, name);
        }
      } finally {
        await database.close();
      }
    });
  }

  test('PLEDGE_KEYSTORE_URL as a SQLite path puts the key store and the key file there, apart from the data', async () => {
    const dataDir = path.join(root, 'data');
    const keysPath = path.join(root, 'keys-volume', 'keystore.db');
    const config = loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_KEYSTORE_URL: keysPath });
    assert.equal(config.keystoreUrl, keysPath);
    const keystore = await openKeystore(config);
    try {
      await Keyring.load({ dataDir: keyFileDirOf(config) });
      assert.equal(await modeOf(keysPath), 0o600);
      assert.equal(await modeOf(path.dirname(keysPath)), 0o700);
      await assert.rejects(stat(path.join(dataDir, 'keys.db')), { code: 'ENOENT' });
      assert.ok((await readFile(path.join(path.dirname(keysPath), KEY_FILE_NAME), 'utf8')).includes('keks'));
      assert.deepEqual(sharedBackupUnits({ ...config, keysFromEnv: false }), []);
    } finally {
      await keystore.close();
    }
  });

  test('PLEDGE_KEYSTORE_URL as a PostgreSQL database holds the key store while the data is in SQLite', async () => {
    const url = getTestDatabaseUrlOrThrow();
    const dataDir = path.join(root, 'data');
    const config = loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_KEYSTORE_URL: url });
    const schema = `keystore_${process.pid}_${Date.now()}`;
    const keystore = await openKeystore({ ...config, schema });
    try {
      assert.equal(keystore.dialect, 'postgres');
      await assert.rejects(stat(path.join(dataDir, 'keys.db')), { code: 'ENOENT' });
      // The key file still sits in the data directory unless PLEDGE_KEYS holds it.
      assert.deepEqual(sharedBackupUnits({ ...config, keysFromEnv: true }), []);
      assert.deepEqual(sharedBackupUnits({ ...config, keysFromEnv: false }), [
        'the key file is in the data directory',
      ]);
    } finally {
      await dropTestSchema(keystore.kysely, schema);
      await keystore.close();
    }
  });

  test('what shares a backup unit with the data is named: by default, the key store and the key file', () => {
    const dataDir = path.join(root, 'data');
    const sqlite = sharedBackupUnits({
      databaseUrl: undefined,
      keystoreUrl: undefined,
      dataDir,
      keysFromEnv: false,
    });
    assert.equal(sqlite.length, 2);
    assert.match(sqlite[0] ?? '', /keys\.db\) is in the data directory/);
    const pg = 'postgres://u@db:5432/pledge';
    assert.deepEqual(
      sharedBackupUnits({ databaseUrl: pg, keystoreUrl: undefined, dataDir, keysFromEnv: true }),
      ["the key store (schema pledge_keystore) is in the data's PostgreSQL database"],
    );
    assert.deepEqual(sharedBackupUnits({ databaseUrl: pg, keystoreUrl: pg, dataDir, keysFromEnv: true }), [
      'PLEDGE_KEYSTORE_URL names the place the data is in',
    ]);
    assert.deepEqual(
      sharedBackupUnits({
        databaseUrl: pg,
        keystoreUrl: 'postgres://u@keys:5432/keys',
        dataDir,
        keysFromEnv: true,
      }),
      [],
    );
  });

  test('a PLEDGE_KEYSTORE_URL that is neither a PostgreSQL URL nor a SQLite file stops the boot, saying so', () => {
    for (const value of ['mysql://u@h/keys', '/secure/keys/']) {
      assert.throws(
        () => loadConfig({ PLEDGE_KEYSTORE_URL: value }),
        (err: unknown) => err instanceof ConfigError && /PLEDGE_KEYSTORE_URL must/.test(err.message),
      );
    }
  });

  test('pledge serve warns at start, naming places and no key, when keys and data share a backup unit', async () => {
    const dataDir = path.join(root, 'data');
    const start = async (env: Record<string, string>) => {
      const { logStream, logs } = captureLogs();
      const config = {
        ...loadConfig(
          { PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'info', ...env },
          { manifest: EXAMPLE_MANIFEST },
        ),
        retentionIntervalSeconds: 0,
      };
      const app = await createApp(config, { logStream });
      const keyring = app.keyring;
      await app.close();
      return { text: logs(), keyring };
    };
    const shared = await start({});
    const warning = shared.text.split('\n').find((l) => l.includes('share a backup unit'));
    assert.ok(warning, shared.text);
    assert.match(warning, /keys\.db\) is in the data directory/);
    assert.match(warning, /the key file is in the data directory/);
    for (const secret of [shared.keyring.indexKey, shared.keyring.currentKek().key]) {
      assert.ok(!shared.text.includes(secret.toString('base64')), 'no key material in the log');
    }

    const apart = await start({
      PLEDGE_KEYSTORE_URL: path.join(root, 'keys-volume', 'keys.db'),
      PLEDGE_KEYS: shared.keyring.serialize(),
    });
    assert.doesNotMatch(apart.text, /share a backup unit/);
  });
});
