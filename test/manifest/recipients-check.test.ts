/**
 * `pledge check` and what binds processors to the policy: a contact on every processor and
 * affiliate, an https notice webhook without credentials, sub-processors that serve a purpose their
 * processor receives data for (and only under processors and affiliates), and dates that agree;
 * the schema refuses a contact that is not an e-mail address (the project's one RFC 5321 check).
 * Each row breaks one rule of the example manifest and asserts the code and the file:line:column.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseDocument, type Document } from 'yaml';
import { CHECK_CODES, checkManifest } from '../../src/manifest/manifest.checker.js';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import { formatLocation, type ManifestProblem } from '../../src/manifest/problems.js';
import { ROOT, runPledge } from '../helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const exampleText = await readFile(EXAMPLE, 'utf8');

function mutate(change: (doc: Document) => void): string {
  const doc = parseDocument(exampleText);
  change(doc);
  return doc.toString({ lineWidth: 0 });
}

function problemsOf(text: string): ManifestProblem[] {
  const loaded = parseManifest(text, 'pledge.yaml');
  if (!loaded.manifest) return loaded.problems;
  return checkManifest(loaded.manifest, loaded.locator).problems;
}

/** Where `needle` is written (the first time after `after`), 1-based like the checker. */
function locationOf(text: string, needle: string, after: string): { line: number; column: number } {
  const at = text.indexOf(needle, text.indexOf(after));
  assert.notEqual(at, -1, `test setup: "${needle}" after "${after}"`);
  const lines = text.slice(0, at).split('\n');
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}

const index = (d: Document, key: string) =>
  (d.toJS() as { recipients: Array<{ key: string }> }).recipients.findIndex((r) => r.key === key);

interface Row {
  rule: string;
  code: string;
  change: (d: Document) => void;
  at: string;
  after: string;
  says: RegExp;
}

const ROWS: Row[] = [
  {
    rule: 'a processor without a contact',
    code: CHECK_CODES.recipientContactMissing,
    change: (d) => d.deleteIn(['recipients', index(d, 'email-delivery'), 'contact']),
    at: 'processor',
    after: 'key: email-delivery',
    says: /"email-delivery" \(processor\) has no contact/,
  },
  {
    rule: 'an affiliate without a contact',
    code: CHECK_CODES.recipientContactMissing,
    change: (d) => d.deleteIn(['recipients', index(d, 'group-companies-uk'), 'contact']),
    at: 'affiliate',
    after: 'key: group-companies-uk',
    says: /"group-companies-uk" \(affiliate\)/,
  },
  {
    rule: 'a notice webhook over plain http',
    code: CHECK_CODES.recipientWebhookInsecure,
    change: (d) =>
      d.setIn(['recipients', index(d, 'card-processor'), 'webhook'], 'http://hooks.card.example/n'),
    at: 'http://hooks.card.example/n',
    after: 'key: card-processor',
    says: /unencrypted \(http\)/,
  },
  {
    rule: 'a notice webhook with a password in its URL',
    code: CHECK_CODES.recipientWebhookCredentials,
    change: (d) =>
      d.setIn(['recipients', index(d, 'card-processor'), 'webhook'], 'https://u:secret@hooks.card.example/n'),
    at: 'https://u:secret@hooks.card.example/n',
    after: 'key: card-processor',
    says: /user name or password/,
  },
  {
    rule: 'a sub-processor for a purpose its processor receives no data for',
    code: CHECK_CODES.subProcessorPurposeUndeclared,
    change: (d) =>
      d.setIn(['recipients', index(d, 'card-processor'), 'sub_processors', 1, 'purpose'], 'marketing-email'),
    at: 'marketing-email',
    after: 'Fraud screening service',
    says: /serves "marketing-email", a purpose "card-processor" receives no data for/,
  },
  {
    rule: 'a sub-processor for a purpose that is not declared',
    code: CHECK_CODES.subProcessorPurposeUndeclared,
    change: (d) =>
      d.setIn(['recipients', index(d, 'card-processor'), 'sub_processors', 0, 'purpose'], 'fraud'),
    at: 'fraud',
    after: 'Card network tokenization service',
    says: /"fraud", which is not a declared purpose/,
  },
  {
    rule: 'sub-processors under an authority',
    code: CHECK_CODES.subProcessorsOfNonProcessor,
    change: (d) =>
      d.setIn(
        ['recipients', index(d, 'authorities'), 'sub_processors'],
        d.createNode([{ name: 'Court clerk', country: 'US', purpose: 'legal-compliance' }]),
      ),
    at: '- name: Court clerk',
    after: 'key: authorities',
    says: /"authorities" is an authority/,
  },
  {
    rule: 'a sub-processor said to start before its processor',
    code: CHECK_CODES.subProcessorSinceEarly,
    change: (d) =>
      d.setIn(['recipients', index(d, 'card-processor'), 'sub_processors', 1, 'since'], '2011-01-01'),
    at: '"2011-01-01"',
    after: 'Fraud screening service',
    says: /since 2011-01-01, before "card-processor" itself received any \(2012-03-01\)/,
  },
];

describe('pledge check: processors bound to the policy', () => {
  test('the example manifest passes', () => {
    assert.deepEqual(problemsOf(exampleText), []);
  });

  for (const row of ROWS) {
    test(`${row.code}: ${row.rule}`, () => {
      const text = mutate(row.change);
      const problems = problemsOf(text);
      assert.deepEqual(
        problems.map((p) => p.code),
        [row.code],
        problems.map((p) => `${p.code}: ${p.message}`).join('\n'),
      );
      const [problem] = problems;
      assert.match(problem!.message, row.says);
      assert.ok((problem!.hint ?? '').length > 0, 'says how to fix it');
      const { line, column } = locationOf(text, row.at, row.after);
      assert.equal(formatLocation(problem!.location), `pledge.yaml:${line}:${column}`);
    });
  }

  test('a contact that is not an e-mail address is refused by the schema, where it is written', () => {
    for (const bad of [
      'privacy at card-processor.example',
      'a@b',
      '"quoted"@card.example',
      'x@[192.0.2.1]',
    ]) {
      const text = mutate((d) => d.setIn(['recipients', index(d, 'card-processor'), 'contact'], bad));
      const problems = problemsOf(text);
      assert.equal(problems.length, 1, `${bad}: ${JSON.stringify(problems)}`);
      assert.match(problems[0]!.message, /must be an e-mail address/);
      const { line } = locationOf(text, 'contact:', 'key: card-processor');
      assert.equal(problems[0]!.location.line, line, bad);
    }
  });

  test('pledge check prints file:line:column, the code and the fix', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-rcheck-'));
    try {
      const file = path.join(dir, 'pledge.yaml');
      const text = mutate((d) => d.deleteIn(['recipients', index(d, 'email-delivery'), 'contact']));
      await writeFile(file, text);
      const res = await runPledge(['check', file]);
      assert.equal(res.code, 1, res.stdout + res.stderr);
      const { line, column } = locationOf(text, 'processor', 'key: email-delivery');
      assert.match(
        res.stdout + res.stderr,
        new RegExp(`pledge\\.yaml:${line}:${column}.*check\\.recipient_contact_missing`),
      );
      assert.match(res.stdout + res.stderr, /add contact:/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
