/**
 * `/privacy/processors`: the public list of processors, affiliates and their sub-processors (name,
 * purpose, categories, country, transfer mechanism, since when), rendered from the manifest in force
 * in the style of /privacy (no script, one stylesheet), and `/privacy/processors.atom`, an Atom feed
 * (RFC 4287) with one entry per stored manifest version that changed that list, so customers can
 * subscribe to it as the big processors publish theirs.
 *
 * "Since when" is the recipient's `since`, else the date its agreement was signed, else the
 * effective date of the first stored manifest version that named it; a sub-processor's is its
 * `since`, else the effective date of the first version that named it under that processor.
 * The page and the feed depend only on the manifests and when each came into force (no clock), so
 * the same history gives the same bytes, and entry ids (tag URIs made of the website's host, the
 * version's first date and its hash; a rollback's also carry its activation's id) never change. A
 * rollback to an earlier version is an activation like any other: it has its entry when it changes
 * the list.
 */
import { escapeHtml, html, safeHref, type SafeHtml } from '../platform/html.js';
import { diffManifests } from './manifest.diff.js';
import { parseManifest } from './manifest.loader.js';
import type { ManifestActivation, ManifestVersion } from './manifest.repository.js';
import type { Manifest, Recipient } from './manifest.schema.js';
import { PROCESSORS_PATH } from './policy.document.js';
import { describePlace, endSentence, formatDate, joinAnd, lowerFirst } from './policy.wording.js';
import { formatPath, type ManifestPath } from './problems.js';
import { Taxonomy } from './taxonomy.js';

/** One row of the list: a processor or affiliate, or a sub-processor of one. */
export interface ProcessorRow {
  kind: 'processor' | 'affiliate' | 'sub_processor';
  name: string;
  /** For a sub-processor: the name of the processor it works for. */
  of: string | undefined;
  /** Purpose names. */
  purposes: string[];
  /** Category names. */
  categories: string[];
  country: string;
  /** The transfer mechanism's name, when there is one. */
  transfer: string | undefined;
  /** YYYY-MM-DD, when known. */
  since: string | undefined;
  path: ManifestPath;
}

/** A stored version's entry in the feed: what changed in the list when it came into force. */
export interface ProcessorFeedEntry {
  /** A tag URI that never changes. */
  id: string;
  policyVersion: string;
  effective: string;
  /** When the version first came into force. */
  updated: Date;
  /** The changes in plain words (as `pledge diff` says them). */
  changes: string[];
  /** The first version of the list. */
  first: boolean;
  /** A rollback: the version had been in force before, and came back. */
  rollback: boolean;
}

/** The list's history: first dates of what it named, and the feed's entries, newest first. */
export interface ProcessorHistory {
  /** First effective date by {@link rowKey}. */
  firstSeen: ReadonlyMap<string, string>;
  entries: ProcessorFeedEntry[];
  /** The feed's id (a tag URI of the first stored version). */
  feedId: string;
  /** When the newest stored version first came into force. */
  updated: Date;
}

const BOUND = new Set(['processor', 'affiliate']);

/** The key of a recipient, or of a sub-processor under its processor, in {@link ProcessorHistory.firstSeen}. */
export function rowKey(recipient: string, sub?: { name: string; purpose: string }): string {
  return sub === undefined ? recipient : `${recipient}|${sub.name}|${sub.purpose}`;
}

