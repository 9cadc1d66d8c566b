/**
 * Reading the reports mail systems send back: delivery status notifications (RFC 3464,
 * `multipart/report; report-type=delivery-status`) and complaint reports (the Abuse Reporting
 * Format, RFC 5965, `report-type=feedback-report`). mailparser splits the MIME; the machine-readable
 * parts (`message/delivery-status`, `message/feedback-report`) are blocks of header fields, parsed
 * here. Pure: nothing here touches the database, and nothing here throws on bad input (a message
 * that is not a report is `{ type: 'not_a_report' }`), so every byte a stranger can send through
 * the inbound listener or the webhook goes through code a property test has thrown random input at.
 */
import type { Attachment } from 'mailparser';

/** How a bounce counts: `hard` suppresses the address at once, `soft` counts toward the limit. */
export type BounceKind = 'hard' | 'soft';

/** One recipient of a delivery status notification. */
export interface DsnRecipient {
  /**
   * The address Pledge sent to: Original-Recipient when the reporting system kept it (the address
   * as given in RCPT TO), else Final-Recipient. `undefined` when neither is an e-mail address.
   */
  address: string | undefined;
  /** The Action field, lower-cased: failed, delayed, delivered, relayed or expanded. */
  action: string;
  /** The Status field's code (e.g. "5.1.1"), when it has a valid one. */
  status: string | undefined;
  /** What the bounce means for the address; `undefined` when it is no bounce (delivered, relayed). */
  kind: BounceKind | undefined;
}

/** What Pledge looks for in the headers of the message a report is about. */
export interface OriginalMessage {
  /** The List-Unsubscribe field (holds the signed unsubscribe token of a Pledge message). */
  listUnsubscribe: string | undefined;
  /** The List-Id field's identifier (the text inside `<...>`), lower-cased. */
  listId: string | undefined;
  messageId: string | undefined;
}

/** A parsed report. */
export type MailReport =
  | { type: 'delivery_status'; recipients: DsnRecipient[]; original: OriginalMessage | undefined }
  | {
      type: 'feedback';
      /** The Feedback-Type, lower-cased: abuse, fraud, virus, other, not-spam, auth-failure ... */
      feedbackType: string;
      /** Whether the report is a complaint about the message (abuse, fraud, virus, other). */
      complaint: boolean;
      /** The Original-Rcpt-To addresses, else the original message's To addresses. */
      addresses: string[];
      original: OriginalMessage | undefined;
    }
  | { type: 'not_a_report' };

/** Feedback types that are a recipient's complaint about the message (RFC 5965 section 7.3). */
const COMPLAINT_TYPES = new Set(['abuse', 'fraud', 'virus', 'other']);
/** The most per-recipient blocks read from one DSN (a report for more is cut there). */
const MAX_RECIPIENTS = 1000;
const STATUS = /^\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\d)/;

/**
 * Parses a raw message (as received over SMTP or posted to the webhook). Never throws: anything
 * that is not a delivery status notification or a feedback report is `not_a_report`.
 */
export async function parseMailReport(raw: Buffer | string): Promise<MailReport> {
  let parsed;
  try {
    // Loaded with the first report: mailparser (and its charset tables) is heavy for a server start.
    const { simpleParser } = await import('mailparser');
    parsed = await simpleParser(raw, {
      // Without it mailparser folds message/delivery-status into the text body.
      keepDeliveryStatus: true,
      skipHtmlToText: true,
      skipTextToHtml: true,
      skipImageLinks: true,
      maxHtmlLengthToParse: 0,
    });
  } catch {
    return { type: 'not_a_report' };
  }
  const attachments: Attachment[] = parsed.attachments;
  const part = (type: string) => attachments.find((a) => a.contentType.toLowerCase() === type);
  // mailparser keeps the returned message as an attachment, except a message/rfc822 part marked
  // inline (as RFC 5965's example and many feedback loops send it), which it folds into the text
  // and loses its headers; that part is then found by splitting the report at its boundary.
  // mailparser gives Content-Type as { value, params }.
  const contentType = parsed.headers.get('content-type') as { params?: Record<string, string> } | undefined;
  const originalContent =
    (part('message/rfc822') ?? part('text/rfc822-headers'))?.content ??
    returnedMessageIn(typeof raw === 'string' ? raw : raw.toString('utf8'), contentType?.params?.boundary);
  const original = originalContent === undefined ? undefined : parseOriginalHeaders(originalContent);

  const status = part('message/delivery-status');
  if (status !== undefined) {
    const recipients = parseDeliveryStatus(status.content.toString('utf8'));
    return recipients.length === 0
      ? { type: 'not_a_report' }
      : { type: 'delivery_status', recipients, original };
  }
  const feedback = part('message/feedback-report');
  if (feedback !== undefined) {
    const report = parseFeedbackReport(feedback.content.toString('utf8'));
    if (report === undefined) return { type: 'not_a_report' };
    const addresses =
      report.originalRcptTo.length > 0
        ? report.originalRcptTo
        : originalContent === undefined
          ? []
          : originalRecipients(originalContent);
    return {
      type: 'feedback',
      feedbackType: report.feedbackType,
      complaint: COMPLAINT_TYPES.has(report.feedbackType),
      addresses,
      original,
    };
  }
  return { type: 'not_a_report' };
}

