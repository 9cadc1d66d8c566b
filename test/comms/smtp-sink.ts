/**
 * A real SMTP server on 127.0.0.1 for mail tests and the mail benchmark: it keeps every message it
 * accepts (or only counts them), can refuse recipients (`onRcpt`) and can hold a message before
 * accepting it (`hold`), so a test synchronizes on what the server saw, never on time.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';

/** A message the sink accepted. */
export interface SinkMessage {
  /** RCPT TO, lower-cased. */
  to: string;
  from: string;
  raw: Buffer;
}

/** Options of {@link startSmtpSink}. */
export interface SmtpSinkOptions {
  /** Count messages without keeping them (benchmarks). */
  discard?: boolean;
}

/** A running sink. */
export interface SmtpSink {
  port: number;
  url: string;
  messages: SinkMessage[];
  /** Messages accepted, kept or not. */
  accepted(): number;
  /** Called per RCPT TO; return an SMTP reply code and text to refuse the recipient. */
  onRcpt: ((address: string) => { code: number; message: string } | undefined) | undefined;
  /** Awaited before a message is accepted (its DATA is answered after). */
  hold: ((message: SinkMessage) => Promise<void>) | undefined;
  /** Emits 'message' (SinkMessage) after each acceptance and 'rcpt' (address, code) per RCPT TO. */
  events: EventEmitter;
  /** Messages accepted for `address`. */
  countFor(address: string): number;
  /** Resolves once `n` messages have been accepted in all. */
  waitForAccepted(n: number): Promise<void>;
  /** Closes the server and every connection. */
  close(): Promise<void>;
}

/** Starts a sink on a free port of 127.0.0.1. */
export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const events = new EventEmitter();
  events.setMaxListeners(0);
  let accepted = 0;
  const sink: SmtpSink = {
    port: 0,
    url: '',
    messages: [],
    accepted: () => accepted,
    onRcpt: undefined,
    hold: undefined,
    events,
    countFor: (address) => sink.messages.filter((m) => m.to === address.toLowerCase()).length,
    waitForAccepted: (n) =>
      new Promise<void>((resolve) => {
        if (accepted >= n) return resolve();
        const on = () => {
          if (accepted >= n) {
            events.off('message', on);
            resolve();
          }
        };
        events.on('message', on);
      }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 10 * 1024 * 1024,
    onRcptTo(address, _session, callback) {
      const refusal = sink.onRcpt?.(address.address.toLowerCase());
      events.emit('rcpt', address.address.toLowerCase(), refusal?.code ?? 250);
      if (refusal !== undefined) {
        const err = new Error(refusal.message) as Error & { responseCode: number };
        err.responseCode = refusal.code;
        return callback(err);
      }
      callback();
    },
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        if (options.discard !== true) chunks.push(c);
      });
      stream.on('end', () => {
        const message: SinkMessage = {
          to: (session.envelope.rcptTo[0]?.address ?? '').toLowerCase(),
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          raw: Buffer.concat(chunks),
        };
        const accept = () => {
          accepted++;
          if (options.discard !== true) sink.messages.push(message);
          callback();
          events.emit('message', message);
        };
        const hold = sink.hold;
        if (hold === undefined) accept();
        else
          void hold(message).then(accept, (err: unknown) =>
            callback(err instanceof Error ? err : new Error(String(err))),
          );
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sink.port = (server.server.address() as AddressInfo).port;
  sink.url = `smtp://127.0.0.1:${sink.port}`;
  return sink;
}
