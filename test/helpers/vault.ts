/**
 * A vault for tests on either engine: a migrated main database, a key store of its own, a fresh
 * keyring, and the example manifest in force.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { activateManifest, type ActiveManifest } from '../../src/manifest/manifest.service.js';
import { ManifestVersionRepository } from '../../src/manifest/manifest.repository.js';
import { createContext, type Context } from '../../src/platform/context.js';
import type { Database } from '../../src/platform/db/database.js';
import { DataKeysRepository } from '../../src/vault/data-keys.repository.js';
import { DataKeys, type DataKeysOptions } from '../../src/vault/data-keys.service.js';
import { Keyring } from '../../src/vault/keyring.js';
import { openKeystore } from '../../src/vault/keystore.js';
import { Vault } from '../../src/vault/vault.service.js';
import { ROOT } from './cli.js';
import {
  dropTestSchema,
  openMigratedTestDatabase,
  TEST_DATABASE_URL,
  type TestDatabase,
  type TestDialect,
} from './databases.js';

/** The example manifest's path. */
export const EXAMPLE_MANIFEST = path.join(ROOT, 'examples/example-online/pledge.yaml');

/** Everything a vault test needs. */
export interface TestVault {
  dialect: TestDialect;
  database: TestDatabase;
  keystore: Database;
  keyring: Keyring;
  dataKeys: DataKeys;
  vault: Vault;
  active: ActiveManifest;
  /** Holds the key file (and, with SQLite, keys.db). */
  dataDir: string;
  ctx: Context;
  cleanup(): Promise<void>;
}

/** Opens a vault on `dialect` with the example manifest in force. */
export async function openTestVault(dialect: TestDialect, options: DataKeysOptions = {}): Promise<TestVault> {
  const database = await openMigratedTestDatabase(dialect);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-vault-'));
  const keystoreSchema = database.schema === undefined ? undefined : `${database.schema}_keys`;
  const keystore = await openKeystore({
    databaseUrl: dialect === 'postgres' ? TEST_DATABASE_URL : undefined,
    dataDir,
    ...(keystoreSchema !== undefined ? { schema: keystoreSchema } : {}),
  });
  const keyring = await Keyring.load({ dataDir });
  const ctx = createContext({ kind: 'cli', user: 'test' });
  const active = await activateManifest(ctx, {
    file: EXAMPLE_MANIFEST,
    versions: new ManifestVersionRepository(database.db),
  });
  const dataKeys = new DataKeys(new DataKeysRepository(keystore.db), keyring, options);
  const vault = new Vault({
    db: database.db,
    dataKeys,
    keyring,
    manifest: { manifest: active.manifest, versionId: active.version.id },
  });
  return {
    dialect,
    database,
    keystore,
    keyring,
    dataKeys,
    vault,
    active,
    dataDir,
    ctx,
    async cleanup() {
      if (keystoreSchema !== undefined) {
        await dropTestSchema(keystore.db, keystoreSchema);
      }
      await keystore.close();
      await database.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A random e-mail address for a test subject. */
export function randomEmail(): string {
  return `person-${randomBytes(6).toString('hex')}@example.test`;
}
