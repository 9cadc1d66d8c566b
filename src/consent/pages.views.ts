/**
 * The HTML of the preference center and the unsubscribe pages. Complete documents in the look of
 * `/privacy`: no script and no inline style (the Content-Security-Policy forbids both), `lang` on
 * the root, a skip link, one `<h1>`, and a visible label for every control. Every interpolation goes
 * through {@link html}, so text from the manifest or a request can never become markup.
 */
import type { Manifest } from '../manifest/manifest.schema.js';
import { html, safeHref, type SafeHtml } from '../platform/html.js';
import type { DisclosureItem, DisclosuresModel } from '../share/disclosures.view.js';
import type { PreferenceChange, PreferenceItem, Preferences } from './pages.preferences.js';

/** The organization a page speaks for. */
export interface PageSite {
  name: string;
  website: string;
  privacyContact: string;
}

/** The site of a manifest. */
export function siteOf(manifest: Manifest): PageSite {
  return {
    name: manifest.organization.name,
    website: manifest.organization.website,
    privacyContact: manifest.organization.privacy_contact,
  };
}

/** A form's anti-forgery token, put in a hidden field. */
export type CsrfToken = string;

const CHANNEL_WORDS: Record<string, string> = {
  email: 'by e-mail',
  web: 'on our websites',
  phone: 'by phone',
  sms: 'by text message',
  postal: 'by post',
  in_product: 'in our products',
};

/** How a channel reads after a purpose ("by e-mail"); empty for no channel. */
export function channelWords(channel: string | undefined): string {
  return channel === undefined ? '' : (CHANNEL_WORDS[channel] ?? `on ${channel}`);
}

// The functions below lay out markup and are left as written (Prettier would move its whitespace).

/** A complete page. */
// prettier-ignore
export function renderPage(site: PageSite, title: string, main: SafeHtml): string {
  const website = safeHref(site.website);
  const siteName = website === undefined ? html`${site.name}` : html`<a href="${website}">${site.name}</a>`;
  return html`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="robots" content="noindex">
  <title>${title} | ${site.name}</title>
  <link rel="stylesheet" href="/assets/policy.css">
  <link rel="stylesheet" href="/assets/pages.css">
</head>
<body>
  <a class="skip-link" href="#main">Skip to the content</a>
  <header class="site-header">
    <p class="site-name">${siteName}</p>
  </header>
  <main id="main" tabindex="-1">
    <h1>${title}</h1>
${main}  </main>
  <footer class="site-footer">
    <p>Read our <a href="/privacy">privacy policy</a>. To ask for a copy of your data, its correction or erasure: <a href="/requests">make a request</a>. Questions? Write to <a href="${safeHref(`mailto:${site.privacyContact}`)}">${site.privacyContact}</a>.</p>
  </footer>
</body>
</html>
`.value;
}

function csrfField(csrf: CsrfToken): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${csrf}">`;
}

function itemState(item: PreferenceItem, globalOptOut: boolean): string {
  if (item.on && globalOptOut)
    return 'Saved setting: on, but paused while you are opted out of everything optional.';
  if (item.byGpc) return 'Saved setting: off, because your browser sent a Global Privacy Control signal.';
  return item.on ? 'Saved setting: on.' : 'Saved setting: off.';
}

const FIXED_WHY: Record<NonNullable<PreferenceItem['fixed']>, string> = {
  needed_for_service: 'Not optional: we need this to provide the service you asked for.',
  required_by_law: 'Not optional: the law requires it.',
  never: 'We never do this: our privacy policy promises it.',
};

