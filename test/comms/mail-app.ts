/**
 * An application for the tests of what comes back from mail (one-click, mailto, bounces,
 * complaints) on either engine: the example manifest, a key store of its own, captured logs, the
 * inbound SMTP listener on a free port of 127.0.0.1, an API key with mail:events and mail:send, and
 * helpers to make subjects and read what changed.
 */
import { createTransport, type SentMessageInfo, type Transporter } from 'nodemailer';
import { captureLogs } from '../helpers/logs.js';
import { createApp, type App } from '../../src/app.js';
import { createMailtoToken } from '../../src/comms/mailto-tokens.js';
import { createReturnToken, deriveReturnTokenKeys } from '../../src/comms/return-tokens.js';
import { createLinkToken, deriveLinkTokenKey } from '../../src/consent/link-tokens.js';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { createContext, type Context } from '../../src/platform/context.js';
import { tablesOf, type TestDatabase, type TestDialect } from '../helpers/databases.js';
import { getFreePort } from '../helpers/net.js';
import { EXAMPLE_MANIFEST, openTestStores, randomEmail } from '../helpers/vault.js';

/** The mail domain of the tests. */
export const MAIL_DOMAIN = 'mail.example-online.test';
/** The example manifest's marketing list (opt-out in the US, e-mail only). */
export const MARKETING = 'marketing-email';

/** A running app and what a test inspects. */
export interface MailTestApp {
  app: App;
  database: TestDatabase;
  ctx: Context;
  /** Bearer key with mail:events and mail:send. */
  key: string;
  /** The inbound SMTP listener's port on 127.0.0.1. */
  smtpPort: number;
  logs(): string;
  /** A US customer with a new e-mail address. */
  newSubject(): Promise<{ subjectId: string; address: string }>;
  /** A signed unsubscribe token for `subjectId` and the marketing list on e-mail. */
  unsubscribeToken(subjectId: string, options?: { now?: Date; purpose?: string }): string;
  /** The compact token of the mailto address, as the pipeline puts it in List-Unsubscribe. */
  mailtoToken(subjectId: string, options?: { now?: Date; purpose?: string }): string;
  /** The return token of a campaign message to `subjectId` (its Message-ID and VERP return path). */
  returnToken(subjectId: string, options?: { now?: Date; list?: string }): string;
  /**
   * Delivers a raw message over SMTP to the listener as a mail system delivers a report: from
   * `from` (the null sender by default), to `to` (addresses at the mail domain; `bounces@` by default).
   */
  deliver(raw: string, to?: string | string[], from?: string): Promise<SentMessageInfo>;
  /** An address's suppressions as [list, reason] pairs. */
  suppressions(address: string): Promise<Array<[string, string]>>;
  /** Rows of the tables an unsubscribe, a bounce or a complaint may change. */
  counts(): Promise<{ events: number; suppressions: number; softBounces: number; audit: number }>;
  cleanup(): Promise<void>;
}

/** Opens an app on `dialect` with the inbound listener on. */
export async function openMailApp(
  dialect: TestDialect,
  overrides: Partial<Config> = {},
): Promise<MailTestApp> {
  const { database, keystore, dataDir, cleanup: closeStores } = await openTestStores(dialect, 'pledge-mail-');
  const { logStream, logs } = captureLogs();
  const smtpPort = await getFreePort();
  const config: Config = {
    ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'info' }, { manifest: EXAMPLE_MANIFEST }),
    retentionIntervalSeconds: 0,
    mailDomain: MAIL_DOMAIN,
    inboundSmtpPort: smtpPort,
    inboundSmtpHost: '127.0.0.1',
    softBounceLimit: 3,
    ...overrides,
  };
  const app = await createApp(config, { database, keystore, logStream });
  const ctx = createContext({ kind: 'cli', id: 'test' });
  const { key } = await app.apiKeys.createKey(ctx, {
    name: 'mail',
    system: 'marketing-automation',
    scopes: ['mail:events', 'mail:send'],
  });
  const linkKey = deriveLinkTokenKey(app.keyring.indexKey);
  const count = async (table: 'consent_events' | 'suppressions' | 'soft_bounces' | 'audit_events') =>
    Number(
      (
        await tablesOf(database)
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  // Made on the first delivery, closed with the app.
  let smtp: Transporter | undefined;
  return {
    app,
    database,
    ctx,
    key,
    smtpPort,
    logs,
    deliver(raw, to = `bounces@${MAIL_DOMAIN}`, from = '') {
      smtp ??= createTransport({ host: '127.0.0.1', port: smtpPort, secure: false, ignoreTLS: true });
      return smtp.sendMail({ envelope: { from, to: Array.isArray(to) ? to : [to] }, raw });
    },
    async suppressions(address) {
      const rows = await app.suppression.suppressionsOf(ctx, address);
      return rows.map((r): [string, string] => [r.list, r.reason]);
    },
    async newSubject() {
      const address = randomEmail();
      const subject = await app.vault.createSubject(ctx, {
        kind: 'customer',
        jurisdiction: 'US',
        identifiers: { email: address },
      });
      return { subjectId: subject.id, address };
    },
    unsubscribeToken(subjectId, options = {}) {
      return createLinkToken(
        linkKey,
        { scope: 'unsubscribe', subjectId, purpose: options.purpose ?? MARKETING, channel: 'email' },
        { now: options.now ?? new Date() },
      );
    },
    mailtoToken(subjectId, options = {}) {
      return createMailtoToken(
        linkKey,
        { subjectId, purpose: options.purpose ?? MARKETING },
        { now: options.now ?? new Date() },
      );
    },
    returnToken(subjectId, options = {}) {
      return createReturnToken(
        deriveReturnTokenKeys(app.keyring.indexKey),
        { subjectId, list: options.list ?? MARKETING },
        { now: options.now ?? new Date() },
      );
    },
    async counts() {
      return {
        events: await count('consent_events'),
        suppressions: await count('suppressions'),
        softBounces: await count('soft_bounces'),
        audit: await count('audit_events'),
      };
    },
    async cleanup() {
      smtp?.close();
      await app.close();
      await closeStores();
    },
  };
}
