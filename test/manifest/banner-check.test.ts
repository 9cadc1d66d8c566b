/**
 * `pledge check` and the cookie banner: a banner: block only on a cookie_banner, asked again after
 * at most 13 months, texts naming only the purposes it asks about (and saying "on until off" where
 * one is opt-out), and one web system serving its purposes through cookie and web_beacon sources
 * only. Each problem is reported where the file says it; the example manifest passes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseDocument, type Document } from 'yaml';
import { CHECK_CODES, checkManifest } from '../../src/manifest/manifest.checker.js';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import type { ManifestProblem } from '../../src/manifest/problems.js';
import { ROOT, runPledge } from '../helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const exampleText = await readFile(EXAMPLE, 'utf8');
const BANNER_CODES = new Set<string>([
  CHECK_CODES.bannerKind,
  CHECK_CODES.bannerAskAgain,
  CHECK_CODES.bannerTextsPurpose,
  CHECK_CODES.bannerTextsMissing,
  CHECK_CODES.webSystem,
]);

function mutate(change: (doc: Document) => void): string {
  const doc = parseDocument(exampleText);
  change(doc);
  return doc.toString({ lineWidth: 0 });
}

/** The banner and web-system problems of a manifest text (which must be schema-valid). */
function bannerProblems(text: string): ManifestProblem[] {
  const loaded = parseManifest(text, 'pledge.yaml');
  assert.ok(loaded.manifest, JSON.stringify(loaded.problems));
  return checkManifest(loaded.manifest, loaded.locator).problems.filter((p) => BANNER_CODES.has(p.code));
}

function indexOf(doc: Document, list: string, key: string): number {
  const items = (doc.get(list) as { items: Array<{ get(k: string): unknown }> }).items;
  const i = items.findIndex((item) => item.get('key') === key);
  assert.ok(i >= 0, `test setup: ${list} has ${key}`);
  return i;
}

const bannerPath = (doc: Document) => ['choices', indexOf(doc, 'choices', 'cookie-banner'), 'banner'];
const websitePath = (doc: Document) => ['systems', indexOf(doc, 'systems', 'website')];

/** 1-based line of the first `needle` after `after`. */
function lineOf(text: string, needle: string, after: string): number {
  const at = text.indexOf(needle, text.indexOf(after));
  assert.notEqual(at, -1, `test setup: "${needle}" not found after "${after}"`);
  return text.slice(0, at).split('\n').length;
}