/** The preference center. */
// prettier-ignore
export function preferencesPage(
  site: PageSite,
  prefs: Preferences,
  options: { token: string; csrf: CsrfToken; gpcSignal: boolean; disclosures?: boolean },
): string {
  const optional = prefs.items.filter((i) => i.optional);
  const fixed = prefs.items.filter((i) => !i.optional);
  const gpcNames = prefs.items.filter((i) => prefs.gpcPurposes.includes(i.purpose.key)).map((i) => i.purpose.name);
  const gpc = options.gpcSignal && gpcNames.length > 0
    ? html`    <div class="notice"><p>Your browser sends a Global Privacy Control signal. When you save, we record it as an opt-out of: ${gpcNames.join('; ')}.</p></div>\n`
    : '';
  const switches = optional.map((item) => {
    const id = `purpose-${item.purpose.key}`;
    return html`
        <li class="choice">
          <div class="switch">
            <input type="checkbox" id="${id}" name="purpose" value="${item.purpose.key}"${item.on ? html` checked` : ''} aria-describedby="${id}-about ${id}-state">
            <label for="${id}">${item.purpose.name}</label>
          </div>
          <p id="${id}-about">${item.purpose.description}</p>
          <p id="${id}-state" class="state">${itemState(item, prefs.globalOptOut)}</p>
          <input type="hidden" name="shown" value="${item.purpose.key}">
        </li>`;
  });
  const fixedList = fixed.map((item) => html`
        <li class="choice">
          <p><strong>${item.purpose.name}</strong></p>
          <p>${item.purpose.description}</p>
          <p class="state">${item.fixed ? FIXED_WHY[item.fixed] : ''}</p>
        </li>`);
  const main = html`    <p>Choose what we may use your information for. Nothing changes until you select <strong>Save my choices</strong>.</p>
${gpc}    <form method="post" action="/preferences">
      ${csrfField(options.csrf)}
      <input type="hidden" name="t" value="${options.token}">
      <fieldset class="choices">
        <legend>Your choices</legend>
        <ul class="choice-list">${switches}
        </ul>
      </fieldset>
      <fieldset class="choices">
        <legend>Everything optional</legend>
        <div class="choice everything">
          <div class="switch">
            <input type="checkbox" id="global-opt-out" name="opt_out_everything" value="1"${prefs.globalOptOut ? html` checked` : ''} aria-describedby="global-opt-out-about">
            <label for="global-opt-out">Opt out of everything optional</label>
          </div>
          <p id="global-opt-out-about">Stops every use above, whatever its switch says, until you clear this box.</p>
          <input type="hidden" name="everything_shown" value="1">
        </div>
      </fieldset>
      <p><button type="submit" class="button">Save my choices</button></p>
    </form>
    <section aria-labelledby="fixed-heading">
      <h2 id="fixed-heading">What you cannot switch off</h2>
      <ul class="choice-list fixed">${fixedList}
      </ul>
    </section>
${options.disclosures ? html`    <section aria-labelledby="center-heading">
      <h2 id="center-heading">Who got your data</h2>
      <p>See which organizations received which of your information from us, and when, each with a proof you can check: <a href="/preferences/disclosures?t=${options.token}">who got your data</a>.</p>
    </section>
` : ''}    <section aria-labelledby="sign-out-heading">
      <h2 id="sign-out-heading">Links to this page</h2>
      <p>Anyone with a link to this page can change your choices. If you forwarded one of our e-mails, or fear someone else has a link, sign out every link: they all stop working, this one too, and you can ask for a new one. Unsubscribe links keep working.</p>
      <form method="post" action="/preferences/sign-out">
        ${csrfField(options.csrf)}
        <input type="hidden" name="t" value="${options.token}">
        <p><button type="submit" class="button">Sign out every link</button></p>
      </form>
    </section>
`;
  return renderPage(site, PRIVACY_CENTER, main);
}

/** The heading of the privacy center's pages (choices, and who got the person's data). */
const PRIVACY_CENTER = 'Your privacy center';

/**
 * The privacy center's two pages, linked to each other, the one shown marked current (at the top
 * of the disclosures page; the choices page links here from a section after its form).
 */
