/**
 * The inbound SMTP listener: where mail about Pledge's mail comes back. It receives, for addresses
 * at the mail domain only (it relays nothing):
 *
 * - `unsubscribe+TOKEN@MAILDOMAIN`, the mailto unsubscribe address of List-Unsubscribe (RFC 2369):
 *   the message itself does not matter, the signed token in the address unsubscribes, as the
 *   one-click POST does. A recipient with a bad token is refused at RCPT.
 * - any other address (the VERP bounce address `bounces+TOKEN@`, the feedback-loop address):
 *   delivery status notifications (RFC 3464) and complaint reports (RFC 5965), applied by
 *   {@link MailEventsService} only when they answer a message Pledge sent (a valid return token in
 *   the return path they came to or in the Message-ID they quote); otherwise dropped, logged without
 *   an address, and counted. A message that is no report is refused after DATA.
 *
 * A message is answered 250 only after what it changed has committed; when the database fails the
 * answer is 451, so the sending system retries. A message larger than {@link MAX_INBOUND_BYTES} is
 * refused (552), and all messages being received hold at most {@link MAX_INBOUND_BYTES_IN_FLIGHT}
 * between them: past that a message is refused for now (452) and its bytes let go at once, so many
 * clients cannot make the server hold 100 times a message. The bytes are counted as they arrive and
 * nothing past a limit is kept; a report is parsed once whole (its parts are found by their
 * boundaries). There is no AUTH and no STARTTLS (put a TLS-terminating MTA in front for TLS). Logs
 * say what kind of message came and what it did, never an address or a token.
 */
import type { AddressInfo } from 'node:net';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerDataStream,
  type SMTPServerSession,
} from 'smtp-server';
import { createContext } from '../platform/context.js';
import type { MailEventsService, ReportResult } from './mail-events.service.js';
import { returnTokenInAddress } from './return-tokens.js';

/** The largest message accepted: reports may carry the whole original message. */
export const MAX_INBOUND_BYTES = 10 * 1024 * 1024;
/** The most bytes held for all messages being received at once. */
export const MAX_INBOUND_BYTES_IN_FLIGHT = 32 * 1024 * 1024;
/** Recipients per message (a report has one; more is not a report). */
const MAX_RECIPIENTS = 20;
const UNSUBSCRIBE_PREFIX = 'unsubscribe+';

/** Where the listener logs (a pino or Fastify logger). */
export interface InboundLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Options of {@link InboundSmtpListener}. */
export interface InboundSmtpOptions {
  /** The port; 0 picks a free one. */
  port: number;
  host: string;
  /** The only domain mail is accepted for. */
  mailDomain: string;
  mailEvents: MailEventsService;
  log: InboundLog;
  /** The largest message; {@link MAX_INBOUND_BYTES} when absent. */
  maxMessageBytes?: number | undefined;
  /** The bytes held for every message being received; {@link MAX_INBOUND_BYTES_IN_FLIGHT} when absent. */
  maxBytesInFlight?: number | undefined;
  /** Called whenever the bytes held change (for tests and metrics). */
  onBytesInFlight?: ((bytes: number) => void) | undefined;
}

/** What the listener has received since it started. */
export interface InboundCounts {
  /** Messages answered 250. */
  accepted: number;
  /** Unsubscribes made by mailto messages. */
  unsubscribes: number;
  /** Report events applied (bounces, complaints). */
  applied: number;
  /** Report events dropped: the report did not prove it answers a message Pledge sent. */
  dropped: number;
  /** Messages refused for their size (552) or for the bytes in flight (452). */
  tooBig: number;
}

/** An error with the SMTP reply code the client gets. */
function smtpError(responseCode: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode });
}

/** The SMTP server for bounces, complaints and mailto unsubscribes. */
export class InboundSmtpListener {
  readonly #server: SMTPServer;
  readonly #options: InboundSmtpOptions;
  readonly #domain: string;
  /** Messages being applied; close() waits for them before the database closes. */
  readonly #inFlight = new Set<Promise<void>>();
  readonly #maxMessageBytes: number;
  readonly #maxBytesInFlight: number;
  /** Bytes held right now for the messages being received. */
  #bytesInFlight = 0;
  readonly #counts: InboundCounts = { accepted: 0, unsubscribes: 0, applied: 0, dropped: 0, tooBig: 0 };