/**
 * Splits text into blocks of header fields (blocks are separated by blank lines): each block maps
 * lower-cased field names to their values in order, unfolded (RFC 5322: a line that starts with
 * white space continues the field before it). Lines that are not fields are skipped.
 */
export function parseHeaderBlocks(text: string): Array<Map<string, string[]>> {
  const blocks: Array<Map<string, string[]>> = [];
  let block = new Map<string, string[]>();
  let last: { name: string; index: number } | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') {
      if (block.size > 0) blocks.push(block);
      block = new Map();
      last = undefined;
      continue;
    }
    if (/^[ \t]/.test(line)) {
      if (last !== undefined) {
        const values = block.get(last.name)!;
        values[last.index] = `${values[last.index]!} ${line.trim()}`;
      }
      continue;
    }
    const m = /^([!-9;-~]+)[ \t]*:(.*)$/.exec(line);
    if (!m) {
      last = undefined;
      continue;
    }
    const name = m[1]!.toLowerCase();
    const values = block.get(name) ?? [];
    values.push(m[2]!.trim());
    block.set(name, values);
    last = { name, index: values.length - 1 };
  }
  if (block.size > 0) blocks.push(block);
  return blocks;
}

/**
 * The recipients of a `message/delivery-status` body: its first block is about the message, every
 * further block about one recipient (RFC 3464 section 2.1). A block is taken as a recipient's when
 * it has a Final-Recipient, wherever it is (some systems leave out the message's block).
 */