// prettier-ignore
function centerNav(token: string, current: 'choices' | 'disclosures'): SafeHtml {
  const link = (page: 'choices' | 'disclosures', href: string, label: string) =>
    page === current
      ? html`<li><a href="${href}" aria-current="page">${label}</a></li>`
      : html`<li><a href="${href}">${label}</a></li>`;
  return html`    <nav class="center-nav" aria-label="Privacy center">
      <ul>
        ${link('choices', `/preferences?t=${token}`, 'Your privacy choices')}
        ${link('disclosures', `/preferences/disclosures?t=${token}`, 'Who got your data')}
      </ul>
    </nav>
`;
}

const RECIPIENT_KIND_WORDS: Record<DisclosureItem['recipientKind'], string> = {
  processor: 'A service provider working for us',
  affiliate: 'A company of our group',
  authority: 'A court or public authority, as the law required',
  third_party: 'Another organization',
  unknown: 'A recipient',
};

const DATE_WORDS = new Intl.DateTimeFormat('en-GB', {
  dateStyle: 'long',
  timeStyle: 'short',
  timeZone: 'UTC',
});

/** "Who got my data": each disclosure of the person's data, newest first, with its proof. */
// prettier-ignore
export function disclosuresPage(site: PageSite, model: DisclosuresModel, options: { token: string }): string {
  const rows = model.items.map((item) => {
    const proof = item.proof === 'ready' && item.leaf !== undefined
      ? html`<a href="/preferences/disclosures/proof?t=${options.token}&amp;leaf=${item.leaf}" download="pledge-proof-${item.leaf}.json">Download the proof of entry ${item.leaf}</a>`
      : html`Being recorded, check again in a minute.`;
    return html`
          <tr>
            <td><time datetime="${item.at.toISOString()}">${DATE_WORDS.format(item.at)} UTC</time></td>
            <th scope="row">${item.recipientName}<br><span class="state">${RECIPIENT_KIND_WORDS[item.recipientKind]}</span></th>
            <td>${item.purposeName}</td>
            <td>${item.categories.length > 0 ? item.categories.join(', ') : 'None of your information'}</td>
            <td>${proof}</td>
          </tr>`;
  });
  const list = model.items.length === 0
    ? html`    <p>No one has received your information from us.</p>
`
    : html`    <div class="table-wrap">
      <table class="disclosures">
        <caption>What left, newest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who received it</th>
            <th scope="col">What for</th>
            <th scope="col">Which of your information</th>
            <th scope="col">Proof</th>
          </tr>
        </thead>
        <tbody>${rows}
        </tbody>
      </table>
    </div>
`;
  const main = html`${centerNav(options.token, 'disclosures')}    <section aria-labelledby="who-heading">
      <h2 id="who-heading">Who got your data</h2>
      <p>Each time we gave your information to someone outside, or handed it to a provider that works for us, we recorded it in our public transparency log. These are those records.</p>
${list}    </section>
    <section class="how-to-check" aria-labelledby="check-heading">
      <h2 id="check-heading">How to check this</h2>
      <p>Each proof shows that its record is in our transparency log as we signed it, so we cannot change or remove it later without it showing. To check one yourself:</p>
      <ol>
        <li>Download the proof: it holds the record and a signed checkpoint of the log.</li>
        <li>Check it with our public key: <code>${model.verifierKey}</code>, for example with <code>pledge audit verify-proof --proof proof.json --checkpoint checkpoint.txt --key KEY</code> (checkpoint.txt: the proof's <code>checkpoint</code>), or with <code>examples/log-audit/audit.mjs --proof proof.json --key KEY</code>.</li>
        <li>Compare with our latest public checkpoint at <a href="/log/checkpoint">/log/checkpoint</a>: an auditor can prove that it continues the one in your proof.</li>
      </ol>
    </section>
`;
  return renderPage(site, PRIVACY_CENTER, main);
}

