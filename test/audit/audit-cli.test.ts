/**
 * `pledge audit` as an auditor uses it: `public-key` prints the key the log signs with; `verify-proof`
 * checks the JSON the proof API answered against checkpoints and that key alone (no database), and
 * refuses a changed entry, a changed proof and a checkpoint of another key; `verify` exits 0 once
 * every entry is covered by a checkpoint kept outside the database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApp, type App } from '../../src/app.js';
import { formatCheckpointBody, NoteSigner } from '../../src/audit/note.js';
import { EXIT_NOT_YET_VERIFIABLE, EXIT_TAMPERED } from '../../src/cli/audit.command.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { runPledge } from '../helpers/cli.js';
import { distinctEntry } from '../helpers/log-db.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';

const ORIGIN = 'pledge.test/cli-log';
const cli = createContext({ kind: 'cli', id: 'test' });

describe('pledge audit', () => {
  let dir: string;
  let dataDir: string;
  let app: App | undefined;
  let vkey: string;
  const env = () => ({
    PLEDGE_LOG_ORIGIN: ORIGIN,
    PLEDGE_DATA_DIR: dataDir,
    PLEDGE_MANIFEST: EXAMPLE_MANIFEST,
  });
  const file = async (name: string, text: string) => {
    const f = path.join(dir, name);
    await writeFile(f, text);
    return f;
  };
  let proofFile: string;
  let checkpointFile: string;
  let consistencyFile: string;
  let oldCheckpointFile: string;
  let entry: string;
  /** The inclusion proof as the API answered it. */
  let inclusion: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-audit-cli-'));
    dataDir = path.join(dir, 'data');
    app = await createApp(
      {
        ...loadConfig(
          { PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent', PLEDGE_LOG_ORIGIN: ORIGIN },
          { manifest: EXAMPLE_MANIFEST },
        ),
        retentionIntervalSeconds: 0,
        rateLimitPerMinute: 100_000,
      },
      {},
    );
    vkey = app.log.verifierKey;
    // A log of exactly 2,000 entries, entry n at index n: after those written at start (the
    // processors' acknowledgements by agreement), ours fill it up.
    const atStart = (await app.audit.listRecent(cli, 100)).length;
    for (let i = atStart; i < 2000; i += 250)
      await app.audit.append(
        cli,
        Array.from({ length: Math.min(250, 2000 - i) }, (_, k) => distinctEntry(i + k)),
      );
    await app.log.integrateNow(cli);
    const key = (await app.apiKeys.createKey(cli, { name: 'auditor', scopes: ['log:read'] })).key;
    const get = async (url: string) => {
      const res = await app!.http.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });
      assert.equal(res.statusCode, 200, res.body);
      return res.body;
    };
    inclusion = await get('/api/v1/log/proofs/inclusion?index=777&size=1000');
    entry = (JSON.parse(inclusion) as { entry: string }).entry;
    proofFile = await file('inclusion.json', inclusion);
    consistencyFile = await file(
      'consistency.json',
      await get('/api/v1/log/proofs/consistency?from=1000&to=2000'),
    );
    const notes = await app.log.listCheckpoints(cli);
    assert.deepEqual(
      notes.map((c) => c.size),
      [1000, 2000],
    );
    oldCheckpointFile = await file('checkpoint-1000.txt', notes[0]!.note);
    checkpointFile = await file('checkpoint-2000.txt', await get('/log/checkpoint'));
    await app.close();
    app = undefined;
  });
  after(async () => {
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('public-key prints the key the log signs with', async () => {
    const r = await runPledge(['audit', 'public-key', '--data-dir', dataDir], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${vkey}\n`);
  });

  it('verify-proof proves an entry from the proof, its checkpoint and the key alone', async () => {
    const ok = await runPledge(
      ['audit', 'verify-proof', '--proof', proofFile, '--checkpoint', oldCheckpointFile, '--key', vkey],
      { env: { PLEDGE_DATA_DIR: path.join(dir, 'nowhere') } },
    );
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.equal(ok.stdout, `OK: entry 777 is in the log of size 1000 signed by ${ORIGIN}\n`);

    // The auditor's own copy of the entry, one character changed.
    const changed = await file('entry.json', entry.replace('"n":777', '"n":778'));
    const bad = await runPledge([
      'audit',
      'verify-proof',
      '--proof',
      proofFile,
      '--checkpoint',
      oldCheckpointFile,
      '--key',
      vkey,
      '--entry',
      changed,
    ]);
    assert.equal(bad.code, EXIT_TAMPERED, bad.stderr);
    assert.match(bad.stdout, /^FAILED: the proof does not put this entry at index 777/);

    const proof = JSON.parse(inclusion) as { proof: string[] };
    const hash = Buffer.from(proof.proof[2]!, 'base64');
    hash[5] = (hash[5] ?? 0) ^ 0x10;
    proof.proof[2] = hash.toString('base64');
    const flipped = await file('flipped.json', JSON.stringify(proof));
    const wrong = await runPledge([
      'audit',
      'verify-proof',
      '--proof',
      flipped,
      '--checkpoint',
      oldCheckpointFile,
      '--key',
      vkey,
    ]);
    assert.equal(wrong.code, EXIT_TAMPERED, wrong.stderr);

    // A checkpoint of the same tree size signed by another key proves nothing.
    const stranger = NoteSigner.fromSeed(ORIGIN, randomBytes(32));
    const forged = await file(
      'forged.txt',
      stranger.sign(formatCheckpointBody({ origin: ORIGIN, size: 1000, root: randomBytes(32) })),
    );
    const refused = await runPledge([
      'audit',
      'verify-proof',
      '--proof',
      proofFile,
      '--checkpoint',
      forged,
      '--key',
      vkey,
    ]);
    assert.equal(refused.code, EXIT_TAMPERED, refused.stderr);
    assert.match(refused.stdout, /is not a checkpoint signed by pledge\.test\/cli-log/);
  });

  it('verify-proof proves the log of 1000 a prefix of the log of 2000, given both checkpoints', async () => {
    const ok = await runPledge([
      'audit',
      'verify-proof',
      '--proof',
      consistencyFile,
      '--checkpoint',
      oldCheckpointFile,
      checkpointFile,
      '--key',
      vkey,
    ]);
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.match(ok.stdout, /^OK: the log of size 1000 is a prefix of the log of size 2000/);
    const one = await runPledge([
      'audit',
      'verify-proof',
      '--proof',
      consistencyFile,
      '--checkpoint',
      checkpointFile,
      '--key',
      vkey,
    ]);
    assert.equal(one.code, EXIT_TAMPERED);
    assert.match(one.stdout, /needs the signed checkpoints of sizes 1000 and 2000/);
  });

  it('verify exits 0 when every entry is covered by an external checkpoint', async () => {
    const r = await runPledge(['audit', 'verify', '--data-dir', dataDir], { env: env() });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^log: 2000 entries, 2 stored checkpoints, 2 external checkpoints/);
    assert.match(r.stdout, /verified: leaves 0 to 1999 match the signed external checkpoint of size 2000/);
    assert.doesNotMatch(r.stdout, /not yet verifiable/);

    // Without the file kept outside, nothing is verified, and the command says why.
    const none = await runPledge(
      ['audit', 'verify', '--data-dir', dataDir, '--checkpoints', path.join(dir, 'missing.jsonl')],
      { env: env() },
    );
    assert.equal(none.code, EXIT_NOT_YET_VERIFIABLE, none.stderr + none.stdout);
    assert.match(none.stdout, /missing\.jsonl holds no checkpoint/);
    assert.match(none.stdout, /not yet verifiable: 2000 entries \(from index 0\)/);
  });
});