export function parseDeliveryStatus(text: string): DsnRecipient[] {
  const out: DsnRecipient[] = [];
  for (const block of parseHeaderBlocks(text)) {
    if (out.length >= MAX_RECIPIENTS) break;
    const action = first(block, 'action')?.toLowerCase().split(/[\s(]/)[0];
    const finalRecipient = first(block, 'final-recipient');
    if (action === undefined || finalRecipient === undefined) continue;
    const statusMatch = STATUS.exec(first(block, 'status') ?? '');
    const status = statusMatch ? `${statusMatch[1]}.${statusMatch[2]}.${statusMatch[3]}` : undefined;
    const originalRecipient = first(block, 'original-recipient');
    out.push({
      address:
        (originalRecipient === undefined ? undefined : typedAddress(originalRecipient)) ??
        typedAddress(finalRecipient),
      action,
      status,
      kind: bounceKind(action, status),
    });
  }
  return out;
}

/**
 * What a DSN recipient's Action and Status mean: `failed` with a 5.x.x status is a hard bounce (the
 * address will not work), `failed` with 4.x.x and `delayed` are soft; `delivered`, `relayed` and
 * `expanded` are no bounce. A failure without a readable status counts as hard: RFC 3464 says
 * "failed" means the reporting system gave up.
 */
export function bounceKind(action: string, status: string | undefined): BounceKind | undefined {
  switch (action) {
    case 'failed':
      return status?.startsWith('4.') ? 'soft' : 'hard';
    case 'delayed':
      return 'soft';
    default:
      return undefined;
  }
}

/** The fields of a `message/feedback-report` body Pledge uses; `undefined` without Feedback-Type. */
export function parseFeedbackReport(
  text: string,
): { feedbackType: string; originalRcptTo: string[] } | undefined {
  const block = parseHeaderBlocks(text)[0];
  const feedbackType =
    block &&
    first(block, 'feedback-type')
      ?.toLowerCase()
      .split(/[\s;(]/)[0];
  if (block === undefined || feedbackType === undefined || feedbackType === '') return undefined;
  const originalRcptTo = (block.get('original-rcpt-to') ?? []).flatMap((v) => {
    const a = bareAddress(v);
    return a === undefined ? [] : [a];
  });
  return { feedbackType, originalRcptTo };
}

/** The headers of the returned message (or of its header-only copy) that Pledge reads. */
export function parseOriginalHeaders(content: Buffer | string): OriginalMessage {
  const block = headerBlockOf(content);
  const listId = first(block, 'list-id');
  return {
    listUnsubscribe: first(block, 'list-unsubscribe'),
    listId:
      listId === undefined ? undefined : (/<([^<>]+)>/.exec(listId)?.[1] ?? listId).trim().toLowerCase(),
    messageId: first(block, 'message-id'),
  };
}

/**
 * The signed unsubscribe token in a List-Unsubscribe field: from the one-click URL
 * (`<https://…/unsubscribe/one-click/TOKEN>`) or the mailto address (`<mailto:unsubscribe+TOKEN@…>`).
 * Not verified here.
 */
export function unsubscribeTokenIn(listUnsubscribe: string | undefined): string | undefined {
  if (listUnsubscribe === undefined) return undefined;
  return (
    /\/unsubscribe\/one-click\/([A-Za-z0-9_-]+)[>?#\s]/.exec(`${listUnsubscribe} `)?.[1] ??
    /mailto:unsubscribe\+([A-Za-z0-9_-]+)@/i.exec(listUnsubscribe)?.[1]
  );
}

/** `rfc822; a@b.example` (or `utf-8; …`) → `a@b.example`; other address types → `undefined`. */
export function typedAddress(value: string): string | undefined {
  const m = /^\s*(rfc822|utf-8)\s*;\s*(.+)$/i.exec(value);
  return m ? bareAddress(m[2]!) : undefined;
}

/** The returned message (or its headers) in a multipart/report, found by its boundary. */
function returnedMessageIn(raw: string, boundary: string | undefined): string | undefined {
  if (boundary === undefined || boundary === '' || boundary.length > 200) return undefined;
  const escaped = boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const parts = raw.split(new RegExp(`\\r?\\n--${escaped}(?:--)?[ \\t]*(?=\\r?\\n|$)`));
  for (const part of parts.slice(1)) {
    const body = part.replace(/^\r?\n/, '');
    const end = /\r?\n\r?\n/.exec(body);
    const headers = parseHeaderBlocks(end ? body.slice(0, end.index) : body)[0];
    const type = headers && first(headers, 'content-type')?.toLowerCase();
    if (type?.startsWith('message/rfc822') || type?.startsWith('text/rfc822-headers')) {
      return end ? body.slice(end.index + end[0].length) : '';
    }
  }
  return undefined;
}

function bareAddress(value: string): string | undefined {
  const inner = /<([^<>]*)>/.exec(value)?.[1] ?? value;
  const address = inner.trim();
  return /^[^\s@<>]+@[^\s@<>]+$/.test(address) ? address : undefined;
}

function first(block: Map<string, string[]>, name: string): string | undefined {
  return block.get(name)?.[0];
}

function headerBlockOf(content: Buffer | string): Map<string, string[]> {
  const text = typeof content === 'string' ? content : content.toString('utf8');
  const end = /\r?\n\r?\n/.exec(text);
  return parseHeaderBlocks(end ? text.slice(0, end.index) : text)[0] ?? new Map<string, string[]>();
}

function originalRecipients(content: Buffer | string): string[] {
  const to = first(headerBlockOf(content), 'to');
  if (to === undefined) return [];
  return to.split(',').flatMap((part) => {
    const a = bareAddress(part);
    return a === undefined ? [] : [a];
  });
}
