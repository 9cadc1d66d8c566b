/**
 * Campaign mail through the whole pipeline (consent decision, use-gate read, suppression check,
 * render with the footer, List-* headers, DKIM, SMTP, the durable send records), in-process on
 * SQLite, into a local SMTP sink that accepts and discards; against bare nodemailer sending the
 * same messages (same text, same headers, same DKIM keys) to the same sink with the same number of
 * pooled connections, in the same run. Both with an RSA-2048 signature only and with RSA-2048 plus
 * Ed25519. Target: the pipeline sends at least 70 % of bare nodemailer's messages/s.
 *
 * Bare nodemailer is given the key as PEM, the way its documentation shows, and so parses it for
 * every message; Pledge parses its keys once, at boot. So that the ratio does not hide what that is
 * worth, the RSA section also runs bare nodemailer given the key parsed once (a KeyObject, which
 * nodemailer 10 accepts; mailauth, the bare sender with both keys, does not) and reports Pledge's
 * ratio to it, for reference: the target stays against the documented set-up.
 *
 * Alone: `node --import tsx bench/mail.bench.ts [--quick]`.
 */
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { createTransport } from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import { SMTPServer } from 'smtp-server';
import { createApp, type App } from '../src/app.js';
import { SIGNED_HEADERS } from '../src/comms/dkim.js';
import { loadConfig } from '../src/platform/config.js';
import { createContext } from '../src/platform/context.js';
import {
  BenchFailure,
  formatRatio,
  formatTable,
  formatTarget,
  isMainModule,
  ROOT,
  runAlone,
  type BenchResult,
} from './lib.js';

/** How many messages and how. */
export interface MailBenchOptions {
  /** Recipients (registered people) and so messages per run. */
  messages: number;
  /** Measured runs per sender, interleaved. */
  rounds: number;
  /** SMTP connections (and messages in flight) for both senders. */
  connections: number;
}

/** The figures of `npm run bench`. */
export const MAIL_BENCH_DEFAULTS: MailBenchOptions = { messages: 2000, rounds: 2, connections: 8 };

/** `--quick`: to try the harness. */
export const MAIL_BENCH_QUICK: MailBenchOptions = { messages: 300, rounds: 1, connections: 8 };

const TARGET_FRACTION = 0.7;
const MAIL_DOMAIN = 'mail.example-online.test';
const LIST = 'marketing-email';
const TEMPLATE = {
  subject: 'News for {{first_name}}',
  text: 'Hello {{first_name}},\n\nOur new webinar series starts next week: six sessions on remote support.\n\nSee you there.',
  html: '<html><body><p>Hello {{first_name}},</p><p>Our new webinar series starts next week: six sessions on remote support.</p><p>See you there.</p></body></html>',
};

/** A sink that accepts and discards, counting messages. */
async function startSink(): Promise<{ url: string; accepted: () => number; close: () => Promise<void> }> {
  let accepted = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, callback) {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        accepted++;
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    accepted: () => accepted,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Keys {
  rsa: string;
  ed25519: string;
}

/** Pledge on SQLite with `n` US customers registered; its own runner stopped (the bench drives one). */
async function openPledge(
  sinkUrl: string,
  keys: Keys,
  both: boolean,
  n: number,
  connections: number,
): Promise<{ app: App; subjects: string[]; dataDir: string }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-mail-'));
  const config = {
    ...loadConfig(
      { PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'warn' },
      { manifest: path.join(ROOT, 'examples/example-online/pledge.yaml') },
    ),
    retentionIntervalSeconds: 0,
    publicUrl: 'https://privacy.example-online.test',
    smtpUrl: sinkUrl,
    mailDomain: MAIL_DOMAIN,
    mailRatePerSecond: 100_000,
    dkim: {
      domain: 'example-online.test',
      rsaSelector: 'pledge-rsa',
      rsaKey: keys.rsa,
      ed25519Selector: 'pledge-ed25519',
      ed25519Key: both ? keys.ed25519 : undefined,
    },
  };
  const app = await createApp(config, { logStream: new PassThrough() });
  await app.campaigns.runner.stop();
  const ctx = createContext({ kind: 'cli', id: 'bench' });
  const subjects: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await app.collect.collect(ctx, 'registration', {
      jurisdiction: 'US',
      data: {
        email: `bench-${i}@example-customer.test`,
        first_name: 'Ada',
        last_name: `Lovelace-${i}`,
        password: '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$h4shh4shh4shh4shh4shh4shh4shh4sh',
      },
    });
    subjects.push(r.subject.id);
  }
  void connections;
  return { app, subjects, dataDir };
}

