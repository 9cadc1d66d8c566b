/**
 * The published JSON Schema (docs/pledge.schema.json) is generated from the code's schema: it must be
 * current, and an independent validator must accept the example and reject what the loader rejects,
 * so an editor using it tells a writer the same thing `pledge check` does.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { manifestJsonSchema } from '../../src/manifest/manifest.schema.js';
import { ROOT } from '../helpers/cli.js';

const published = JSON.parse(await readFile(path.join(ROOT, 'docs/pledge.schema.json'), 'utf8')) as object;
const example = parse(
  await readFile(path.join(ROOT, 'examples/example-online/pledge.yaml'), 'utf8'),
) as Record<string, unknown>;

function validator() {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats.default(ajv);
  return ajv.compile(published);
}

describe('docs/pledge.schema.json', () => {
  test('is generated from the code (run `npm run schema` after changing the schema)', () => {
    assert.deepEqual(published, JSON.parse(JSON.stringify(manifestJsonSchema())));
  });

  test('accepts the example manifest', () => {
    const validate = validator();
    assert.equal(validate(example), true, JSON.stringify(validate.errors, null, 2));
  });

  test('rejects an unknown key and a wrong enum value, as the loader does', () => {
    const validate = validator();
    const broken = structuredClone(example) as { purposes: Array<Record<string, unknown>> };
    const first = broken.purposes[0];
    assert.ok(first);
    first.retenton = 'P1Y';
    first.legal_basis = 'because';
    assert.equal(validate(broken), false);
    const messages = (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
    assert.ok(
      messages.some((m) => m.includes('additional properties')),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => m.startsWith('/purposes/0/legal_basis')),
      messages.join('\n'),
    );
  });
});
