/**
 * What a message says and how it is written on the wire: the campaign's templates rendered with the
 * person's fields (from the use gate), the mandatory footer (why the person gets it, how to stop
 * it, the preference center, the postal address), the List-* headers of RFC 2369/2919/8058, and the
 * MIME message nodemailer's composer builds. Pure functions of their input: no database, no clock.
 */
import type Handlebars from 'handlebars';
import type MailComposer from 'nodemailer/lib/mail-composer';
import type { Manifest, Purpose } from '../manifest/manifest.schema.js';
import { ValidationError } from '../platform/errors.js';
import { escapeHtml } from '../platform/html.js';

/** A campaign's templates, as given. */
export interface CampaignTemplates {
  subject: string;
  text: string;
  html: string;
}

/** Templates compiled once per campaign. */
export interface CompiledTemplates {
  subject: (fields: Record<string, unknown>) => string;
  text: (fields: Record<string, unknown>) => string;
  html: (fields: Record<string, unknown>) => string;
}

/**
 * An isolated Handlebars (no helpers or partials registered elsewhere reach campaign templates),
 * loaded with the first campaign: a server that sends none does not load it at start.
 */
let handlebarsInstance: Promise<typeof Handlebars> | undefined;
/** The Handlebars instance templates compile with (loaded on first use). */
export function loadHandlebars(): Promise<typeof Handlebars> {
  return (handlebarsInstance ??= import('handlebars').then(({ default: h }) => h.create()));
}

/**
 * Compiles a campaign's templates; throws `comms.template_invalid` naming the part and Handlebars'
 * message when one does not parse. The HTML template escapes values; subject and text do not (they
 * are not HTML), and the subject is kept on one line.
 */
export async function compileTemplates(templates: CampaignTemplates): Promise<CompiledTemplates> {
  const handlebars = await loadHandlebars();
  const compile = (part: keyof CampaignTemplates, noEscape: boolean) => {
    try {
      const template = handlebars.compile(templates[part], {
        noEscape,
        strict: false,
        knownHelpersOnly: true,
      });
      // Handlebars compiles lazily: render once with nothing to surface syntax errors now.
      template({});
      return template;
    } catch (err) {
      throw new ValidationError(
        'comms.template_invalid',
        `the ${part} template is not valid Handlebars: ${(err as Error).message.split('\n')[0] ?? ''}`,
        { path: `template.${part}` },
        422,
      );
    }
  };
  const subject = compile('subject', true);
  const text = compile('text', true);
  const html = compile('html', false);
  return {
    subject: (fields) =>
      subject(fields)
        .replace(/[\r\n]+/g, ' ')
        .trim(),
    text: (fields) => text(fields),
    html: (fields) => html(fields),
  };
}

/** The links and words of a footer. */
export interface FooterInput {
  manifest: Manifest;
  /** The purpose the message is sent for. */
  purpose: Purpose;
  /** Marketing: the person's choice in words and the links; service: the privacy policy link. */
  kind: 'marketing' | 'service';
  /** Why the decision allowed it (opt_in_granted, opt_out_default ...), for marketing. */
  decisionReason?: string | undefined;
  unsubscribeUrl?: string | undefined;
  preferencesUrl?: string | undefined;
  privacyUrl: string;
}

/** The organization's postal address on one line, as the manifest gives it. */
export function postalAddress(manifest: Manifest): string {
  const org = manifest.organization;
  const a = org.address;
  const cityLine = [a.city, [a.region, a.postal_code].filter((x) => x !== undefined).join(' ')].join(', ');
  return [org.legal_name ?? org.name, a.street, cityLine, a.country].join(', ');
}

const CHOICE_WORDS: Record<string, string> = {
  opt_in_granted: 'you agreed to receive them',
  opt_out_default: 'you have not opted out of them; you can at any time',
  required: 'they are part of the service you asked for',
};

