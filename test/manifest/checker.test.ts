/**
 * `pledge check` over a table of broken manifests: each row breaks one rule of the example manifest
 * and asserts the exact code and the file:line:column a writer is sent to.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { parseDocument, type Document } from 'yaml';
import { checkManifest, checkManifestFile } from '../../src/manifest/manifest.checker.js';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import type { ManifestProblem } from '../../src/manifest/problems.js';
import { ROOT, runPledge } from '../helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const exampleText = await readFile(EXAMPLE, 'utf8');

/** The example manifest with one change made through the YAML document (comments kept). */
function mutate(change: (doc: Document) => void): string {
  const doc = parseDocument(exampleText);
  change(doc);
  return doc.toString({ lineWidth: 0 });
}

/** Where `needle` is written in `text` (the n-th occurrence), 1-based like the checker. */
function locationOf(
  text: string,
  needle: string,
  occurrence = 1,
  after?: string,
): { line: number; column: number } {
  let at = after === undefined ? -1 : text.indexOf(after);
  for (let i = 0; i < occurrence; i++) {
    at = text.indexOf(needle, at + 1);
    assert.notEqual(at, -1, `test setup: "${needle}" not found in the mutated manifest`);
  }
  const before = text.slice(0, at).split('\n');
  return { line: before.length, column: (before[before.length - 1]?.length ?? 0) + 1 };
}

function problemsOf(text: string): ManifestProblem[] {
  const loaded = parseManifest(text, 'pledge.yaml');
  if (!loaded.manifest) return loaded.problems;
  return checkManifest(loaded.manifest, loaded.locator).problems;
}

interface Row {
  rule: string;
  code: string;
  change: (doc: Document) => void;
  /** The text the reported location must point at, and which occurrence of it. */
  at: string;
  occurrence?: number;
  /** Start looking for `at` after this text. */
  after?: string;
  /** Words the message must contain. */
  says?: string[];
  /** The pledge a violation must name, by the location of its key. */
  pledge?: string;
}

const seq = (doc: Document, p: Array<string | number>) => doc.getIn(p) as { add(v: unknown): void };

