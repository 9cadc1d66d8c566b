/**
 * The built-in taxonomy speaks fideslang: every one of fideslang's data categories, data uses and
 * data subjects (from its own data files) is built in with its name and description, Pledge's finer
 * keys are extensions of a fideslang parent, a purpose's `data_use` and `data_subjects` are checked
 * against fideslang with file:line:column, and docs/taxonomy.md lists which key is whose.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse, parseDocument, type Document } from 'yaml';
import {
  FIDESLANG_CATEGORIES,
  FIDESLANG_DATA_SUBJECTS,
  FIDESLANG_DATA_USES,
  getDataUse,
} from '../../src/manifest/fideslang.js';
import { checkManifest } from '../../src/manifest/manifest.checker.js';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import type { ManifestProblem } from '../../src/manifest/problems.js';
import {
  BUILT_IN_CATEGORIES,
  isFideslangCategory,
  parentKey,
  PLEDGE_EXTENSIONS,
  Taxonomy,
} from '../../src/manifest/taxonomy.js';
import { ROOT } from '../helpers/cli.js';

const DATA_FILES = path.join(ROOT, 'src/manifest/fideslang');
const readJson = async (name: string) =>
  JSON.parse(await readFile(path.join(DATA_FILES, name), 'utf8')) as Record<
    string,
    Array<{ fides_key: string; name: string; description: string; parent_key?: string | null }>
  >;
const upstream = {
  categories: (await readJson('data_categories.json')).data_category ?? [],
  uses: (await readJson('data_uses.json')).data_use ?? [],
  subjects: (await readJson('data_subjects.json')).data_subject ?? [],
};

describe('the built-in taxonomy is fideslang’s whole', () => {
  test('all 85 data categories, 54 data uses and 15 data subjects, with fideslang’s names and descriptions', () => {
    assert.equal(upstream.categories.length, 85);
    assert.equal(upstream.uses.length, 54);
    assert.equal(upstream.subjects.length, 15);
    const taxonomy = new Taxonomy();
    for (const c of upstream.categories) {
      const built = taxonomy.get(c.fides_key);
      assert.ok(built, `${c.fides_key} is built in`);
      assert.equal(built.fidesName, c.name);
      assert.equal(built.description, c.description);
      assert.ok(isFideslangCategory(c.fides_key));
    }
    assert.deepEqual(
      FIDESLANG_DATA_USES.map((u) => [u.key, u.name, u.description]),
      upstream.uses.map((u) => [u.fides_key, u.name, u.description]),
    );
    assert.deepEqual(
      FIDESLANG_DATA_SUBJECTS.map((s) => [s.key, s.name, s.description]),
      upstream.subjects.map((s) => [s.fides_key, s.name, s.description]),
    );
    assert.equal(FIDESLANG_CATEGORIES.length, 85);
    assert.equal(getDataUse('marketing.communications.email')?.parent, 'marketing.communications');
  });

  test('the published policy reads plain names, not data-map names, for fideslang keys', () => {
    const taxonomy = new Taxonomy();
    assert.equal(taxonomy.get('user.contact.email')?.name, 'E-mail address');
    assert.equal(taxonomy.get('user.contact.email')?.fidesName, 'User Contact Email');
    // Every fideslang key has a name in sentence case: none is left in fideslang's Title Case.
    for (const c of BUILT_IN_CATEGORIES.filter((b) => isFideslangCategory(b.key))) {
      assert.doesNotMatch(c.name, /^[A-Z][a-z’']+ [A-Z][a-z]/, `${c.key} has a plain name`);
    }
  });

  test('Pledge’s finer keys are extensions whose fideslang parent is named; payment cards keep their keys', () => {
    const taxonomy = new Taxonomy();
    for (const e of PLEDGE_EXTENSIONS) {
      assert.equal(isFideslangCategory(e.key), false, `${e.key} is Pledge’s own`);
      assert.ok(e.fides !== undefined && isFideslangCategory(e.fides), `${e.key} names a fideslang parent`);
      const parent = parentKey(e.key);
      assert.ok(parent !== undefined && taxonomy.has(parent), `${e.key} sits under a known key`);
    }
    for (const k of ['number', 'security_code', 'expiry', 'token', 'last_four', 'brand']) {
      const key = `user.financial.payment_card.${k}`;
      assert.ok(taxonomy.has(key), `${key} is still built in`);
      assert.equal(taxonomy.fidesKeyOf(key), 'user.financial.credit_card');
    }
    assert.equal(taxonomy.get('user.financial.payment_card.number')?.sensitive, true);
  });

  test('the Taxonomy API its callers use keeps working, extensions of a manifest included', () => {
    const taxonomy = new Taxonomy([
      { key: 'user.content.private.meeting', name: 'Meeting content', description: 'Meetings.' },
      { key: 'employee', name: 'Employee data', description: 'About staff.' },
    ]);
    assert.ok(taxonomy.has('user.biometric.fingerprint'));
    assert.ok(taxonomy.keys().includes('user.content.private.meeting'));
    assert.ok(taxonomy.isCoveredBy('user.contact.address.city', ['user.contact']));
    assert.ok(taxonomy.overlaps('user.financial', 'user.financial.payment_card.token'));
    assert.equal(taxonomy.fidesKeyOf('user.content.private.meeting'), 'user.content.private');
    assert.equal(taxonomy.fidesKeyOf('user.behavior.product_usage'), 'user.behavior');
    assert.equal(taxonomy.fidesKeyOf('employee'), undefined);
  });

  test('docs/taxonomy.md lists every built-in key, saying whether it is fideslang’s or Pledge’s', async () => {
    const doc = await readFile(path.join(ROOT, 'docs/taxonomy.md'), 'utf8');
    for (const c of BUILT_IN_CATEGORIES) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${c.key}\` `));
      assert.ok(row, `docs/taxonomy.md has a row for ${c.key}`);
      if (isFideslangCategory(c.key)) assert.match(row, /\| fideslang +\|/, `${c.key} is fideslang’s`);
      else assert.ok(row.includes(`extension of \`${c.fides ?? ''}\``), `${c.key} is an extension`);
    }
    for (const u of FIDESLANG_DATA_USES) assert.ok(doc.includes(`| \`${u.key}\` `), `data use ${u.key}`);
    for (const s of FIDESLANG_DATA_SUBJECTS) assert.ok(doc.includes(`| \`${s.key}\` `), `subject ${s.key}`);
  });
});

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const exampleText = await readFile(EXAMPLE, 'utf8');

function problemsAfter(change: (doc: Document) => void): { text: string; problems: ManifestProblem[] } {
  const doc = parseDocument(exampleText);
  change(doc);
  const text = doc.toString({ lineWidth: 0 });
  const loaded = parseManifest(text, 'pledge.yaml');
  assert.ok(loaded.manifest, `the changed manifest is schema-valid: ${JSON.stringify(loaded.problems)}`);
  return { text, problems: checkManifest(loaded.manifest, loaded.locator).problems };
}

/** 1-based line and column of the first `needle` in `text`. */
function locationOf(text: string, needle: string): { line: number; column: number } {
  const at = text.indexOf(needle);
  assert.notEqual(at, -1, `"${needle}" is in the manifest`);
  const lines = text.slice(0, at).split('\n');
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}

