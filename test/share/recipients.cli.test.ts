/**
 * `pledge recipients status|acknowledge|secret` as an operator runs them against the database a
 * server brought its manifest into force in (SQLite): an affiliate without an agreement is not in
 * standing until its acknowledgement is recorded by name, a version other than the one in force is
 * refused, and the notice webhook's secret is the one the server signs with.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseDocument } from 'yaml';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { deriveRecipientNoticeSecret } from '../../src/share/acknowledgements.notices.js';
import { ROOT, runPledge } from '../helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');

describe('pledge recipients (SQLite)', () => {
  let dataDir = '';
  let secret = '';
  let version = '';
  const env = () => ({ PLEDGE_DATA_DIR: dataDir, DATABASE_URL: '' });

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-recipients-cli-'));
    // The UK company has no agreement (and the manifest no pledge that would require one).
    const doc = parseDocument(await readFile(EXAMPLE, 'utf8'));
    const js = doc.toJS() as {
      recipients: Array<{ key: string }>;
      pledges: Array<{ kind: string }>;
      policy: { version: string };
    };
    doc.deleteIn(['recipients', js.recipients.findIndex((r) => r.key === 'group-companies-uk'), 'agreement']);
    doc.deleteIn(['pledges', js.pledges.findIndex((p) => p.kind === 'processor_agreement')]);
    version = js.policy.version;
    const file = path.join(dataDir, 'pledge.yaml');
    await writeFile(file, doc.toString({ lineWidth: 0 }));
    // A server starts once with it, bringing it into force, then stops.
    const app = await createApp({
      ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' }, { manifest: file }),
      retentionIntervalSeconds: 0,
    });
    secret = deriveRecipientNoticeSecret(
      app.keyring.use('recipient_notices').current().secret,
      'card-processor',
    );
    await app.close();
  });
  after(() => rm(dataDir, { recursive: true, force: true }));

  test('status lists each processor and affiliate; one without an agreement is not in standing (exit 1)', async () => {
    const res = await runPledge(['recipients', 'status'], { env: env() });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stdout, /RECIPIENT\s+STANDING\s+VERSION/);
    assert.match(res.stdout, /card-processor\s+ok\s+\S+\s+agreement DPA-2012-004/);
    assert.match(res.stdout, /group-companies-uk\s+share\.acknowledgement_required/);
    assert.doesNotMatch(res.stdout, /authorities/);
  });

  test('acknowledge records who and when, refuses another version, and the recipient stands', async () => {
    const wrong = await runPledge(
      ['recipients', 'acknowledge', 'group-companies-uk', '--version', '1999-01-01', '--by', 'Grace Hopper'],
      { env: env() },
    );
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, new RegExp(`the policy in force is version ${version}, not 1999-01-01`));

    const res = await runPledge(
      [
        'recipients',
        'acknowledge',
        'group-companies-uk',
        '--version',
        version,
        '--by',
        'Grace Hopper',
        '--format',
        'json',
      ],
      { env: env() },
    );
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as {
      acknowledgement: {
        acknowledgedBy: string;
        method: string;
        actor: { kind: string };
        acknowledgedAt: string;
      };
    };
    assert.equal(out.acknowledgement.acknowledgedBy, 'Grace Hopper');
    assert.equal(out.acknowledgement.method, 'cli');
    assert.equal(out.acknowledgement.actor.kind, 'cli');
    assert.ok(Date.now() - Date.parse(out.acknowledgement.acknowledgedAt) < 60_000);

    const status = await runPledge(['recipients', 'status', 'group-companies-uk', '--format', 'json'], {
      env: env(),
    });
    assert.equal(status.code, 0, status.stderr);
    const [row] = JSON.parse(status.stdout) as Array<{ standing: string; acknowledgedBy: string }>;
    assert.equal(row?.standing, 'ok');
    assert.equal(row?.acknowledgedBy, 'Grace Hopper');

    const all = await runPledge(['recipients', 'status'], { env: env() });
    assert.equal(all.code, 0, all.stdout + all.stderr);
  });

  test('an authority, or an unknown recipient, is refused', async () => {
    const authority = await runPledge(
      ['recipients', 'acknowledge', 'authorities', '--version', version, '--by', 'X'],
      { env: env() },
    );
    assert.equal(authority.code, 1);
    assert.match(authority.stderr, /only processors and affiliates acknowledge the policy/);
    const unknown = await runPledge(
      ['recipients', 'acknowledge', 'nobody', '--version', version, '--by', 'X'],
      {
        env: env(),
      },
    );
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /declares no recipient "nobody"/);
  });

  test("secret prints the secret the card processor's webhook verifies notices with", async () => {
    const res = await runPledge(['recipients', 'secret', 'card-processor'], { env: env() });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.trim(), secret);
    const none = await runPledge(['recipients', 'secret', 'email-delivery'], { env: env() });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /"email-delivery" no webhook/);
  });
});
