/**
 * `pledge requests agents add|list|revoke` as staff run it (SQLite): an agent registered at the
 * terminal is listed with its key, a bad key is refused with its code, and a revoked agent shows
 * as revoked.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runPledge } from '../helpers/cli.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';

describe('pledge requests agents (SQLite)', () => {
  let dataDir = '';
  const env = () => ({ PLEDGE_DATA_DIR: dataDir, DATABASE_URL: '', PLEDGE_MANIFEST: EXAMPLE_MANIFEST });
  const agents = (...args: string[]) => runPledge(['requests', 'agents', ...args], { env: env() });

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-agents-cli-'));
    const migrated = await runPledge(['migrate'], { env: env() });
    assert.equal(migrated.code, 0, migrated.stderr);
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test('add, list and revoke an agent; a bad key is refused with its code', async () => {
    const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
    const raw = der.subarray(der.length - 32).toString('base64');
    const added = await agents('add', 'agent.example', '--name', 'Example Agent', '--public-key', raw);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /agent\.example\s+Example Agent\s+active/);
    const bad = await agents('add', 'other.example', '--name', 'Other', '--public-key', 'short');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /requests\.agent_invalid/);
    const listed = await agents('list', '--format', 'json');
    assert.equal(listed.code, 0, listed.stderr);
    const list = JSON.parse(listed.stdout) as Array<{ id: string; publicKey: string; status: string }>;
    assert.deepEqual(
      list.map((a) => [a.id, a.publicKey, a.status]),
      [['agent.example', raw, 'active']],
    );
    const revoked = await agents('revoke', 'agent.example');
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /agent\.example\s+Example Agent\s+revoked/);
    const unknown = await agents('revoke', 'nobody');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /requests\.agent_not_found/);
  });
});
