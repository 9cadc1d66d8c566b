/**
 * An application for the legal requests' tests on either engine: the example manifest, mail to a
 * real SMTP sink, keys of the legal team (Alice records, Bob reviews; Alice also has a review key of
 * her own), and helpers to register people and make requests.
 */
import { createApp, type App } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { createContext, type Context } from '../../src/platform/context.js';
import type { Clock } from '../../src/platform/clock.js';
import { startSmtpSink, type SmtpSink } from '../comms/smtp-sink.js';
import { captureLogs } from '../helpers/logs.js';
import type { TestDatabase, TestDialect } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST, openTestStores, randomEmail } from '../helpers/vault.js';

/** A key of the legal team: its id (for contexts) and the bearer secret. */
export interface TestKey {
  id: string;
  key: string;
}

/** A running app and what a test inspects. */
export interface LegalTestApp {
  app: App;
  database: TestDatabase;
  dataDir: string;
  sink: SmtpSink;
  ctx: Context;
  /** Alice's key: legal:write, legal:read and legal:review (so a self-review is hers to try). */
  alice: TestKey;
  /** Alice's second key, review only: another key, the same holder. */
  aliceReview: TestKey;
  /** Bob's key: legal:review and legal:read. */
  bob: TestKey;
  logs(): string;
  /** Registers a US customer through the registration collection point. */
  register(): Promise<{ subjectId: string; address: string }>;
  /** The context of a key of the legal team, at `clock`'s time. */
  as(key: TestKey, clock?: Clock): Context;
  /** An HTTP call with a key. */
  call(
    key: TestKey,
    method: 'GET' | 'POST',
    url: string,
    payload?: unknown,
  ): Promise<{
    status: number;
    body: Record<string, unknown> & { error?: { code: string; message: string } };
  }>;
  cleanup(): Promise<void>;
}

/** A valid intake body for `subjects`; `over` replaces its parts. */
export function requestBody(subjects: string[], over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    authority: { name: 'Superior Court of Santa Barbara County', type: 'court' },
    legalBasis: 'court_order',
    citation: 'Cal. Penal Code § 1524.2',
    reference: 'SB-2026-CR-0142',
    scope: { subjects, categories: ['user.contact.email', 'user.name'] },
    deadline: '2027-01-15',
    notice: { prohibited: false },
    ...over,
  };
}

/** Opens an app on `dialect`. */
export async function openLegalApp(
  dialect: TestDialect,
  overrides: Partial<Config> = {},
): Promise<LegalTestApp> {
  const sink = await startSmtpSink();
  const {
    database,
    keystore,
    dataDir,
    cleanup: closeStores,
  } = await openTestStores(dialect, 'pledge-legal-');
  const { logStream, logs } = captureLogs();
  const config: Config = {
    ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'info' }, { manifest: EXAMPLE_MANIFEST }),
    retentionIntervalSeconds: 0,
    smtpUrl: sink.url,
    ...overrides,
  };
  const app = await createApp(config, { database, keystore, logStream });
  const ctx = createContext({ kind: 'cli', id: 'test' });
  const make = async (name: string, holder: string, scopes: string[]): Promise<TestKey> => {
    const made = await app.apiKeys.createKey(ctx, { name, holder, system: 'legal-team', scopes });
    return { id: made.id, key: made.key };
  };
  const alice = await make('alice-legal', 'Alice Martin', ['legal:write', 'legal:read', 'legal:review']);
  const aliceReview = await make('alice-review', 'alice martin', ['legal:review', 'legal:read']);
  const bob = await make('bob-legal', 'Bob Okafor', ['legal:review', 'legal:read', 'legal:write']);
  return {
    app,
    database,
    dataDir,
    sink,
    ctx,
    alice,
    aliceReview,
    bob,
    logs,
    async register() {
      const address = randomEmail();
      const result = await app.collect.collect(ctx, 'registration', {
        jurisdiction: 'US',
        data: {
          email: address,
          first_name: 'Ada',
          last_name: 'Lovelace',
          password: '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$h4shh4shh4shh4shh4shh4shh4shh4sh',
        },
      });
      return { subjectId: result.subject.id, address };
    },
    as(key, clock) {
      return createContext({ kind: 'system', id: 'legal-team', key: key.id }, clock ? { clock } : {});
    },
    async call(key, method, url, payload) {
      const res = await app.http.inject({
        method,
        url,
        headers: { authorization: `Bearer ${key.key}` },
        ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
      });
      return { status: res.statusCode, body: res.json() };
    },
    async cleanup() {
      await app.close();
      await sink.close();
      await closeStores();
    },
  };
}

/** The text of a quoted-printable body (soft line breaks joined, =XX bytes decoded). */
export function decodeQuotedPrintable(raw: string): string {
  const bytes = raw
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}
