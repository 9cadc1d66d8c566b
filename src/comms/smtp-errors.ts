/** What an SMTP failure means for a campaign send: try again, give up, or never send again. */

/** What an SMTP error means for a send. */
export type SmtpFailure =
  | { kind: 'temporary'; reason: string }
  | { kind: 'permanent'; reason: string; recipient: boolean }
  | { kind: 'uncertain'; reason: string };

/**
 * Classifies a nodemailer error. A reply code decides when there is one (4xx temporary, 5xx
 * permanent; on RCPT TO a 5xx is a hard bounce). Without one, the connection failed: before the
 * message was handed over (connect, greeting, MAIL, RCPT) it is temporary; during or after DATA it
 * may have been delivered, so it is uncertain.
 */
export function classifySmtpError(err: unknown): SmtpFailure {
  const e = (err ?? {}) as { responseCode?: unknown; command?: unknown; code?: unknown; syscall?: unknown };
  const code = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const command = typeof e.command === 'string' ? e.command.toUpperCase() : '';
  if (code !== undefined && code >= 400 && code < 500) return { kind: 'temporary', reason: `smtp_${code}` };
  if (code !== undefined && code >= 500) {
    return { kind: 'permanent', reason: `smtp_${code}`, recipient: command.startsWith('RCPT') };
  }
  const errno = typeof e.code === 'string' ? e.code.toLowerCase() : 'error';
  // No connection at all, or a failure at a step before DATA: nothing was handed over.
  if (e.syscall === 'connect' || e.syscall === 'getaddrinfo' || e.code === 'EDNS') {
    return { kind: 'temporary', reason: `connection_${errno}` };
  }
  if (/^(EHLO|HELO|LHLO|STARTTLS|AUTH|MAIL|RCPT)/.test(command)) {
    return { kind: 'temporary', reason: `connection_${errno}` };
  }
  // Lost while the message was being handed over, or while waiting for the final reply: it may
  // have been delivered.
  return { kind: 'uncertain', reason: `connection_${errno}` };
}