const ROWS: Row[] = [
  {
    rule: 'unknown keys are errors, with a suggestion',
    code: 'manifest.unknown_key',
    change: (d) => d.setIn(['sources', 0, 'retenton'], 'P1Y'),
    at: 'retenton',
    says: ['did you mean "retention"'],
  },
  {
    rule: 'an enum value out of range names the allowed values',
    code: 'manifest.invalid_value',
    change: (d) => d.setIn(['purposes', 2, 'legal_basis'], 'legitimate_intrest'),
    at: 'legitimate_intrest',
    says: ['did you mean "legitimate_interest"'],
  },
  {
    rule: 'a missing required key',
    code: 'manifest.missing_key',
    change: (d) => d.deleteIn(['recipients', 0, 'country']),
    at: 'key: card-processor',
    says: ['recipients[0].country'],
  },
  {
    rule: 'a malformed duration',
    code: 'manifest.invalid_value',
    change: (d) => d.setIn(['sources', 1, 'retention'], '3 years'),
    at: '3 years',
    says: ['ISO 8601'],
  },
  {
    rule: 'two entries with one key',
    code: 'manifest.duplicate_entry',
    change: (d) => d.setIn(['purposes', 3, 'key'], 'improve-products'),
    at: 'improve-products\n',
    occurrence: 2,
  },
  {
    rule: 'an unknown category, with a suggestion',
    code: 'check.unknown_category',
    change: (d) => seq(d, ['sources', 0, 'categories']).add('user.contact.emial'),
    at: 'user.contact.emial',
    says: ['did you mean "user.contact.email"'],
  },
  {
    rule: 'an unknown purpose, with a suggestion',
    code: 'check.unknown_purpose',
    change: (d) => seq(d, ['sources', 1, 'purposes']).add('marketing-mail'),
    at: 'marketing-mail',
    says: ['did you mean "marketing-email"'],
  },
  {
    rule: 'an unknown recipient',
    code: 'check.unknown_recipient',
    change: (d) => seq(d, ['pledges', 1, 'only_to']).add('card-procesor'),
    at: 'card-procesor',
    says: ['did you mean "card-processor"'],
  },
  {
    rule: 'an unknown transfer mechanism',
    code: 'check.unknown_transfer_mechanism',
    change: (d) => d.setIn(['recipients', 0, 'transfer_mechanism'], 'safe-harbour'),
    at: 'safe-harbour',
  },
  {
    rule: 'an unknown affiliate',
    code: 'check.unknown_affiliate',
    change: (d) => d.setIn(['recipients', 2, 'affiliate'], 'example-sys'),
    at: 'example-sys\n',
  },
  {
    rule: 'an affiliate recipient that names no company',
    code: 'check.affiliate_recipient_unlinked',
    change: (d) => d.deleteIn(['recipients', 2, 'affiliate']),
    at: 'affiliate\n',
  },
  {
    rule: 'a consent mode for an undeclared jurisdiction',
    code: 'check.unknown_jurisdiction',
    change: (d) => d.setIn(['purposes', 1, 'consent', 'BR'], 'opt_in'),
    at: 'opt_in }',
    occurrence: 1,
  },
  {
    rule: 'an extension category under an unknown parent',
    code: 'check.category_parent_missing',
    change: (d) =>
      seq(d, ['categories']).add({ key: 'user.hobby.fishing', name: 'Fishing', description: 'Fish caught.' }),
    at: 'user.hobby.fishing',
  },
  {
    rule: 'a field whose category the source does not declare',
    code: 'check.field_category_undeclared',
    change: (d) => d.setIn(['sources', 0, 'fields', 'language'], { category: 'user.demographic.language' }),
    at: 'user.demographic.language',
  },
  {
    rule: 'a collected category that none of the source’s purposes uses',
    code: 'check.source_category_unserved',
    change: (d) => seq(d, ['sources', 3, 'categories']).add('user.contact.phone_number'),
    at: 'user.contact.phone_number ]',
    occurrence: 1,
    says: ['customer-survey', 'improve-products'],
  },
  {
    rule: 'a shared category that none of the recipient’s purposes uses',
    code: 'check.recipient_category_unserved',
    change: (d) => {
      d.setIn(['recipients', 1, 'purposes'], d.createNode(['marketing-email'], { flow: true }));
      seq(d, ['recipients', 1, 'categories']).add('user.contact.phone_number');
      // Its sub-processors served the purpose it no longer has (a problem of their own).
      d.deleteIn(['recipients', 1, 'sub_processors']);
    },
    at: 'user.contact.phone_number ]',
    occurrence: 1,
  },
  {
    rule: 'a recipient whose two lists would give its card data to marketing',
    code: 'check.recipient_category_unserved',
    change: (d) => seq(d, ['recipients', 0, 'purposes']).add('marketing-email'),
    at: 'user.contact.address',
    after: 'key: card-processor',
    says: ['card-processor', 'user.contact.address', 'marketing-email'],
  },
  {
    rule: 'a system reading a category its purpose does not use',
    code: 'check.system_category_unserved',
    change: (d) => seq(d, ['systems', 0, 'categories']).add('user.survey'),
    at: 'user.survey',
    after: 'key: web-app',
    says: ['web-app', 'user.survey', 'provide-service'],
  },
  {
    rule: 'a system submitting to a collection point that does not exist',
    code: 'check.unknown_source',
    change: (d) => seq(d, ['systems', 0, 'sources']).add('newsletter-form'),
    at: 'newsletter-form',
    says: ['web-app', 'newsletter-form'],
  },
  {
    rule: 'a webhook delivering to a system that is not declared',
    code: 'check.unknown_system',
    change: (d) => d.setIn(['webhooks', 0, 'system'], 'crm-tool'),
    at: 'crm-tool',
    says: ['marketing-automation', 'crm-tool'],
  },
  {
    rule: 'a shared category that nothing collects',
    code: 'check.recipient_category_not_collected',
    change: (d) => seq(d, ['recipients', 4, 'categories']).add('user.government_id'),
    at: 'user.government_id',
  },
  {
    rule: 'a purpose that asks for consent with no way to give or withdraw it',
    code: 'check.consent_without_choice',
    change: (d) => {
      d.setIn(
        ['choices', 1, 'purposes'],
        d.createNode(['marketing-email', 'improve-products', 'site-analytics'], { flow: true }),
      );
      seq(d, ['purposes']).add(
        d.createNode({
          key: 'research',
          name: 'Research',
          description: 'Studies of how people meet.',
          use: 'improvement',
          categories: ['user.survey'],
          legal_basis: 'consent',
          consent: 'opt_in',
        }),
      );
    },
    at: 'opt_in\n',
    occurrence: 1,
    says: ['research'],
  },
  {
    rule: 'consent as the legal basis while the purpose is required',
    code: 'check.consent_basis_mismatch',
    change: (d) => d.setIn(['purposes', 3, 'consent', 'US'], 'required'),
    at: '{ default: opt_in, US: required }',
  },
  {
    rule: 'never sell: a recipient paid for data',
    code: 'check.pledge_violated',
    change: (d) => d.setIn(['recipients', 1, 'consideration'], 'sale'),
    at: 'sale\n',
    says: ['email-delivery', 'no-sale'],
    pledge: 'key: no-sale',
  },
  {
    rule: 'never sell: a recipient whose purpose is selling data',
    code: 'check.pledge_violated',
    change: (d) => {
      seq(d, ['purposes']).add(
        d.createNode({
          key: 'list-rental',
          name: 'Rent our mailing list',
          description: 'Rent e-mail addresses to partners.',
          use: 'rent',
          categories: ['user.contact.email', 'user.name'],
          legal_basis: 'consent',
          consent: 'opt_in',
        }),
      );
      seq(d, ['recipients', 1, 'purposes']).add('list-rental');
    },
    at: 'list-rental ]',
    says: ['email-delivery', 'list-rental', 'no-sale'],
    pledge: 'key: no-sale',
  },
  {
    rule: 'never store: a source that would store card numbers',
    code: 'check.pledge_violated',
    change: (d) => d.deleteIn(['sources', 2, 'pass_through']),
    at: 'key: billing',
    says: ['billing', 'user.financial.payment_card.number', 'card-numbers-pass-through'],
    pledge: 'key: card-numbers-pass-through',
  },
  {
    rule: 'never store: card numbers passed to a recipient the pledge does not allow',
    code: 'check.pledge_violated',
    change: (d) => d.setIn(['sources', 2, 'pass_through', 0, 'recipient'], 'email-delivery'),
    at: 'email-delivery }',
    says: ['email-delivery'],
    pledge: 'key: card-numbers-pass-through',
  },
  {
    rule: 'never use: meeting content allowed for marketing',
    code: 'check.pledge_violated',
    change: (d) => seq(d, ['purposes', 1, 'categories']).add('user.content.private'),
    at: 'user.content.private ]',
    says: ['marketing-email', 'no-meeting-content-marketing'],
    pledge: 'key: no-meeting-content-marketing',
  },
  {
    rule: 'marketing e-mail without an opt-out link in every message',
    code: 'check.pledge_violated',
    change: (d) => d.deleteIn(['choices', 2]),
    at: 'key: marketing-email',
    says: ['marketing-opt-out'],
    pledge: 'key: marketing-opt-out',
  },
  {
    rule: 'a processor with no agreement',
    code: 'check.pledge_violated',
    change: (d) => d.deleteIn(['recipients', 0, 'agreement']),
    at: 'key: card-processor',
    says: ['card-processor', 'processors-bound'],
    pledge: 'key: processors-bound',
  },
  {
    rule: 'disclosure to authorities beyond what the law requires',
    code: 'check.pledge_violated',
    change: (d) => {
      seq(d, ['recipients', 4, 'purposes']).add('marketing-email');
      // Only what marketing uses, so that each declared pair holds and the pledge is what breaks.
      d.setIn(['recipients', 4, 'categories'], d.createNode(['user.contact.email'], { flow: true }));
    },
    at: 'marketing-email ]',
    after: 'key: authorities',
    says: ['authorities', 'legal-disclosure-only'],
    pledge: 'key: legal-disclosure-only',
  },
  {
    rule: 'a never_use pledge that names no purposes',
    code: 'check.pledge_incomplete',
    change: (d) => d.deleteIn(['pledges', 6, 'purposes']),
    at: 'key: no-meeting-content-marketing',
  },
  {
    rule: 'kept longer than its purposes allow',
    code: 'check.retention_exceeded',
    change: (d) => d.setIn(['sources', 3, 'retention'], 'P5Y'),
    at: 'P5Y',
    says: ['customer-survey', 'improve-products', '5 years'],
  },
  {
    rule: 'kept longer than a category retention rule allows',
    code: 'check.retention_exceeded',
    change: (d) => {
      d.setIn(['purposes', 2, 'retention'], 'P5Y');
      d.setIn(['sources', 5, 'retention'], 'P3Y');
    },
    at: 'P3Y',
    occurrence: 3,
    says: ['product-events', 'user.behavior', '2 years'],
  },
  {
    rule: 'a webhook for an unknown purpose, with a suggestion',
    code: 'check.unknown_purpose',
    change: (d) => seq(d, ['webhooks', 0, 'purposes']).add('marketing-emails'),
    at: 'marketing-emails',
    says: ['did you mean "marketing-email"'],
  },
  {
    rule: 'a webhook over plain http to another machine',
    code: 'check.webhook_url_insecure',
    change: (d) => d.setIn(['webhooks', 0, 'url'], 'http://crm.example-online.test/hooks/pledge'),
    at: 'http://crm.example-online.test',
    says: ['marketing-automation', 'unencrypted'],
  },
  {
    rule: 'a webhook URL that carries a password',
    code: 'check.webhook_url_credentials',
    change: (d) => d.setIn(['webhooks', 0, 'url'], 'https://pledge:hunter2@crm.example-online.test/hooks'),
    at: 'https://pledge:hunter2',
    says: ['marketing-automation'],
  },
  {
    rule: 'a webhook URL that is not http(s)',
    code: 'manifest.invalid_value',
    change: (d) => d.setIn(['webhooks', 0, 'url'], 'ftp://crm.example-online.test/hooks'),
    at: 'ftp://crm.example-online.test',
    says: ['https'],
  },
  {
    rule: 'a retention rule with no target',
    code: 'check.retention_rule_target',
    change: (d) => seq(d, ['retention']).add(d.createNode({ max: 'P1Y' })),
    at: 'max: P1Y',
  },
];

