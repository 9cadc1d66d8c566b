/**
 * The verifier on logs held in memory: a sound log verifies up to its last external checkpoint and
 * reports the rest as not yet verifiable; each kind of damage is found and named at its first index.
 * (test/audit/tamper.test.ts does the same to a real database through `pledge audit verify`.)
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { PARALLEL_FROM, verifyLog, type LogLeafRow } from '../../src/audit/log.verify.js';
import { NoteSigner } from '../../src/audit/note.js';
import { buildMemoryLog } from '../helpers/log-memory.js';

const SIZE = 1500;
const log = buildMemoryLog(SIZE);
const rows = (): LogLeafRow[] => log.entries.map((entry, leafIndex) => ({ leafIndex, entry }));

describe('verifyLog', () => {
  it('verifies a sound log up to its last external checkpoint and no further', async () => {
    const result = await verifyLog(log.source({ stored: [256, 1000, SIZE], external: [0, 300, 1200] }));
    assert.deepEqual(result.problems, []);
    assert.equal(result.ok, true);
    assert.equal(result.entries, SIZE);
    assert.equal(result.verifiedSize, 1200);
    assert.equal(result.notYetVerifiable, SIZE - 1200);
    assert.equal(result.firstBadIndex, undefined);
  });

  it('counts every entry as not yet verifiable when no checkpoint was kept outside', async () => {
    const result = await verifyLog(log.source({ stored: [SIZE] }));
    assert.equal(result.ok, true);
    assert.equal(result.verifiedSize, 0);
    assert.equal(result.notYetVerifiable, SIZE);
  });

  it('names an edited entry by its index', async () => {
    const r = rows();
    r[777] = {
      leafIndex: 777,
      entry: Buffer.from(r[777]!.entry.toString().replace('vault.read', 'vault.rEad')),
    };
    const result = await verifyLog(log.source({ external: [1200], rows: r }));
    assert.equal(result.ok, false);
    assert.equal(result.firstBadIndex, 777);
    assert.equal(result.problems[0]?.code, 'log.leaf_mismatch');
    assert.equal(result.verifiedSize, 0);
    assert.ok(result.problems.some((p) => p.code === 'log.root_mismatch'));
  });

  it('names a deleted row, a duplicate and a truncation by their index', async () => {
    const deleted = rows().filter((row) => row.leafIndex !== 42);
    assert.equal((await verifyLog(log.source({ external: [1200], rows: deleted }))).firstBadIndex, 42);
    const r = rows();
    const dup = [...r.slice(0, 11), { ...r[10]! }, ...r.slice(11)];
    const dupResult = await verifyLog(log.source({ external: [1200], rows: dup }));
    assert.equal(dupResult.firstBadIndex, 10);
    assert.equal(dupResult.problems[0]?.code, 'log.index_duplicate');
    const truncated = await verifyLog(log.source({ external: [1200], rows: rows().slice(0, 1100) }));
    assert.equal(truncated.firstBadIndex, 1100);
    assert.equal(truncated.problems[0]?.code, 'log.truncated');
    assert.equal(truncated.verifiedSize, 0);
  });

  it('names two swapped entries by the smaller index', async () => {
    const r = rows();
    const a = r[900]!.entry;
    r[900] = { leafIndex: 900, entry: r[1100]!.entry };
    r[1100] = { leafIndex: 1100, entry: a };
    const result = await verifyLog(log.source({ external: [300, 1200], rows: r }));
    assert.equal(result.firstBadIndex, 900);
    assert.equal(result.verifiedSize, 300);
  });

  it('finds a rewrite that changed entries and tiles alike through the signed root', async () => {
    // The database rewritten consistently (entry, its tile hash): only the checkpoint kept outside knows.
    const forged = buildMemoryLog(SIZE, {
      signer: log.signer,
      entry: (i) => (i === 1000 ? Buffer.from('{"forged":true}') : log.entries[i]!),
    });
    const source = forged.source({ stored: [SIZE] });
    source.externalCheckpoints = [log.checkpoint(512), log.checkpoint(1200)];
    const result = await verifyLog(source);
    assert.equal(result.ok, false);
    assert.deepEqual(
      result.problems.map((p) => p.code),
      ['log.root_mismatch', 'log.checkpoints_inconsistent'],
    );
    assert.deepEqual(result.problems[0]?.range, { from: 512, to: 1200 });
    assert.equal(result.firstBadIndex, 512);
    assert.equal(result.verifiedSize, 512);
  });

  it('refuses a checkpoint not signed by the log key, or of another origin', async () => {
    const other = NoteSigner.fromSeed(log.origin, randomBytes(32));
    const source = log.source({ external: [1200] });
    source.externalCheckpoints = [
      other.sign(log.checkpoint(1200).split('\n\n')[0]! + '\n'),
      ...source.externalCheckpoints,
    ];
    const result = await verifyLog(source);
    assert.equal(result.ok, false);
    assert.equal(result.problems[0]?.code, 'log.checkpoint_invalid');
    // The valid one still counts.
    assert.equal(result.verifiedSize, 1200);
  });

  it('finds a changed tile above level 0', async () => {
    const big = buildMemoryLog(256 * 256 + 10);
    const tile = Buffer.from(big.tiles.get('1/0')!);
    tile[32 * 3] = (tile[32 * 3] ?? 0) ^ 1;
    big.tiles.set('1/0', tile);
    const result = await verifyLog(big.source({ external: [256 * 256] }));
    assert.equal(result.ok, false);
    assert.equal(result.problems[0]?.code, 'log.tile_mismatch');
    assert.equal(result.firstBadIndex, 3 * 256);
  });

  it('verifies a large log on two threads alike, and names an edited entry there too', async () => {
    const big = buildMemoryLog(PARALLEL_FROM + 3000);
    const source = big.source({ external: [PARALLEL_FROM], pageSize: 5000 });
    source.expectedEntries = PARALLEL_FROM + 3000;
    const sound = await verifyLog(source);
    assert.deepEqual(sound.problems, []);
    assert.equal(sound.verifiedSize, PARALLEL_FROM);
    assert.equal(sound.notYetVerifiable, 3000);

    const rows = big.entries.map((entry, leafIndex) => ({ leafIndex, entry }));
    rows[40_001] = { leafIndex: 40_001, entry: Buffer.from('{"edited":true}') };
    const edited = big.source({ external: [PARALLEL_FROM], pageSize: 5000, rows });
    edited.expectedEntries = PARALLEL_FROM + 3000;
    const result = await verifyLog(edited);
    assert.equal(result.firstBadIndex, 40_001);
    assert.equal(result.problems[0]?.code, 'log.leaf_mismatch');
  });
});
