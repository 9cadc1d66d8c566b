/**
 * The transparency log's Merkle tree against RFC 6962: the certificate-transparency test vectors,
 * then every proof for every tree up to 64 leaves checked against a naive implementation written
 * here straight from the RFC's recursive definitions (MTH, PATH, PROOF/SUBPROOF), then tampering:
 * a verifier that accepts a changed proof, leaf, index, size or root would let an operator rewrite
 * history, so every single-bit change is tried.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  EMPTY_ROOT,
  HASH_SIZE,
  TreeFrontier,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rootOf,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
  type NodesReader,
} from '../../src/audit/merkle.js';

// ---- the naive implementation, from RFC 6962 §2.1 (independent of the code under test) ----------

function sha256(...parts: Buffer[]): Buffer {
  return createHash('sha256').update(Buffer.concat(parts)).digest();
}

/** The largest power of two smaller than n. */
function kOf(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function mth(d: readonly Buffer[]): Buffer {
  if (d.length === 0) return sha256();
  if (d.length === 1) return sha256(Buffer.from([0]), d[0]!);
  const k = kOf(d.length);
  return sha256(Buffer.from([1]), mth(d.slice(0, k)), mth(d.slice(k)));
}

function path(m: number, d: readonly Buffer[]): Buffer[] {
  if (d.length === 1) return [];
  const k = kOf(d.length);
  if (m < k) return [...path(m, d.slice(0, k)), mth(d.slice(k))];
  return [...path(m - k, d.slice(k)), mth(d.slice(0, k))];
}

/** The side of each PATH element relative to the running hash: 'L' if the element is on the left. */
function pathSides(m: number, n: number): string {
  if (n === 1) return '';
  const k = kOf(n);
  return m < k ? pathSides(m, k) + 'R' : pathSides(m - k, n - k) + 'L';
}

function subproof(m: number, d: readonly Buffer[], b: boolean): Buffer[] {
  const n = d.length;
  if (m === n) return b ? [] : [mth(d)];
  const k = kOf(n);
  if (m <= k) return [...subproof(m, d.slice(0, k), b), mth(d.slice(k))];
  return [...subproof(m - k, d.slice(k), false), mth(d.slice(0, k))];
}

function proof(m: number, d: readonly Buffer[]): Buffer[] {
  return subproof(m, d, true);
}

// ---- the data ----------------------------------------------------------------------------------

const CT_ENTRIES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map((h) => Buffer.from(h, 'hex'));

/** Published roots for 1..8 of the entries above (certificate-transparency's test data). */
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

const MAX = 64;
const ENTRIES = Array.from({ length: MAX }, (_, i) => Buffer.from(`entry ${i}`));
const LEAVES = ENTRIES.map((e) => leafHash(e));

/** An in-memory tree: every complete subtree node as TreeFrontier.append reported it. */
class MemoryTree {
  readonly frontier = TreeFrontier.empty();
  readonly levels: Buffer[][] = [];

  append(leaf: Uint8Array): void {
    this.frontier.append(leaf, (level, index, hash) => {
      const row = (this.levels[level] ??= []);
      assert.equal(index, row.length, `node ${level}/${index} is reported in order`);
      row.push(hash);
    });
  }

  readonly read: NodesReader = (nodes) =>
    Promise.resolve(
      nodes.map(({ level, index }) => {
        const h = this.levels[level]?.[index];
        if (h === undefined) throw new Error(`no node ${level}/${index}`);
        return h;
      }),
    );
}

function treeOf(leaves: readonly Uint8Array[]): MemoryTree {
  const t = new MemoryTree();
  for (const l of leaves) t.append(l);
  return t;
}

const FULL = treeOf(LEAVES);

function hex(bs: readonly Uint8Array[]): string[] {
  return bs.map((b) => Buffer.from(b).toString('hex'));
}

/**
 * Single-bit changes of a buffer: every bit when `stride` is 1, else every stride-th bit from
 * `offset` (the callers rotate the offset from tree to tree, so that across the trees every bit
 * position of every hash is changed many times while the whole run stays within seconds).
 */
function* bitFlips(b: Uint8Array, stride = 1, offset = 0): Generator<Buffer> {
  for (let bit = offset % stride; bit < b.length * 8; bit += stride) {
    const c = Buffer.from(b);
    c[bit >> 3]! ^= 1 << (bit & 7);
    yield c;
  }
}

/** Each single-bit change of a non-negative integer below 2^53, in every one of its 53 bits. */
function* intFlips(n: number): Generator<number> {
  for (let bit = 0; bit < 53; bit++) {
    const p = 2 ** bit;
    yield Math.floor(n / p) % 2 === 1 ? n - p : n + p;
  }
}

// ---- the tests ---------------------------------------------------------------------------------

describe('RFC 6962 hashing and the certificate-transparency vectors', () => {
  test('the empty root is SHA-256 of the empty string', () => {
    assert.equal(
      EMPTY_ROOT.toString('hex'),
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    assert.deepEqual(rootOf([]), EMPTY_ROOT);
    assert.deepEqual(TreeFrontier.empty().root(), EMPTY_ROOT);
  });

  test('leaf and node hashes carry the 0x00 and 0x01 prefixes', () => {
    const a = Buffer.alloc(HASH_SIZE, 0xaa);
    const b = Buffer.alloc(HASH_SIZE, 0xbb);
    assert.deepEqual(leafHash(Buffer.from('x')), sha256(Buffer.from([0]), Buffer.from('x')));
    assert.deepEqual(nodeHash(a, b), sha256(Buffer.from([1]), a, b));
    // nodeHash reuses a scratch buffer: results must not alias it.
    const first = nodeHash(a, b);
    nodeHash(b, a);
    assert.deepEqual(first, sha256(Buffer.from([1]), a, b));
  });

  test('the roots of 1 to 8 leaves are the published ones', async () => {
    const leaves = CT_ENTRIES.map((e) => leafHash(e));
    const tree = treeOf(leaves);
    for (let n = 1; n <= 8; n++) {
      const want = CT_ROOTS[n - 1];
      assert.equal(rootOf(leaves.slice(0, n)).toString('hex'), want, `rootOf, ${n} leaves`);
      assert.equal((await treeRoot(n, tree.read)).toString('hex'), want, `treeRoot, ${n} leaves`);
      assert.equal(mth(CT_ENTRIES.slice(0, n)).toString('hex'), want, `naive MTH, ${n} leaves`);
    }
  });
});

describe('proofs against the naive RFC 6962 implementation, every size 0..64', () => {
  test('treeRoot, rootOf and TreeFrontier.root equal MTH for every size', async () => {
    const frontier = TreeFrontier.empty();
    for (let n = 0; n <= MAX; n++) {
      const want = mth(ENTRIES.slice(0, n));
      assert.deepEqual(await treeRoot(n, FULL.read), want, `treeRoot(${n})`);
      assert.deepEqual(rootOf(LEAVES.slice(0, n)), want, `rootOf(${n})`);
      assert.deepEqual(frontier.root(), want, `frontier at ${n}`);
      assert.equal(frontier.size, n);
      // The state round-trips: an integrator restarted from it goes on with the same tree.
      const restored = TreeFrontier.fromState(n, frontier.state());
      assert.deepEqual(restored.root(), want);
      if (n < MAX) frontier.append(LEAVES[n]!);
    }
  });

  test('a frontier restored from its state appends to the same tree', () => {
    const a = TreeFrontier.empty();
    for (let i = 0; i < 37; i++) a.append(LEAVES[i]!);
    const b = TreeFrontier.fromState(a.size, a.state());
    for (let i = 37; i < MAX; i++) {
      a.append(LEAVES[i]!);
      b.append(LEAVES[i]!);
      assert.deepEqual(b.root(), a.root());
    }
    assert.deepEqual(b.root(), mth(ENTRIES));
  });

  test('fromState refuses an inconsistent state', () => {
    const f = TreeFrontier.empty();
    for (let i = 0; i < 11; i++) f.append(LEAVES[i]!);
    const s = f.state();
    assert.equal(s.length, 3);
    assert.throws(() => TreeFrontier.fromState(11, s.slice(1)), RangeError);
    assert.throws(() => TreeFrontier.fromState(12, s), RangeError);
    assert.throws(() => TreeFrontier.fromState(11, [s[0]!, s[1]!, Buffer.alloc(31)]), RangeError);
    assert.throws(() => TreeFrontier.fromState(-1, []), RangeError);
    assert.throws(() => TreeFrontier.fromState(1.5, [s[0]!]), RangeError);
  });

  test('the nodes onNode reports are the complete subtrees the naive MTH gives', () => {
    for (let level = 0; 1 << level <= MAX; level++) {
      const row = FULL.levels[level]!;
      assert.equal(row.length, Math.floor(MAX / 2 ** level));
      row.forEach((h, index) => {
        const w = 2 ** level;
        assert.deepEqual(h, mth(ENTRIES.slice(index * w, (index + 1) * w)), `${level}/${index}`);
      });
    }
  });

  test('inclusionProof equals PATH for every size and index, and verifies', async () => {
    for (let n = 1; n <= MAX; n++) {
      const root = mth(ENTRIES.slice(0, n));
      for (let m = 0; m < n; m++) {
        const got = await inclusionProof(m, n, FULL.read);
        assert.deepEqual(hex(got), hex(path(m, ENTRIES.slice(0, n))), `PATH(${m}, ${n})`);
        assert.ok(verifyInclusion(LEAVES[m]!, m, n, got, root), `verify PATH(${m}, ${n})`);
      }
    }
  });

  test('consistencyProof equals PROOF for every old and new size, and verifies', async () => {
    for (let n = 0; n <= MAX; n++) {
      const newRoot = mth(ENTRIES.slice(0, n));
      for (let m = 0; m <= n; m++) {
        const got = await consistencyProof(m, n, FULL.read);
        // PROOF is defined for 0 < m < n; at the ends the proof is empty.
        const want = m === 0 || m === n ? [] : proof(m, ENTRIES.slice(0, n));
        assert.deepEqual(hex(got), hex(want), `PROOF(${m}, ${n})`);
        const oldRoot = mth(ENTRIES.slice(0, m));
        assert.ok(verifyConsistency(m, n, got, oldRoot, newRoot), `verify PROOF(${m}, ${n})`);
      }
    }
  });

  test('the producers refuse impossible requests', async () => {
    await assert.rejects(inclusionProof(5, 5, FULL.read), RangeError);
    await assert.rejects(inclusionProof(-1, 5, FULL.read), RangeError);
    await assert.rejects(consistencyProof(6, 5, FULL.read), RangeError);
    await assert.rejects(treeRoot(0.5, FULL.read), RangeError);
    // A reader that answers wrong is a broken store, not a proof.
    await assert.rejects(
      treeRoot(3, () => Promise.resolve([])),
      /returned 0 hashes/,
    );
    await assert.rejects(
      treeRoot(3, (nodes) => Promise.resolve(nodes.map(() => Buffer.alloc(31)))),
      /31 bytes/,
    );
  });
});

describe('tampering: every single-bit change is rejected', () => {
  test('inclusion, sizes 1..64, every index: all 53 bits of the index; every bit of every proof hash, the leaf and the root up to size 16, beyond it every 5th bit (offset rotating with index and size)', async () => {
    let rejected = 0;
    for (let n = 1; n <= MAX; n++) {
      const root = mth(ENTRIES.slice(0, n));
      for (let m = 0; m < n; m++) {
        const p = await inclusionProof(m, n, FULL.read);
        const leaf = LEAVES[m]!;
        const stride = n <= 16 ? 1 : 5;
        p.forEach((h, i) => {
          for (const c of bitFlips(h, stride, m + n + i)) {
            const q = p.slice();
            q[i] = c;
            assert.equal(verifyInclusion(leaf, m, n, q, root), false, `proof[${i}] (${m}, ${n})`);
            rejected++;
          }
        });
        for (const c of bitFlips(leaf, stride, m + n)) {
          assert.equal(verifyInclusion(c, m, n, p, root), false, `leaf (${m}, ${n})`);
          rejected++;
        }
        for (const c of bitFlips(root, stride, m + n + 1)) {
          assert.equal(verifyInclusion(leaf, m, n, p, c), false, `root (${m}, ${n})`);
          rejected++;
        }
        for (const i of intFlips(m)) {
          assert.equal(verifyInclusion(leaf, i, n, p, root), false, `index ${i} for ${m} (${n})`);
          rejected++;
        }
      }
    }
    assert.ok(rejected > 300_000, `${rejected} changes tried`);
  });

  test('inclusion, sizes 1..64, every index, all 53 bits of the size: rejected unless the path to the leaf has the same shape (then the bytes are identical and only the signed checkpoint can bind the size)', async () => {
    let sameShape = 0;
    let rejected = 0;
    for (let n = 1; n <= MAX; n++) {
      const root = mth(ENTRIES.slice(0, n));
      for (let m = 0; m < n; m++) {
        const p = await inclusionProof(m, n, FULL.read);
        for (const s of intFlips(n)) {
          const ok = verifyInclusion(LEAVES[m]!, m, s, p, root);
          // The verifier sees only the sides each proof hash goes on; the same sides, the same
          // count, the same result. The naive PATH says which sizes give the same sides.
          const same = m < s && pathSides(m, s) === pathSides(m, n);
          assert.equal(ok, same, `size ${s} for (${m}, ${n})`);
          if (same) sameShape++;
          else rejected++;
        }
      }
    }
    // The ambiguous changes are the rare exception, and each one was predicted above.
    assert.ok(sameShape < rejected / 10, `${sameShape} same-shape, ${rejected} rejected`);
  });

  test('consistency, new sizes 1..64, every old size: every bit of every proof hash and of both roots up to size 16, beyond it every 5th bit (offset rotating with the sizes)', async () => {
    let rejected = 0;
    for (let n = 1; n <= MAX; n++) {
      const newRoot = mth(ENTRIES.slice(0, n));
      for (let m = 1; m <= n; m++) {
        const oldRoot = mth(ENTRIES.slice(0, m));
        const p = await consistencyProof(m, n, FULL.read);
        const stride = n <= 16 ? 1 : 5;
        p.forEach((h, i) => {
          for (const c of bitFlips(h, stride, m + n + i)) {
            const q = p.slice();
            q[i] = c;
            assert.equal(verifyConsistency(m, n, q, oldRoot, newRoot), false, `[${i}] ${m}→${n}`);
            rejected++;
          }
        });
        for (const c of bitFlips(oldRoot, stride, m + n)) {
          assert.equal(verifyConsistency(m, n, p, c, newRoot), false, `old root ${m}→${n}`);
          rejected++;
        }
        for (const c of bitFlips(newRoot, stride, m + n + 1)) {
          assert.equal(verifyConsistency(m, n, p, oldRoot, c), false, `new root ${m}→${n}`);
          rejected++;
        }
      }
    }
    assert.ok(rejected > 100_000, `${rejected} changes tried`);
  });

  test('consistency, new sizes 1..64, every old size, all 53 bits of each size: rejected unless PROOF has the same shape for the changed sizes', async () => {
    let sameShape = 0;
    let rejected = 0;
    for (let n = 1; n <= MAX; n++) {
      const newRoot = mth(ENTRIES.slice(0, n));
      for (let m = 1; m <= n; m++) {
        const oldRoot = mth(ENTRIES.slice(0, m));
        const p = await consistencyProof(m, n, FULL.read);
        const tries: Array<[number, number]> = [
          ...[...intFlips(m)].map((o): [number, number] => [o, n]),
          ...[...intFlips(n)].map((s): [number, number] => [m, s]),
        ];
        for (const [o, s] of tries) {
          const ok = verifyConsistency(o, s, p, oldRoot, newRoot);
          // Accepted exactly where the naive PROOF for the changed sizes asks the same of the
          // same bytes (the checkpoint signature is what binds a size to its root).
          const same = m < n && sameConsistencyShape(m, n, o, s);
          assert.equal(ok, same, `${o}→${s} for ${m}→${n}`);
          if (same) sameShape++;
          else rejected++;
        }
      }
    }
    assert.ok(sameShape < rejected / 10, `${sameShape} same-shape, ${rejected} rejected`);
  });
});

/** RFC 6962's SUBPROOF over symbolic leaves: each hash is the expression that makes it. */
const symCache = new Map<string, string>();
function symMth(lo: number, hi: number): string {
  const key = `${lo}:${hi}`;
  let e = symCache.get(key);
  if (e === undefined) {
    const k = kOf(hi - lo);
    e = hi - lo === 1 ? `<${lo}>` : `(${symMth(lo, lo + k)},${symMth(lo + k, hi)})`;
    symCache.set(key, e);
  }
  return e;
}

function symSubproof(m: number, lo: number, hi: number, b: boolean): string[] {
  if (m === hi - lo) return b ? [] : [symMth(lo, hi)];
  const k = kOf(hi - lo);
  if (m <= k) return [...symSubproof(m, lo, lo + k, b), symMth(lo + k, hi)];
  return [...symSubproof(m - k, lo + k, hi, false), symMth(lo, lo + k)];
}

/**
 * What a verifier of PROOF(m, n) can check, from the naive definitions: the old and the new root
 * written in terms of the hashes it is handed (the proof, and the old root itself when the old tree
 * is complete, which the proof then leaves out). Two size pairs with the same shape present the
 * verifier with the same computation over the same bytes, so no verifier can tell them apart.
 */
function consistencyShape(m: number, n: number): string {
  const oldRoot = symMth(0, m);
  const given = Number.isInteger(Math.log2(m))
    ? [oldRoot, ...symSubproof(m, 0, n, true)]
    : symSubproof(m, 0, n, true);
  // Longest first, so an expression is replaced before any part of it could be.
  const order = given.map((e, i) => [e, i] as const).sort((a, b) => b[0].length - a[0].length);
  const rewrite = (e: string): string => {
    for (const [g, i] of order) e = e.split(g).join(`#${i}`);
    return e;
  };
  return `${given.length}:${rewrite(oldRoot)}:${rewrite(symMth(0, n))}`;
}

/** The number of hashes a verifier of PROOF(m, n) is handed (the old root included if implied). */
function givenCount(m: number, n: number): number {
  return subproofLength(m, n, true) + (Number.isInteger(Math.log2(m)) ? 1 : 0);
}

function subproofLength(m: number, n: number, b: boolean): number {
  if (m === n) return b ? 0 : 1;
  const k = kOf(n);
  return m <= k ? subproofLength(m, k, b) + 1 : subproofLength(m - k, n - k, false) + 1;
}

function sameConsistencyShape(m: number, n: number, o: number, s: number): boolean {
  // A different count of hashes is a different shape; checking it first keeps the symbolic
  // expressions small (only sizes near the original ones get this far).
  if (o <= 0 || o >= s || givenCount(o, s) !== givenCount(m, n)) return false;
  return consistencyShape(m, n) === consistencyShape(o, s);
}

describe('malformed input: verifiers return false, never throw', () => {
  const n = 11;
  const m = 6;
  const root = mth(ENTRIES.slice(0, n));
  const oldRoot = mth(ENTRIES.slice(0, m));
  let incl: Buffer[] = [];
  let cons: Buffer[] = [];

  test('setup', async () => {
    incl = await inclusionProof(m, n, FULL.read);
    cons = await consistencyProof(m, n, FULL.read);
    assert.ok(verifyInclusion(LEAVES[m]!, m, n, incl, root));
    assert.ok(verifyConsistency(m, n, cons, oldRoot, root));
  });

  test('inclusion', () => {
    const leaf = LEAVES[m]!;
    const bad: Array<[string, () => boolean]> = [
      ['proof one hash short', () => verifyInclusion(leaf, m, n, incl.slice(1), root)],
      ['proof one hash long', () => verifyInclusion(leaf, m, n, [...incl, root], root)],
      ['empty proof', () => verifyInclusion(leaf, m, n, [], root)],
      ['index = size', () => verifyInclusion(leaf, n, n, incl, root)],
      ['index > size', () => verifyInclusion(leaf, n + 5, n, incl, root)],
      ['size 0', () => verifyInclusion(leaf, 0, 0, [], EMPTY_ROOT)],
      ['negative index', () => verifyInclusion(leaf, -1, n, incl, root)],
      ['fractional index', () => verifyInclusion(leaf, 1.5, n, incl, root)],
      ['NaN size', () => verifyInclusion(leaf, m, NaN, incl, root)],
      ['huge size', () => verifyInclusion(leaf, m, 2 ** 60, incl, root)],
      ['31-byte leaf', () => verifyInclusion(leaf.subarray(1), m, n, incl, root)],
      ['33-byte root', () => verifyInclusion(leaf, m, n, incl, Buffer.concat([root, root]))],
      ['short proof hash', () => verifyInclusion(leaf, m, n, [incl[0]!.subarray(2), ...incl.slice(1)], root)],
      ['proof not an array', () => verifyInclusion(leaf, m, n, 'x' as unknown as Buffer[], root)],
      ['proof holds null', () => verifyInclusion(leaf, m, n, [null as unknown as Buffer], root)],
      ['leaf undefined', () => verifyInclusion(undefined as unknown as Buffer, m, n, incl, root)],
    ];
    for (const [name, f] of bad) assert.equal(f(), false, name);
  });

  test('consistency', () => {
    const bad: Array<[string, () => boolean]> = [
      ['proof one hash short', () => verifyConsistency(m, n, cons.slice(1), oldRoot, root)],
      ['proof one hash long', () => verifyConsistency(m, n, [...cons, root], oldRoot, root)],
      ['empty proof', () => verifyConsistency(m, n, [], oldRoot, root)],
      ['old > new', () => verifyConsistency(n, m, cons, root, oldRoot)],
      ['equal sizes, different roots', () => verifyConsistency(n, n, [], oldRoot, root)],
      ['equal sizes, non-empty proof', () => verifyConsistency(n, n, cons, root, root)],
      ['old size 0, proof given', () => verifyConsistency(0, n, cons, EMPTY_ROOT, root)],
      ['old size 0, old root not empty', () => verifyConsistency(0, n, [], oldRoot, root)],
      ['negative old size', () => verifyConsistency(-1, n, cons, oldRoot, root)],
      ['fractional new size', () => verifyConsistency(m, 10.5, cons, oldRoot, root)],
      ['31-byte old root', () => verifyConsistency(m, n, cons, oldRoot.subarray(1), root)],
      ['short proof hash', () => verifyConsistency(m, n, [Buffer.alloc(5), ...cons.slice(1)], oldRoot, root)],
      ['proof holds a string', () => verifyConsistency(m, n, ['a' as unknown as Buffer], oldRoot, root)],
      ['roots undefined', () => verifyConsistency(m, n, cons, undefined as unknown as Buffer, root)],
    ];
    for (const [name, f] of bad) assert.equal(f(), false, name);
    // The ends that are right.
    assert.ok(verifyConsistency(0, n, [], EMPTY_ROOT, root));
    assert.ok(verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT));
    assert.ok(verifyConsistency(n, n, [], root, root));
  });
});

describe('properties over random trees up to a few thousand leaves', () => {
  const BIG = 3000;
  const bigLeaves = Array.from({ length: BIG }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
  const big = treeOf(bigLeaves);

  test('every random inclusion and consistency proof verifies, and a changed one does not', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: BIG })
          .chain((n) =>
            fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }), fc.integer({ min: 1, max: n })),
          ),
        fc.nat(),
        async ([n, i, m], pick) => {
          const root = rootOf(bigLeaves.slice(0, n));
          assert.deepEqual(await treeRoot(n, big.read), root);
          const p = await inclusionProof(i, n, big.read);
          assert.ok(verifyInclusion(bigLeaves[i]!, i, n, p, root));
          if (p.length > 0) {
            const q = p.slice();
            const j = pick % q.length;
            q[j] = Buffer.from(q[j]!);
            q[j][pick % HASH_SIZE]! ^= 1 << (pick % 8);
            assert.equal(verifyInclusion(bigLeaves[i]!, i, n, q, root), false);
          }
          const oldRoot = rootOf(bigLeaves.slice(0, m));
          const c = await consistencyProof(m, n, big.read);
          assert.ok(verifyConsistency(m, n, c, oldRoot, root));
          if (c.length > 0) {
            const q = c.slice();
            const j = pick % q.length;
            q[j] = Buffer.from(q[j]!);
            q[j][pick % HASH_SIZE]! ^= 1 << (pick % 8);
            assert.equal(verifyConsistency(m, n, q, oldRoot, root), false);
          }
        },
      ),
      { numRuns: 300, seed: 6962 },
    );
  });
});
