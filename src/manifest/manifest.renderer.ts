/**
 * Writes the published privacy policy from the manifest, in Markdown and in HTML.
 *
 * Both formats are rendered from one intermediate document (sections of paragraphs and lists, each
 * sentence tagged with the manifest path it came from), so the Markdown and the HTML can never say
 * different things. The output depends on nothing but the manifest: no clock, no locale, no
 * environment, so the same manifest always gives byte-identical text that can be committed and
 * compared.
 */
import { html, safeHref, type SafeHtml } from '../platform/html.js';
import type { Manifest } from './manifest.schema.js';
import { PolicyBuilder, type Block, type Inline, type Section } from './policy.document.js';
import { formatPath, type ManifestPath } from './problems.js';

export { POLICY_CSS } from './policy.css.js';
export {
  choicePurposeKeys,
  describePlace,
  endSentence,
  joinAnd,
  lowerFirst,
  quote,
} from './policy.wording.js';

/** Options of {@link renderPolicyHtml}. */
export interface RenderPolicyHtmlOptions {
  /** Where the server serves {@link POLICY_CSS}; `/assets/policy.css` unless given. */
  stylesheetHref?: string;
  /**
   * Where the server's preference center is. When given, preference-center choices link there
   * instead of their manifest path, and the footer links to it.
   */
  preferencesHref?: string;
}

// ---------------------------------------------------------------------------------------------
// Markdown

/**
 * Escapes manifest text for Markdown, so a name containing `*`, `[` or `<` is shown as written and
 * cannot become a link or raw HTML when the Markdown is converted. Whitespace is collapsed because
 * a line break inside a list item would end it.
 */
function escapeMarkdown(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/[\\`*_[\]<>]/g, '\\$&')
    .replace(/&(?=#?[A-Za-z0-9]+;)/g, '\\&')
    .replace(/^([#+\-=])/, '\\$1')
    .replace(/^(\d+)([.)])/, '$1\\$2');
}

function markdownHref(href: string, website: string): string {
  // A site path is resolved against the website: a Markdown file is read away from the site.
  const absolute = href.startsWith('/') ? new URL(href, website).href : href;
  return absolute.replace(
    /[()\s]/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
}

function inlineMarkdown(inline: Inline, website: string): string {
  if (typeof inline === 'string') return escapeMarkdown(inline);
  switch (inline.kind) {
    case 'link':
      return inline.href === undefined
        ? escapeMarkdown(inline.text)
        : `[${escapeMarkdown(inline.text)}](${markdownHref(inline.href, website)})`;
    case 'strong':
      return `**${inline.content.map((i) => inlineMarkdown(i, website)).join('')}**`;
    case 'time':
      return escapeMarkdown(inline.text);
  }
}

function blockMarkdown(block: Block, website: string): string {
  const inlines = (content: Inline[]) => content.map((i) => inlineMarkdown(i, website)).join('');
  switch (block.kind) {
    case 'p':
    case 'address':
      return inlines(block.content);
    case 'ul':
      return block.items.map((item) => `- ${inlines(item.content)}`).join('\n');
    case 'h3':
      return `### ${escapeMarkdown(block.text)}`;
  }
}

/** The published policy as Markdown: plain text with headings and lists, no manifest paths. */
export function renderPolicyMarkdown(manifest: Manifest): string {
  const doc = new PolicyBuilder(manifest, undefined).build();
  const website = doc.organization.website;
  const parts: string[] = [
    `# ${escapeMarkdown(doc.title)}`,
    ...doc.lead.map((b) => blockMarkdown(b, website)),
  ];
  for (const section of doc.sections) {
    parts.push(
      `## ${escapeMarkdown(section.title)}`,
      ...section.blocks.map((b) => blockMarkdown(b, website)),
    );
  }
  parts.push('---', ...doc.footer.map((b) => blockMarkdown(b, website)));
  return `${parts.join('\n\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// HTML

function pathAttribute(path: ManifestPath | undefined): SafeHtml | undefined {
  return path === undefined ? undefined : html` data-manifest-path="${formatPath(path)}"`;
}

function inlineHtml(inline: Inline): SafeHtml {
  if (typeof inline === 'string') return html`${inline}`;
  switch (inline.kind) {
    case 'link':
      return inline.href === undefined
        ? html`${inline.text}`
        : html`<a href="${inline.href}">${inline.text}</a>`;
    case 'strong':
      return html`<strong>${inline.content.map(inlineHtml)}</strong>`;
    case 'time':
      return html`<time datetime="${inline.datetime}">${inline.text}</time>`;
  }
}

// Prettier formats html`` templates as HTML, which would move the whitespace of the output; the
// functions that lay out the page are therefore left as written.
// prettier-ignore
function blockHtml(block: Block, indent: string): SafeHtml {
  switch (block.kind) {
    case 'p': {
      const cls = block.className === undefined ? undefined : html` class="${block.className}"`;
      return html`${indent}<p${cls}${pathAttribute(block.path)}>${block.content.map(inlineHtml)}</p>`;
    }
    case 'address':
      return html`${indent}<address${pathAttribute(block.path)}>${block.content.map(inlineHtml)}</address>`;
    case 'ul': {
      const items = block.items.map(
        (item) => html`\n${indent}  <li${pathAttribute(item.path)}>${item.content.map(inlineHtml)}</li>`,
      );
      return html`${indent}<ul>${items}\n${indent}</ul>`;
    }
    case 'h3':
      return html`${indent}<h3 id="${block.id}">${block.text}</h3>`;
  }
}

// prettier-ignore
function sectionHtml(section: Section): SafeHtml {
  const titleId = `${section.id}-title`;
  const blocks = section.blocks.map((b) => html`\n${blockHtml(b, '      ')}`);
  const heading = html`\n      <h2 id="${titleId}">${section.title}</h2>`;
  return section.aside
    ? html`    <aside id="${section.id}" class="policy-update" aria-labelledby="${titleId}">${heading}${blocks}\n    </aside>`
    : html`    <section id="${section.id}" aria-labelledby="${titleId}">${heading}${blocks}\n    </section>`;
}

/**
 * The published policy as a complete HTML5 document: no script, no inline style (the server's
 * Content-Security-Policy forbids both), one stylesheet link, and a `data-manifest-path` on every
 * element whose words come from the manifest so a reviewer can trace each sentence to its source.
 */
// prettier-ignore
export function renderPolicyHtml(manifest: Manifest, options: RenderPolicyHtmlOptions = {}): string {
  const doc = new PolicyBuilder(manifest, options.preferencesHref).build();
  const stylesheet = options.stylesheetHref ?? '/assets/policy.css';
  const website = safeHref(doc.organization.website);
  const siteName =
    website === undefined ? html`${doc.organization.name}` : html`<a href="${website}">${doc.organization.name}</a>`;
  const page = html`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="generator" content="Pledge">
  <title>${doc.title}</title>
  <link rel="stylesheet" href="${stylesheet}">
</head>
<body>
  <a class="skip-link" href="#policy">Skip to the privacy policy</a>
  <header class="site-header">
    <p class="site-name" data-manifest-path="organization.name">${siteName}</p>
  </header>
  <main id="policy" tabindex="-1">
    <h1 data-manifest-path="organization.name">${doc.title}</h1>
${doc.lead.map((b) => html`${blockHtml(b, '    ')}\n`)}${doc.sections.map((s) => html`${sectionHtml(s)}\n`)}  </main>
  <footer class="site-footer">
${doc.footer.map((b) => html`${blockHtml(b, '    ')}\n`)}  </footer>
</body>
</html>
`;
  return page.value;
}
