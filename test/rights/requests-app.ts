/**
 * An application for the data-subject requests' tests on either engine: the example manifest, mail
 * to a real SMTP sink, a test SMS adapter, a key of the privacy office (submit, read, write), and
 * helpers to read the codes people were sent.
 */
import { createApp, type App } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { createContext, type Context } from '../../src/platform/context.js';
import { TestSmsAdapter } from '../../src/rights/verification.sms.js';
import { startSmtpSink, type SmtpSink } from '../comms/smtp-sink.js';
import type { TestDatabase, TestDialect } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST, openTestStores, randomEmail } from '../helpers/vault.js';
import { decodeQuotedPrintable } from '../share/legal-app.js';

/** A running app and what a test inspects. */
export interface RequestsTestApp {
  app: App;
  database: TestDatabase;
  dataDir: string;
  sink: SmtpSink;
  sms: TestSmsAdapter;
  ctx: Context;
  /** The privacy office's key: requests:submit, requests:read, requests:write. */
  staffKey: string;
  /** Registers a customer through the registration collection point. */
  register(): Promise<{ subjectId: string; address: string }>;
  /** The text of every message to `address`, in order. */
  mailTo(address: string): string[];
  /** The last code mailed to `address`. */
  lastCode(address: string): string;
  /** An HTTP call with the staff key. */
  call(
    method: 'GET' | 'POST',
    url: string,
    payload?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Runs the queue until `done` holds or nothing is left to run. */
  settle(done: () => Promise<boolean>): Promise<void>;
  cleanup(): Promise<void>;
}

/** Opens an app on `dialect`. */
export async function openRequestsApp(
  dialect: TestDialect,
  overrides: Partial<Config> = {},
  manifest: string = EXAMPLE_MANIFEST,
): Promise<RequestsTestApp> {
  const sink = await startSmtpSink();
  const {
    database,
    keystore,
    dataDir,
    cleanup: closeStores,
  } = await openTestStores(dialect, 'pledge-requests-');
  const config: Config = {
    ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' }, { manifest }),
    retentionIntervalSeconds: 0,
    rateLimitPerMinute: 100_000,
    smtpUrl: sink.url,
    ...overrides,
  };
  const sms = new TestSmsAdapter();
  const app = await createApp(config, { database, keystore, sms });
  const ctx = createContext({ kind: 'cli', id: 'test' });
  const staffKey = (
    await app.apiKeys.createKey(ctx, {
      name: 'privacy-office',
      holder: 'Pat Privacy',
      system: 'privacy-office',
      scopes: ['requests:submit', 'requests:read', 'requests:write'],
    })
  ).key;
  const mailTo = (address: string) =>
    sink.messages
      .filter((m) => m.to === address.toLowerCase())
      .map((m) => decodeQuotedPrintable(m.raw.toString('utf8')));
  return {
    app,
    database,
    dataDir,
    sink,
    sms,
    ctx,
    staffKey,
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
    mailTo,
    lastCode(address) {
      const texts = mailTo(address);
      const match = /verification code is (\d{6})/.exec(texts[texts.length - 1] ?? '');
      if (match === null) throw new Error(`no code was mailed to ${address}`);
      return match[1] as string;
    },
    async call(method, url, payload) {
      const res = await app.http.inject({
        method,
        url,
        headers: { authorization: `Bearer ${staffKey}` },
        ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
      });
      return { status: res.statusCode, body: res.json() };
    },
    async settle(done) {
      for (let i = 0; i < 50 && !(await done()); i++) {
        await app.jobs.runDue();
        await app.jobs.idle();
      }
    },
    async cleanup() {
      await app.close();
      await sink.close();
      await closeStores();
    },
  };
}

export { randomEmail };
