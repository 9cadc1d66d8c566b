/**
 * The checks of `pledge check` for what binds processors to the policy (docs/manifest.md,
 * "Recipients"): every processor and affiliate has a contact the notices of policy changes go to,
 * its notice webhook is https and carries no credentials (the manifest is published), and each of
 * its sub-processors serves a declared purpose that it receives data for. manifest.checker.ts calls
 * it.
 */
import type { Locator } from './manifest.loader.js';
import type { Manifest } from './manifest.schema.js';
import type { ManifestPath, ManifestProblem } from './problems.js';

/** The codes these checks report. */
export const RECIPIENT_CHECK_CODES = {
  recipientContactMissing: 'check.recipient_contact_missing',
  recipientWebhookInsecure: 'check.recipient_webhook_insecure',
  recipientWebhookCredentials: 'check.recipient_webhook_credentials',
  subProcessorPurposeUndeclared: 'check.sub_processor_purpose_undeclared',
  subProcessorsOfNonProcessor: 'check.sub_processors_of_non_processor',
  subProcessorSinceEarly: 'check.sub_processor_since_early',
} as const;

/** The recipients bound by an agreement to acknowledge the policy (the others are not asked). */
export const ACKNOWLEDGING_KINDS: ReadonlySet<string> = new Set(['processor', 'affiliate']);

/** Every problem of the recipients' contacts, notice webhooks and sub-processors; never throws. */
export function checkRecipients(manifest: Manifest, locator: Locator): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const report = (code: string, path: ManifestPath, message: string, hint: string) =>
    problems.push({ code, message, hint, path, location: locator.locate(path) });
  const purposeKeys = new Set(manifest.purposes.map((p) => p.key));

  manifest.recipients.forEach((r, i) => {
    const bound = ACKNOWLEDGING_KINDS.has(r.kind);
    if (bound && r.contact === undefined) {
      report(
        RECIPIENT_CHECK_CODES.recipientContactMissing,
        ['recipients', i, 'kind'],
        `recipient "${r.key}" (${r.kind}) has no contact, so no one would be told when the policy it acknowledged changes`,
        'add contact: <the e-mail address of its privacy or data-protection team>',
      );
    }
    if (r.webhook !== undefined) {
      const url = new URL(r.webhook);
      if (url.protocol !== 'https:' && !isLoopbackHost(url.hostname)) {
        report(
          RECIPIENT_CHECK_CODES.recipientWebhookInsecure,
          ['recipients', i, 'webhook'],
          `recipient "${r.key}" would be sent policy notices at ${url.host} unencrypted (http)`,
          `use https://${url.host}${url.pathname}; plain http is accepted only for localhost, 127.0.0.1 or [::1]`,
        );
      }
      if (url.username !== '' || url.password !== '') {
        report(
          RECIPIENT_CHECK_CODES.recipientWebhookCredentials,
          ['recipients', i, 'webhook'],
          `recipient "${r.key}" has a user name or password in its webhook URL, and the manifest is published`,
          'remove them from the URL: the receiver authenticates notices by their Pledge-Signature header (see docs/manifest.md, Acknowledgements)',
        );
      }
    }
    const subs = r.sub_processors ?? [];
    if (subs.length > 0 && !bound) {
      report(
        RECIPIENT_CHECK_CODES.subProcessorsOfNonProcessor,
        ['recipients', i, 'sub_processors'],
        `recipient "${r.key}" is ${r.kind === 'authority' ? 'an authority' : 'a third party'}; only processors and affiliates act for us through sub-processors`,
        'remove sub_processors: here, or declare the company as a processor',
      );
    }
    const since = r.since ?? r.agreement?.signed;
    subs.forEach((sub, j) => {
      if (!r.purposes.includes(sub.purpose)) {
        const known = purposeKeys.has(sub.purpose);
        report(
          RECIPIENT_CHECK_CODES.subProcessorPurposeUndeclared,
          ['recipients', i, 'sub_processors', j, 'purpose'],
          known
            ? `sub-processor "${sub.name}" of "${r.key}" serves "${sub.purpose}", a purpose "${r.key}" receives no data for`
            : `sub-processor "${sub.name}" of "${r.key}" serves "${sub.purpose}", which is not a declared purpose`,
          `name one of ${r.purposes.map((p) => `"${p}"`).join(', ')}, or declare what "${r.key}" receives for "${sub.purpose}"`,
        );
      }
      if (sub.since !== undefined && since !== undefined && sub.since < since) {
        report(
          RECIPIENT_CHECK_CODES.subProcessorSinceEarly,
          ['recipients', i, 'sub_processors', j, 'since'],
          `sub-processor "${sub.name}" of "${r.key}" is said to process data since ${sub.since}, before "${r.key}" itself received any (${since})`,
          `correct the date: a sub-processor receives data from ${since} at the earliest`,
        );
      }
    });
  });
  return problems;
}

/** Hosts plain http may go to: nothing leaves the machine. */
function isLoopbackHost(hostname: string): boolean {
  return (
    hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  );
}