/** The rows of the list from a manifest, each processor followed by its sub-processors. */
export function processorRows(
  manifest: Manifest,
  firstSeen: ReadonlyMap<string, string> = new Map(),
): ProcessorRow[] {
  const taxonomy = new Taxonomy(manifest.categories);
  const categoryName = (k: string) => lowerFirst(taxonomy.get(k)?.name ?? k);
  const purposeName = (k: string) => manifest.purposes.find((p) => p.key === k)?.name ?? k;
  const mechanism = (r: Recipient) =>
    manifest.organization.transfer_mechanisms.find((t) => t.key === r.transfer_mechanism)?.name;
  const rows: ProcessorRow[] = [];
  manifest.recipients.forEach((r, i) => {
    if (!BOUND.has(r.kind)) return;
    rows.push({
      kind: r.kind === 'affiliate' ? 'affiliate' : 'processor',
      name: r.name,
      of: undefined,
      purposes: r.purposes.map(purposeName),
      categories: r.categories.map(categoryName),
      country: r.country,
      transfer: mechanism(r),
      since: r.since ?? r.agreement?.signed ?? firstSeen.get(rowKey(r.key)),
      path: ['recipients', i],
    });
    (r.sub_processors ?? []).forEach((sub, j) => {
      // What it may see: what its processor receives for the purpose it serves.
      const categories =
        r.declarations?.filter((d) => d.purpose === sub.purpose).flatMap((d) => d.categories) ?? r.categories;
      rows.push({
        kind: 'sub_processor',
        name: sub.name,
        of: r.name,
        purposes: [purposeName(sub.purpose)],
        categories: [...new Set(categories)].map(categoryName),
        country: sub.country,
        transfer: undefined,
        since: sub.since ?? firstSeen.get(rowKey(r.key, sub)),
        path: ['recipients', i, 'sub_processors', j],
      });
    });
  });
  return rows;
}

/** Kinds of `pledge diff` changes that change the list (under a processor's or affiliate's entry). */
const LIST_CHANGE = /^(recipient|transfer|sub_processor)\./;

/**
 * The list's history from the stored manifest versions (any order) and the times each came into
 * force (`activations`, oldest first: first activations and rollbacks). Without activations (a
 * caller that has none), each version counts as coming into force once, when first seen, in the
 * order of its id. Versions that no longer parse are passed over.
 */
export function processorHistory(
  versions: readonly ManifestVersion[],
  website: string,
  activations?: readonly ManifestActivation[],
): ProcessorHistory {
  const host = hostOf(website);
  const ordered = [...versions].sort((a, b) => a.id - b.id);
  const byId = new Map(ordered.map((v) => [v.id, v]));
  const steps: Array<{ id: number | undefined; version: ManifestVersion; at: Date }> =
    activations === undefined || activations.length === 0
      ? ordered.map((v) => ({ id: undefined, version: v, at: v.firstSeenAt }))
      : activations.flatMap((a) => {
          const version = byId.get(a.versionId);
          return version === undefined ? [] : [{ id: a.id, version, at: a.at }];
        });
  const firstSeen = new Map<string, string>();
  const entries: ProcessorFeedEntry[] = [];
  const parsed = new Map<number, Manifest | undefined>();
  const seenVersions = new Set<number>();
  let previous: Manifest | undefined;
  let previousList = '[]';
  let newest: Date | undefined;
  for (const step of steps) {
    const v = step.version;
    if (!parsed.has(v.id)) parsed.set(v.id, parseManifest(v.source, `manifest version ${v.id}`).manifest);
    const manifest = parsed.get(v.id);
    // A rollback is one that brings back a version in force before; its first time is not.
    const rollback = seenVersions.has(v.id);
    seenVersions.add(v.id);
    if (manifest === undefined) continue;
    if (newest === undefined || step.at > newest) newest = step.at;
    for (const r of manifest.recipients) {
      if (!BOUND.has(r.kind)) continue;
      if (!firstSeen.has(rowKey(r.key))) firstSeen.set(rowKey(r.key), v.effective);
      for (const sub of r.sub_processors ?? [])
        if (!firstSeen.has(rowKey(r.key, sub))) firstSeen.set(rowKey(r.key, sub), v.effective);
    }
    const list = JSON.stringify(processorRows(manifest, firstSeen).map(({ path: _path, ...row }) => row));
    if (list !== previousList) {
      const changes =
        previous === undefined
          ? [
              endSentence(
                `The list begins with ${joinAnd(
                  processorRows(manifest)
                    .filter((r) => r.kind !== 'sub_processor')
                    .map((r) => r.name),
                )}`,
              ),
            ]
          : listChanges(previous, manifest);
      if (rollback) {
        changes.unshift(
          `The manifest of policy version ${v.version} (effective ${v.effective}) is in force again: the list returns to what it was then.`,
        );
      }
      const tag = `tag:${host},${dayOf(rollback ? step.at : v.firstSeenAt)}:pledge/processors/${v.hash.slice(0, 16)}`;
      entries.push({
        // The first time keeps the id it always had; each rollback is an entry of its own.
        id: rollback ? `${tag}-${String(step.id ?? entries.length)}` : tag,
        policyVersion: v.version,
        effective: v.effective,
        updated: rollback ? step.at : v.firstSeenAt,
        changes: changes.length > 0 ? changes : ['The details of the list change.'],
        first: previous === undefined,
        rollback,
      });
    }
    previous = manifest;
    previousList = list;
  }
  const first = ordered[0];
  const latestSeen = ordered.reduce<Date | undefined>(
    (at, v) => (at === undefined || v.firstSeenAt > at ? v.firstSeenAt : at),
    undefined,
  );
  return {
    firstSeen,
    entries: entries.reverse(),
    feedId: `tag:${host},${first === undefined ? '2026-01-01' : dayOf(first.firstSeenAt)}:pledge/processors`,
    updated:
      (newest !== undefined && latestSeen !== undefined && newest > latestSeen ? newest : latestSeen) ??
      new Date(0),
  };
}

