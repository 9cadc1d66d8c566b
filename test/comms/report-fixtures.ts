/**
 * Reports as mail systems write them, about messages Pledge sent (DSNs in the shape of RFC 3464's
 * appendix, ARF reports in the shape of RFC 5965's), and a bare SMTP client, for the tests of what
 * comes back from mail.
 */
import { connect } from 'node:net';
import { MAIL_DOMAIN, MARKETING } from './mail-app.js';

/** A campaign id as the pipeline writes it in a Message-ID. */
export const CAMPAIGN = '0196f3a2-5b1c-7d4e-8f90-123456789abc';

/**
 * The headers of a Pledge marketing message, as the campaign pipeline writes them: with a return
 * token, its signed Message-ID; without, a Message-ID of the right form that Pledge never signed.
 */
export function pledgeHeaders(to: string, token: string, returnToken?: string): string {
  return [
    'From: "Example Online" <news@example-online.test>',
    `To: ${to}`,
    'Subject: What is new this month',
    `Message-ID: <${CAMPAIGN}.${returnToken ?? token.slice(0, 12)}@${MAIL_DOMAIN}>`,
    `List-Unsubscribe: <https://privacy.example-online.test/unsubscribe/one-click/${token}>,`,
    ` <mailto:unsubscribe+${token}@${MAIL_DOMAIN}>`,
    'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
    `List-Id: "Tell you about products" <${MARKETING}.${MAIL_DOMAIN}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
  ].join('\r\n');
}

/** A DSN in the shape of RFC 3464 appendix examples (Sendmail-style), for one recipient. */
export function dsn(options: {
  address: string;
  action: string;
  status: string;
  token?: string;
  returnToken?: string;
}): string {
  const boundary = 'RAA14128.773615765/mx.recipient.test';
  return [
    'Date: Thu, 7 Jul 2026 17:16:05 -0400',
    'From: Mail Delivery Subsystem <MAILER-DAEMON@mx.recipient.test>',
    'Message-Id: <202607072116.RAA14128@mx.recipient.test>',
    'Subject: Returned mail: see transcript for details',
    `To: <bounces@${MAIL_DOMAIN}>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;`,
    `    boundary="${boundary}"`,
    '',
    `--${boundary}`,
    '',
    'The original message was received at Thu, 7 Jul 2026 17:10:28 -0400',
    '',
    '   ----- The following addresses had permanent fatal errors -----',
    `<${options.address}>`,
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.recipient.test',
    'Received-From-MTA: DNS; mail.example-online.test',
    'Arrival-Date: Thu, 7 Jul 2026 17:10:28 -0400',
    '',
    `Original-Recipient: rfc822;${options.address}`,
    `Final-Recipient: RFC822; <${options.address}>`,
    `Action: ${options.action}`,
    `Status: ${options.status}`,
    'Remote-MTA: DNS; mx.recipient.test',
    `Diagnostic-Code: SMTP; ${options.status.startsWith('5') ? '550 5.1.1 User unknown' : '452 4.2.2 Mailbox full'}`,
    'Last-Attempt-Date: Thu, 7 Jul 2026 17:15:49 -0400',
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    '',
    pledgeHeaders(options.address, options.token ?? 'AAAA', options.returnToken),
    '',
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

/** An ARF report in the shape of RFC 5965 appendix B, about a Pledge message. */
export function arf(options: {
  address?: string;
  token: string;
  feedbackType?: string;
  returnToken?: string;
}): string {
  const boundary = 'part1_13d.2e68ed54_boundary';
  const to = options.address ?? 'redacted@recipient.test';
  return [
    'From: <abusedesk@recipient.test>',
    'Date: Thu, 8 Mar 2026 17:40:36 EDT',
    'Subject: FW: What is new this month',
    `To: <fbl@${MAIL_DOMAIN}>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=feedback-report;',
    `     boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset="US-ASCII"',
    'Content-Transfer-Encoding: 7bit',
    '',
    'This is an email abuse report for an email message received from IP',
    '192.0.2.1 on Thu, 8 Mar 2026 14:00:00 EDT.',
    '',
    `--${boundary}`,
    'Content-Type: message/feedback-report',
    '',
    `Feedback-Type: ${options.feedbackType ?? 'abuse'}`,
    'User-Agent: SomeGenerator/1.0',
    'Version: 1',
    `Original-Mail-From: <bounces@${MAIL_DOMAIN}>`,
    ...(options.address !== undefined ? [`Original-Rcpt-To: <${options.address}>`] : []),
    'Arrival-Date: Thu, 8 Mar 2026 14:00:00 EDT',
    'Reporting-MTA: dns; mail.recipient.test',
    'Source-IP: 192.0.2.1',
    'Authentication-Results: mail.recipient.test;',
    `               spf=pass smtp.mail=bounces@${MAIL_DOMAIN}`,
    `Reported-Domain: ${MAIL_DOMAIN}`,
    '',
    `--${boundary}`,
    'Content-Type: message/rfc822',
    'Content-Disposition: inline',
    '',
    pledgeHeaders(to, options.token, options.returnToken),
    '',
    'What is new this month ...',
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

/** A bare SMTP client for what nodemailer cannot do: stop in the middle of a message's data. */
export async function smtpSession(port: number): Promise<{
  command(line: string): Promise<string>;
  write(data: string): void;
  close(): void;
}> {
  const socket = connect(port, '127.0.0.1');
  let buffered = '';
  const waiting: Array<(reply: string) => void> = [];
  socket.setEncoding('utf8');
  socket.on('data', (data: string) => {
    buffered += data;
    // A reply ends with a line "NNN text" (a hyphen after the code continues it).
    for (
      let m = /^(?:\d{3}-[^\n]*\n)*\d{3} [^\n]*\n/.exec(buffered);
      m;
      m = /^(?:\d{3}-[^\n]*\n)*\d{3} [^\n]*\n/.exec(buffered)
    ) {
      buffered = buffered.slice(m[0].length);
      waiting.shift()?.(m[0].trim());
    }
  });
  const next = () => new Promise<string>((resolve) => waiting.push(resolve));
  await next(); // the greeting
  return {
    command(line) {
      const reply = next();
      socket.write(`${line}\r\n`);
      return reply;
    },
    write(data) {
      socket.write(data);
    },
    close() {
      socket.end();
    },
  };
}
