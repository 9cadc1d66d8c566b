/**
 * The manifest's `requests:` block: each row breaks one rule of the example manifest's deadlines or
 * calendars and asserts the exact code, the file:line:column a writer is sent to and the words of
 * the message; and `pledge check` passes on the example as shipped.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseDocument, type Document } from 'yaml';
import { CHECK_CODES, checkManifest } from '../../src/manifest/manifest.checker.js';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import type { ManifestProblem } from '../../src/manifest/problems.js';
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

/** Where `needle` is first written after `after` (1-based, like the checker). */
function locationOf(text: string, needle: string, after: string): { line: number; column: number } {
  const start = text.indexOf(after);
  assert.notEqual(start, -1, `test setup: "${after}" not found`);
  const at = text.indexOf(needle, start);
  assert.notEqual(at, -1, `test setup: "${needle}" after "${after}"`);
  const lines = text.slice(0, at).split('\n');
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}

interface Row {
  rule: string;
  code: string;
  change: (doc: Document) => void;
  /** The text the location must point at, first found after `after`. */
  at: string;
  after: string;
  says: string[];
}

const D = ['requests', 'deadlines'];
const C = ['requests', 'calendars'];

const ROWS: Row[] = [
  {
    rule: 'a rule naming a jurisdiction that jurisdictions: does not declare',
    code: CHECK_CODES.requestsUnknownJurisdiction,
    change: (doc) => doc.setIn([...D, 0, 'jurisdictions', 1], 'JP'),
    at: 'JP',
    after: 'key: gdpr',
    says: ['"gdpr"', '"JP"', 'jurisdictions:'],
  },
  {
    rule: 'a rule counting on a calendar that is not declared, with a suggestion',
    code: CHECK_CODES.requestsUnknownCalendar,
    change: (doc) => doc.setIn([...D, 2, 'calendar'], 'usa'),
    at: 'usa',
    after: 'key: ccpa',
    says: ['"ccpa"', '"usa"', 'did you mean "us"'],
  },
  {
    rule: 'a declared jurisdiction with no rule and no default',
    code: CHECK_CODES.requestsJurisdictionUncovered,
    change: (doc) => {
      doc.deleteIn(['requests', 'default']);
      doc.setIn([...D, 1, 'jurisdictions'], doc.createNode(['EU']));
      doc.setIn([...D, 0, 'jurisdictions'], doc.createNode(['GB']));
    },
    // The rules now cover GB and EU only: CH, declared in jurisdictions:, has none.
    at: 'CH',
    after: '\njurisdictions:',
    says: ['"CH"', 'requests.default'],
  },
  {
    rule: 'a default naming no rule',
    code: CHECK_CODES.requestsUnknownDefault,
    change: (doc) => doc.setIn(['requests', 'default'], 'gdrp'),
    at: 'gdrp',
    after: 'requests:',
    says: ['"gdrp"', 'did you mean "gdpr"'],
  },
  {
    rule: 'a jurisdiction with two rules',
    code: CHECK_CODES.requestsJurisdictionTwice,
    change: (doc) => doc.setIn([...D, 1, 'jurisdictions'], doc.createNode(['CH', 'GB'])),
    at: 'GB',
    after: 'key: fadp',
    says: ['"GB"', '"gdpr"', '"fadp"'],
  },
  {
    rule: 'an extension notice window longer than the answer period',
    code: CHECK_CODES.requestsNoticeAfterAnswer,
    change: (doc) => doc.setIn([...D, 0, 'extension_notice_within'], 'P2M'),
    at: 'P2M',
    after: 'extension_notice_within',
    says: ['2 months', '1 month', 'after the answer was due'],
  },
  {
    rule: 'a notice window in business days longer than a 45-day answer',
    code: CHECK_CODES.requestsNoticeAfterAnswer,
    change: (doc) => doc.setIn([...D, 2, 'extension_notice_within'], doc.createNode({ business_days: 40 })),
    at: 'business_days: 40',
    after: 'key: ccpa',
    says: ['40 business days', '45 days'],
  },
  {
    rule: 'a holiday that is not a real date',
    code: 'manifest.invalid_value',
    change: (doc) => doc.setIn([...C, 0, 'holidays', 3], '2026-02-30'),
    at: '"2026-02-30"',
    after: 'key: eu',
    says: ['requests.calendars[0].holidays[3]', 'not a real calendar date'],
  },
  {
    rule: 'a holiday not written YYYY-MM-DD',
    code: 'manifest.invalid_value',
    change: (doc) => doc.setIn([...C, 1, 'holidays', 0], '1/1/2026'),
    at: '"1/1/2026"',
    after: 'key: us',
    says: ['requests.calendars[1].holidays[0]', 'YYYY-MM-DD'],
  },
  {
    rule: 'two calendars with one key',
    code: 'manifest.duplicate_entry',
    change: (doc) => doc.setIn([...C, 1, 'key'], 'eu'),
    at: 'eu',
    after: '# United States federal holidays',
    says: ['requests.calendars', '"eu" twice'],
  },
  {
    rule: 'two rules with one key',
    code: 'manifest.duplicate_entry',
    change: (doc) => doc.setIn([...D, 2, 'key'], 'gdpr'),
    at: 'gdpr',
    after: 'name: Swiss Federal',
    says: ['requests.deadlines', '"gdpr" twice'],
  },
  {
    rule: 'a period in words instead of a duration or { business_days: N }',
    code: 'manifest.invalid_value',
    change: (doc) => doc.setIn([...D, 2, 'confirm'], '10 business days'),
    at: '10 business days',
    after: 'key: ccpa',
    says: ['requests.deadlines[2].confirm', '{ business_days: 10 }', '"P45D"'],
  },
  {
    rule: 'a time zone that does not exist',
    code: 'manifest.invalid_value',
    change: (doc) => doc.setIn([...C, 0, 'time_zone'], 'Europe/Brusels'),
    at: 'Europe/Brusels',
    after: 'key: eu',
    says: ['requests.calendars[0].time_zone', 'IANA time zone'],
  },
  {
    rule: 'an unknown weekday in weekend:',
    code: 'manifest.invalid_value',
    change: (doc) => doc.setIn([...C, 1, 'weekend', 1], 'sunday'),
    at: 'sunday',
    after: 'key: us',
    says: ['requests.calendars[1].weekend[1]', '"sunday"'],
  },
  {
    rule: 'a misspelt key in the block, with a suggestion',
    code: 'manifest.unknown_key',
    change: (doc) => {
      const rule = doc.getIn([...D, 0]) as { set(k: string, v: unknown): void; delete(k: string): void };
      rule.delete('extension');
      rule.set('extention', 'P2M');
    },
    at: 'extention',
    after: 'key: gdpr',
    says: ['"extention"', 'did you mean "extension"'],
  },
];

