/**
 * The transparency log in a running app, on every engine: an entry is integrated within a second of
 * its commit by the app's own integrator (woken by the append); GET /log/checkpoint is public;
 * tiles and entry bundles follow C2SP tlog-tiles (full ones immutable, partial ones briefly cached,
 * 404 beyond the tree) and need a log:read key unless PLEDGE_LOG_PUBLIC_TILES is set; the proof
 * routes answer proofs that verify, and bad input in the one error shape.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.js';
import { EMPTY_ROOT, leafHash, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';
import { openNote, parseCheckpointBody, parseVerifierKey } from '../../src/audit/note.js';
import { decodeEntryBundle } from '../../src/audit/tiles.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { waitFor } from '../helpers/faults.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';

const cli = createContext({ kind: 'cli', id: 'test' });

async function openApp(
  database: TestDatabase,
  dataDir: string,
  env: Record<string, string> = {},
): Promise<App> {
  return createApp(
    {
      ...loadConfig(
        {
          PLEDGE_DATA_DIR: dataDir,
          PLEDGE_LOG_LEVEL: 'silent',
          PLEDGE_LOG_ORIGIN: 'pledge.test/log',
          ...env,
        },
        { manifest: EXAMPLE_MANIFEST },
      ),
      retentionIntervalSeconds: 0,
      rateLimitPerMinute: 100_000,
    },
    { database },
  );
}

for (const dialect of DIALECTS) {
  describe(`the transparency log over HTTP on ${dialect}`, () => {
    let database: TestDatabase;
    let dataDir: string;
    let app: App;
    let logKey: string;
    let otherKey: string;

    before(async () => {
      database = await openTestDatabase(dialect);
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-log-http-'));
      app = await openApp(database, dataDir);
      logKey = (await app.apiKeys.createKey(cli, { name: 'auditor', scopes: ['log:read'] })).key;
      otherKey = (await app.apiKeys.createKey(cli, { name: 'ops', scopes: ['jobs:admin'] })).key;
    });
    after(async () => {
      await app?.close();
      await database?.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    });

    const get = (url: string, key?: string) =>
      app.http.inject({
        method: 'GET',
        url,
        headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
      });

    test('an entry is integrated by the running app within a second of its commit', async () => {
      const start = performance.now();
      await app.audit.append(cli, [{ action: 'test.latency', details: {} }]);
      const committed = performance.now();
      const leaf = await waitFor('the entry has a leaf index', 1000, async () => {
        const events = await app.audit.listRecent(cli, 5);
        return events.find((e) => e.action === 'test.latency')?.leafIndex;
      });
      assert.equal(typeof leaf, 'number');
      assert.ok(
        performance.now() - committed < 1000,
        `integrated ${Math.round(performance.now() - start)} ms after`,
      );
    });

    test('tiles, entry bundles and proofs, per C2SP tlog-tiles, with a log:read key', async () => {
      // More than a full tile of leaves.
      await app.audit.append(
        cli,
        Array.from({ length: 300 }, (_, i) => ({ action: 'test.tile', details: { i } })),
      );
      await app.log.integrateNow(cli);
      const size = await app.log.size(cli);
      assert.ok(size >= 301);
      // The latest checkpoint may be older than the tree (it is signed every 1,000 entries or 10 s):
      // the proofs below are checked against the tree's own root, and the consistency proof joins the two.
      const { root } = await app.log.head(cli);

      const checkpoint = await get('/log/checkpoint');
      assert.equal(checkpoint.statusCode, 200, checkpoint.body);
      assert.equal(checkpoint.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(checkpoint.headers['cache-control'], 'no-cache');
      const opened = openNote(checkpoint.body, [parseVerifierKey(app.log.verifierKey)]);
      assert.equal(parseCheckpointBody(opened.body).origin, 'pledge.test/log');

      // A witness's cosignature (B2's client keeps them) is served after the log's own signature
      // (asked again if the app signed a newer checkpoint in between).
      const cosignature =
        '— witness.example.test AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n';
      let served: string | undefined;
      for (let attempt = 0; attempt < 3 && served === undefined; attempt++) {
        const latest = await app.log.latestCheckpoint(cli);
        await app.log.addCosignature(cli, latest!.size, 'witness.example.test', cosignature);
        const cosigned = await get('/log/checkpoint');
        if (cosigned.body.startsWith(latest!.note)) {
          assert.equal(cosigned.body, latest!.note + cosignature);
          served = cosigned.body;
        }
      }
      assert.ok(served !== undefined, 'the checkpoint is served with its cosignature');
      assert.deepEqual(openNote(served, [parseVerifierKey(app.log.verifierKey)]).verifiedBy, [
        'pledge.test/log',
      ]);

      const noKey = await get('/log/tile/0/000');
      assert.equal(noKey.statusCode, 401);
      assert.equal(noKey.json<{ error: { code: string } }>().error.code, 'auth.key_missing');
      assert.equal((await get('/log/tile/0/000', otherKey)).statusCode, 403);

      const full = await get('/log/tile/0/000', logKey);
      assert.equal(full.statusCode, 200);
      assert.equal(full.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.equal(full.rawPayload.length, 256 * 32);
      const bundle = await get('/log/tile/entries/000', logKey);
      assert.equal(bundle.statusCode, 200);
      const entries = decodeEntryBundle(bundle.rawPayload);
      assert.equal(entries.length, 256);
      entries.forEach((e, i) =>
        assert.deepEqual(
          leafHash(e),
          full.rawPayload.subarray(i * 32, i * 32 + 32),
          `leaf ${i} hashes its entry`,
        ),
      );
      const width = size - 256 < 256 ? size - 256 : 256;
      const partial = await get(`/log/tile/0/001.p/${width}`, logKey);
      assert.equal(partial.statusCode, 200);
      assert.equal(partial.rawPayload.length, width * 32);
      assert.notEqual(partial.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.equal((await get(`/log/tile/entries/001.p/${width}`, logKey)).statusCode, 200);
      assert.equal((await get('/log/tile/0/001', logKey)).statusCode, 404, 'no full tile before its leaves');
      assert.equal((await get('/log/tile/0/999', logKey)).statusCode, 404, 'nothing beyond the tree');
      const notAPath = await get('/log/tile/zz', logKey);
      assert.equal(notAPath.statusCode, 404);
      assert.match(notAPath.json<{ error: { message: string } }>().error.message, /not a tile path/);

      const inclusion = await get(`/api/v1/log/proofs/inclusion?index=260&size=${size}`, logKey);
      assert.equal(inclusion.statusCode, 200, inclusion.body);
      const body = inclusion.json<{ entry: string; proof: string[]; checkpoint: string; index: number }>();
      assert.ok(
        verifyInclusion(
          leafHash(Buffer.from(body.entry, 'utf8')),
          260,
          size,
          body.proof.map((h) => Buffer.from(h, 'base64')),
          root!,
        ),
      );
      assert.ok(body.checkpoint.includes('pledge.test/log\n'));
      const ck = openNote(body.checkpoint, [parseVerifierKey(app.log.verifierKey)]);
      const signed = parseCheckpointBody(ck.body);
      // The app signs its first checkpoint at once (of the empty tree when it starts with none).
      if (signed.size === 0) assert.deepEqual(signed.root, EMPTY_ROOT);
      const from = Math.max(signed.size, 1);
      const fromRoot = signed.size === 0 ? undefined : signed.root;
      const consistency = await get(`/api/v1/log/proofs/consistency?from=${from}&to=${size}`, logKey);
      assert.equal(consistency.statusCode, 200, consistency.body);
      const proof = consistency.json<{ proof: string[] }>().proof.map((h) => Buffer.from(h, 'base64'));
      if (fromRoot !== undefined) assert.ok(verifyConsistency(from, size, proof, fromRoot, root!));
      else assert.ok(proof.length > 0, 'a consistency proof from the first leaf has hashes');

      for (const [url, code] of [
        ['/api/v1/log/proofs/inclusion?index=x&size=3', 'log.query_invalid'],
        ['/api/v1/log/proofs/inclusion?size=3', 'log.query_invalid'],
        ['/api/v1/log/proofs/inclusion?index=3&size=3', 'log.index_out_of_range'],
        [`/api/v1/log/proofs/inclusion?index=0&size=${size + 10}`, 'log.size_beyond_tree'],
        ['/api/v1/log/proofs/consistency?from=0&to=1', 'log.range_invalid'],
        ['/api/v1/log/proofs/consistency?from=5&to=2', 'log.range_invalid'],
      ] as const) {
        const res = await get(url, logKey);
        assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
        const err = res.json<{ error: { code: string; message: string } }>().error;
        assert.equal(err.code, code, url);
        assert.ok(err.message.length > 10, url);
      }
      assert.equal((await get(`/api/v1/log/proofs/inclusion?index=0&size=1`)).statusCode, 401);
    });

    test('a proof comes with the stored checkpoint of its own size when there is one, and says so', async () => {
      // A thousand entries make the integrator sign a checkpoint; a few more leave the tree past it.
      await app.audit.append(
        cli,
        Array.from({ length: 1000 }, (_, i) => ({ action: 'test.checkpointed', details: { i } })),
      );
      await app.log.integrateNow(cli);
      await app.audit.append(
        cli,
        [1, 2, 3].map((i) => ({ action: 'test.after', details: { i } })),
      );
      await app.log.integrateNow(cli);
      const size = await app.log.size(cli);
      const stored = await app.log.listCheckpoints(cli);
      const older = stored.filter((c) => c.size > 0 && c.size < size).at(-1);
      assert.ok(older, `a checkpoint below the tree's size ${size}: ${stored.map((c) => c.size).join(', ')}`);
      const latest = stored.at(-1)!;
      assert.ok(latest.size >= older.size);

      type ProofBody = {
        entry: string;
        proof: string[];
        checkpoint: string;
        checkpointSize: number;
        checkpointMatches: boolean;
      };
      const verifier = [parseVerifierKey(app.log.verifierKey)];
      const atOlder = await get(`/api/v1/log/proofs/inclusion?index=5&size=${older.size}`, logKey);
      assert.equal(atOlder.statusCode, 200, atOlder.body);
      const body = atOlder.json<ProofBody>();
      assert.equal(body.checkpointMatches, true);
      assert.equal(body.checkpointSize, older.size);
      assert.equal(body.checkpoint, older.note);
      // The client needs nothing else: the proof leads to the root of the checkpoint it came with.
      const signed = parseCheckpointBody(openNote(body.checkpoint, verifier).body);
      assert.equal(signed.size, older.size);
      assert.ok(
        verifyInclusion(
          leafHash(Buffer.from(body.entry, 'utf8')),
          5,
          older.size,
          body.proof.map((h) => Buffer.from(h, 'base64')),
          signed.root,
        ),
      );
      const consistency = await get(`/api/v1/log/proofs/consistency?from=1&to=${older.size}`, logKey);
      assert.equal(consistency.statusCode, 200, consistency.body);
      assert.equal(consistency.json<ProofBody>().checkpointMatches, true);
      assert.equal(consistency.json<ProofBody>().checkpoint, older.note);

      // A size no checkpoint was signed at: the latest, said to be of another size.
      const unsigned = stored.some((c) => c.size === size) ? size - 1 : size;
      const atTree = await get(`/api/v1/log/proofs/inclusion?index=5&size=${unsigned}`, logKey);
      assert.equal(atTree.statusCode, 200, atTree.body);
      const other = atTree.json<ProofBody>();
      assert.equal(other.checkpointMatches, false);
      // (The latest as of at most a second ago: one the log did sign, of another size.)
      assert.ok(stored.some((c) => c.size === other.checkpointSize && c.note === other.checkpoint));
      assert.notEqual(other.checkpointSize, unsigned);
    });
  });
}

describe('PLEDGE_LOG_RATE_LIMIT: the checkpoint and tiles have a budget of their own', () => {
  let database: TestDatabase;
  let dataDir: string;
  let app: App;
  before(async () => {
    database = await openTestDatabase('sqlite');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-log-limit-'));
    const env = {
      PLEDGE_DATA_DIR: dataDir,
      PLEDGE_LOG_LEVEL: 'silent',
      PLEDGE_LOG_ORIGIN: 'pledge.test/log',
      PLEDGE_RATE_LIMIT: '5',
      PLEDGE_LOG_RATE_LIMIT: '20',
    };
    app = await createApp(
      { ...loadConfig(env, { manifest: EXAMPLE_MANIFEST }), retentionIntervalSeconds: 0 },
      { database },
    );
  });
  after(async () => {
    await app?.close();
    await database?.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('an audit does not use up the API budget, nor the API the audit budget', async () => {
    const key = (await app.apiKeys.createKey(cli, { name: 'auditor', scopes: ['log:read'] })).key;
    await app.audit.append(cli, [{ action: 'test.limit', details: {} }]);
    await app.log.integrateNow(cli);
    const get = (url: string) =>
      app.http.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });

    // The API's budget (PLEDGE_RATE_LIMIT=5) runs out...
    for (let i = 0; i < 5; i++) {
      const res = await get('/api/v1/log/proofs/inclusion?index=0&size=1');
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['x-ratelimit-limit'], '5');
    }
    const limited = await get('/api/v1/log/proofs/inclusion?index=0&size=1');
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json<{ error: { code: string } }>().error.code, 'request.rate_limited');

    // ...and the same client still reads the checkpoint and tiles, 20 a minute between them.
    for (let i = 0; i < 20; i++) {
      const res = await get(i % 2 === 0 ? '/log/checkpoint' : '/log/tile/0/000.p/1');
      assert.equal(res.statusCode, 200, `request ${i}: ${res.body}`);
      assert.equal(res.headers['x-ratelimit-limit'], '20');
      assert.equal(res.headers['x-ratelimit-remaining'], String(19 - i));
    }
    for (const url of ['/log/checkpoint', '/log/tile/entries/000.p/1']) {
      const res = await get(url);
      assert.equal(res.statusCode, 429, url);
      assert.match(res.headers['retry-after'] as string, /^\d+$/);
    }
  });

  test('a bad PLEDGE_LOG_RATE_LIMIT stops the boot, naming it', () => {
    for (const value of ['0', 'many', '2000000']) {
      assert.throws(
        () => loadConfig({ PLEDGE_LOG_RATE_LIMIT: value }, { manifest: EXAMPLE_MANIFEST }),
        /PLEDGE_LOG_RATE_LIMIT/,
        value,
      );
    }
  });
});

describe('PLEDGE_LOG_PUBLIC_TILES=true', () => {
  let database: TestDatabase;
  let dataDir: string;
  let app: App;
  before(async () => {
    database = await openTestDatabase('sqlite');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-log-public-'));
    app = await openApp(database, dataDir, { PLEDGE_LOG_PUBLIC_TILES: 'true' });
  });
  after(async () => {
    await app?.close();
    await database?.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('serves tiles without a key; proofs still need one', async () => {
    await app.audit.append(cli, [{ action: 'test.public', details: {} }]);
    await app.log.integrateNow(cli);
    const tile = await app.http.inject({ method: 'GET', url: '/log/tile/0/000.p/1' });
    assert.equal(tile.statusCode, 200, tile.body);
    assert.equal(tile.rawPayload.length, 32);
    const entries = await app.http.inject({ method: 'GET', url: '/log/tile/entries/000.p/1' });
    assert.equal(entries.statusCode, 200);
    const proof = await app.http.inject({
      method: 'GET',
      url: '/api/v1/log/proofs/inclusion?index=0&size=1',
    });
    assert.equal(proof.statusCode, 401);
  });

  test('a bad setting stops the boot with the problem listed', () => {
    assert.throws(
      () => loadConfig({ PLEDGE_LOG_PUBLIC_TILES: 'maybe', PLEDGE_LOG_ORIGIN: 'has space' }),
      (err: Error) => /PLEDGE_LOG_PUBLIC_TILES/.test(err.message) && /PLEDGE_LOG_ORIGIN/.test(err.message),
    );
  });
});
