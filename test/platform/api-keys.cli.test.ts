/**
 * `pledge keys create|list|bind` as an operator runs them: keys made for a system of the manifest,
 * keys made before systems flagged UNBOUND and bound, a system the manifest lacks refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiKeyRepository } from '../../src/platform/auth/api-keys.repository.js';
import { createContext } from '../../src/platform/context.js';
import { openDatabase } from '../../src/platform/db/database.js';
import { runPledge } from '../helpers/cli.js';

void describe('pledge keys with systems (SQLite)', () => {
  let dataDir = '';
  const env = () => ({ PLEDGE_DATA_DIR: dataDir, DATABASE_URL: '' });

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-keys-cli-'));
    const migrated = await runPledge(['migrate'], { env: env() });
    assert.equal(migrated.code, 0, migrated.stderr);
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  void test('a key is made for a system, with its holder and expiry shown in the list', async () => {
    const made = await runPledge(
      [
        'keys',
        'create',
        '--name',
        'crm',
        '--system',
        'marketing-automation',
        '--scope',
        'consent:read',
        '--holder',
        'marketing-ops',
        '--expires',
        '2099-06-30',
        '--format',
        'json',
      ],
      { env: env() },
    );
    assert.equal(made.code, 0, made.stderr);
    const key = JSON.parse(made.stdout) as { key: string; system: string; holder: string; expiresAt: string };
    assert.match(key.key, /^pledge_/);
    assert.equal(key.system, 'marketing-automation');
    assert.equal(key.holder, 'marketing-ops');
    assert.equal(key.expiresAt, '2099-06-30T00:00:00.000Z');
    const list = await runPledge(['keys', 'list'], { env: env() });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /SYSTEM\s+HOLDER/);
    assert.match(list.stdout, /crm\s+marketing-automation\s+marketing-ops/);
    assert.match(list.stdout, /2099-06-30T00:00:00\.000Z/);
  });

  void test('a system the manifest lacks, and data scopes without a system, are refused', async () => {
    const unknown = await runPledge(
      ['keys', 'create', '--name', 'x', '--system', 'crm-tool', '--scope', 'subjects:read'],
      { env: env() },
    );
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.stderr,
      /"crm-tool" is not a system of the manifest; its systems are: web-app, billing/,
    );
    const unbound = await runPledge(['keys', 'create', '--name', 'x', '--scope', 'subjects:read'], {
      env: env(),
    });
    assert.equal(unbound.code, 1);
    assert.match(unbound.stderr, /--system SYSTEM/);
    const operator = await runPledge(['keys', 'create', '--name', 'ops', '--scope', 'jobs:admin'], {
      env: env(),
    });
    assert.equal(operator.code, 0, operator.stderr);
    assert.match(operator.stderr, /for no system \(an operator key\)/);
  });

  void test('a key made before systems is flagged UNBOUND, and `keys bind` binds it', async () => {
    const database = await openDatabase({ databaseUrl: undefined, dataDir });
    try {
      await new ApiKeyRepository(database.db).insert(createContext({ kind: 'cli', id: 'test' }), {
        id: 'oldkey2oldke',
        name: 'legacy-billing',
        secretHash: '0'.repeat(64),
        scopes: ['subjects:read', 'collect:write'],
        createdAt: new Date('2026-01-01T00:00:00Z'),
        system: undefined,
        holder: undefined,
        expiresAt: undefined,
      });
    } finally {
      await database.close();
    }
    const list = await runPledge(['keys', 'list'], { env: env() });
    assert.match(list.stdout, /oldkey2oldke\s+legacy-billing\s+UNBOUND/);
    assert.match(list.stderr, /pledge keys bind ID --system SYSTEM/);
    const bind = await runPledge(['keys', 'bind', 'oldkey2oldke', '--system', 'billing'], { env: env() });
    assert.equal(bind.code, 0, bind.stderr);
    assert.match(bind.stdout, /now acts for system "billing"/);
    const after = await runPledge(['keys', 'list'], { env: env() });
    assert.match(after.stdout, /oldkey2oldke\s+legacy-billing\s+billing/);
    assert.doesNotMatch(after.stderr, /UNBOUND/);
  });
});