describe('a purpose names the fideslang data use it is', () => {
  test('the example’s purposes name their data uses and data subjects', () => {
    const raw = parse(exampleText) as {
      purposes: Array<{ key: string; data_use?: string; data_subjects?: string[] }>;
    };
    const uses = Object.fromEntries(raw.purposes.map((p) => [p.key, p.data_use]));
    assert.deepEqual(uses, {
      'provide-service': 'essential.service',
      'marketing-email': 'marketing.communications.email',
      'improve-products': 'functional.service.improve',
      'site-analytics': 'analytics.reporting',
      'legal-compliance': 'essential.legal_obligation',
    });
    for (const p of raw.purposes)
      assert.ok((p.data_subjects ?? []).length > 0, `${p.key} names its subjects`);
  });

  test('an unknown data use is check.unknown_data_use at its file:line:column, with a suggestion', () => {
    const { text, problems } = problemsAfter((d) =>
      d.setIn(['purposes', 3, 'data_use'], 'analytics.reportng'),
    );
    assert.equal(problems.length, 1, JSON.stringify(problems));
    const [p] = problems;
    assert.equal(p?.code, 'check.unknown_data_use');
    assert.match(p?.message ?? '', /did you mean "analytics\.reporting"/);
    assert.equal(p?.hint, 'write "analytics.reporting"');
    assert.deepEqual(
      { line: p?.location.line, column: p?.location.column },
      locationOf(text, 'analytics.reportng'),
    );
  });

  test('a data use far from every fideslang key is refused with a pointer to the list', () => {
    const { problems } = problemsAfter((d) => d.setIn(['purposes', 0, 'data_use'], 'billing'));
    assert.deepEqual(
      problems.map((p) => [p.code, p.hint]),
      [
        [
          'check.unknown_data_use',
          'use one of fideslang’s data uses (docs/taxonomy.md#data-uses), such as "essential.service"',
        ],
      ],
    );
  });

  test('an unknown data subject is check.unknown_data_subject at its position', () => {
    const { text, problems } = problemsAfter((d) =>
      d.setIn(['purposes', 1, 'data_subjects'], d.createNode(['customer', 'prospekt'], { flow: true })),
    );
    assert.deepEqual(
      problems.map((p) => [p.code, p.location.line, p.location.column]),
      [
        [
          'check.unknown_data_subject',
          locationOf(text, 'prospekt').line,
          locationOf(text, 'prospekt').column,
        ],
      ],
    );
    assert.match(problems[0]?.message ?? '', /did you mean "prospect"/);
  });
});