/** What the preference center saved. */
// prettier-ignore
export function preferencesSavedPage(site: PageSite, changes: readonly PreferenceChange[], preferencesHref: string): string {
  const lines = changes.map((c) => html`
      <li>${c.name}: <strong>now ${c.on ? 'on' : 'off'}</strong>${c.byGpc ? ' (because your browser sent a Global Privacy Control signal)' : ''}</li>`);
  const body = changes.length === 0
    ? html`    <p>Nothing changed: your choices were already as you set them.</p>\n`
    : html`    <p>We saved your choices. This is what changed:</p>
    <ul class="changes">${lines}
    </ul>
`;
  const main = html`<div role="status">
${body}    </div>
    <p><a href="${preferencesHref}">Back to your privacy choices</a></p>
`;
  return renderPage(site, 'Your choices are saved', main);
}

/** After "sign out every link": the links are gone, and how to get a new one. */
// prettier-ignore
export function signedOutPage(site: PageSite): string {
  const main = html`<div role="status">
    <p>Every link to your privacy choices is signed out, including the one you used. Unsubscribe links in our e-mails keep working.</p>
    </div>
    <p><a href="/preferences">E-mail me a new link</a></p>
`;
  return renderPage(site, 'Every link is signed out', main);
}

/** The unsubscribe confirmation: one button. */
// prettier-ignore
export function unsubscribeConfirmPage(
  site: PageSite,
  options: { purposeName: string; channel: string | undefined; token: string; csrf: CsrfToken },
): string {
  const what = `${options.purposeName}${options.channel ? ` ${channelWords(options.channel)}` : ''}`;
  const main = html`    <p>Select the button to stop: <strong>${what}</strong>.</p>
    <form method="post" action="/unsubscribe">
      ${csrfField(options.csrf)}
      <input type="hidden" name="t" value="${options.token}">
      <p><button type="submit" class="button">Unsubscribe</button></p>
    </form>
`;
  return renderPage(site, 'Unsubscribe', main);
}

/** The unsubscribe result. */
// prettier-ignore
export function unsubscribeDonePage(
  site: PageSite,
  options: { purposeName: string; channel: string | undefined; preferencesHref: string },
): string {
  const what = `${options.purposeName}${options.channel ? ` ${channelWords(options.channel)}` : ''}`;
  const main = html`    <div role="status"><p>You are unsubscribed. We no longer do this: <strong>${what}</strong>.</p></div>
    <p>To change your other choices, open <a href="${options.preferencesHref}">your privacy choices</a> (the link works for 24 hours).</p>
`;
  return renderPage(site, 'You are unsubscribed', main);
}

/** A proof asked for that is not one of the person's records on their page (or not signed yet). */
// prettier-ignore
export function proofUnavailablePage(site: PageSite, disclosuresHref: string): string {
  const main = html`    <div class="notice" role="alert"><p>There is no proof to download here: this is not one of the records on your page, or it is still being recorded.</p></div>
    <p><a href="${disclosuresHref}">Back to who got your data</a></p>
`;
  return renderPage(site, 'No proof here', main);
}

/** Why a person is shown the form that e-mails them a link. */
export type LinkFormReason = 'start' | 'missing_link' | 'bad_link' | 'signed_out' | 'bad_email';

const LINK_FORM_LEAD: Record<LinkFormReason, string> = {
  start:
    'Enter your e-mail address and we will send you a link to unsubscribe and to manage your privacy choices.',
  missing_link:
    'This page opens from the link in one of our e-mails. Enter your e-mail address and we will send you a new link.',
  bad_link:
    'This link does not work: it has expired, or it was changed or cut short when it was copied. Enter your e-mail address and we will send you a new link.',
  signed_out:
    'This link no longer works: every link to your privacy choices was signed out (or your data was erased). Enter your e-mail address and we will send you a new link.',
  bad_email: 'That does not look like an e-mail address. Enter it as name@example.com.',
};

