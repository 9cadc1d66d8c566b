/**
 * `pledge legal` as the legal team runs it (SQLite): a request recorded at the terminal cannot be
 * reviewed from the same operating-system account, whatever `--by` says; one recorded with an API
 * key cannot be reviewed by a `--by` naming that key's holder; a narrowing that widens, and a
 * second review, are refused with their codes; list, show, reject and close print what happened.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { runPledge } from '../helpers/cli.js';
import { EXAMPLE_MANIFEST, randomEmail } from '../helpers/vault.js';
import { requestBody } from './legal-app.js';

describe('pledge legal (SQLite)', () => {
  let dataDir = '';
  let app: App;
  let aliceKey = '';
  const ctx = createContext({ kind: 'cli', id: 'test' });
  const env = () => ({ PLEDGE_DATA_DIR: dataDir, DATABASE_URL: '', PLEDGE_MANIFEST: EXAMPLE_MANIFEST });
  const legal = (...args: string[]) => runPledge(['legal', ...args], { env: env() });

  const register = async () =>
    (
      await app.collect.collect(ctx, 'registration', {
        jurisdiction: 'US',
        data: {
          email: randomEmail(),
          first_name: 'Ada',
          last_name: 'Lovelace',
          password: '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$h4shh4shh4shh4shh4shh4shh4shh4sh',
        },
      })
    ).subject.id;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-legal-cli-'));
    app = await createApp({
      ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' }, { manifest: EXAMPLE_MANIFEST }),
      retentionIntervalSeconds: 0,
    });
    aliceKey = (
      await app.apiKeys.createKey(ctx, {
        name: 'alice-legal',
        holder: 'Alice Martin',
        system: 'legal-team',
        scopes: ['legal:write', 'legal:read'],
      })
    ).key;
  });
  after(async () => {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('recorded at this terminal: refused to the same account whatever --by says', async () => {
    const file = path.join(dataDir, 'request.json');
    await writeFile(file, JSON.stringify(requestBody([await register()])));
    const made = await legal('receive', '--file', file, '--by', 'Carol', '--format', 'json');
    assert.equal(made.code, 0, made.stderr);
    const request = JSON.parse(made.stdout) as {
      id: string;
      status: string;
      intakeBy: { holder: string; account: string };
    };
    assert.equal(request.status, 'received');
    assert.equal(request.intakeBy.holder, 'Carol');
    assert.equal(request.intakeBy.account, os.userInfo().username);

    const self = await legal('approve', request.id, '--by', 'Dave');
    assert.equal(self.code, 1);
    assert.match(self.stderr, /error \(legal\.self_review\): .*the same operating-system account/);
    const shown = await legal('show', request.id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /status:\s+received/);
    assert.match(shown.stdout, /recorded by:\s+Carol, account /);
  });

  test('recorded with a key: refused to its holder, approved by someone else, then closed', async () => {
    const subject = await register();
    const res = await app.http.inject({
      method: 'POST',
      url: '/api/v1/legal-requests',
      headers: { authorization: `Bearer ${aliceKey}` },
      payload: requestBody([subject]),
    });
    assert.equal(res.statusCode, 201, res.body);
    const id = res.json<{ request: { id: string } }>().request.id;

    const byHolder = await legal('approve', id, '--by', 'alice martin');
    assert.equal(byHolder.code, 1);
    assert.match(byHolder.stderr, /legal\.self_review.*the same holder/);
    const missing = await legal('approve', id);
    assert.notEqual(missing.code, 0, 'no review without --by');
    assert.match(missing.stderr, /--by/);

    const approved = await legal('approve', id, '--by', 'Dave Chen');
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /status:\s+approved/);
    assert.match(approved.stdout, /reviewed by:\s+Dave Chen, account /);
    const again = await legal('reject', id, '--reason', 'overbroad', '--by', 'Erin');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /legal\.already_reviewed/);

    const list = await legal('list', '--open');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /ID\s+STATUS\s+RECEIVED\s+AUTHORITY/);
    assert.match(list.stdout, new RegExp(`${id}\\s+approved\\s+\\S+\\s+court: Superior Court`));

    const closed = await legal('close', id, '--by', 'Dave Chen', '--format', 'json');
    assert.equal(closed.code, 0, closed.stderr);
    assert.equal((JSON.parse(closed.stdout) as { status: string }).status, 'closed');
    const reclosed = await legal('close', id, '--by', 'Dave Chen');
    assert.equal(reclosed.code, 1);
    assert.match(reclosed.stderr, /legal\.request_closed/);
  });

  test('a narrowing that widens is refused; one within the request, and a rejection, are recorded', async () => {
    const [a, b] = [await register(), await register()];
    const res = await app.http.inject({
      method: 'POST',
      url: '/api/v1/legal-requests',
      headers: { authorization: `Bearer ${aliceKey}` },
      payload: requestBody([a]),
    });
    const id = res.json<{ request: { id: string } }>().request.id;
    const wider = await legal(
      'narrow',
      id,
      '--subjects',
      `${a},${b}`,
      '--categories',
      'user',
      '--by',
      'Dave',
    );
    assert.equal(wider.code, 1);
    assert.match(wider.stderr, /legal\.narrow_widens/);
    assert.match(wider.stderr, /subjects\[1\]: was not asked for/);
    assert.match(wider.stderr, /categories\[0\]: "user" is not within what was asked/);
    const narrowed = await legal(
      'narrow',
      id,
      '--subjects',
      a,
      '--categories',
      'user.contact.email',
      '--by',
      'Dave',
    );
    assert.equal(narrowed.code, 0, narrowed.stderr);
    assert.match(narrowed.stdout, /approved:\s+1 subject\(s\); user\.contact\.email/);

    const other = await app.http.inject({
      method: 'POST',
      url: '/api/v1/legal-requests',
      headers: { authorization: `Bearer ${aliceKey}` },
      payload: requestBody([b]),
    });
    const otherId = other.json<{ request: { id: string } }>().request.id;
    const rejected = await legal('reject', otherId, '--reason', 'no_valid_legal_basis', '--by', 'Dave');
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.match(rejected.stdout, /reject reason:\s+no_valid_legal_basis/);
    const unknown = await legal('show', '0190a000-0000-7000-8000-00000000abcd');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /legal\.request_not_found/);
  });
});
