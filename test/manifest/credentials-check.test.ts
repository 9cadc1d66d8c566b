/**
 * `pledge check` and the built-in rule credentials-verifier-only: a purpose, recipient or system
 * that names a credentials category (or one under it) is refused with file:line:column; a broad
 * parent such as `user` is not; a collection point that passes a credential through to a recipient
 * stays allowed, and the example manifest (which collects passwords) is clean of it.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseDocument, type Document } from 'yaml';
import { CHECK_CODES, checkManifest } from '../../src/manifest/manifest.checker.js';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import { renderPolicyMarkdown } from '../../src/manifest/manifest.renderer.js';
import type { ManifestProblem } from '../../src/manifest/problems.js';
import { ROOT, runPledge } from '../helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const exampleText = await readFile(EXAMPLE, 'utf8');
const CREDENTIALS = 'user.authorization.credentials';

function mutate(change: (doc: Document) => void): string {
  const doc = parseDocument(exampleText);
  change(doc);
  return doc.toString({ lineWidth: 0 });
}

function problemsOf(text: string): ManifestProblem[] {
  const loaded = parseManifest(text, 'pledge.yaml');
  assert.ok(loaded.manifest, JSON.stringify(loaded.problems));
  return checkManifest(loaded.manifest, loaded.locator).problems;
}

const credentialProblems = (text: string) =>
  problemsOf(text).filter((p) => p.code === CHECK_CODES.credentialsReadable);

/** 1-based line and column of the `occurrence`-th `needle` after `after`. */
function locationOf(text: string, needle: string, after: string): { line: number; column: number } {
  const at = text.indexOf(needle, text.indexOf(after));
  assert.notEqual(at, -1, `test setup: "${needle}" not found after "${after}"`);
  const before = text.slice(0, at).split('\n');
  return { line: before.length, column: (before[before.length - 1]?.length ?? 0) + 1 };
}

const seq = (doc: Document, p: Array<string | number>) => doc.getIn(p) as { add(v: unknown): void };

describe('pledge check: credentials are never given back', () => {
  test('the example manifest collects passwords and breaks no credentials rule', () => {
    assert.deepEqual(credentialProblems(exampleText), []);
    const unserved = problemsOf(exampleText).filter((p) => p.code === CHECK_CODES.sourceCategoryUnserved);
    assert.deepEqual(unserved, [], 'a collected credential needs no purpose');
  });

  test('a purpose that names the credentials category is refused where it names it, citing the rule', () => {
    const text = mutate((d) => seq(d, ['purposes', 0, 'categories']).add(CREDENTIALS));
    const [problem, ...more] = credentialProblems(text);
    assert.equal(more.length, 0);
    assert.ok(problem);
    assert.deepEqual(problem.path, ['purposes', 0, 'categories', 9]);
    const { line, column } = locationOf(text, CREDENTIALS, 'key: provide-service');
    assert.equal(problem.location.line, line);
    assert.equal(problem.location.column, column);
    assert.match(problem.message, /purpose "provide-service" names "user\.authorization\.credentials"/);
    assert.match(problem.message, /built-in rule credentials-verifier-only/);
    assert.match(problem.hint ?? '', /credentials\/verify/);
  });

  test("fideslang's password category is kept as a verifier too", () => {
    const text = mutate((d) => seq(d, ['purposes', 1, 'categories']).add('user.authorization.password'));
    const [problem, ...more] = credentialProblems(text);
    assert.equal(more.length, 0);
    assert.match(problem?.message ?? '', /purpose "marketing-email" names "user\.authorization\.password"/);
  });

  test('a category under it, named by a recipient or a system, is refused too', () => {
    const text = mutate((d) => {
      seq(d, ['categories']).add(
        d.createNode({ key: `${CREDENTIALS}.api_key`, name: 'API keys', description: 'Keys a person made.' }),
      );
      seq(d, ['recipients', 1, 'categories']).add(`${CREDENTIALS}.api_key`);
      seq(d, ['systems', 0, 'categories']).add(CREDENTIALS);
    });
    const problems = credentialProblems(text);
    assert.deepEqual(problems.map((p) => p.path[0]).sort(), ['recipients', 'systems']);
    const recipient = problems.find((p) => p.path[0] === 'recipients');
    assert.match(
      recipient?.message ?? '',
      /recipient "email-delivery" names "user\.authorization\.credentials\.api_key"/,
    );
    assert.match(recipient?.hint ?? '', /pass_through/);
    const system = problems.find((p) => p.path[0] === 'systems');
    assert.match(system?.message ?? '', /system "web-app" names "user\.authorization\.credentials"/);
  });

  test('a broad parent does not count, and passing a credential through to a recipient stays allowed', () => {
    const text = mutate((d) => {
      // The recipient that receives it at collection declares no credentials category.
      d.setIn(
        ['sources', 0, 'pass_through'],
        d.createNode([{ category: CREDENTIALS, recipient: 'card-processor' }]),
      );
      seq(d, ['purposes', 0, 'categories']).add('user.authorization');
    });
    assert.deepEqual(credentialProblems(text), []);
    assert.ok(exampleText.includes('categories: [user]'), 'legal-compliance names all of user');
  });

  test('the rendered policy still says registration collects credentials, and no purpose says it uses them', () => {
    const loaded = parseManifest(exampleText, 'pledge.yaml');
    assert.ok(loaded.manifest);
    const policy = renderPolicyMarkdown(loaded.manifest);
    const registration = policy.split('\n').find((l) => l.includes('**Account registration.**')) ?? '';
    assert.match(registration, /username and credentials/);
    const provide = policy.split('\n').find((l) => l.includes('**Provide the services you request.**')) ?? '';
    assert.ok(provide.includes('For this we use your name') && !provide.includes('credentials'), provide);
  });

  test('exit 1 from the CLI with file:line:column and the code', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-cred-check-'));
    try {
      const file = path.join(dir, 'pledge.yaml');
      const text = mutate((d) => seq(d, ['purposes', 1, 'categories']).add(CREDENTIALS));
      await writeFile(file, text);
      const { code, stdout, stderr } = await runPledge(['check', file]);
      assert.equal(code, 1, stdout + stderr);
      const { line, column } = locationOf(text, CREDENTIALS, 'key: marketing-email');
      assert.ok(
        (stdout + stderr).includes(`${file}:${line}:${column}: error check.credentials_readable`),
        stdout + stderr,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
