/**
 * An application for campaign tests on either engine: the example manifest, a key store of its
 * own, a real SMTP sink on 127.0.0.1, fresh DKIM keys (RSA-2048 and Ed25519) and a resolver that
 * serves their DNS records, an API key with mail:send, and helpers to register people.
 */
import { captureLogs } from '../helpers/logs.js';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createApp, type App } from '../../src/app.js';
import type { CampaignRunner } from '../../src/comms/campaign.runner.js';
import { loadDkimKeys } from '../../src/comms/dkim.js';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { createContext, type Context } from '../../src/platform/context.js';
import type { Database } from '../../src/platform/db/database.js';
import { openKeystore } from '../../src/vault/keystore.js';
import {
  dropTestSchema,
  getTestDatabaseUrlOrThrow,
  openTestDatabase,
  type TestDatabase,
  type TestDialect,
} from '../helpers/databases.js';
import { EXAMPLE_MANIFEST, randomEmail } from '../helpers/vault.js';
import { startSmtpSink, type SmtpSink } from './smtp-sink.js';

/** The mail domain and the DKIM signing domain of the tests. */
export const MAIL_DOMAIN = 'mail.example-online.test';
export const DKIM_DOMAIN = 'example-online.test';
export const PUBLIC_URL = 'https://privacy.example-online.test';
export const LIST = 'marketing-email';

/** Test DKIM keys, made once per process (RSA generation takes a moment). */
export const TEST_DKIM = (() => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  return {
    rsaKey: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    ed25519Key: ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
})();

/** The DKIM part of a test configuration. */
export function testDkimConfig(): Config['dkim'] {
  return {
    domain: DKIM_DOMAIN,
    rsaSelector: 'pledge-rsa',
    rsaKey: TEST_DKIM.rsaKey,
    ed25519Selector: 'pledge-ed25519',
    ed25519Key: TEST_DKIM.ed25519Key,
  };
}

/** A DNS resolver for mailauth that answers the test keys' TXT records and nothing else. */
export function testResolver(): (name: string, type: string) => Promise<string[][]> {
  const keys = loadDkimKeys(testDkimConfig(), MAIL_DOMAIN);
  const records = new Map(
    (keys?.keys ?? []).map((k) => [`${k.selector}._domainkey.${DKIM_DOMAIN}`, k.dnsRecord]),
  );
  return (name, type) => {
    const record = records.get(name.toLowerCase());
    if (type === 'TXT' && record !== undefined) return Promise.resolve([[record]]);
    const err = new Error(`no ${type} record for ${name}`) as Error & { code: string };
    err.code = 'ENOTFOUND';
    return Promise.reject(err);
  };
}

/** A running app, its sink, and what a test inspects. */
export interface CampaignTestApp {
  app: App;
  database: TestDatabase;
  sink: SmtpSink;
  ctx: Context;
  /** Bearer key with mail:send. */
  key: string;
  config: Config;
  logs(): string;
  /** Registers a person through the registration collection point; returns the subject and address. */
  register(jurisdiction: string, firstName?: string): Promise<{ subjectId: string; address: string }>;
  /** Another app on the same databases (closed by cleanup). */
  sibling(overrides: Partial<Config>): Promise<App>;
  /** Runs `runner` until a round claims nothing. */
  drain(runner: CampaignRunner): Promise<void>;
  cleanup(): Promise<void>;
}

/** Opens an app on `dialect` sending to a fresh sink; the app's own runner is stopped unless `keepRunner`. */
export async function openCampaignApp(
  dialect: TestDialect,
  options: { overrides?: Partial<Config>; keepRunner?: boolean } = {},
): Promise<CampaignTestApp> {
  const sink = await startSmtpSink();
  const database = await openTestDatabase(dialect);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-campaigns-'));
  const keystoreSchema = database.schema === undefined ? undefined : `${database.schema}_keys`;
  const keystore: Database = await openKeystore({
    databaseUrl: dialect === 'postgres' ? getTestDatabaseUrlOrThrow() : undefined,
    dataDir,
    ...(keystoreSchema !== undefined ? { schema: keystoreSchema } : {}),
  });
  const { logStream, logs } = captureLogs();
  const config: Config = {
    ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'info' }, { manifest: EXAMPLE_MANIFEST }),
    retentionIntervalSeconds: 0,
    publicUrl: PUBLIC_URL,
    smtpUrl: sink.url,
    mailDomain: MAIL_DOMAIN,
    dkim: testDkimConfig(),
    mailRatePerSecond: 1000,
    ...options.overrides,
  };
  const app = await createApp(config, { database, keystore, logStream });
  if (options.keepRunner !== true) await app.campaigns.runner.stop();
  const ctx = createContext({ kind: 'cli', id: 'test' });
  const { key } = await app.apiKeys.createKey(ctx, {
    name: 'mail',
    system: 'marketing-automation',
    scopes: ['mail:send'],
  });
  const siblings: App[] = [];
  return {
    app,
    database,
    sink,
    ctx,
    key,
    config,
    logs,
    async register(jurisdiction, firstName = 'Ada') {
      const address = randomEmail();
      const result = await app.collect.collect(ctx, 'registration', {
        jurisdiction,
        data: {
          email: address,
          first_name: firstName,
          last_name: 'Lovelace',
          password: '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$h4shh4shh4shh4shh4shh4shh4shh4sh',
        },
      });
      return { subjectId: result.subject.id, address };
    },
    async sibling(overrides) {
      const other = await createApp({ ...config, ...overrides }, { database, keystore, logStream });
      siblings.push(other);
      return other;
    },
    async drain(runner) {
      while ((await runner.runOnce()).claimed > 0) {
        // each round sends what it claimed
      }
    },
    async cleanup() {
      for (const s of siblings) await s.close();
      await app.close();
      await sink.close();
      if (keystoreSchema !== undefined) await dropTestSchema(keystore.kysely, keystoreSchema);
      await keystore.close();
      await database.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