describe('pledge check: the cookie banner and the web system', () => {
  test('the example manifest passes every banner check', () => {
    assert.deepEqual(bannerProblems(exampleText), []);
  });

  test('a banner: block on another kind of choice is refused', () => {
    const text = mutate((d) => {
      const banner = d.getIn(bannerPath(d));
      const center = indexOf(d, 'choices', 'preferences');
      d.setIn(['choices', center, 'banner'], banner);
    });
    const problems = bannerProblems(text);
    assert.deepEqual(
      problems.map((p) => [p.code, p.path.join('.')]),
      [[CHECK_CODES.bannerKind, `choices.${indexOf(parseDocument(text), 'choices', 'preferences')}.banner`]],
    );
    assert.match(problems[0]!.message, /only a cookie_banner has a banner: block/);
  });

  test('asking again after more than 13 months is refused where ask_again is written', () => {
    for (const [value, refused] of [
      ['P14M', true],
      ['P2Y', true],
      ['P400D', true],
      ['P13M', false],
      ['P6M', false],
      ['P0D', true],
    ] as const) {
      const text = mutate((d) => d.setIn([...bannerPath(d), 'ask_again'], value));
      const problems = bannerProblems(text);
      assert.equal(problems.length, refused ? 1 : 0, `${value}: ${JSON.stringify(problems)}`);
      if (refused) {
        assert.equal(problems[0]!.code, CHECK_CODES.bannerAskAgain);
        assert.equal(problems[0]!.location.line, lineOf(text, `ask_again: ${value}`, 'key: cookie-banner'));
      }
    }
  });

  test('texts naming a purpose the banner does not ask about are refused; a missing one falls back', () => {
    const text = mutate((d) => {
      d.setIn(
        [...bannerPath(d), 'languages', 'fr', 'purposes', 'marketing-email'],
        d.createNode({ name: 'Lettres', description: 'Des nouvelles.' }),
      );
      // English names no purpose at all: the manifest's own name and description are shown.
    });
    const problems = bannerProblems(text);
    assert.deepEqual(
      problems.map((p) => [p.code, p.path.slice(-4).join('.')]),
      [[CHECK_CODES.bannerTextsPurpose, 'languages.fr.purposes.marketing-email']],
    );
    assert.match(problems[0]!.message, /does not ask about.*"site-analytics"/);
  });

  test('a language without on_until_off is refused while an asked purpose is opt-out somewhere', () => {
    const text = mutate((d) => d.deleteIn([...bannerPath(d), 'languages', 'de', 'on_until_off']));
    assert.deepEqual(
      bannerProblems(text).map((p) => [p.code, p.path.slice(-2).join('.')]),
      [[CHECK_CODES.bannerTextsMissing, 'languages.de']],
    );
    // Opt-in everywhere: nothing is on until turned off, so the text is not needed.
    const optIn = mutate((d) => {
      d.deleteIn([...bannerPath(d), 'languages', 'de', 'on_until_off']);
      d.setIn(['purposes', indexOf(d, 'purposes', 'site-analytics'), 'consent'], 'opt_in');
    });
    assert.deepEqual(bannerProblems(optIn), []);
  });

  test('a banner needs a web system, serving its purposes', () => {
    const none = mutate((d) => d.deleteIn([...websitePath(d), 'web']));
    const [missing, ...rest] = bannerProblems(none);
    assert.equal(rest.length, 0);
    assert.equal(missing?.code, CHECK_CODES.webSystem);
    assert.deepEqual(missing?.path.slice(-1), ['banner']);
    assert.match(missing?.message ?? '', /needs a system with `web: true`/);

    const unserved = mutate((d) =>
      d.setIn([...websitePath(d), 'purposes'], d.createNode(['provide-service'])),
    );
    assert.deepEqual(
      bannerProblems(unserved).map((p) => [p.code, p.path.slice(-1)[0], /"site-analytics"/.test(p.message)]),
      [[CHECK_CODES.webSystem, 'purposes', true]],
    );
  });

  test('at most one web system, and it collects only through cookie and web_beacon sources', () => {
    const two = mutate((d) => {
      const legal = indexOf(d, 'systems', 'legal-team');
      d.setIn(['systems', legal, 'web'], true);
    });
    const problems = bannerProblems(two);
    assert.deepEqual(
      problems.map((p) => [p.code, p.path.slice(-1)[0]]),
      [[CHECK_CODES.webSystem, 'web']],
    );
    assert.match(problems[0]!.message, /"legal-team" is a second web system/);

    const registration = mutate((d) =>
      (d.getIn([...websitePath(d), 'sources']) as { add(v: unknown): void }).add('registration'),
    );
    const refused = bannerProblems(registration);
    assert.deepEqual(
      refused.map((p) => [p.code, p.path.slice(-2).join('.')]),
      [[CHECK_CODES.webSystem, 'sources.2']],
    );
    assert.match(refused[0]!.message, /kind registration/);
  });

  test('exit 1 from the CLI with file:line:column and the code; the example exits 0', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-banner-check-'));
    try {
      const file = path.join(dir, 'pledge.yaml');
      const text = mutate((d) => d.setIn([...bannerPath(d), 'ask_again'], 'P2Y'));
      await writeFile(file, text);
      const bad = await runPledge(['check', file]);
      assert.equal(bad.code, 1, bad.stdout + bad.stderr);
      const line = lineOf(text, 'ask_again: P2Y', 'key: cookie-banner');
      assert.match(
        bad.stdout + bad.stderr,
        new RegExp(`pledge\\.yaml:${line}:\\d+: error check\\.banner_ask_again`),
      );
      const good = await runPledge(['check', EXAMPLE]);
      assert.equal(good.code, 0, good.stdout + good.stderr);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
