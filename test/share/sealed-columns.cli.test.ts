/**
 * The legal and recipients commands on a database an earlier version wrote (SQLite): the rows it
 * left in plaintext are sealed before the command reads anything, and the command still prints the
 * values as they were given.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { uuidv7 } from '../../src/platform/ids.js';
import { runPledge } from '../helpers/cli.js';
import { tablesOf } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';

describe('pledge legal and recipients seal what an earlier version left in plaintext (SQLite)', () => {
  let dataDir = '';
  let app: App;
  const env = () => ({ PLEDGE_DATA_DIR: dataDir, DATABASE_URL: '', PLEDGE_MANIFEST: EXAMPLE_MANIFEST });

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-sealed-cli-'));
    app = await createApp({
      ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' }, { manifest: EXAMPLE_MANIFEST }),
      retentionIntervalSeconds: 0,
    });
  });
  after(async () => {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('a plaintext legal request is sealed by `pledge legal show`, which prints it as given', async () => {
    const id = uuidv7();
    const now = new Date().toISOString();
    await tablesOf(app.database)
      .insertInto('legal_requests')
      .values({
        id,
        received_at: now,
        authority_name: 'Office of the Privacy Commissioner',
        authority_type: 'regulator',
        legal_basis: 'regulatory_order',
        citation: 'PIPEDA s. 12.1',
        reference: 'OPC-LEGACY-2026-9',
        scope_subjects: '[]',
        scope_categories: JSON.stringify(['user.contact.email']),
        deadline: '2027-03-01',
        notice_prohibited: 0,
        notice_prohibited_until: null,
        decision: null,
        approved_subjects: null,
        approved_categories: null,
        reject_reason: null,
        intake_by: JSON.stringify({ actor: { kind: 'cli', id: 'test' }, holder: 'Carol' }),
        reviewed_at: null,
        reviewed_by: null,
        disclosed_at: null,
        closed_at: null,
        closed_by: null,
        sealed: 0,
      })
      .execute();

    const shown = await runPledge(['legal', 'show', id, '--format', 'json'], { env: env() });
    assert.equal(shown.code, 0, shown.stderr);
    const view = (
      JSON.parse(shown.stdout) as {
        request: { authority: { name: string }; reference: string; citation: string };
      }
    ).request;
    assert.equal(view.authority.name, 'Office of the Privacy Commissioner');
    assert.equal(view.reference, 'OPC-LEGACY-2026-9');
    assert.equal(view.citation, 'PIPEDA s. 12.1');

    const row = await tablesOf(app.database)
      .selectFrom('legal_requests')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    assert.equal(row.sealed, 1);
    assert.ok(!JSON.stringify(row).includes('Privacy Commissioner'));
    assert.ok(!JSON.stringify(row).includes('OPC-LEGACY'));
    assert.ok(!JSON.stringify(row).includes('PIPEDA'));

    const list = await runPledge(['legal', 'list'], { env: env() });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${id}\\s+received\\s+\\S+\\s+regulator: Office of the Privacy`));
  });

  test('a plaintext signatory is sealed by `pledge recipients status`, which prints it as given', async () => {
    const id = uuidv7();
    await tablesOf(app.database)
      .insertInto('share_acknowledgements')
      .values({
        id,
        recipient: 'group-companies',
        policy_version: app.active.manifest.policy.version,
        manifest_version_id: app.active.version.id,
        actor: JSON.stringify({ kind: 'cli', id: 'test' }),
        acknowledged_by: 'Dorothy Vaughan',
        method: 'cli',
        // Newer than the agreement counted at the first start: the recipient's latest.
        acknowledged_at: new Date(Date.now() + 60_000).toISOString(),
        sealed: 0,
      })
      .execute();

    const status = await runPledge(['recipients', 'status', 'group-companies', '--format', 'json'], {
      env: env(),
    });
    assert.equal(status.code, 0, status.stderr);
    const [shown] = JSON.parse(status.stdout) as Array<{ acknowledgedBy: string }>;
    assert.equal(shown?.acknowledgedBy, 'Dorothy Vaughan');

    const rows = await tablesOf(app.database).selectFrom('share_acknowledgements').selectAll().execute();
    assert.ok(rows.every((r) => r.sealed === 1));
    assert.ok(!JSON.stringify(rows).includes('Dorothy Vaughan'));
    assert.ok(!JSON.stringify(rows).includes('DPA-2012'));
  });
});
