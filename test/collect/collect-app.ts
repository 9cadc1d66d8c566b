/**
 * An application for collection tests on either engine: the example manifest, a key store of its
 * own (a separate PostgreSQL schema, as test/helpers/vault.ts opens it), captured logs, and an API
 * key that may collect and read subjects.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createApp, type App, type AppOptions } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import type { Database } from '../../src/platform/db/database.js';
import { openKeystore } from '../../src/vault/keystore.js';
import {
  dropTestSchema,
  openTestDatabase,
  TEST_DATABASE_URL,
  type TestDatabase,
  type TestDialect,
} from '../helpers/databases.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';

/** A running app and what a test inspects. */
export interface CollectTestApp {
  app: App;
  database: TestDatabase;
  keystore: Database;
  dataDir: string;
  /** Bearer key with collect:write and subjects:read. */
  key: string;
  /** Everything logged so far. */
  logs(): string;
  /** Another app on the same databases with other settings (closed by cleanup). */
  sibling(overrides: Partial<Config>, options?: AppOptions): Promise<App>;
  cleanup(): Promise<void>;
}

/** The configuration collection tests use; `overrides` win. */
export function configFor(dataDir: string, overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'info' }, { manifest: EXAMPLE_MANIFEST }),
    retentionIntervalSeconds: 0,
    ...overrides,
  };
}

/** Opens an app on `dialect` with the example manifest. */
export async function openCollectApp(
  dialect: TestDialect,
  options: AppOptions = {},
): Promise<CollectTestApp> {
  const database = await openTestDatabase(dialect);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-collect-'));
  const keystoreSchema = database.schema === undefined ? undefined : `${database.schema}_keys`;
  const keystore = await openKeystore({
    databaseUrl: dialect === 'postgres' ? TEST_DATABASE_URL : undefined,
    dataDir,
    ...(keystoreSchema !== undefined ? { schema: keystoreSchema } : {}),
  });
  let logs = '';
  const logStream = new PassThrough();
  logStream.on('data', (d: Buffer) => (logs += d.toString('utf8')));
  const app = await createApp(configFor(dataDir), { database, keystore, logStream, ...options });
  const ctx = createContext({ kind: 'cli', user: 'test' });
  const { key } = await app.apiKeys.createKey(ctx, {
    name: 'collector',
    scopes: ['collect:write', 'subjects:read'],
  });
  const siblings: App[] = [];
  return {
    app,
    database,
    keystore,
    dataDir,
    key,
    logs: () => logs,
    async sibling(overrides, siblingOptions = {}) {
      const other = await createApp(configFor(dataDir, overrides), {
        database,
        keystore,
        logStream,
        ...siblingOptions,
      });
      siblings.push(other);
      return other;
    },
    async cleanup() {
      for (const s of siblings) await s.close();
      await app.close();
      if (keystoreSchema !== undefined) {
        await dropTestSchema(keystore.db, keystoreSchema);
      }
      await keystore.close();
      await database.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** How many rows a table holds. */
export async function countRows(
  database: Database,
  table: 'records' | 'subjects' | 'audit_events' | 'subject_identifiers',
): Promise<number> {
  const row = await database.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
