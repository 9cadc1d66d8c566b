/**
 * The pages of the one-click unsubscribe URL, in the look of the other pages (see
 * consent/pages.views.ts): the confirmation a person (or a link scanner) gets from a GET, and the
 * answer to the POST. The answer names no other link: it often goes to a mailbox provider's
 * server, not to the person, and must hand it nothing that opens the person's choices.
 */
import { channelWords, renderPage, type PageSite } from '../consent/pages.views.js';
import { html } from '../platform/html.js';

/** The field and value RFC 8058 asks a one-click POST to carry. */
export const ONE_CLICK_FIELD = 'List-Unsubscribe';
export const ONE_CLICK_VALUE = 'One-Click';

function what(purposeName: string, channel: string | undefined): string {
  return `${purposeName}${channel ? ` ${channelWords(channel)}` : ''}`;
}

/** The confirmation: one button that posts what a mailbox provider would post. */
// prettier-ignore
export function oneClickConfirmPage(
  site: PageSite,
  options: { purposeName: string; channel: string | undefined; action: string },
): string {
  const main = html`    <p>Select the button to stop: <strong>${what(options.purposeName, options.channel)}</strong>.</p>
    <form method="post" action="${options.action}">
      <input type="hidden" name="${ONE_CLICK_FIELD}" value="${ONE_CLICK_VALUE}">
      <p><button type="submit" class="button">Unsubscribe</button></p>
    </form>
`;
  return renderPage(site, 'Unsubscribe', main);
}

/** The answer to the POST (the same for the first and every later one). */
// prettier-ignore
export function oneClickDonePage(site: PageSite, options: { purposeName: string; channel: string | undefined }): string {
  const main = html`    <div role="status"><p>You are unsubscribed. We no longer do this: <strong>${what(options.purposeName, options.channel)}</strong>.</p></div>
    <p>To change your other choices, <a href="/unsubscribe">ask for a link to your privacy choices</a>.</p>
`;
  return renderPage(site, 'You are unsubscribed', main);
}

/** A link that does not work (altered, cut short, expired). */
// prettier-ignore
export function oneClickBadLinkPage(site: PageSite): string {
  const main = html`    <div class="notice" role="alert"><p>This link does not work: it has expired, or it was changed or cut short when it was copied. Nothing was changed.</p></div>
    <p><a href="/unsubscribe">Ask for a new link</a> to unsubscribe or change your choices.</p>
`;
  return renderPage(site, 'This link does not work', main);
}