describe('pledge check: one broken manifest per rule', () => {
  test('the example manifest is clean', () => {
    assert.deepEqual(problemsOf(exampleText), []);
  });

  for (const row of ROWS) {
    test(`${row.code}: ${row.rule}`, () => {
      const text = mutate(row.change);
      const problems = problemsOf(text);
      const expected = locationOf(text, row.at, row.occurrence, row.after);
      const found = problems.find(
        (p) =>
          p.code === row.code && p.location.line === expected.line && p.location.column === expected.column,
      );
      assert.ok(
        found,
        `expected ${row.code} at ${expected.line}:${expected.column}, got:\n${problems
          .map((p) => `  ${p.code} ${p.location.line}:${p.location.column} ${p.message}`)
          .join('\n')}`,
      );
      for (const word of row.says ?? [])
        assert.ok(found.message.includes(word), `"${found.message}" should mention ${word}`);
      assert.ok(found.hint && found.hint.length > 0, 'every problem says how to fix it');
      if (row.pledge !== undefined) {
        const pledgeAt = locationOf(text, row.pledge);
        assert.ok(
          found.related?.some((r) => r.location.line === pledgeAt.line),
          'a violation names the location of the pledge it breaks',
        );
      }
      // Nothing else is wrong: each row breaks exactly the rule it names.
      assert.deepEqual([...new Set(problems.map((p) => p.code))], [row.code]);
    });
  }

  test('every problem is reported at once, not only the first', () => {
    // Rows that edit the same entry in incompatible ways are left out of the combination.
    const clash = [
      'never store: a source that would store card numbers',
      'an affiliate recipient that names no company',
      'a webhook URL that carries a password',
      'disclosure to authorities beyond what the law requires',
    ];
    const rows = ROWS.filter((r) => r.code.startsWith('check.') && !clash.includes(r.rule));
    const text = mutate((d) => {
      for (const row of rows) row.change(d);
    });
    const codes = new Set(problemsOf(text).map((p) => p.code));
    for (const row of rows) assert.ok(codes.has(row.code), `${row.code} reported together with the others`);
  });

  test('plain http is accepted for a webhook on this machine (a local receiver in development)', () => {
    for (const url of ['http://127.0.0.1:8080/hooks', 'http://localhost:3000/hooks', 'http://[::1]/hooks']) {
      const text = mutate((d) => d.setIn(['webhooks', 0, 'url'], url));
      assert.deepEqual(problemsOf(text), [], url);
    }
  });

  test('schema problems are all reported at once too', () => {
    const text = mutate((d) => {
      d.setIn(['sources', 0, 'retenton'], 'P1Y');
      d.setIn(['purposes', 2, 'legal_basis'], 'legitimate_intrest');
      d.deleteIn(['recipients', 0, 'country']);
    });
    const codes = problemsOf(text)
      .map((p) => p.code)
      .sort();
    assert.deepEqual(codes, ['manifest.invalid_value', 'manifest.missing_key', 'manifest.unknown_key']);
  });

  test('a YAML syntax error names its line and column', () => {
    const text = exampleText.replace('  name: Example Online\n', '  name: "Example Online\n');
    const problems = problemsOf(text);
    assert.ok(problems.length > 0);
    assert.ok(problems.every((p) => p.code === 'manifest.syntax'));
    assert.ok(problems.every((p) => p.location.line > 1));
  });

  test('a duplicated YAML key is an error at the second one', () => {
    const text = exampleText.replace('pledge: 1\n', 'pledge: 1\npledge: 1\n');
    const problems = problemsOf(text);
    assert.equal(problems[0]?.code, 'manifest.duplicate_key');
    assert.deepEqual(
      { line: problems[0]?.location.line, column: problems[0]?.location.column },
      locationOf(text, 'pledge: 1', 2),
    );
  });
});

