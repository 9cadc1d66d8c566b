/**
 * A vault for tests on either engine: a migrated main database, a key store of its own, a fresh
 * keyring, and the example manifest in force.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AuditLog } from '../../src/audit/audit.service.js';
import { activateManifest, type ActiveManifest } from '../../src/manifest/manifest.service.js';
import { ManifestVersionRepository } from '../../src/manifest/manifest.repository.js';
import { createContext, type Context } from '../../src/platform/context.js';
import type { Database } from '../../src/platform/db/database.js';
import { DataKeysRepository } from '../../src/vault/data-keys.repository.js';
import { DataKeys, type DataKeysOptions } from '../../src/vault/data-keys.service.js';
import { Keyring } from '../../src/vault/keyring.js';
import { openKeystore } from '../../src/vault/keystore.js';
import { RecordsRepository } from '../../src/vault/records.repository.js';
import { SubjectsRepository } from '../../src/vault/subjects.repository.js';
import { Subjects } from '../../src/vault/subjects.service.js';
import { Vault, type VaultDeps } from '../../src/vault/vault.service.js';
import { ROOT } from './cli.js';
import {
  dropTestSchema,
  getTestDatabaseUrlOrThrow,
  openMigratedTestDatabase,
  openTestDatabase,
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
  /** The audit log of the test database. */
  audit: AuditLog;
  /** Subjects as other capabilities see them. */
  subjects: Subjects;
  active: ActiveManifest;
  /** Holds the key file (and, with SQLite, keys.db). */
  dataDir: string;
  ctx: Context;
  cleanup(): Promise<void>;
}

/** A key store opened by {@link openTestKeystore}. */
export interface TestKeystore {
  keystore: Database;
  /** Drops its PostgreSQL schema (if any) and closes it; the data directory is the caller's. */
  cleanup: () => Promise<void>;
}

/**
 * Opens a key store beside a test database, as `pledge serve` does beside the main one: on
 * PostgreSQL a schema of its own (`<schema>_keys`) on the test server, on SQLite keys.db in `dataDir`.
 */
export async function openTestKeystore(database: TestDatabase, dataDir: string): Promise<TestKeystore> {
  const schema = database.schema === undefined ? undefined : `${database.schema}_keys`;
  const keystore = await openKeystore({
    databaseUrl: database.dialect === 'postgres' ? getTestDatabaseUrlOrThrow() : undefined,
    dataDir,
    ...(schema !== undefined ? { schema } : {}),
  });
  return {
    keystore,
    async cleanup() {
      if (schema !== undefined) await dropTestSchema(keystore.kysely, schema);
      await keystore.close();
    },
  };
}

/** A test database, a key store beside it, and the data directory of the key file. */
export interface TestStores {
  database: TestDatabase;
  keystore: Database;
  /** A new directory for PLEDGE_DATA_DIR (the key file; on SQLite, keys.db). */
  dataDir: string;
  /** Closes both stores and deletes everything they held, the data directory included. */
  cleanup: () => Promise<void>;
}

/**
 * Opens an empty database on `dialect`, a data directory named `prefix...` and a key store beside
 * them ({@link openTestKeystore}): what an app under test runs on.
 */
export async function openTestStores(dialect: TestDialect, prefix: string): Promise<TestStores> {
  const database = await openTestDatabase(dialect);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), prefix));
  const { keystore, cleanup: closeKeystore } = await openTestKeystore(database, dataDir);
  return {
    database,
    keystore,
    dataDir,
    async cleanup() {
      await closeKeystore();
      await database.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Opens a vault on `dialect` with the example manifest in force. */
export async function openTestVault(dialect: TestDialect, options: DataKeysOptions = {}): Promise<TestVault> {
  const database = await openMigratedTestDatabase(dialect);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-vault-'));
  const { keystore, cleanup: closeKeystore } = await openTestKeystore(database, dataDir);
  const keyring = await Keyring.load({ dataDir });
  const ctx = createContext({ kind: 'cli', id: 'test' });
  const active = await activateManifest(ctx, {
    file: EXAMPLE_MANIFEST,
    versions: new ManifestVersionRepository(database.db),
  });
  const dataKeys = new DataKeys(new DataKeysRepository(keystore.db), keyring, options);
  const audit = AuditLog.over(database.db, keyring.use('log_subjects'));
  const subjects = new Subjects(new SubjectsRepository(database.db));
  const vault = newVault(database, {
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
    audit,
    subjects,
    active,
    dataDir,
    ctx,
    async cleanup() {
      await closeKeystore();
      await database.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * What a vault over `database` is built from, as createApp builds it (its repositories and audit log
 * on that database), with the rest from `deps`.
 */
export function vaultDeps(
  database: Pick<Database, 'db'>,
  deps: Omit<VaultDeps, 'db' | 'subjects' | 'records' | 'audit'>,
): VaultDeps {
  return {
    db: database.db,
    subjects: new SubjectsRepository(database.db),
    records: new RecordsRepository(database.db),
    audit: AuditLog.over(database.db, deps.keyring.use('log_subjects')),
    ...deps,
  };
}

/** A vault over `database` as createApp builds one ({@link vaultDeps}). */
export function newVault(
  database: Pick<Database, 'db'>,
  deps: Omit<VaultDeps, 'db' | 'subjects' | 'records' | 'audit'>,
): Vault {
  return new Vault(vaultDeps(database, deps));
}

/** A random e-mail address for a test subject. */
export function randomEmail(): string {
  // Letters only: a run of random digits can pass for a card number (Luhn holds one time in ten),
  // and the collection points rightly refuse a card number anywhere but the processor's field.
  return `person-${randomLetters(12)}@example.test`;
}

/** `n` random lower-case letters (no digits, so never mistaken for a card or phone number). */
export function randomLetters(n: number): string {
  return [...randomBytes(n)].map((b) => String.fromCharCode(97 + (b % 26))).join('');
}