describe('pledge check: the requests: block', () => {
  test('the example manifest with its deadlines and calendars is clean', () => {
    assert.deepEqual(problemsOf(exampleText), []);
  });

  for (const row of ROWS) {
    test(`${row.code}: ${row.rule}`, () => {
      const text = mutate(row.change);
      const problems = problemsOf(text);
      const found = problems.filter((p) => p.code === row.code);
      assert.equal(found.length, 1, `one ${row.code}, got: ${JSON.stringify(problems, null, 2)}`);
      const p = found[0];
      assert.ok(p);
      const want = locationOf(text, row.at, row.after);
      assert.deepEqual({ line: p.location.line, column: p.location.column }, want, p.message);
      for (const w of row.says)
        assert.ok(`${p.message} ${p.hint ?? ''}`.includes(w), `"${w}" in: ${p.message}`);
      assert.ok(p.hint, 'says how to fix it');
    });
  }

  test('with an empty jurisdictions: list the rules have nothing to be checked against', () => {
    const text = mutate((doc) => doc.set('jurisdictions', doc.createNode([])));
    assert.deepEqual(
      problemsOf(text).filter((p) => p.code.startsWith('check.requests_')),
      [],
    );
  });

  test('a member state in jurisdictions: is covered by the rule for EU, a state by its country', () => {
    const text = mutate((doc) => {
      doc.set('jurisdictions', doc.createNode(['US', 'US-CA', 'EU', 'FR', 'GB', 'CH']));
      doc.deleteIn(['requests', 'default']);
    });
    assert.deepEqual(problemsOf(text), []);
  });

  test('a manifest without requests: is not asked for deadlines', () => {
    const text = mutate((doc) => doc.delete('requests'));
    assert.deepEqual(problemsOf(text), []);
  });

  test('`pledge check` exits 0 on the example, and 1 at the file:line:column of a bad calendar', async () => {
    const ok = await runPledge(['check', 'examples/example-online/pledge.yaml']);
    assert.equal(ok.code, 0, ok.stderr);
    const dir = await mkdtemp(path.join(tmpdir(), 'pledge-deadlines-'));
    const file = path.join(dir, 'pledge.yaml');
    const text = mutate((doc) => doc.setIn([...D, 2, 'calendar'], 'usa'));
    await writeFile(file, text);
    const r = await runPledge(['check', file]);
    assert.equal(r.code, 1, r.stderr);
    const at = locationOf(text, 'usa', 'key: ccpa');
    assert.ok(
      r.stderr.includes(`${file}:${at.line}:${at.column}: error check.requests_unknown_calendar`),
      r.stderr,
    );
  });
});
