/**
 * `pledge share export`, run as a user would: NDJSON of exactly the allowed subjects and fields in
 * the file named, the record on stderr, and a refused flow's code with exit code 1.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { runPledge } from '../helpers/cli.js';
import { EXAMPLE_MANIFEST, randomEmail } from '../helpers/vault.js';

describe('pledge share export', () => {
  let dataDir: string;
  const emails: string[] = [];
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-share-cli-'));
    const app = await createApp({
      ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' }, { manifest: EXAMPLE_MANIFEST }),
      retentionIntervalSeconds: 0,
    });
    const ctx = createContext({ kind: 'cli', id: 'test' }, { system: 'web-app' });
    for (let i = 0; i < 3; i++) {
      const email = randomEmail();
      emails.push(email);
      await app.collect.collect(ctx, 'registration', {
        data: {
          email,
          first_name: 'Ada',
          last_name: 'Lovelace',
          phone: '+44 20 7946 0000',
          password: 'correct horse battery',
        },
      });
    }
    await app.close();
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  const env = () => ({
    PLEDGE_DATA_DIR: dataDir,
    PLEDGE_MANIFEST: EXAMPLE_MANIFEST,
    PLEDGE_LOG_LEVEL: 'silent',
  });

  test('writes the allowed fields of every subject to --out and prints the record', async () => {
    const out = path.join(dataDir, 'export.ndjson');
    const res = await runPledge(
      [
        'share',
        'export',
        '--recipient',
        'group-companies-uk',
        '--purpose',
        'provide-service',
        '--fields',
        'email,first_name',
        '--out',
        out,
      ],
      { env: env() },
    );
    assert.equal(res.code, 0, res.stderr);
    const lines = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { subject: string; fields: Record<string, unknown> });
    assert.equal(lines.length, 3);
    assert.deepEqual(lines.map((l) => l.fields.email).sort(), [...emails].sort());
    assert.ok(lines.every((l) => Object.keys(l.fields).sort().join() === 'email,first_name'));
    assert.match(
      res.stderr,
      /export [0-9a-f-]{36}: 3 subjects sent to group-companies-uk for provide-service/,
    );
    assert.equal(res.stdout, '');
  });

  test('a refused flow exits 1 with the gate code and writes nothing', async () => {
    const res = await runPledge(
      [
        'share',
        'export',
        '--recipient',
        'group-companies',
        '--purpose',
        'provide-service',
        '--fields',
        'card_number',
      ],
      { env: env() },
    );
    assert.equal(res.code, 1);
    assert.match(res.stderr, /share\.pledge_breach/);
    assert.equal(res.stdout, '');
  });
});
