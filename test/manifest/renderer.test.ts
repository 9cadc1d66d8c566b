/**
 * The published policy as a reader and a reviewer see it: every section of the reference policy,
 * every purpose, source, recipient and pledge of the example, each traceable to its manifest entry,
 * identical on every run, and safe whatever text the manifest holds. Also `pledge render`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import { POLICY_CSS, renderPolicyHtml, renderPolicyMarkdown } from '../../src/manifest/manifest.renderer.js';
import type { Manifest } from '../../src/manifest/manifest.schema.js';
import { escapeHtml, html, safeHref } from '../../src/platform/html.js';
import { ROOT, runPledge } from '../helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const exampleText = await readFile(EXAMPLE, 'utf8');

function loadExample(): Manifest {
  const loaded = parseManifest(exampleText, EXAMPLE);
  assert.deepEqual(loaded.problems, [], 'the example manifest is valid');
  assert.ok(loaded.manifest);
  return loaded.manifest;
}

const example = loadExample();

/** A copy of the example with one change, so each test reads as the change it makes. */
function modified(change: (m: Manifest) => void): Manifest {
  const copy = structuredClone(example);
  change(copy);
  return copy;
}

/** The inner HTML of the element carrying `data-manifest-path="<path>"` (first one). */
function elementAt(page: string, manifestPath: string): string | undefined {
  const escaped = manifestPath.replace(/[[\].]/g, '\\$&');
  const match = new RegExp(`<(li|p|address)[^>]* data-manifest-path="${escaped}"[^>]*>(.*?)</\\1>`).exec(
    page,
  );
  return match?.[2];
}

const SECTIONS = [
  'Introduction',
  'Information We Collect',
  'How We Use Your Information',
  'How We Share Your Information',
  'Communication Choices',
  'Contact',
];