  constructor(options: InboundSmtpOptions) {
    this.#options = options;
    this.#domain = options.mailDomain.toLowerCase();
    this.#maxMessageBytes = options.maxMessageBytes ?? MAX_INBOUND_BYTES;
    this.#maxBytesInFlight = options.maxBytesInFlight ?? MAX_INBOUND_BYTES_IN_FLIGHT;
    this.#server = new SMTPServer({
      name: this.#domain,
      banner: 'bounces, complaints and unsubscribes only',
      // Announced (EHLO SIZE) and checked at MAIL FROM when the client states a size.
      size: this.#maxMessageBytes,
      disabledCommands: ['AUTH', 'STARTTLS'],
      authOptional: true,
      disableReverseLookup: true,
      logger: false,
      maxClients: 100,
      maxRecipients: MAX_RECIPIENTS,
      socketTimeout: 60_000,
      closeTimeout: 5_000,
      onRcptTo: (address, _session, callback) => callback(this.#checkRecipient(address)),
      onData: (stream, session, callback) => {
        const work = this.#receive(stream, session).then(
          (reply) => callback(null, reply),
          (err: Error) => callback(err),
        );
        this.#inFlight.add(work);
        void work.finally(() => this.#inFlight.delete(work));
      },
    });
    this.#server.on('error', (err: Error & { code?: string }) =>
      options.log.warn({ code: err.code }, 'inbound SMTP connection error'),
    );
  }

  /** Starts listening; resolves with the address it listens on. */
  async listen(): Promise<AddressInfo> {
    const net = this.#server.server;
    await new Promise<void>((resolve, reject) => {
      net.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host, () => {
        net.off('error', reject);
        resolve();
      });
    });
    const address = net.address() as AddressInfo;
    this.#options.log.info({ port: address.port, host: address.address }, 'inbound SMTP listening');
    return address;
  }

  /** What it has received since it started (the log lines say the same per message). */
  counts(): Readonly<InboundCounts> {
    return { ...this.#counts };
  }

  /** The address it listens on. */
  address(): AddressInfo {
    return this.#server.server.address() as AddressInfo;
  }

  /** Stops accepting mail, ends sessions (after at most 5 s), and waits for messages being applied. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await Promise.allSettled([...this.#inFlight]);
  }

  /** Refuses relaying and bad unsubscribe tokens at RCPT; `undefined` accepts. */
  #checkRecipient(address: SMTPServerAddress): Error | undefined {
    const at = address.address.lastIndexOf('@');
    const local = address.address.slice(0, at);
    const domain = address.address.slice(at + 1).toLowerCase();
    if (at <= 0 || domain !== this.#domain)
      return smtpError(550, '5.7.1 Relaying denied: this server takes mail for its own domain only');
    const token = unsubscribeToken(local);
    if (token !== undefined) {
      const ctx = createContext({ kind: 'job', id: 'inbound-smtp' });
      if (!this.#options.mailEvents.describeUnsubscribe(ctx, token).ok) {
        return smtpError(550, '5.1.1 This unsubscribe address is not valid (changed or expired)');
      }
    }
    return undefined;
  }

  /**
   * Reads a message's bytes, holding them against the listener's budget as they arrive. Past the
   * message limit (552) or the budget of every message in flight (452, try later) it keeps reading,
   * as SMTP requires, but keeps nothing, and what it held is let go at once. The bytes stay held
   * until the message has been applied (`release`).
   */
  async #read(stream: SMTPServerDataStream): Promise<{ raw: Buffer; size: number; release: () => void }> {
    const chunks: Buffer[] = [];
    let size = 0;
    let held = 0;
    let refusal: 'too_big' | 'busy' | undefined;
    const hold = (delta: number) => {
      held += delta;
      this.#bytesInFlight += delta;
      this.#options.onBytesInFlight?.(this.#bytesInFlight);
    };
    const release = () => {
      if (held === 0) return;
      hold(-held);
      chunks.length = 0;
    };
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (refusal !== undefined) continue;
        if (size > this.#maxMessageBytes) refusal = 'too_big';
        else if (this.#bytesInFlight + chunk.length > this.#maxBytesInFlight) refusal = 'busy';
        if (refusal !== undefined) {
          release();
          continue;
        }
        hold(chunk.length);
        chunks.push(chunk);
      }
    } catch (err) {
      release();
      throw err;
    }
    if (stream.sizeExceeded) refusal = 'too_big';
    if (refusal !== undefined) {
      release();
      this.#counts.tooBig++;
      this.#options.log.warn({ bytes: size, refusal }, 'inbound mail refused for its size');
      if (refusal === 'too_big') {
        throw smtpError(
          552,
          `5.3.4 Message too big: this server takes at most ${this.#maxMessageBytes} bytes`,
        );
      }
      throw smtpError(452, '4.3.1 Insufficient system storage: too much mail at once; try again later');
    }
    return { raw: Buffer.concat(chunks), size, release };
  }

  /** Reads a message and applies it; resolves with the 250 text, rejects with the SMTP error. */
  async #receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const { raw, size, release } = await this.#read(stream);
    try {
      return await this.#apply(raw, size, session);
    } finally {
      release();
    }
  }

  /** Applies a message read whole; resolves with the 250 text, rejects with the SMTP error. */
  async #apply(raw: Buffer, size: number, session: SMTPServerSession): Promise<string> {
    const ctx = createContext({ kind: 'job', id: 'inbound-smtp' });
    const recipients = session.envelope.rcptTo.map((r) => r.address);
    const tokens = recipients.flatMap((r) => {
      const t = unsubscribeToken(r.slice(0, r.lastIndexOf('@')));
      return t === undefined ? [] : [t];
    });
    const returnPathTokens = recipients.flatMap((r) => {
      const t = returnTokenInAddress(r, this.#domain);
      return t === undefined ? [] : [t];
    });
    const others = recipients.length - tokens.length;
    try {
      let unsubscribed = 0;
      for (const token of tokens) {
        // The sender is not authenticated: the token is the credential, and the audit names whose it is.
        const sender = createContext({ kind: 'anonymous' }, { requestId: ctx.requestId });
        const result = await this.#options.mailEvents.unsubscribe(sender, token, {
          evidence: { userAgent: 'mailto unsubscribe (RFC 2369)', ip: session.remoteAddress },
        });
        if (result.ok) unsubscribed++;
      }
      let report: ReportResult | undefined;
      // Anyone can write a report: it must prove it answers a message Pledge sent.
      if (others > 0)
        report = await this.#options.mailEvents.report(ctx, raw, {
          requireReturnToken: true,
          returnPathTokens,
        });
      const dropped = report?.dropped ?? 0;
      this.#counts.unsubscribes += unsubscribed;
      this.#counts.applied += report?.results.filter((r) => r.outcome !== 'ignored').length ?? 0;
      this.#counts.dropped += dropped;
      this.#options.log.info(
        {
          bytes: size,
          unsubscribes: unsubscribed,
          report: report?.report,
          outcomes: report?.results.map((r) => `${r.type}:${r.outcome}`),
          dropped,
          ...(dropped > 0 ? { dropReason: report?.dropReason, droppedTotal: this.#counts.dropped } : {}),
        },
        dropped > 0
          ? 'inbound mail applied; reports that answer no message Pledge sent dropped'
          : 'inbound mail applied',
      );
      if (tokens.length === 0 && report?.report === 'not_a_report') {
        throw smtpError(550, '5.6.0 Not a delivery status notification or a feedback report');
      }
      this.#counts.accepted++;
      // The same words whether it was applied or dropped: a forger learns nothing from the answer.
      return 'OK: received';
    } catch (err) {
      if ((err as { responseCode?: number }).responseCode !== undefined) throw err;
      this.#options.log.error(
        { err: { name: (err as Error).name, code: (err as { code?: unknown }).code } },
        'inbound mail failed',
      );
      throw smtpError(451, '4.3.0 Temporary failure; try again later');
    }
  }
}

/** The token of an `unsubscribe+TOKEN` local part, or `undefined`. */
function unsubscribeToken(localPart: string): string | undefined {
  if (!localPart.toLowerCase().startsWith(UNSUBSCRIBE_PREFIX)) return undefined;
  const token = localPart.slice(UNSUBSCRIBE_PREFIX.length);
  return token === '' ? undefined : token;
}
