/**
 * `pledge requests` as staff run it (SQLite): the queue by due window, one request with its steps,
 * approval of a verified request (refused with its code before verification), an extension with a
 * reason, a rejection, and a retry refused when nothing failed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { startSmtpSink, type SmtpSink } from '../comms/smtp-sink.js';
import { runPledge } from '../helpers/cli.js';
import { EXAMPLE_MANIFEST, randomEmail } from '../helpers/vault.js';
import { decodeQuotedPrintable } from '../share/legal-app.js';

describe('pledge requests (SQLite)', () => {
  let dataDir = '';
  let app: App;
  let sink: SmtpSink;
  const ctx = createContext({ kind: 'anonymous' });
  const env = () => ({ PLEDGE_DATA_DIR: dataDir, DATABASE_URL: '', PLEDGE_MANIFEST: EXAMPLE_MANIFEST });
  const requests = (...args: string[]) => runPledge(['requests', ...args], { env: env() });

  before(async () => {
    sink = await startSmtpSink();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-requests-cli-'));
    app = await createApp({
      ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' }, { manifest: EXAMPLE_MANIFEST }),
      retentionIntervalSeconds: 0,
      smtpUrl: sink.url,
    });
  });
  after(async () => {
    await app.close();
    await sink.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const newRequest = async (type: string) => {
    const email = randomEmail();
    const { requestId } = await app.requests.receive(
      ctx,
      { type, email },
      { agent: 'person', ip: '192.0.2.10' },
    );
    const text = decodeQuotedPrintable(
      sink.messages
        .filter((m) => m.to === email)
        .at(-1)
        ?.raw.toString('utf8') ?? '',
    );
    return { id: requestId, code: /verification code is (\d{6})/.exec(text)?.[1] ?? '' };
  };

  test('list --due filters by the due window; show prints the steps', async () => {
    const { id } = await newRequest('erasure');
    const soon = await requests('list', '--due', '40d');
    assert.equal(soon.code, 0, soon.stderr);
    assert.match(soon.stdout, new RegExp(`${id}\\s+erasure\\s+verifying`));
    const week = await requests('list', '--due', '7d');
    assert.doesNotMatch(week.stdout, new RegExp(id));
    const bad = await requests('list', '--due', 'soon');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /requests\.due_window_invalid/);
    const shown = await requests('show', id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /status:\s+verifying/);
    assert.match(shown.stdout, /erase\s+pledge\s+pending/);
    assert.match(shown.stdout, /notify/);
  });

  test('approve is refused before verification and starts the steps after it', async () => {
    const { id, code } = await newRequest('access');
    const early = await requests('approve', id);
    assert.equal(early.code, 1);
    assert.match(early.stderr, /requests\.not_verified/);
    await app.requests.verify(ctx, id, { email: code });
    const approved = await requests('approve', id, '--format', 'json');
    assert.equal(approved.code, 0, approved.stderr);
    const body = JSON.parse(approved.stdout) as {
      request: { status: string };
      steps: Array<{ status: string }>;
    };
    assert.equal(body.request.status, 'running');
    assert.equal(body.steps[1]?.status, 'queued');
  });

  test('extend with a reason, reject, and retry refused when nothing failed', async () => {
    const { id } = await newRequest('inquiry');
    const noReason = await requests('extend', id, '--reason', 'because');
    assert.equal(noReason.code, 1);
    assert.match(noReason.stderr, /requests\.reason_invalid/);
    const extended = await requests('extend', id, '--reason', 'volume');
    assert.equal(extended.code, 0, extended.stderr);
    assert.match(extended.stdout, /extended:\s+\d{4}-/);
    const retry = await requests('retry', id);
    assert.equal(retry.code, 1);
    assert.match(retry.stderr, /requests\.nothing_to_retry/);
    const rejected = await requests('reject', id, '--reason', 'manifestly_unfounded');
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.match(rejected.stdout, /status:\s+rejected/);
    const closed = await requests('list');
    assert.doesNotMatch(closed.stdout, new RegExp(id));
  });
});
