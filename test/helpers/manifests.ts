/**
 * Variants of the example manifest for tests that need a declaration the example does not make
 * (the example company sells and shares nothing, so no purpose of it is covered by GPC).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { EXAMPLE_MANIFEST } from './vault.js';

/** A purpose covered by Global Privacy Control: cross-context advertising on the web, opt-out in the US. */
export const PARTNER_ADS = {
  key: 'partner-ads',
  name: 'Show you our ads on partner sites',
  description: 'Use a cookie id to show you ads for our products on other sites.',
  use: 'advertising',
  categories: ['user.device.cookie_id'],
  legal_basis: 'consent',
  consent: { default: 'opt_in', US: 'opt_out' },
  channels: ['web'],
  retention: 'P13M',
  gpc: true,
};

/** Writes the example manifest plus `purposes` to a temporary file and returns its path. */
export async function writeManifestWithPurposes(
  purposes: ReadonlyArray<Record<string, unknown>>,
): Promise<string> {
  const doc = parseDocument(await readFile(EXAMPLE_MANIFEST, 'utf8'));
  for (const p of purposes) doc.addIn(['purposes'], doc.createNode(p));
  addTestSystem(doc);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-manifest-'));
  const file = path.join(dir, 'pledge.yaml');
  await writeFile(file, doc.toString());
  return file;
}

/**
 * A system of the test manifest below that serves every purpose and submits to every collection
 * point, for tests of collection and consent that are not about which system may do what (the
 * binding itself is tested with the example's own systems in test/http/systems.test.ts).
 */
export const TEST_SYSTEM = 'test-all';

let withTestSystem: string | undefined;

/**
 * The example manifest plus the system {@link TEST_SYSTEM}, written once per test process
 * (synchronously, so that configurations built without awaiting can name it).
 */
export function exampleWithTestSystem(): string {
  if (withTestSystem !== undefined) return withTestSystem;
  const doc = parseDocument(readFileSync(EXAMPLE_MANIFEST, 'utf8'));
  addTestSystem(doc);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pledge-manifest-'));
  withTestSystem = path.join(dir, 'pledge.yaml');
  writeFileSync(withTestSystem, doc.toString());
  return withTestSystem;
}

/** Adds {@link TEST_SYSTEM}, serving every purpose and source the document declares. */
function addTestSystem(doc: ReturnType<typeof parseDocument>): void {
  const keys = (list: string) =>
    (doc.get(list) as { items: Array<{ get(k: string): unknown }> }).items.map((i) => String(i.get('key')));
  doc.addIn(
    ['systems'],
    doc.createNode({
      key: TEST_SYSTEM,
      name: 'Test system',
      purposes: keys('purposes'),
      sources: keys('sources'),
    }),
  );
}