/** The changes of `pledge diff` under processors' and affiliates' entries, in plain words. */
function listChanges(before: Manifest, after: Manifest): string[] {
  const bound = (m: Manifest, path: string) => {
    const index = /^recipients\[(\d+)\]/.exec(path)?.[1];
    const r = index === undefined ? undefined : m.recipients[Number(index)];
    return r !== undefined && BOUND.has(r.kind);
  };
  return diffManifests(before, after)
    .changes.filter((c) => LIST_CHANGE.test(c.kind))
    .filter((c) => bound(c.kind === 'recipient.removed' ? before : after, c.path))
    .map((c) => c.summary);
}

/** Options of {@link renderProcessorsHtml}. */
export interface RenderProcessorsOptions {
  stylesheetHref?: string;
}

// Prettier formats html`` templates as HTML, which would move the whitespace of the output.
/** The page as a complete HTML5 document: no script, no inline style, one stylesheet. */
// prettier-ignore
export function renderProcessorsHtml(
  manifest: Manifest,
  rows: readonly ProcessorRow[],
  options: RenderProcessorsOptions = {},
): string {
  const org = manifest.organization;
  const title = `Processors and sub-processors | ${org.name}`;
  const website = safeHref(org.website);
  const siteName = website === undefined ? html`${org.name}` : html`<a href="${website}">${org.name}</a>`;
  const contact = safeHref(`mailto:${org.privacy_contact}`);
  const body: SafeHtml =
    rows.length === 0
      ? html`    <p data-manifest-path="recipients">No processor or company of our group processes your personal information for us.</p>\n`
      : html`    <div class="table-scroll">
    <table class="processors">
      <caption>Who processes your personal information for us</caption>
      <thead>
        <tr><th scope="col">Name</th><th scope="col">Purpose</th><th scope="col">Categories of data</th><th scope="col">Country</th><th scope="col">Transfer mechanism</th><th scope="col">Since</th></tr>
      </thead>
      <tbody>
${rows.map((r) => rowHtml(r))}      </tbody>
    </table>
    </div>
`;
  const page = html`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="generator" content="Pledge">
  <title>${title}</title>
  <link rel="stylesheet" href="${options.stylesheetHref ?? '/assets/policy.css'}">
  <link rel="alternate" type="application/atom+xml" title="Changes to our processors" href="${PROCESSORS_PATH}.atom">
</head>
<body>
  <a class="skip-link" href="#processors">Skip to the list of processors</a>
  <header class="site-header">
    <p class="site-name" data-manifest-path="organization.name">${siteName}</p>
  </header>
  <main id="processors" tabindex="-1">
    <h1>Processors and sub-processors</h1>
    <p>These companies process your personal information on behalf of ${org.name}, each bound by an agreement to our <a href="/privacy">privacy policy</a>. Sub-processors are the companies they pass it on to, for the purpose named.</p>
${body}    <p>Subscribe to <a href="${PROCESSORS_PATH}.atom">the feed of changes to this list</a> to be told when a processor or sub-processor is added or changes. Questions: <a href="${contact}">${org.privacy_contact}</a>.</p>
  </main>
  <footer class="site-footer">
    <p data-manifest-path="policy">From the privacy policy of ${org.name}, version ${manifest.policy.version}, effective <time datetime="${manifest.policy.effective}">${formatDate(manifest.policy.effective)}</time>.</p>
  </footer>
</body>
</html>
`;
  return page.value;
}