/** One run of the pipeline: a new campaign to every subject, sent until done. Messages/s. */
async function runPledge(app: App, subjects: string[], connections: number): Promise<number> {
  const ctx = createContext({ kind: 'cli', id: 'bench' });
  const campaign = await app.campaigns.create(ctx, {
    name: 'bench',
    list: LIST,
    template: TEMPLATE,
    audience: { subjects },
  });
  const start = performance.now();
  await app.campaigns.start(ctx, campaign.id);
  const runner = app.campaigns.createRunner({ concurrency: connections, batchSize: 500 });
  let sent = 0;
  for (;;) {
    const r = await runner.runOnce();
    sent += r.sent;
    if (r.claimed === 0) break;
    if (r.failed + r.retried + r.uncertain + r.skipped > 0) {
      throw new BenchFailure(`pipeline: ${JSON.stringify(r)}; every message should have been sent`);
    }
  }
  const seconds = (performance.now() - start) / 1000;
  if (sent !== subjects.length) throw new BenchFailure(`pipeline sent ${sent} of ${subjects.length}`);
  return sent / seconds;
}

/**
 * One run of bare nodemailer: the same messages (rendered text and HTML with a footer of the same
 * length, the same List-* headers), the same DKIM key(s), a pool of the same size. Messages/s.
 * `keyParsedOnce` (RSA only): nodemailer gets the key as a KeyObject instead of PEM.
 */
