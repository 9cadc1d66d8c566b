/**
 * Server-rendered HTML without a template engine. Every interpolation into {@link html} is escaped
 * unless it is already {@link SafeHtml}, so a page can only contain markup its author wrote; text
 * from a manifest, a request or the database can never become a tag or an attribute.
 */

/** Markup that is known to be safe: written by us or already escaped. */
export class SafeHtml {
  constructor(readonly value: string) {}

  /** The markup, so a `SafeHtml` can be sent or concatenated as a string. */
  toString(): string {
    return this.value;
  }
}

/**
 * What may be interpolated into {@link html}. `null`, `undefined` and booleans render nothing, so
 * `${cond && html`...`}` works; arrays render each item, which is how lists are written.
 */
export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for use in HTML content and in quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => ESCAPES[ch] ?? ch);
}

function renderValue(value: HtmlValue): string {
  if (value === null || value === undefined || typeof value === 'boolean') return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return (value as readonly HtmlValue[]).map(renderValue).join('');
  return escapeHtml(String(value));
}

/** Tagged template that escapes every interpolation that is not already {@link SafeHtml}. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += renderValue(value) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

/**
 * The URL to put in an `href`, or `undefined` when it must not be linked. Only http(s) and mailto
 * URLs and paths on this site are linked: a `javascript:` URL is a valid URL to a schema, and a
 * path starting with `//` leaves the site.
 */
export function safeHref(url: string): string | undefined {
  if (/^\/(?![/\\])/.test(url)) return /[\s\\]/.test(url) ? undefined : url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  return ['http:', 'https:', 'mailto:'].includes(parsed.protocol) ? parsed.href : undefined;
}
