/**
 * An application for collection tests on either engine: the example manifest (with a system that
 * may use every purpose and source), a key store of its
 * own (a separate PostgreSQL schema, as test/helpers/vault.ts opens it), captured logs, and an API
 * key that may collect and read subjects.
 */
import { captureLogs } from '../helpers/logs.js';
import { createApp, type App, type AppOptions } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import type { Database } from '../../src/platform/db/database.js';
import { tablesOf, type TestDatabase, type TestDialect } from '../helpers/databases.js';
import { exampleWithTestSystem, TEST_SYSTEM } from '../helpers/manifests.js';
import { openTestStores } from '../helpers/vault.js';

/** A running app and what a test inspects. */
export interface CollectTestApp {
  app: App;
  database: TestDatabase;
  keystore: Database;
  dataDir: string;
  /** Bearer key with collect:write, subjects:read and manifest:read. */
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
    ...loadConfig(
      { PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'info' },
      { manifest: exampleWithTestSystem() },
    ),
    retentionIntervalSeconds: 0,
    ...overrides,
  };
}

/** Opens an app on `dialect` with the example manifest. */
export async function openCollectApp(
  dialect: TestDialect,
  options: AppOptions = {},
): Promise<CollectTestApp> {
  const {
    database,
    keystore,
    dataDir,
    cleanup: closeStores,
  } = await openTestStores(dialect, 'pledge-collect-');
  const { logStream, logs } = captureLogs();
  const app = await createApp(configFor(dataDir), { database, keystore, logStream, ...options });
  const ctx = createContext({ kind: 'cli', id: 'test' });
  const { key } = await app.apiKeys.createKey(ctx, {
    name: 'collector',
    system: TEST_SYSTEM,
    scopes: ['collect:write', 'subjects:read', 'manifest:read'],
  });
  const siblings: App[] = [];
  return {
    app,
    database,
    keystore,
    dataDir,
    key,
    logs,
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
      await closeStores();
    },
  };
}

/** How many rows a table holds. */
export async function countRows(
  database: Database,
  table: 'records' | 'subjects' | 'audit_events' | 'subject_identifiers',
): Promise<number> {
  const row = await tablesOf(database)
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
