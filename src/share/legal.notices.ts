/**
 * The e-mail that tells a person an authority received their data (sent by the notice job unless
 * telling them is prohibited, and then once the prohibition ends).
 */
import type { Manifest } from '../manifest/manifest.schema.js';
import type { MailMessage } from '../platform/mail/mail.transport.js';
import type { LegalNoticeRecord, LegalRequestRecord } from './legal.repository.js';

/** The notice to `to` of a disclosure under request `r`. */
export function noticeMessage(
  org: Manifest['organization'],
  r: LegalRequestRecord,
  notice: LegalNoticeRecord,
  to: string,
): MailMessage {
  const categories = (r.approved?.categories ?? []).join(', ');
  const text = [
    `${org.name} disclosed information about you to ${r.authority.name} on ${notice.disclosedAt.toISOString().slice(0, 10)}, as required by law.`,
    '',
    `Legal basis: ${r.legalBasis.replace(/_/g, ' ')}${r.citation === undefined ? '' : ` (${r.citation})`}`,
    `The authority's reference: ${r.reference}`,
    `Categories of information the request was approved for: ${categories}`,
    '',
    `We disclosed only what the request required, after review. Questions: ${org.privacy_contact}.`,
    '',
  ].join('\n');
  return { to, subject: `${org.name} disclosed information about you to an authority`, text };
}
