/**
 * The page a download link opens, in the look of the other pages (consent/pages.views.ts): what the
 * export is, until when and how many downloads are left, and one button that POSTs to the same URL.
 * No script: the page works in any browser, and a link scanner that GETs it starts nothing.
 */
import { renderPage, type PageSite } from '../consent/pages.views.js';
import { html } from '../platform/html.js';
import type { ExportLinkView } from './export.delivery.js';

function sizeWords(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/** The link's page: one button that starts the download. */
// prettier-ignore
export function exportDownloadPage(site: PageSite, view: ExportLinkView, action: string): string {
  const main = view.downloadsLeft > 0
    ? html`    <p>Your copy of the personal data ${site.name} holds on you is ready: a zip file (${sizeWords(view.size)}) with a README, a summary page you can open in a browser, and each part as JSON and CSV.</p>
    <p>This link works until ${view.expiresAt.toUTCString()}, for ${view.downloadsLeft} more download${view.downloadsLeft === 1 ? '' : 's'}.</p>
    <form method="post" action="${action}">
      <p><button type="submit" class="button">Download your data</button></p>
    </form>
`
    : html`    <div class="notice" role="alert"><p>This export was downloaded as many times as it allows. Make a new request to get another copy.</p></div>
`;
  return renderPage(site, 'Your personal data', main);
}