async function runBare(
  sinkUrl: string,
  keys: Keys,
  both: boolean,
  n: number,
  connections: number,
  keyParsedOnce = false,
): Promise<number> {
  const footer = `\n-- \nYou receive this e-mail from Example Online because of "Tell you about products, partners, opportunities and events": Send you news about our other products and services, partners, opportunities and events.\nYour choice: you have not opted out of them; you can at any time.\nUnsubscribe from these e-mails: https://privacy.example-online.test/unsubscribe?t=${'A'.repeat(130)}\nChoose what we send you: https://privacy.example-online.test/preferences?t=${'B'.repeat(100)}\nExample Online, a division of Example Systems, Inc., 7414 Hollister Avenue, Goleta, CA 93117, US\n`;
  const token = 'C'.repeat(130);
  const headers = {
    'List-Unsubscribe': `<https://privacy.example-online.test/unsubscribe/one-click/${token}>, <mailto:unsubscribe+${token}@${MAIL_DOMAIN}>`,
    'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    'List-Id': `"Tell you about products, partners, opportunities and events" <${LIST}.${MAIL_DOMAIN}>`,
  };
  const transport = createTransport({
    url: sinkUrl,
    pool: true,
    maxConnections: connections,
    maxMessages: Infinity,
    logger: false,
    ...(both
      ? {}
      : {
          dkim: {
            domainName: 'example-online.test',
            keySelector: 'pledge-rsa',
            privateKey: keyParsedOnce ? createPrivateKey(keys.rsa) : keys.rsa,
            headerFieldNames: SIGNED_HEADERS.join(':'),
          },
        }),
  });
  const message = (i: number) => ({
    from: '"Example Online" <privacy@example-online.test>',
    to: `bench-${i}@example-customer.test`,
    subject: 'News for Ada',
    text: `${TEMPLATE.text.replaceAll('{{first_name}}', 'Ada')}\n${footer}`,
    html: `${TEMPLATE.html.replaceAll('{{first_name}}', 'Ada')}<hr><p>${footer}</p>`,
    headers,
    messageId: `<bench-${i}.${Date.now()}@${MAIL_DOMAIN}>`,
    date: new Date(),
  });
  const send = async (i: number) => {
    if (!both) {
      await transport.sendMail(message(i));
      return;
    }
    // nodemailer signs RSA only: compose, sign both with mailauth, send the bytes.
    const raw = await new Promise<Buffer>((resolve, reject) =>
      new MailComposer(message(i)).compile().build((err, m) => (err ? reject(err) : resolve(m))),
    );
    const signed = await dkimSign(raw, {
      signingDomain: 'example-online.test',
      selector: 'pledge-rsa',
      privateKey: keys.rsa,
      headerList: SIGNED_HEADERS.join(':') as unknown as string[],
      signatureData: [
        {
          signingDomain: 'example-online.test',
          selector: 'pledge-rsa',
          privateKey: keys.rsa,
          algorithm: 'rsa-sha256',
        },
        {
          signingDomain: 'example-online.test',
          selector: 'pledge-ed25519',
          privateKey: keys.ed25519,
          algorithm: 'ed25519-sha256',
        },
      ],
    });
    await transport.sendMail({
      envelope: { from: `bounces@${MAIL_DOMAIN}`, to: [`bench-${i}@example-customer.test`] },
      raw: Buffer.concat([Buffer.from(signed.signatures), raw]),
    });
  };
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      for (let i = next++; i < n; i = next++) await send(i);
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  transport.close();
  return n / seconds;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Runs both senders in both signing set-ups and returns the report section. */
export async function runMailBench(options: MailBenchOptions = MAIL_BENCH_DEFAULTS): Promise<BenchResult> {
  const keys: Keys = {
    rsa: generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString(),
    ed25519: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
  const sink = await startSink();
  const rows: string[][] = [];
  const missed: string[] = [];
  try {
    for (const both of [false, true]) {
      const label = both ? 'RSA-2048 + Ed25519' : 'RSA-2048';
      const pledge = await openPledge(sink.url, keys, both, options.messages, options.connections);
      const bare: number[] = [];
      const reference: number[] = [];
      const piped: number[] = [];
      try {
        // Untimed warm-up of each (JIT, connections, the consent cache).
        await runBare(sink.url, keys, both, Math.min(200, options.messages), options.connections);
        if (!both)
          await runBare(sink.url, keys, both, Math.min(200, options.messages), options.connections, true);
        await runPledge(pledge.app, pledge.subjects, options.connections);
        for (let round = 0; round < options.rounds; round++) {
          bare.push(await runBare(sink.url, keys, both, options.messages, options.connections));
          if (!both) {
            reference.push(await runBare(sink.url, keys, both, options.messages, options.connections, true));
          }
          piped.push(await runPledge(pledge.app, pledge.subjects, options.connections));
        }
      } finally {
        await pledge.app.close();
        rmSync(pledge.dataDir, { recursive: true, force: true });
      }
      const b = mean(bare);
      const p = mean(piped);
      const met = p >= TARGET_FRACTION * b;
      if (!met) {
        missed.push(
          `mail pipeline (${label}): ${Math.round(p)} messages/s, ${((p / b) * 100).toFixed(0)} % of bare nodemailer's ${Math.round(b)}; target ≥ 70 %`,
        );
      }
      rows.push([`bare nodemailer (${label})`, Math.round(b).toLocaleString('en-US'), '—', '—']);
      if (reference.length > 0) {
        const r = mean(reference);
        rows.push([
          `bare nodemailer (${label}, key parsed once; reference)`,
          Math.round(r).toLocaleString('en-US'),
          `Pledge ${formatRatio(p, r)}`,
          'no target',
        ]);
      }
      rows.push([
        `Pledge pipeline (${label})`,
        Math.round(p).toLocaleString('en-US'),
        formatRatio(p, b),
        formatTarget({ label: '≥ 70 % of bare', met }),
      ]);
    }
  } finally {
    await sink.close();
  }
  const markdown = [
    formatTable(['sender', 'messages/s', 'ratio', 'target'], rows),
    '',
    `${options.messages.toLocaleString('en-US')} messages per run, ${options.rounds} run(s) per sender ` +
      `(interleaved, after an untimed warm-up), ${options.connections} pooled SMTP connections and as many ` +
      'messages in flight for both, into an smtp-server on 127.0.0.1 that accepts and discards (in the bench ' +
      'process). Pledge: in-process on SQLite (synchronous=FULL), a campaign to US customers registered ' +
      'through the registration collection point, started with `CampaignService.start` and sent by a ' +
      'runner until done: per batch of 64 one consent decision and one suppression query; per message a ' +
      'use-gate read (decrypt + audit entry, group-committed), Handlebars render with the footer, two ' +
      'signed links, MIME, DKIM (keys parsed once); per wave of messages in flight the decision and the ' +
      'suppression list asked again, then one commit (the last wave recorded, this wave marked sending ' +
      'before SMTP). Timed from start to the last recorded outcome. Bare: nodemailer with its own DKIM ' +
      'signer (RSA; the key as PEM, and for reference as a KeyObject), or MailComposer + mailauth (both ' +
      'keys, PEM), the same rendered text, HTML, List-* headers and signed header list.',
  ].join('\n');
  return { title: 'Campaign mail through the pipeline', markdown, missed };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runMailBench(quick ? MAIL_BENCH_QUICK : MAIL_BENCH_DEFAULTS));
}