describe('renderPolicyMarkdown', () => {
  const md = renderPolicyMarkdown(example);

  test('has the title with the organization and every section of the reference policy as a heading', () => {
    assert.match(md, /^# Privacy Policy Overview \| Example Online\n/);
    for (const section of SECTIONS) assert.match(md, new RegExp(`^## ${section}$`, 'm'), section);
    assert.match(md, /^## Privacy – Updated$/m);
    assert.match(md, /^Last updated on September 7, 2012\.$/m);
  });

  test('names every purpose, source and recipient and states every pledge', () => {
    for (const p of example.purposes) assert.ok(md.includes(`**${p.name}.**`), p.key);
    for (const s of example.sources) assert.ok(md.includes(`**${s.name}.**`), s.key);
    for (const r of example.recipients) assert.ok(md.includes(r.name), r.key);
    for (const p of example.pledges) assert.ok(md.includes(p.text), p.key);
    for (const s of example.organization.safeguards) assert.ok(md.includes(s));
  });

  test('is plain Markdown: no manifest paths, no HTML', () => {
    assert.doesNotMatch(md, /data-manifest-path|purposes\[\d\]|<[a-z]/);
  });

  test('links the privacy contact and resolves choice pages against the website', () => {
    assert.ok(md.includes('[privacy@example-online.test](mailto:privacy@example-online.test)'));
    assert.ok(md.includes('[Unsubscribe page](https://www.example-online.test/unsubscribe)'));
  });

  test('escapes Markdown in manifest text so it cannot become a link or markup', () => {
    const out = renderPolicyMarkdown(
      modified((m) => {
        m.organization.name = 'Evil [click](javascript:alert(1)) <b>*Corp*</b>';
      }),
    );
    assert.doesNotMatch(out, /[^\\]\]\(javascript:/, 'no unescaped link');
    assert.ok(!out.includes('<b>'));
    assert.ok(out.includes('Evil \\[click\\](javascript:alert(1)) \\<b\\>\\*Corp\\*\\</b\\>'));
  });
});

describe('renderPolicyHtml', () => {
  const page = renderPolicyHtml(example);

  test('is a complete, accessible HTML5 document', () => {
    assert.match(page, /^<!DOCTYPE html>\n<html lang="en">/);
    assert.match(page, /<meta charset="utf-8">/);
    assert.match(page, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
    assert.match(page, /<title>Privacy Policy Overview \| Example Online<\/title>/);
    assert.equal(page.match(/<h1[ >]/g)?.length, 1, 'exactly one h1');
    assert.equal(page.match(/<main[ >]/g)?.length, 1);
    assert.match(page, /<footer[ >]/);
    assert.ok(page.trimEnd().endsWith('</html>'));
  });

  test('has a skip link to the main content', () => {
    const target = /<a class="skip-link" href="#([^"]+)">/.exec(page)?.[1];
    assert.ok(target, 'a skip link');
    assert.match(page, new RegExp(`<main id="${target}"`));
    assert.ok(page.indexOf('skip-link') < page.indexOf('<main'), 'the skip link comes before the content');
  });

  test('every section is labelled by its own h2, and ids are unique', () => {
    for (const section of SECTIONS) assert.match(page, new RegExp(`<h2 id="[^"]+">${section}</h2>`), section);
    const regions = [...page.matchAll(/<(?:section|aside) id="[^"]+"[^>]* aria-labelledby="([^"]+)"/g)];
    assert.equal(regions.length, SECTIONS.length + 1, 'six sections and the update notice');
    for (const [, labelledBy] of regions) assert.match(page, new RegExp(`<h2 id="${labelledBy}">`));
    const ids = [...page.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(new Set(ids).size, ids.length, `duplicate ids in ${ids.join(', ')}`);
  });

  test('has no script and no inline style, and links the stylesheet', () => {
    assert.doesNotMatch(page, /<script/i);
    assert.doesNotMatch(page, /\sstyle=|<style/i);
    assert.doesNotMatch(page, /\son[a-z]+=/i, 'no event handler attributes');
    assert.match(page, /<link rel="stylesheet" href="\/assets\/policy\.css">/);
    const custom = renderPolicyHtml(example, { stylesheetHref: 'policy.css' });
    assert.match(custom, /<link rel="stylesheet" href="policy\.css">/);
  });

  test('every purpose, source, recipient and pledge is traceable to its manifest entry', () => {
    const lists: Array<[string, string[]]> = [
      ['purposes', example.purposes.map((p) => p.name)],
      ['sources', example.sources.map((s) => s.name)],
      ['recipients', example.recipients.map((r) => r.name)],
      ['pledges', example.pledges.map((p) => p.text)],
      ['choices', example.choices.map((c) => c.name)],
    ];
    for (const [list, words] of lists) {
      words.forEach((said, i) => {
        const inner = elementAt(page, `${list}[${i}]`);
        assert.ok(inner !== undefined, `an element carries data-manifest-path="${list}[${i}]"`);
        assert.ok(inner.includes(escapeHtml(said)), `${list}[${i}] says ${said}`);
      });
    }
    example.organization.certifications.forEach((_, i) =>
      assert.ok(elementAt(page, `organization.certifications[${i}]`)),
    );
    assert.ok(elementAt(page, 'policy')?.includes('September 7, 2012'));
  });

  test('says what each source collects, in plain words by kind', () => {
    assert.match(
      elementAt(page, 'sources[0]') ?? '',
      /When you register for an account, we need to collect your name, e-mail address/,
    );
    assert.match(
      elementAt(page, 'sources[0]') ?? '',
      /except your organization, phone number and username, which are optional/,
    );
    assert.match(elementAt(page, 'sources[0]') ?? '', /We keep it for up to 7 years\./);
    assert.match(elementAt(page, 'sources[3]') ?? '', /voluntarily supply to us through surveys/);
    assert.match(elementAt(page, 'sources[5]') ?? '', /as needed to provide the service/);
    assert.match(elementAt(page, 'sources[6]') ?? '', /cookies and web beacons/);
    assert.match(elementAt(page, 'sources[6]') ?? '', /for up to 13 months/);
    const billing = elementAt(page, 'sources[2]') ?? '';
    assert.match(
      billing,
      /card number and card security code are passed straight to Card processor and never stored by us/,
    );
  });

  test('says, per jurisdiction, what choice each purpose leaves', () => {
    const marketing = elementAt(page, 'purposes[1]') ?? '';
    assert.match(
      marketing,
      /In the United States: you can opt out at any time\. Everywhere else: we do this only with your consent\./,
    );
    assert.match(marketing, /on the basis of your consent/);
    assert.match(marketing, /For this we use your name, e-mail address and organization\./);
    assert.match(elementAt(page, 'purposes[0]') ?? '', /This is needed to provide the service\./);
    // Every jurisdiction of improve-products is opt_out: one sentence, no list of places.
    assert.match(elementAt(page, 'purposes[2]') ?? '', /legitimate interest.*You can opt out at any time\./);
  });

  test('groups recipients by kind and names what each receives, where and under which agreement', () => {
    const share = page.slice(
      page.indexOf('id="how-we-share-your-information"'),
      page.indexOf('id="communication-choices"'),
    );
    assert.ok(share.indexOf('Service providers') < share.indexOf('Companies of our group'));
    assert.ok(share.indexOf('Companies of our group') < share.indexOf('Authorities'));
    assert.match(share, /In order to conduct business/);
    assert.match(share, /as required by law/);
    // Where it speaks of disclosures required by law, it links the report that counts them.
    const law = share.indexOf('as required by law');
    const report = share.indexOf('<a href="/privacy/transparency">transparency report</a>');
    assert.ok(report > law, 'the transparency report is linked after the disclosures required by law');
    assert.ok(
      report < share.indexOf('id="share-commitments"'),
      'in the authorities part, before the commitments',
    );
    assert.match(share, /<a href="\/privacy\/processors">list of processors and sub-processors<\/a>/);
    const uk = elementAt(page, 'recipients[3]') ?? '';
    assert.match(uk, /the United Kingdom; transfers to them are covered by the Standard Contractual Clauses/);
    assert.match(uk, /IGA-2012-002/);
    assert.match(elementAt(page, 'recipients[0]') ?? '', /your name, postal address and payment card/);
  });

  test('a policy without authorities still links the transparency report when it pledges legal disclosures only', () => {
    const noAuthorities = renderPolicyHtml(
      modified((m) => {
        m.recipients = m.recipients.filter((r) => r.kind !== 'authority');
      }),
    );
    assert.equal(noAuthorities.match(/href="\/privacy\/transparency"/g)?.length, 1);
    const neither = renderPolicyHtml(
      modified((m) => {
        m.recipients = m.recipients.filter((r) => r.kind !== 'authority');
        m.pledges = m.pledges.filter((x) => x.kind !== 'legal_disclosure');
      }),
    );
    assert.doesNotMatch(neither, /\/privacy\/transparency/);
  });

  test('a recipient that pays for data is called a sale, whatever the pledges say', () => {
    const out = renderPolicyHtml(
      modified((m) => {
        m.recipients.push({
          ...structuredClone(m.recipients[1]!),
          key: 'broker',
          name: 'Data broker',
          kind: 'third_party',
          consideration: 'sale',
        });
      }),
    );
    assert.match(
      elementAt(out, `recipients[${example.recipients.length}]`) ?? '',
      /this is a sale of your personal information/,
    );
    assert.match(out, /Other third parties/);
  });

  test('communication choices link their page; "all" covers every purpose that offers a choice', () => {
    const unsubscribe = elementAt(page, 'choices[0]') ?? '';
    assert.match(unsubscribe, /<a href="\/unsubscribe">Unsubscribe page<\/a>/);
    assert.match(unsubscribe, /opt out of our collection, use and distribution of your information/);
    const preferences = elementAt(page, 'choices[1]') ?? '';
    for (const p of ['Tell you about products', 'Improve our products', 'Measure how our sites are used']) {
      assert.ok(preferences.includes(p), p);
    }
    assert.ok(
      !preferences.includes('Comply with the law'),
      'a purpose with no choice anywhere is not offered',
    );
    assert.ok(!preferences.includes('Provide the services you request'));
    assert.ok(elementAt(page, 'choices[2]')?.includes('opt out of'), 'a withdraw-only choice is an opt-out');
    const withServer = renderPolicyHtml(example, { preferencesHref: '/me/preferences' });
    assert.match(
      elementAt(withServer, 'choices[1]') ?? '',
      /<a href="\/me\/preferences">Preference center<\/a>/,
    );
    assert.match(withServer, /<footer[\s\S]*href="\/me\/preferences"[\s\S]*<\/footer>/);
  });

  test('the update notice shows the summary, the changes and a mailto link, and only when there is news', () => {
    assert.match(
      page,
      /<aside id="privacy-updated" class="policy-update" aria-labelledby="privacy-updated-title">/,
    );
    assert.match(elementAt(page, 'policy.summary') ?? '', /updated effective September 7, 2012/);
    assert.ok(elementAt(page, 'policy.changes[0]'));
    assert.match(page, /<a href="mailto:privacy@example-online\.test">privacy@example-online\.test<\/a>/);
    const quiet = modified((m) => {
      delete m.policy.summary;
      m.policy.changes = [];
    });
    assert.doesNotMatch(renderPolicyHtml(quiet), /Privacy – Updated/);
    assert.doesNotMatch(renderPolicyMarkdown(quiet), /Privacy – Updated/);
  });

  test('contact gives the e-mail and the postal address', () => {
    assert.match(
      elementAt(page, 'organization.address') ?? '',
      /Example Online, a division of Example Systems, Inc\., 7414 Hollister Avenue, Goleta, CA 93117, United States/,
    );
    assert.ok(
      elementAt(page, 'organization.privacy_contact')?.includes('mailto:privacy@example-online.test'),
    );
  });

  test('escapes a hostile organization name and refuses to link a javascript: URL', () => {
    const out = renderPolicyHtml(
      modified((m) => {
        m.organization.name = '<script>alert("pwned")</script>';
        m.organization.legal_name = 'Evil " onmouseover="alert(1)';
        m.organization.certifications[0]!.url = 'javascript:alert(1)';
        m.purposes[0]!.description = '<img src=x onerror=alert(1)>';
      }),
    );
    assert.doesNotMatch(out, /<script|<img/i);
    assert.doesNotMatch(out, /href="javascript:/i);
    assert.ok(
      out.includes(
        '<title>Privacy Policy Overview | &lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;</title>',
      ),
    );
    assert.ok(out.includes('Evil &quot; onmouseover=&quot;alert(1)'));
    assert.ok(out.includes('TrustSeal Privacy Program'), 'the certification is still named, without a link');
  });

  test('whatever text the manifest holds, it appears as text and never as markup', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.string({ minLength: 1, maxLength: 40 }),
        (name, text) => {
          const out = renderPolicyHtml(
            modified((m) => {
              m.organization.name = name;
              m.pledges[0]!.text = text;
            }),
          );
          assert.ok(out.includes(`<title>Privacy Policy Overview | ${escapeHtml(name)}</title>`));
          assert.ok(elementAt(out, 'pledges[0]') === escapeHtml(text));
          assert.doesNotMatch(out, /<script|\sstyle=/i);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('determinism', () => {
  test('the same manifest gives byte-identical output, in both formats', () => {
    const again = parseManifest(exampleText, EXAMPLE).manifest;
    assert.ok(again);
    assert.equal(renderPolicyMarkdown(again), renderPolicyMarkdown(example));
    assert.equal(renderPolicyHtml(again), renderPolicyHtml(example));
    assert.equal(renderPolicyHtml(structuredClone(example)), renderPolicyHtml(example));
  });

  test('consent rules read the same whatever order the jurisdictions are written in', () => {
    const reordered = modified((m) => {
      m.purposes[1]!.consent = { US: 'opt_out', default: 'opt_in', EU: 'opt_in' };
    });
    const original = modified((m) => {
      m.purposes[1]!.consent = { default: 'opt_in', EU: 'opt_in', US: 'opt_out' };
    });
    assert.equal(renderPolicyMarkdown(reordered), renderPolicyMarkdown(original));
  });
});

describe('POLICY_CSS', () => {
  test('keeps text readable, focus visible and print clean', () => {
    assert.match(POLICY_CSS, /max-width: 44rem/);
    assert.match(POLICY_CSS, /:focus-visible \{\n {2}outline: 3px solid/);
    assert.match(POLICY_CSS, /@media print/);
    assert.match(POLICY_CSS, /@media \(prefers-color-scheme: dark\)/);
    assert.doesNotMatch(POLICY_CSS, /url\(|@import/, 'loads nothing else, so the CSP stays strict');
  });

  test('every text colour has a contrast of at least 4.5:1 with its background', () => {
    const luminance = (hex: string) => {
      const n = Number.parseInt(hex.slice(1), 16);
      const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((v) => {
        const c = v / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
    };
    const contrast = (a: string, b: string) => {
      const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
      return (hi! + 0.05) / (lo! + 0.05);
    };
    const schemes = [...POLICY_CSS.matchAll(/:root \{([^}]*)\}/g)].map(
      (m) =>
        new Map(
          [...(m[1] ?? '').matchAll(/--([a-z-]+): (#[0-9a-f]{6});/g)].map((v) => [v[1] ?? '', v[2] ?? '']),
        ),
    );
    assert.equal(schemes.length, 3, 'light, dark and print');
    for (const vars of schemes) {
      for (const [fg, bg] of [
        ['text', 'background'],
        ['muted', 'background'],
        ['link', 'background'],
        ['text', 'notice-background'],
        ['link', 'notice-background'],
        ['muted', 'footer-background'],
        ['link', 'footer-background'],
      ] as const) {
        const ratio = contrast(vars.get(fg) ?? '', vars.get(bg) ?? '');
        assert.ok(ratio >= 4.5, `${fg} on ${bg}: ${ratio.toFixed(2)}:1`);
      }
    }
  });
});

describe('platform/html', () => {
  // prettier-ignore
  test('html`` escapes interpolations, keeps SafeHtml and renders lists', () => {
    const name = '<b>"Tom" & \'Jerry\'</b>';
    assert.equal(
      html`<p title="${name}">${name}</p>`.value,
      `<p title="${escapeHtml(name)}">&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;</p>`,
    );
    assert.equal(html`<ul>${['a<', 'b'].map((x) => html`<li>${x}</li>`)}</ul>`.value, '<ul><li>a&lt;</li><li>b</li></ul>');
    assert.equal(html`${html`<br>`}${null}${undefined}${false}${3}`.value, '<br>3');
  });

  test('safeHref links only http(s), mailto and paths on this site', () => {
    assert.equal(safeHref('https://example.com/a b'), 'https://example.com/a%20b');
    assert.equal(safeHref('mailto:privacy@example.com'), 'mailto:privacy@example.com');
    assert.equal(safeHref('/preferences'), '/preferences');
    for (const bad of [
      'javascript:alert(1)',
      'JaVaScRiPt:alert(1)',
      'data:text/html,x',
      '//evil.test',
      '/\\evil.test',
      'not a url',
    ]) {
      assert.equal(safeHref(bad), undefined, bad);
    }
  });
});

describe('pledge render', () => {
  test('writes the Markdown policy of the example by default', async () => {
    const r = await runPledge(['render']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, renderPolicyMarkdown(example));
  });

  test('--format html -o FILE writes the HTML page to a file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'pledge-render-'));
    const out = path.join(dir, 'privacy.html');
    const r = await runPledge(['render', EXAMPLE, '--format', 'html', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(await readFile(out, 'utf8'), renderPolicyHtml(example));
  });

  test('an invalid manifest: problems with file:line:column on stderr, exit 1, nothing rendered', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'pledge-render-'));
    const file = path.join(dir, 'pledge.yaml');
    await writeFile(
      file,
      exampleText.replace('    retention: P7Y\n    fields:', '    retenton: P7Y\n    fields:'),
    );
    const r = await runPledge(['render', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      new RegExp(
        `${file.replace(/[.\\]/g, '\\$&')}:\\d+:\\d+: error manifest\\.unknown_key: unknown key "retenton"`,
      ),
    );
  });

  test('an unreadable manifest or an unknown format exits 2', async () => {
    const missing = await runPledge(['render', 'no-such-pledge.yaml']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no-such-pledge\.yaml:1:1: error manifest\.unreadable/);
    const format = await runPledge(['render', '--format', 'pdf']);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /md, html/);
  });
});
