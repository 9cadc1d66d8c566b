/**
 * The log as C2SP tlog-tiles: paths as the spec spells them (and nothing else parsed), the tiles a
 * tree has, entry bundles, and roots and proofs read from tiles equal to those read from every node
 * in memory, for trees on both sides of every tile boundary up to the third level.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  HASH_SIZE,
  TreeFrontier,
  consistencyProof,
  inclusionProof,
  leafHash,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
  type NodesReader,
} from '../../src/audit/merkle.js';
import {
  TILE_HEIGHT,
  TILE_WIDTH,
  decodeEntryBundle,
  encodeEntryBundle,
  encodeTileIndex,
  entriesPath,
  buildTilePyramid,
  encodeInnerRows,
  innerRowsLength,
  parseTilePath,
  storedTilePyramid,
  pyramidNodesReader,
  tileNodesReader,
  tilePath,
  tilesOfTree,
} from '../../src/audit/tiles.js';

describe('tile paths', () => {
  test('indices are encoded in 3-digit groups, "x" on all but the last (the spec example)', () => {
    assert.equal(encodeTileIndex(1234067), 'x001/x234/067');
    assert.equal(encodeTileIndex(0), '000');
    assert.equal(encodeTileIndex(7), '007');
    assert.equal(encodeTileIndex(999), '999');
    assert.equal(encodeTileIndex(1000), 'x001/000');
    assert.equal(encodeTileIndex(2 ** 53 - 1), 'x009/x007/x199/x254/x740/991');
    assert.throws(() => encodeTileIndex(-1), RangeError);
    assert.throws(() => encodeTileIndex(1.5), RangeError);
  });

  test('hash tiles and entry bundles, full and partial', () => {
    assert.equal(tilePath(0, 1234067), 'tile/0/x001/x234/067');
    assert.equal(tilePath(0, 1234), 'tile/0/x001/234');
    assert.equal(tilePath(0, 1234, 256), 'tile/0/x001/234');
    assert.equal(tilePath(0, 1234, 17), 'tile/0/x001/234.p/17');
    assert.equal(tilePath(3, 0, 1), 'tile/3/000.p/1');
    assert.equal(entriesPath(1234067), 'tile/entries/x001/x234/067');
    assert.equal(entriesPath(5, 255), 'tile/entries/005.p/255');
    assert.throws(() => tilePath(0, 0, 0), RangeError);
    assert.throws(() => tilePath(0, 0, 257), RangeError);
    assert.throws(() => tilePath(64, 0), RangeError);
    assert.throws(() => entriesPath(0, 2.5), RangeError);
  });

  test('parse gives back what the encoders wrote', () => {
    assert.deepEqual(parseTilePath('tile/0/x001/x234/067'), {
      kind: 'hashes',
      level: 0,
      index: 1234067,
      width: 256,
    });
    assert.deepEqual(parseTilePath('tile/2/x001/234.p/17'), {
      kind: 'hashes',
      level: 2,
      index: 1234,
      width: 17,
    });
    assert.deepEqual(parseTilePath('tile/63/000.p/1'), {
      kind: 'hashes',
      level: 63,
      index: 0,
      width: 1,
    });
    assert.deepEqual(parseTilePath('tile/entries/005.p/255'), {
      kind: 'entries',
      index: 5,
      width: 255,
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 63 }),
        fc.maxSafeNat(),
        fc.integer({ min: 1, max: 256 }),
        (level, index, width) => {
          assert.deepEqual(parseTilePath(tilePath(level, index, width)), {
            kind: 'hashes',
            level,
            index,
            width,
          });
          assert.deepEqual(parseTilePath(entriesPath(index, width)), {
            kind: 'entries',
            index,
            width,
          });
        },
      ),
      { seed: 256 },
    );
  });

  test('parse rejects every non-canonical or malformed path', () => {
    const bad = [
      '',
      'tile',
      'tile/0',
      '/tile/0/000', // a leading slash
      'tiles/0/000',
      'tile/00/000', // leading zero in the level
      'tile/01/000',
      'tile/64/000', // level above 63
      'tile/-1/000',
      'tile/a/000',
      'tile/ 0/000',
      'tile/0/00', // groups are three digits
      'tile/0/0000',
      'tile/0/1',
      'tile/0/x000/001', // a leading zero group
      'tile/0/x000/x001/000',
      'tile/0/001/000', // "x" missing on a group that is not the last
      'tile/0/x001/x234', // "x" on the last group
      'tile/0/x01/234',
      'tile/0/X001/234',
      'tile/0/x001//234',
      'tile/0/000/',
      'tile/0/0a0',
      'tile/0/+12',
      'tile/0/000.p/0', // width 0
      'tile/0/000.p/256', // a full tile has no suffix
      'tile/0/000.p/300',
      'tile/0/000.p/017', // leading zero in the width
      'tile/0/000.p/',
      'tile/0/000.p/1.5',
      'tile/0/000.p/x1',
      'tile/0/000.q/5',
      'tile/0/.p/5',
      'tile/0/x001.p/5',
      'tile/entries/x000/001',
      'tile/entries/000.p/0',
      'tile/entries/1',
      'tile/entries',
      'tile/0/x999/x999/x999/x999/x999/x999/999', // beyond a safe integer
      `tile/0/${'x001/'.repeat(60)}000`,
    ];
    for (const p of bad) assert.equal(parseTilePath(p), undefined, JSON.stringify(p));
  });
});

describe('the tiles of a tree', () => {
  test('the spec examples: 70,000 and 256 leaves', () => {
    const t = tilesOfTree(70_000);
    const at = (level: number) => t.filter((x) => x.level === level);
    assert.equal(at(0).filter((x) => x.width === 256).length, 273);
    assert.deepEqual(
      at(0).filter((x) => x.width < 256),
      [{ level: 0, index: 273, width: 112 }],
    );
    assert.deepEqual(at(1), [
      { level: 1, index: 0, width: 256 },
      { level: 1, index: 1, width: 17 },
    ]);
    assert.deepEqual(at(2), [{ level: 2, index: 0, width: 1 }]);
    assert.equal(t.length, 273 + 1 + 2 + 1);
    assert.deepEqual(tilesOfTree(256), [
      { level: 0, index: 0, width: 256 },
      { level: 1, index: 0, width: 1 },
    ]);
    assert.deepEqual(tilesOfTree(0), []);
    assert.deepEqual(tilesOfTree(1), [{ level: 0, index: 0, width: 1 }]);
  });

  test('every tile holds floor(size / 256^L) mod 256 hashes at the right edge, no empty tile', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 22 }), (size) => {
        const tiles = tilesOfTree(size);
        for (const t of tiles) assert.ok(t.width >= 1 && t.width <= 256);
        for (let level = 0; 256 ** level <= size; level++) {
          const hashes = Math.floor(size / 256 ** level);
          const mine = tiles.filter((t) => t.level === level);
          const sum = mine.reduce((s, t) => s + t.width, 0);
          assert.equal(sum, hashes, `level ${level}`);
          mine.forEach((t, i) => assert.equal(t.index, i));
        }
      }),
      { numRuns: 200, seed: 8 },
    );
  });
});

describe('entry bundles', () => {
  test('round trip, including empty and maximal entries', () => {
    const entries = [
      Buffer.alloc(0),
      Buffer.from('a'),
      Buffer.alloc(0xffff, 7),
      Buffer.from('{"action":"disclose"}'),
    ];
    const b = encodeEntryBundle(entries);
    assert.equal(
      b.length,
      entries.reduce((s, e) => s + 2 + e.length, 0),
    );
    assert.equal(b.readUInt16BE(0), 0);
    assert.equal(b.readUInt16BE(2), 1);
    assert.deepEqual(decodeEntryBundle(b), entries);
    const full = Array.from({ length: 256 }, (_, i) => Buffer.from(`entry ${i}`));
    assert.deepEqual(decodeEntryBundle(encodeEntryBundle(full)), full);
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 256 }), (es) => {
        assert.deepEqual(
          decodeEntryBundle(encodeEntryBundle(es)),
          es.map((e) => Buffer.from(e)),
        );
      }),
      { numRuns: 100, seed: 2 },
    );
  });

  test('malformed bundles are rejected, and what cannot be encoded is refused', () => {
    const good = encodeEntryBundle([Buffer.from('hello'), Buffer.from('world')]);
    // Every cut inside the bundle but at an entry boundary leaves a dangling length or entry.
    for (let cut = 1; cut < good.length; cut++) {
      if (cut === 7) continue; // the end of the first entry: a valid one-entry bundle
      assert.throws(() => decodeEntryBundle(good.subarray(0, cut)), /bundle/, `cut at ${cut}`);
    }
    assert.deepEqual(decodeEntryBundle(good.subarray(0, 7)), [Buffer.from('hello')]);
    assert.throws(() => decodeEntryBundle(Buffer.alloc(0)), /empty/);
    assert.throws(() => decodeEntryBundle(Buffer.from([0x00, 0x09, 1, 2])), /9 bytes announced/);
    assert.throws(() => decodeEntryBundle(Buffer.from([0x00])), /inside its length/);
    const tooMany = Buffer.alloc(257 * 2); // 257 empty entries
    assert.throws(() => decodeEntryBundle(tooMany), /at most 256/);
    assert.throws(() => encodeEntryBundle([Buffer.alloc(0x10000)]), RangeError);
    assert.throws(() => encodeEntryBundle(Array.from({ length: 257 }, () => Buffer.alloc(0))), RangeError);
  });
});

describe('tileNodesReader against an in-memory tree', () => {
  const MAX = 65_537 + 300;
  const leaves = Array.from({ length: MAX }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));
  /** Every complete-subtree node, as the frontier reported it. */
  const levels: Buffer[][] = [];
  const frontier = TreeFrontier.empty();
  for (const l of leaves) {
    frontier.append(l, (level, index, hash) => {
      (levels[level] ??= [])[index] = hash;
    });
  }
  const memory: NodesReader = (nodes) =>
    Promise.resolve(nodes.map(({ level, index }) => levels[level]![index]!));

  /**
   * The tiles a log of `size` leaves serves, built from the frontier's nodes at the tile levels:
   * the rightmost tile of each level is partial, as the store would hold it at that size.
   */
  function tilesAt(size: number) {
    const reads: string[] = [];
    const reader = tileNodesReader((level, index) => {
      reads.push(`${level}/${index}`);
      const row = levels[level * TILE_HEIGHT] ?? [];
      const count = Math.floor(size / TILE_WIDTH ** level);
      const hashes = row.slice(index * TILE_WIDTH, Math.min((index + 1) * TILE_WIDTH, count));
      return Promise.resolve(hashes.length === 0 ? undefined : Buffer.concat(hashes));
    });
    return { reader, reads };
  }

  const SIZES = [0, 1, 2, 255, 256, 257, 511, 512, 513, 65_535, 65_536, 65_537, MAX];

  test('the same roots, for sizes across tile boundaries', async () => {
    for (const size of SIZES) {
      const { reader, reads } = tilesAt(size);
      assert.deepEqual(await treeRoot(size, reader), await treeRoot(size, memory), `size ${size}`);
      if (size === 65_537) {
        // The root of 65,537 leaves is the level-2 tile's one hash and the last leaf: two tiles.
        assert.deepEqual(reads.sort(), ['0/256', '2/0']);
      }
      const existing = new Set(tilesOfTree(size).map((t) => `${t.level}/${t.index}`));
      for (const r of reads) assert.ok(existing.has(r), `size ${size} read tile ${r}`);
    }
  });

  test('the same inclusion and consistency proofs, which verify', async () => {
    for (const size of SIZES.filter((s) => s > 0)) {
      const root = await treeRoot(size, memory);
      const { reader, reads } = tilesAt(size);
      const indices = new Set([0, 1, 254, 255, 256, 257, 65_535, 65_536, size - 1, size >> 1]);
      for (const i of [...indices].filter((i) => i < size)) {
        const fromTiles = await inclusionProof(i, size, reader);
        assert.deepEqual(fromTiles, await inclusionProof(i, size, memory), `PATH(${i}, ${size})`);
        assert.ok(verifyInclusion(leaves[i]!, i, size, fromTiles, root));
      }
      const olds = new Set([1, 2, 255, 256, 257, 65_535, 65_536, size - 1, size >> 1, size]);
      for (const m of [...olds].filter((m) => m >= 1 && m <= size)) {
        const fromTiles = await consistencyProof(m, size, reader);
        assert.deepEqual(fromTiles, await consistencyProof(m, size, memory), `PROOF(${m}, ${size})`);
        const oldRoot = await treeRoot(m, memory);
        assert.ok(verifyConsistency(m, size, fromTiles, oldRoot, root));
      }
      const existing = new Set(tilesOfTree(size).map((t) => `${t.level}/${t.index}`));
      for (const r of reads) assert.ok(existing.has(r), `size ${size} read tile ${r}`);
    }
  });

  test('tile pyramids (grown from narrower copies, as a cache grows them) give the same proofs', async () => {
    const pyramids = new Map<string, ReturnType<typeof buildTilePyramid>>();
    for (const size of SIZES.filter((s) => s > 0)) {
      const root = await treeRoot(size, memory);
      const reader = pyramidNodesReader((level, index) => {
        const row = levels[level * TILE_HEIGHT] ?? [];
        const count = Math.floor(size / TILE_WIDTH ** level);
        const hashes = row.slice(index * TILE_WIDTH, Math.min((index + 1) * TILE_WIDTH, count));
        if (hashes.length === 0) return undefined;
        // Grown from the pyramid of the tile as a smaller tree had it: its nodes are reused.
        const pyramid = buildTilePyramid(Buffer.concat(hashes), pyramids.get(`${level}/${index}`));
        pyramids.set(`${level}/${index}`, pyramid);
        return pyramid;
      });
      assert.deepEqual(await treeRoot(size, reader), root, `root of ${size}`);
      const indices = new Set([0, 1, 254, 255, 256, 257, 65_535, 65_536, size - 1, size >> 1]);
      for (const i of [...indices].filter((i) => i < size)) {
        const fromTiles = await inclusionProof(i, size, reader);
        assert.deepEqual(fromTiles, await inclusionProof(i, size, memory), `PATH(${i}, ${size})`);
        assert.ok(verifyInclusion(leaves[i]!, i, size, fromTiles, root));
      }
      const olds = new Set([1, 2, 255, 256, 257, 65_535, 65_536, size - 1, size >> 1, size]);
      for (const m of [...olds].filter((m) => m >= 1 && m <= size)) {
        assert.deepEqual(
          await consistencyProof(m, size, reader),
          await consistencyProof(m, size, memory),
          `PROOF(${m}, ${size})`,
        );
      }
    }
    // A tile narrower than a node needs is an error, not a wrong hash.
    const short = pyramidNodesReader(() => buildTilePyramid(Buffer.concat(levels[0]!.slice(0, 3))));
    await assert.rejects(short([{ level: 2, index: 0 }]), /needs 4 hashes of tile 0\/0, which holds 3/);
  });

  test('a pyramid from stored inner rows is the one hashing builds, for every width; a misfit is refused', () => {
    const hashes = Buffer.concat(levels[0]!.slice(0, TILE_WIDTH));
    for (let width = 1; width <= TILE_WIDTH; width++) {
      const tile = hashes.subarray(0, width * HASH_SIZE);
      const built = buildTilePyramid(tile);
      const inner = encodeInnerRows(built);
      assert.equal(inner.length, innerRowsLength(width), `width ${width}`);
      const stored = storedTilePyramid(tile, inner);
      assert.ok(stored !== undefined);
      assert.equal(stored.width, width);
      // Rows 0..7 are what proofs read (row 8, a full tile's root, lives in the tile above).
      assert.deepEqual(stored.rows, built.rows.slice(0, TILE_HEIGHT), `width ${width}`);
    }
    assert.equal(storedTilePyramid(hashes, null), undefined);
    assert.equal(storedTilePyramid(hashes, Buffer.alloc(32)), undefined);
    const narrower = encodeInnerRows(buildTilePyramid(hashes.subarray(0, 200 * HASH_SIZE)));
    assert.equal(storedTilePyramid(hashes, narrower), undefined, 'rows of a narrower copy do not fit');
  });

  test('each tile is read once per call, and a missing or short tile is an error', async () => {
    let calls = 0;
    const counting = tileNodesReader((level, index) => {
      calls++;
      const row = levels[level * TILE_HEIGHT]!;
      return Promise.resolve(Buffer.concat(row.slice(index * TILE_WIDTH, (index + 1) * TILE_WIDTH)));
    });
    await counting([
      { level: 0, index: 3 },
      { level: 3, index: 1 },
      { level: 7, index: 0 },
      { level: 8, index: 1 },
    ]);
    assert.equal(calls, 2); // tile 0/0 for the first three, tile 1/0 for the last
    const missing = tileNodesReader(() => Promise.resolve(undefined));
    await assert.rejects(missing([{ level: 0, index: 0 }]), /tile 0\/0, which holds none/);
    const short = tileNodesReader(() => Promise.resolve(Buffer.alloc(3 * HASH_SIZE)));
    await assert.rejects(short([{ level: 2, index: 0 }]), /needs 4 hashes of tile 0\/0/);
  });
});