// prettier-ignore
function rowHtml(r: ProcessorRow): SafeHtml {
  const name =
    r.of === undefined
      ? html`<th scope="row">${r.name}${r.kind === 'affiliate' ? html` <span class="row-note">(company of our group)</span>` : ''}</th>`
      : html`<th scope="row" class="sub-processor">${r.name} <span class="row-note">(sub-processor of ${r.of})</span></th>`;
  const since = r.since === undefined ? 'not recorded' : html`<time datetime="${r.since}">${formatDate(r.since)}</time>`;
  return html`        <tr class="${r.kind === 'sub_processor' ? 'sub-processor' : 'processor'}" data-manifest-path="${formatPath(r.path)}">${name}<td>${r.purposes.join('; ')}</td><td>${joinAnd(r.categories)}</td><td>${describePlace(r.country)}</td><td>${r.transfer ?? 'none declared'}</td><td>${since}</td></tr>\n`;
}

/** Options of {@link renderProcessorsAtom}. */
export interface RenderProcessorsAtomOptions {
  /** Where Pledge is reached from outside (the feed's links are absolute). */
  publicUrl: string;
}

/** The Atom feed (RFC 4287) of the list's changes, newest entry first. */
export function renderProcessorsAtom(
  manifest: Manifest,
  history: ProcessorHistory,
  options: RenderProcessorsAtomOptions,
): string {
  const base = options.publicUrl.replace(/\/+$/, '');
  const page = `${base}${PROCESSORS_PATH}`;
  const org = manifest.organization;
  const x = escapeHtml;
  const entries = history.entries.map((e) => {
    const content = `<ul>${e.changes.map((c) => `<li>${x(c)}</li>`).join('')}</ul>`;
    return [
      '  <entry>',
      `    <id>${x(e.id)}</id>`,
      `    <title>Policy version ${x(e.policyVersion)} (effective ${x(e.effective)}): the list of processors ${e.first ? 'is published' : e.rollback ? 'changes back' : 'changes'}</title>`,
      `    <updated>${e.updated.toISOString()}</updated>`,
      `    <link rel="alternate" type="text/html" href="${x(page)}"/>`,
      `    <summary>${x(e.changes.join(' '))}</summary>`,
      `    <content type="html">${x(content)}</content>`,
      '  </entry>',
    ].join('\n');
  });
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">',
    `  <id>${x(history.feedId)}</id>`,
    `  <title>${x(org.name)}: processors and sub-processors</title>`,
    `  <subtitle>Changes to the companies that process personal information for ${x(org.name)}</subtitle>`,
    `  <updated>${(history.entries[0]?.updated ?? history.updated).toISOString()}</updated>`,
    `  <author><name>${x(org.legal_name)}</name><email>${x(org.privacy_contact)}</email></author>`,
    `  <link rel="self" type="application/atom+xml" href="${x(page)}.atom"/>`,
    `  <link rel="alternate" type="text/html" href="${x(page)}"/>`,
    '  <generator>Pledge</generator>',
    ...entries,
    '</feed>',
    '',
  ].join('\n');
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname || 'localhost';
  } catch {
    return 'localhost';
  }
}

function dayOf(at: Date): string {
  return at.toISOString().slice(0, 10);
}