/** The footer as plain text and as HTML (values escaped). */
export function renderFooter(input: FooterInput): { text: string; html: string } {
  const address = postalAddress(input.manifest);
  const org = input.manifest.organization.name;
  if (input.kind === 'service') {
    const text = [
      '',
      '-- ',
      `This is a service message from ${org} about your account; you receive it whatever your marketing choices.`,
      `Our privacy policy: ${input.privacyUrl}`,
      address,
      '',
    ].join('\n');
    const html = [
      '<hr>',
      `<p style="font-size:12px;color:#555">This is a service message from ${escapeHtml(org)} about your account; you receive it whatever your marketing choices.<br>`,
      `Our privacy policy: <a href="${escapeHtml(input.privacyUrl)}">${escapeHtml(input.privacyUrl)}</a><br>`,
      `${escapeHtml(address)}</p>`,
    ].join('\n');
    return { text, html };
  }
  const why = `You receive this e-mail from ${org} because of "${input.purpose.name}": ${input.purpose.description}`;
  const choice = `Your choice: ${CHOICE_WORDS[input.decisionReason ?? ''] ?? 'you may opt out at any time'}.`;
  const unsubscribe = input.unsubscribeUrl ?? '';
  const preferences = input.preferencesUrl ?? '';
  const text = [
    '',
    '-- ',
    why,
    choice,
    `Unsubscribe from these e-mails: ${unsubscribe}`,
    `Choose what we send you: ${preferences}`,
    address,
    '',
  ].join('\n');
  const html = [
    '<hr>',
    `<p style="font-size:12px;color:#555">${escapeHtml(why)}<br>${escapeHtml(choice)}<br>`,
    `<a href="${escapeHtml(unsubscribe)}">Unsubscribe from these e-mails</a> · `,
    `<a href="${escapeHtml(preferences)}">Choose what we send you</a><br>`,
    `${escapeHtml(address)}</p>`,
  ].join('\n');
  return { text, html };
}

/** Puts the footer at the end of the HTML body (before `</body>` when there is one). */
export function appendHtmlFooter(html: string, footer: string): string {
  const at = html.toLowerCase().lastIndexOf('</body>');
  return at < 0 ? `${html}\n${footer}` : `${html.slice(0, at)}${footer}\n${html.slice(at)}`;
}

/** The List-* headers of a marketing message, ASCII and folded, ready to be written as they are. */
export function listHeaders(options: {
  oneClickUrl: string;
  mailtoAddress: string;
  purpose: Purpose;
  mailDomain: string;
}): Array<{ key: string; value: string }> {
  return [
    // One field, both URIs (RFC 2369): the HTTPS one first, which RFC 8058 one-click POSTs to.
    {
      key: 'List-Unsubscribe',
      value: `<${options.oneClickUrl}>,\r\n <mailto:${options.mailtoAddress}>`,
    },
    { key: 'List-Unsubscribe-Post', value: 'List-Unsubscribe=One-Click' },
    {
      key: 'List-Id',
      value: `${listIdPhrase(options.purpose.name)} <${options.purpose.key}.${options.mailDomain}>`,
    },
  ];
}

/** A quoted phrase for List-Id (RFC 2919), or an RFC 2047 encoded word when it is not plain ASCII. */
function listIdPhrase(name: string): string {
  const oneLine = name.replace(/[\r\n]+/g, ' ');
  if (/^[\x20-\x7e]*$/.test(oneLine)) return `"${oneLine.replace(/["\\]/g, '\\$&')}"`;
  return `=?UTF-8?B?${Buffer.from(oneLine, 'utf8').toString('base64')}?=`;
}

/** A message to write. */
export interface ComposeInput {
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  messageId: string;
  date: Date;
  /** Prepared (ASCII, folded) headers written as they are. */
  headers: Array<{ key: string; value: string }>;
}

// Loaded with the first message, once: an `import()` per message costs a module-resolution round
// trip each time.
let mailComposer: Promise<typeof MailComposer> | undefined;

/** Builds the MIME message (multipart/alternative: text then HTML), CRLF line ends. */
export async function composeMessage(input: ComposeInput): Promise<Buffer> {
  const Composer = await (mailComposer ??= import('nodemailer/lib/mail-composer').then((m) => m.default));
  const composer = new Composer({
    from: input.from,
    to: input.to,
    subject: input.subject,
    text: input.text,
    html: input.html,
    messageId: input.messageId,
    date: input.date,
    // The map form: nodemailer honours `prepared` (write as is, no folding or encoding) there.
    headers: Object.fromEntries(input.headers.map((h) => [h.key, { prepared: true, value: h.value }])),
  });
  return new Promise((resolve, reject) => {
    composer.compile().build((err, message) => (err ? reject(err) : resolve(message)));
  });
}
