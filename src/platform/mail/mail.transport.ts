/**
 * The SMTP transport service mail leaves through (links people ask for, notices). A thin wrapper
 * over nodemailer: one place that knows the SMTP URL, the From address and the rule that logs name
 * no recipient. Given a signer (the DKIM signer of comms, which this platform module does not know),
 * service mail is written here, signed, then sent as it is, like a campaign's. Without PLEDGE_SMTP_URL nothing is sent and each attempt is logged as a warning, so
 * a development server runs without a mail server and an operator sees what was not delivered.
 */
import { randomUUID } from 'node:crypto';
import type { Transporter } from 'nodemailer';
import type MailComposer from 'nodemailer/lib/mail-composer';
import type { Context } from '../context.js';

/** One message. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string | undefined;
  /** Extra headers (e.g. List-Unsubscribe); never put personal data in a header name. */
  headers?: Record<string, string> | undefined;
}

/** What became of a message: sent with the server's message id, or not sent because mail is off. */
export type SendMailResult = { sent: true; messageId: string } | { sent: false; reason: 'mail_disabled' };

/** Where the transport logs (a pino or Fastify logger). */
export interface MailLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Options of {@link MailTransport}. */
export interface MailTransportOptions {
  /** smtp:// or smtps:// URL (credentials may be in it); absent: no mail is sent. */
  smtpUrl: string | undefined;
  /** The From address. */
  from: string;
  log: MailLog;
  /** Milliseconds to wait for the server at each step (default 15 s), so a dead server fails a send. */
  timeoutMs?: number;
  /**
   * Keep up to this many SMTP connections open and reuse them (campaigns); absent, one connection
   * per message (service mail, a few a minute).
   */
  pool?: number | undefined;
  /**
   * Signs a whole written message (DKIM) and returns it with its signature headers; absent, service
   * mail leaves unsigned. A signing failure fails the send: nothing unsigned leaves once it is set.
   */
  sign?: ((raw: Buffer) => Promise<Buffer>) | undefined;
}

/** A message already written and signed, with its SMTP envelope. */
export interface RawMailMessage {
  /** MAIL FROM (the bounce address). */
  envelopeFrom: string;
  /** RCPT TO: one recipient. */
  to: string;
  /** The whole message, headers and body, CRLF line ends. */
  raw: Buffer;
}

/** Sends service mail through SMTP. */
export class MailTransport {
  readonly #options: MailTransportOptions;
  /** Made on the first message: nodemailer is loaded only by a server that sends mail. */
  #transporter: Promise<Transporter> | undefined;
  readonly #from: string;
  readonly #log: MailLog;

  constructor(options: MailTransportOptions) {
    this.#options = options;
    this.#from = options.from;
    this.#log = options.log;
  }

  /** The transporter, made on first use; `undefined` without an SMTP URL. */
  #transport(): Promise<Transporter> | undefined {
    const options = this.#options;
    if (options.smtpUrl === undefined) return undefined;
    const timeout = options.timeoutMs ?? 15_000;
    const url = options.smtpUrl;
    return (this.#transporter ??= import('nodemailer').then(({ createTransport }) =>
      createTransport({
        url,
        connectionTimeout: timeout,
        greetingTimeout: timeout,
        socketTimeout: timeout,
        // nodemailer's own logger would print envelopes (addresses); it stays off.
        logger: false,
        ...(options.pool !== undefined
          ? { pool: true, maxConnections: options.pool, maxMessages: Infinity }
          : {}),
      }),
    ));
  }

  /** Whether mail is configured; when false {@link MailTransport.send} sends nothing. */
  get enabled(): boolean {
    return this.#options.smtpUrl !== undefined;
  }

  /**
   * Sends one message and resolves once the SMTP server has accepted it; rejects when it refuses
   * or cannot be reached. Without an SMTP URL logs a warning and resolves `{ sent: false }`.
   */
  async send(ctx: Context, message: MailMessage): Promise<SendMailResult> {
    const transport = this.#transport();
    if (transport === undefined) {
      this.#log.warn(
        { requestId: ctx.requestId, subjectLine: message.subject },
        'mail not sent: PLEDGE_SMTP_URL is not set',
      );
      return { sent: false, reason: 'mail_disabled' };
    }
    const mail = {
      from: this.#from,
      to: message.to,
      subject: message.subject,
      text: message.text,
      ...(message.html !== undefined ? { html: message.html } : {}),
      ...(message.headers !== undefined ? { headers: message.headers } : {}),
    };
    const sign = this.#options.sign;
    let messageId: string;
    if (sign === undefined) {
      const info = (await (await transport).sendMail(mail)) as { messageId?: unknown };
      messageId = typeof info.messageId === 'string' ? info.messageId : '';
    } else {
      // Written as nodemailer would write it, then signed, then sent byte for byte.
      messageId = `<${randomUUID()}@${domainOf(this.#from)}>`;
      const raw = await sign(await compose({ ...mail, messageId, date: new Date() }));
      await (await transport).sendMail({ envelope: { from: addressOf(this.#from), to: [message.to] }, raw });
    }
    // The message id is ours (a random local part at our host); the recipient is never logged.
    this.#log.info({ requestId: ctx.requestId, messageId }, 'mail sent');
    return { sent: true, messageId };
  }

  /**
   * Sends a message written elsewhere (a campaign's, DKIM-signed) exactly as it is, and resolves
   * once the SMTP server accepted it. Rejects with nodemailer's error (its `responseCode` and
   * `command` say what failed) when the server refuses it or cannot be reached.
   */
  async sendRaw(_ctx: Context, message: RawMailMessage): Promise<SendMailResult> {
    const transport = this.#transport();
    if (transport === undefined) return { sent: false, reason: 'mail_disabled' };
    const info = (await (
      await transport
    ).sendMail({
      envelope: { from: message.envelopeFrom, to: [message.to] },
      raw: message.raw,
    })) as { messageId?: unknown };
    return { sent: true, messageId: typeof info.messageId === 'string' ? info.messageId : '' };
  }

  /** Closes the connection to the SMTP server, if any. */
  close(): void {
    void this.#transporter?.then((t) => t.close());
  }
}

// Loaded with the first signed message, once.
let mailComposer: Promise<typeof MailComposer> | undefined;

/** Writes a message as nodemailer's sendMail would (its own composer), CRLF line ends. */
async function compose(options: ConstructorParameters<typeof MailComposer>[0]): Promise<Buffer> {
  const Composer = await (mailComposer ??= import('nodemailer/lib/mail-composer').then((m) => m.default));
  return new Promise((resolve, reject) => {
    new Composer(options).compile().build((err, message) => (err ? reject(err) : resolve(message)));
  });
}

/** The address of a From value (`"Name" <a@b>` or `a@b`). */
function addressOf(from: string): string {
  return (/<([^<>]+)>\s*$/.exec(from)?.[1] ?? from).trim();
}

/** The domain of a From value, for the Message-IDs of service mail. */
function domainOf(from: string): string {
  const address = addressOf(from);
  return address.slice(address.lastIndexOf('@') + 1) || 'localhost';
}