/** The form that e-mails a person a link (also the page for a missing or bad link). */
// prettier-ignore
export function linkFormPage(site: PageSite, options: { reason: LinkFormReason; csrf: CsrfToken }): string {
  const lead = LINK_FORM_LEAD[options.reason];
  const leadHtml = options.reason === 'start'
    ? html`    <p>${lead}</p>\n`
    : html`    <div class="notice" role="alert"><p>${lead}</p></div>\n`;
  const invalid = options.reason === 'bad_email' ? html` aria-invalid="true"` : '';
  const main = html`${leadHtml}    <form method="post" action="/unsubscribe/email">
      ${csrfField(options.csrf)}
      <div class="field">
        <label for="email">Your e-mail address</label>
        <p class="hint" id="email-hint">The link works for 24 hours. If we do not know this address, no e-mail is sent.</p>
        <input type="email" id="email" name="email" autocomplete="email" required aria-describedby="email-hint"${invalid}>
      </div>
      <p><button type="submit" class="button">E-mail me a link</button></p>
    </form>
`;
  const title = options.reason === 'bad_link' || options.reason === 'missing_link' || options.reason === 'signed_out' ? 'Get a new link' : 'Unsubscribe or change your choices';
  return renderPage(site, title, main);
}

/**
 * The answer to the e-mail form. It is the same bytes for every address, known or not: nothing in
 * it depends on the request, so the page cannot tell anyone whether an address is on file.
 */
// prettier-ignore
export function linkSentPage(site: PageSite): string {
  const main = html`    <div role="status"><p>Thank you. If this address is one we know, we have sent it a link. Check your inbox (and your spam folder) in a few minutes.</p></div>
    <p>The link works for 24 hours. If nothing arrives, write to us at the address below.</p>
`;
  return renderPage(site, 'Check your inbox', main);
}

/** A form that arrived without its anti-forgery token, or with a wrong one. */
// prettier-ignore
export function formExpiredPage(site: PageSite): string {
  const main = html`    <div class="notice" role="alert"><p>This form has expired or did not come from our site, so nothing was changed.</p></div>
    <p>Go back, reload the page and try again, or <a href="/unsubscribe">ask for a new link</a>. Your browser must accept cookies from this site for the form to work.</p>
`;
  return renderPage(site, 'Nothing was changed', main);
}

/** Any other failure of a page. */
// prettier-ignore
export function pageErrorPage(site: PageSite, status: number): string {
  const text =
    status === 429
      ? 'Too many requests came from your network. Wait a minute and try again.'
      : status >= 500
        ? 'Something went wrong on our side, and nothing was changed. Try again later.'
        : 'We could not read this request, and nothing was changed. Go back and try again.';
  const main = html`    <div class="notice" role="alert"><p>${text}</p></div>
    <p><a href="/unsubscribe">Ask for a new link</a> to your privacy choices.</p>
`;
  return renderPage(site, status >= 500 ? 'Something went wrong' : 'Nothing was changed', main);
}

/** The e-mail with a link to the preference center. */
export function preferencesLinkMail(
  site: PageSite,
  url: string,
): { subject: string; text: string; html: string } {
  const subject = `Your link to your privacy choices at ${site.name}`;
  const text = [
    `Someone, hopefully you, asked for a link to unsubscribe or to change privacy choices at ${site.name}.`,
    '',
    'Open this link within 24 hours:',
    url,
    '',
    'If you did not ask for it, ignore this e-mail: nothing changes.',
    '',
    `${site.name}, ${site.privacyContact}`,
  ].join('\n');
  const body = html`<!DOCTYPE html>
<html lang="en">
<body>
<p>Someone, hopefully you, asked for a link to unsubscribe or to change privacy choices at ${site.name}.</p>
<p><a href="${url}">Open your privacy choices</a> (the link works for 24 hours).</p>
<p>If you did not ask for it, ignore this e-mail: nothing changes.</p>
<p>${site.name}, ${site.privacyContact}</p>
</body>
</html>
`;
  return { subject, text, html: body.value };
}
