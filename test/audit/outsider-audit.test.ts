/**
 * An outsider audits a running Pledge's transparency log with examples/log-audit/audit.mjs alone
 * (plain Node, nothing of Pledge's), as a child process over real HTTP: entries made through the
 * collection and use-gate APIs verify against the signed checkpoint (exit 0); an entry edited in the
 * database past the dropped append-only triggers is caught, naming its index (exit 1); and when the
 * operator also rebuilds the tiles and has the log sign the rewritten tree, the tree is consistent
 * with itself again (a first-time auditor sees nothing), but the auditor's remembered checkpoint
 * catches the rewritten history (exit 1). One inclusion proof from the API, and a witness's
 * cosignature, verify offline too; a rate-limited server (429) is waited out.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { createApp, type App } from '../../src/app.js';
import { leafHash, rootOf, TreeFrontier } from '../../src/audit/merkle.js';
import { cosign, cosignatureVerifierKey, ed25519PublicKey, NoteSigner } from '../../src/audit/note.js';
import { tilesOfTree, TILE_WIDTH } from '../../src/audit/tiles.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { ROOT } from '../helpers/cli.js';
import { waitFor } from '../helpers/faults.js';
import { exampleWithTestSystem, TEST_SYSTEM } from '../helpers/manifests.js';
import { openTestStores, randomEmail, type TestStores } from '../helpers/vault.js';

const AUDITOR = path.join(ROOT, 'examples/log-audit/audit.mjs');
const cli = createContext({ kind: 'cli', id: 'test' });
const SUBJECTS = 3;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the auditor as its own process (asynchronously: the server it reads runs in this one). */
function audit(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AUDITOR, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('an outsider audits the log with examples/log-audit/audit.mjs', () => {
  let stores: TestStores;
  let app: App;
  let base: string;
  let logKey: string;
  let vkey: string;
  let stateFile: string;

  async function start(): Promise<void> {
    app = await createApp(
      {
        ...loadConfig(
          {
            PLEDGE_DATA_DIR: stores.dataDir,
            PLEDGE_LOG_LEVEL: 'silent',
            PLEDGE_LOG_ORIGIN: 'pledge.test/log',
          },
          { manifest: exampleWithTestSystem() },
        ),
        retentionIntervalSeconds: 0,
        rateLimitPerMinute: 100_000,
      },
      { database: stores.database, keystore: stores.keystore },
    );
    base = await app.http.listen({ port: 0, host: '127.0.0.1' });
  }

  /** Waits until every committed entry is integrated and the newest checkpoint covers them all. */
  async function settledCheckpoint(atLeast: number): Promise<number> {
    // The integrator signs at least every 10 s while there are new entries.
    return waitFor('a checkpoint covering every entry', 25_000, async () => {
      const pending = await sql<{ n: number }>`select count(*) as n from audit_events
        where leaf_index is null`.execute(stores.database.kysely);
      const checkpoint = await app.log.latestCheckpoint(cli);
      const size = await app.log.size(cli);
      return Number(pending.rows[0]?.n) === 0 && checkpoint?.size === size && size >= atLeast
        ? size
        : undefined;
    });
  }

  const logArgs = () => ['--log', `${base}/log`, '--key', vkey, '--token', logKey];

  before(async () => {
    stores = await openTestStores('sqlite', 'pledge-outsider-');
    stateFile = path.join(stores.dataDir, 'auditor-state.json');
    await start();
    vkey = app.log.verifierKey;
    logKey = (await app.apiKeys.createKey(cli, { name: 'auditor', scopes: ['log:read'] })).key;
    const { key } = await app.apiKeys.createKey(cli, {
      name: 'collector',
      system: TEST_SYSTEM,
      scopes: ['collect:write', 'subjects:read'],
    });
    // Registrations and reads through the use gate, over HTTP: each leaves entries in the log.
    for (let i = 0; i < SUBJECTS; i++) {
      const registered = await fetch(`${base}/api/v1/collect/registration`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          jurisdiction: 'US',
          data: {
            email: randomEmail(),
            first_name: 'Ada',
            last_name: 'Lovelace',
            password: 'correct horse battery',
          },
        }),
      });
      assert.equal(registered.status, 201, await registered.clone().text());
      const { subject } = (await registered.json()) as { subject: { id: string } };
      const read = await fetch(`${base}/api/v1/subjects/${subject.id}/data?purpose=provide-service`, {
        headers: { authorization: `Bearer ${key}` },
      });
      assert.equal(read.status, 200);
    }
    // And more than a tile's worth, so the tree has full and partial tiles and a level-1 tile.
    await app.audit.append(
      cli,
      Array.from({ length: 300 }, (_, i) => ({ action: 'test.bulk', details: { i } })),
    );
  });
  after(async () => {
    await app?.close();
    await stores?.cleanup();
  });

  test('the log as served verifies: signature, every leaf against the tiles, the root (exit 0)', async (t) => {
    const size = await settledCheckpoint(SUBJECTS * 2 + 300);
    const run = await audit([...logArgs(), '--state', stateFile]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    t.diagnostic(run.stdout);
    assert.match(
      run.stdout,
      new RegExp(`checkpoint: pledge\\.test/log, size ${size}, root .* \\(signature verified\\)`),
    );
    assert.match(run.stdout, new RegExp(`entries: ${size} downloaded`));
    assert.match(run.stdout, /vault\.read \d+/, 'the reads through the use gate are among the entries');
    assert.match(run.stdout, /VERIFIED\n$/);
    const state = JSON.parse(await readFile(stateFile, 'utf8')) as { size: number };
    assert.equal(state.size, size, 'the verified checkpoint is remembered');

    // Without the tiles' key the auditor stops with a usage/network exit and says why.
    const noKey = await audit(['--log', `${base}/log`, '--key', vkey]);
    assert.equal(noKey.code, 2, noKey.stdout + noKey.stderr);
    assert.match(noKey.stderr, /HTTP 401 \(the tiles may need a key: --token\)/);
    // Another key of the same name: the checkpoint is not signed by it.
    const other = NoteSigner.fromSeed('pledge.test/log', randomBytes(32)).verifierKey();
    const unsigned = await audit(['--log', `${base}/log`, '--key', other, '--token', logKey]);
    assert.equal(unsigned.code, 1, unsigned.stdout + unsigned.stderr);
    assert.match(
      unsigned.stderr,
      /MISMATCH: the checkpoint carries no signature by pledge\.test\/log\+[0-9a-f]{8}/,
    );
    // A key whose id does not match its name and key is refused as usage.
    const lying = other.replace(/\+[0-9a-f]{8}\+/, '+00000000+');
    assert.equal((await audit(['--log', `${base}/log`, '--key', lying])).code, 2);
  });

  test('a server that rate-limits the auditor is waited out as its retry-after says', async () => {
    // In front of the server, a proxy answers the first tile request 429 (as PLEDGE_RATE_LIMIT does
    // once a client has used its minute's budget), then passes everything through.
    let limited = 0;
    const proxy = http.createServer((req, res) => {
      if (limited === 0 && req.url?.startsWith('/log/tile/') === true) {
        limited++;
        res.writeHead(429, { 'retry-after': '1' }).end();
        return;
      }
      const auth = req.headers.authorization;
      fetch(`${base}${req.url ?? '/'}`, { headers: auth === undefined ? {} : { authorization: auth } })
        .then(async (answer) => {
          res.writeHead(answer.status).end(Buffer.from(await answer.arrayBuffer()));
        })
        .catch((err: unknown) => res.writeHead(502).end(String(err)));
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = proxy.address() as AddressInfo;
      const run = await audit(['--log', `http://127.0.0.1:${port}/log`, '--key', vkey, '--token', logKey]);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.equal(limited, 1);
      assert.match(run.stderr, /rate limited, retrying in 1 s/);
      assert.match(run.stdout, /VERIFIED\n$/);
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  test('one inclusion proof from the API verifies offline, and a changed entry in it does not', async () => {
    const size = (await app.log.latestCheckpoint(cli))!.size;
    const res = await fetch(`${base}/api/v1/log/proofs/inclusion?index=1&size=${size}`, {
      headers: { authorization: `Bearer ${logKey}` },
    });
    assert.equal(res.status, 200);
    const proof = (await res.json()) as { entry: string; checkpoint: string };
    const file = path.join(stores.dataDir, 'proof.json');
    await writeFile(file, JSON.stringify(proof));
    const ok = await audit(['--proof', file, '--key', vkey]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, new RegExp(`inclusion: entry 1 is in the tree of size ${size}`));

    // A witness's cosignature (cosignature/v1) on the checkpoint is checked when its key is given.
    const seed = randomBytes(32);
    const witness = cosignatureVerifierKey('witness.test', ed25519PublicKey(seed));
    const absent = cosignatureVerifierKey('absent.test', ed25519PublicKey(randomBytes(32)));
    const body = proof.checkpoint.slice(0, proof.checkpoint.lastIndexOf('\n\n') + 1);
    const cosigned = proof.checkpoint + cosign('witness.test', seed, body, 1_700_000_000);
    await writeFile(file, JSON.stringify({ ...proof, checkpoint: cosigned }));
    const withWitness = await audit([
      '--proof',
      file,
      '--key',
      vkey,
      '--witness',
      witness,
      '--witness',
      absent,
    ]);
    assert.equal(withWitness.code, 0, withWitness.stdout + withWitness.stderr);
    assert.match(
      withWitness.stdout,
      /witness witness\.test: cosigned, at 2023-11-14T22:13:20\.000Z, verified/,
    );
    assert.match(withWitness.stdout, /witness absent\.test: no cosignature/);
    const forged = cosigned.replace(/ (\S+)\n$/, (_, b64: string) => {
      const bytes = Buffer.from(b64, 'base64');
      bytes[bytes.length - 1]! ^= 1;
      return ` ${bytes.toString('base64')}\n`;
    });
    await writeFile(file, JSON.stringify({ ...proof, checkpoint: forged }));
    const badWitness = await audit(['--proof', file, '--key', vkey, '--witness', witness]);
    assert.equal(badWitness.code, 1, badWitness.stdout + badWitness.stderr);
    assert.match(
      badWitness.stderr,
      /MISMATCH: the signature of witness\.test on the checkpoint does not verify/,
    );

    await writeFile(
      file,
      JSON.stringify({ ...proof, entry: proof.entry.replace('"action":"', '"action":"x') }),
    );
    const bad = await audit(['--proof', file, '--key', vkey]);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /MISMATCH: index 1: the entry is not in the tree the checkpoint signs/);
  });

  test('an entry edited in the database is caught at its index (exit 1)', async () => {
    const target = 2;
    const q = stores.database.kysely;
    for (const name of ['update', 'delete', 'insert'])
      await sql.raw(`drop trigger audit_events_append_only_${name}`).execute(q);
    const changed = await sql`update audit_events
      set entry = replace(entry, '"action":"', '"action":"forged.')
      where leaf_index = ${target}`.execute(q);
    assert.equal(Number(changed.numAffectedRows), 1);

    const run = await audit([...logArgs(), '--state', stateFile]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(
      run.stderr,
      new RegExp(`MISMATCH: index ${target}: the entry hashes to [0-9a-f]{64}, the level-0 tile says`),
    );
    assert.doesNotMatch(run.stdout, /VERIFIED/);
  });

  test('tiles rebuilt and the rewritten tree signed again: only the remembered checkpoint catches it', async () => {
    const remembered = JSON.parse(await readFile(stateFile, 'utf8')) as { size: number; root: string };
    const q = stores.database.kysely;
    // The operator covers the edit: every tile and the integrator's state recomputed from the entries
    // as they now are, the checkpoints signed before deleted, and the server restarted so that its
    // integrator signs the rewritten tree with the log's own key.
    const rows = await sql<{ entry: string }>`select entry from audit_events
      where leaf_index is not null order by leaf_index`.execute(q);
    const leaves = rows.rows.map((r) => leafHash(Buffer.from(r.entry, 'utf8')));
    const frontier = TreeFrontier.empty();
    for (const leaf of leaves) frontier.append(leaf);
    await sql`delete from log_tiles`.execute(q);
    for (const t of tilesOfTree(leaves.length)) {
      const span = TILE_WIDTH ** t.level;
      const hashes = Array.from({ length: t.width }, (_, i) => {
        const first = (t.index * TILE_WIDTH + i) * span;
        return rootOf(leaves.slice(first, first + span));
      });
      await sql`insert into log_tiles (level, tile_index, width, hashes)
        values (${t.level}, ${t.index}, ${t.width}, ${Buffer.concat(hashes)})`.execute(q);
    }
    await sql`update log_state set frontier = ${Buffer.concat(frontier.state())}, root = ${frontier.root()}`.execute(
      q,
    );
    await sql`delete from log_cosignatures`.execute(q);
    await sql`delete from log_checkpoints`.execute(q);
    await app.close();
    await start();
    await settledCheckpoint(remembered.size);

    // A first-time auditor (no state) finds a log consistent with itself: a rewrite is only visible
    // against something kept outside the operator's reach.
    const fresh = await audit(logArgs());
    assert.equal(fresh.code, 0, fresh.stdout + fresh.stderr);

    const run = await audit([...logArgs(), '--state', stateFile]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(
      run.stderr,
      new RegExp(
        `MISMATCH: history rewritten: the first ${remembered.size} entries now hash to \\S+, the checkpoint verified .* signed ${remembered.root.replace(/[+/]/g, '\\$&')}`,
      ),
    );
    const kept = JSON.parse(await readFile(stateFile, 'utf8')) as { root: string };
    assert.equal(kept.root, remembered.root, 'a failed audit does not move the remembered checkpoint');
  });
});