describe('pledge check on the command line', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pledge-check-'));
  });

  test('exit 0 and "ok" for the example manifest', async () => {
    const r = await runPledge(['check', 'examples/example-online/pledge.yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok/);
  });

  test('exit 1 with file:line:column, code and fix for each problem', async () => {
    const file = path.join(dir, 'broken.yaml');
    const text = mutate((d) => {
      d.setIn(['recipients', 1, 'consideration'], 'sale');
      seq(d, ['sources', 0, 'categories']).add('user.contact.emial');
    });
    await writeFile(file, text);
    const r = await runPledge(['check', file]);
    assert.equal(r.code, 1);
    const sale = locationOf(text, 'sale\n');
    const emial = locationOf(text, 'user.contact.emial');
    assert.ok(
      r.stderr.includes(`${file}:${sale.line}:${sale.column}: error check.pledge_violated`),
      r.stderr,
    );
    assert.ok(
      r.stderr.includes(`${file}:${emial.line}:${emial.column}: error check.unknown_category`),
      r.stderr,
    );
    assert.match(r.stderr, /fix: /);
    assert.match(r.stderr, /2 problems/);
  });

  test('--format json gives tools the codes and locations', async () => {
    const file = path.join(dir, 'broken-json.yaml');
    await writeFile(
      file,
      mutate((d) => d.deleteIn(['recipients', 0, 'agreement'])),
    );
    const r = await runPledge(['check', file, '--format', 'json']);
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      problems: Array<{ code: string; path: string; location: { line: number } }>;
    };
    assert.equal(report.ok, false);
    assert.equal(report.problems[0]?.code, 'check.pledge_violated');
    assert.equal(report.problems[0]?.path, 'recipients[0]');
  });

  test('exit 2 for a file that does not exist or is not YAML', async () => {
    const missing = await runPledge(['check', path.join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read the manifest: no such file/);
    const notYaml = path.join(dir, 'not.yaml');
    await writeFile(notYaml, 'organization: [unclosed\n');
    const r = await runPledge(['check', notYaml]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /manifest\.syntax/);
  });

  test('checkManifestFile returns the manifest only when it is clean', async () => {
    const clean = await checkManifestFile(EXAMPLE);
    assert.ok(clean.manifest);
    assert.equal(clean.manifest.organization.privacy_contact, 'privacy@example-online.test');
  });
});
