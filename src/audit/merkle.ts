/**
 * The Merkle tree of the transparency log, as RFC 6962 / RFC 9162 §2.1 define it: hashing, the
 * tree head, inclusion proofs (PATH) and consistency proofs (PROOF / SUBPROOF), their verification,
 * and the frontier the integrator keeps to append leaves without reading the tree back.
 *
 * The proofs are built from complete subtrees only (a node at `level` covers 2^level leaves,
 * aligned), read through a `NodesReader`, so that the same code serves a tree held in memory, in a
 * database or in C2SP tiles. Every range that is not a complete subtree (the right edge of a tree
 * whose size is not a power of two) is hashed here from the complete subtrees that make it up.
 *
 * Verification never throws: a verifier is handed bytes from outside (an API answer, a file), and a
 * malformed proof is a proof that does not verify.
 */
import { createHash, hash } from 'node:crypto';

/** The size of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32;

const LEAF_PREFIX = Buffer.from([0x00]);

/**
 * One scratch buffer for `nodeHash`: 0x01 || left || right. Filling it and hashing it in one call is
 * cheaper than a hash object fed three times, and nodeHash runs for nearly every leaf appended or
 * verified. Safe to share because hashing is synchronous.
 */
const NODE_INPUT = Buffer.alloc(1 + 2 * HASH_SIZE);
NODE_INPUT[0] = 0x01;

/** The hash of a leaf: SHA-256(0x00 || entry). */
export function leafHash(entry: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(entry).digest();
}

/** The hash of an interior node: SHA-256(0x01 || left || right); both children are 32-byte hashes. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    // The scratch buffer has room for two hashes only; anything else is a caller's bug.
    throw new RangeError(`nodeHash takes two ${HASH_SIZE}-byte hashes`);
  }
  NODE_INPUT.set(left, 1);
  NODE_INPUT.set(right, 1 + HASH_SIZE);
  return hash('sha256', NODE_INPUT, 'buffer');
}

/** The root of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

/** MTH over the given leaf hashes (the tree head of a tree with exactly these leaves). */
export function rootOf(leafHashes: readonly Uint8Array[]): Buffer {
  const frontier = TreeFrontier.empty();
  for (const h of leafHashes) frontier.append(h);
  return frontier.root();
}

/** The hash of the complete subtree at `level` whose leaves are [index·2^level, (index+1)·2^level). */
export type NodeReader = (level: number, index: number) => Promise<Buffer> | Buffer;

/**
 * Reads several complete-subtree hashes at once (in the order asked), so that a tile- or
 * database-backed reader can fetch them in one round trip.
 */
export type NodesReader = (nodes: ReadonlyArray<{ level: number; index: number }>) => Promise<Buffer[]>;

/** A complete subtree: `level` and `index` as in NodeReader. */
interface Node {
  level: number;
  index: number;
}

/**
 * The complete subtrees that make up the leaf range [lo, hi), left to right, each as large as its
 * alignment allows. For the ranges RFC 6962 proofs use (lo a multiple of a power of two at least
 * hi - lo), these are the maximal complete subtrees of the range, largest first.
 */
function subtreesOf(lo: number, hi: number): Node[] {
  const nodes: Node[] = [];
  while (lo < hi) {
    // The largest power of two dividing lo (any power if lo is 0) that still fits before hi.
    let width = 1;
    while (width * 2 <= hi - lo && lo % (width * 2) === 0) width *= 2;
    nodes.push({ level: Math.log2(width), index: lo / width });
    lo += width;
  }
  return nodes;
}

/** The largest power of two strictly less than n (n ≥ 2): RFC 6962's split point k. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Hashes a range's complete subtrees into the range's MTH: right to left, as RFC 6962's MTH nests. */
function foldRange(hashes: readonly Buffer[]): Buffer {
  let acc = hashes[hashes.length - 1];
  if (acc === undefined) return EMPTY_ROOT;
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i]!, acc);
  return acc;
}

/**
 * Computes the MTH of each leaf range, reading every complete subtree they need in one call of
 * `read`. The answer is checked: a reader that returns the wrong number of hashes, or hashes of the
 * wrong size, is a broken store, which must not turn into a wrong proof silently.
 */
async function hashRanges(
  ranges: ReadonlyArray<readonly [number, number]>,
  read: NodesReader,
): Promise<Buffer[]> {
  const perRange = ranges.map(([lo, hi]) => subtreesOf(lo, hi));
  const wanted = perRange.flat();
  const got = wanted.length === 0 ? [] : await read(wanted);
  if (got.length !== wanted.length) {
    throw new Error(`the node reader returned ${got.length} hashes for ${wanted.length} nodes`);
  }
  let at = 0;
  return perRange.map((nodes) => {
    const hashes = got.slice(at, at + nodes.length);
    hashes.forEach((h, i) => {
      if (h.length !== HASH_SIZE) {
        const n = nodes[i]!;
        throw new Error(
          `the node reader returned ${h.length} bytes for node ${n.level}/${n.index}, not ${HASH_SIZE}`,
        );
      }
    });
    at += nodes.length;
    return foldRange(hashes);
  });
}

function checkSize(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`${name} must be a non-negative integer, not ${n}`);
  }
}

/** The tree head (MTH) of the first `size` leaves of the tree `read` serves. */
export async function treeRoot(size: number, read: NodesReader): Promise<Buffer> {
  checkSize('size', size);
  if (size === 0) return EMPTY_ROOT;
  const [root] = await hashRanges([[0, size]], read);
  return root!;
}

/**
 * The leaf ranges whose MTHs form PATH(index, D[lo:hi]), in proof order (the leaf's sibling first).
 * RFC 6962 §2.1.1, with the recursion unrolled.
 */
function inclusionRanges(index: number, lo: number, hi: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      ranges.push([lo + k, hi]);
      hi = lo + k;
    } else {
      ranges.push([lo, lo + k]);
      lo = lo + k;
    }
  }
  // The recursion adds the innermost sibling last; the proof lists it first.
  return ranges.reverse();
}

/** The inclusion proof (RFC 6962 PATH) of leaf `index` in the tree of `size` leaves. Throws if index ≥ size. */
export async function inclusionProof(index: number, size: number, read: NodesReader): Promise<Buffer[]> {
  checkSize('index', index);
  checkSize('size', size);
  if (index >= size) throw new RangeError(`leaf ${index} is not in a tree of ${size} leaves`);
  return hashRanges(inclusionRanges(index, 0, size), read);
}

/**
 * The leaf ranges whose MTHs form PROOF(m, D[0:n]) (RFC 6962 §2.1.2 SUBPROOF, unrolled): each step
 * either descends left (the right part's MTH is added) or right (the left part's MTH is added), and
 * the recursion ends with the old tree's own subtree unless it is the whole old tree (b true).
 */
function consistencyRanges(m: number, n: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let lo = 0;
  let hi = n;
  let whole = true;
  while (m !== hi - lo) {
    const k = splitPoint(hi - lo);
    if (m <= k) {
      ranges.push([lo + k, hi]);
      hi = lo + k;
    } else {
      ranges.push([lo, lo + k]);
      m -= k;
      lo += k;
      whole = false;
    }
  }
  if (!whole) ranges.push([lo, hi]);
  return ranges.reverse();
}

/**
 * The consistency proof (RFC 6962 PROOF) between the tree of `oldSize` leaves and the tree of
 * `newSize` leaves. Empty when oldSize is 0 or equals newSize. Throws if oldSize > newSize.
 */
export async function consistencyProof(
  oldSize: number,
  newSize: number,
  read: NodesReader,
): Promise<Buffer[]> {
  checkSize('oldSize', oldSize);
  checkSize('newSize', newSize);
  if (oldSize > newSize) {
    throw new RangeError(`a tree of ${oldSize} leaves cannot be older than one of ${newSize}`);
  }
  if (oldSize === 0 || oldSize === newSize) return [];
  return hashRanges(consistencyRanges(oldSize, newSize), read);
}

function isHash(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array && h.length === HASH_SIZE;
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function equalHashes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/**
 * Checks that `leaf` (the entry's leaf hash) is leaf `index` of the tree of `size` leaves whose root
 * is `root`, by RFC 9162 §2.1.3.2. Returns false for any malformed input, never throws.
 *
 * The proof binds the leaf, its index and the root; it binds the size only as far as the shape of
 * the path does (two sizes whose paths to this leaf have the same shape cannot be told apart from
 * these bytes). The size is bound to the root by the signed checkpoint they both come from.
 */
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  try {
    if (!isHash(leaf) || !isHash(root) || !isCount(index) || !isCount(size)) return false;
    if (!Array.isArray(proof) || index >= size) return false;
    let fn = index;
    let sn = size - 1;
    let r: Uint8Array = leaf;
    for (const p of proof) {
      if (!isHash(p) || sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        r = nodeHash(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) {
            fn = Math.floor(fn / 2);
            sn = Math.floor(sn / 2);
          }
        }
      } else {
        r = nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    return sn === 0 && equalHashes(r, root);
  } catch {
    return false;
  }
}

/**
 * Checks that the tree of `oldSize` leaves with root `oldRoot` is a prefix of the tree of `newSize`
 * leaves with root `newRoot`, by RFC 9162 §2.1.4.2. An empty old tree is consistent with every tree
 * (empty proof, old root the empty root); equal sizes need an empty proof and equal roots. Returns
 * false for any malformed input, never throws.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  proof: readonly Uint8Array[],
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
): boolean {
  try {
    if (!isCount(oldSize) || !isCount(newSize) || !isHash(oldRoot) || !isHash(newRoot)) {
      return false;
    }
    if (!Array.isArray(proof) || !proof.every(isHash) || oldSize > newSize) return false;
    if (oldSize === 0) return proof.length === 0 && equalHashes(oldRoot, EMPTY_ROOT);
    if (oldSize === newSize) return proof.length === 0 && equalHashes(oldRoot, newRoot);
    if (proof.length === 0) return false;
    // When the old tree is a complete subtree its root is the proof's implied first node.
    const path: readonly Uint8Array[] = Number.isInteger(Math.log2(oldSize)) ? [oldRoot, ...proof] : proof;
    let fn = oldSize - 1;
    let sn = newSize - 1;
    while (fn % 2 === 1) {
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    let fr: Uint8Array = path[0]!;
    let sr: Uint8Array = path[0]!;
    for (let i = 1; i < path.length; i++) {
      const c = path[i]!;
      if (sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        fr = nodeHash(c, fr);
        sr = nodeHash(c, sr);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) {
            fn = Math.floor(fn / 2);
            sn = Math.floor(sn / 2);
          }
        }
      } else {
        sr = nodeHash(sr, c);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    return sn === 0 && equalHashes(fr, oldRoot) && equalHashes(sr, newRoot);
  } catch {
    return false;
  }
}

/**
 * The right edge of a tree being built (the hashes of its maximal complete subtrees, largest first):
 * what the integrator keeps between runs. O(log n) state; append is amortized O(1) hashes.
 */
export class TreeFrontier {
  #size: number;
  /** The maximal complete subtrees, largest (leftmost) first; one per set bit of the size. */
  readonly #stack: Buffer[];

  private constructor(size: number, stack: Buffer[]) {
    this.#size = size;
    this.#stack = stack;
  }

  /** The frontier of the empty tree. */
  static empty(): TreeFrontier {
    return new TreeFrontier(0, []);
  }

  /**
   * The frontier of a tree of `size` leaves from its state (as `state()` gave it). Throws if the
   * number of hashes is not the number of set bits of `size` or a hash is not 32 bytes: a frontier
   * restored wrong would give every later root wrong.
   */
  static fromState(size: number, hashes: readonly Uint8Array[]): TreeFrontier {
    checkSize('size', size);
    let bits = 0;
    for (let n = size; n > 0; n = Math.floor(n / 2)) bits += n % 2;
    if (hashes.length !== bits) {
      throw new RangeError(
        `a tree of ${size} leaves has ${bits} maximal complete subtrees, not ${hashes.length}`,
      );
    }
    if (!hashes.every(isHash)) throw new RangeError(`every frontier hash must be ${HASH_SIZE} bytes`);
    return new TreeFrontier(
      size,
      hashes.map((h) => Buffer.from(h)),
    );
  }

  /** The number of leaves appended so far. */
  get size(): number {
    return this.#size;
  }

  /** The hashes of the maximal complete subtrees, largest first (what fromState takes back). */
  state(): Buffer[] {
    return this.#stack.map((h) => Buffer.from(h));
  }

  /** Appends a leaf hash; calls onNode for every complete subtree node it completes (level ≥ 1), and level 0 for the leaf itself. */
  append(leafHash: Uint8Array, onNode?: (level: number, index: number, hash: Buffer) => void): void {
    if (leafHash.length !== HASH_SIZE) throw new RangeError(`a leaf hash is ${HASH_SIZE} bytes`);
    const index = this.#size;
    let h: Buffer = Buffer.from(leafHash);
    onNode?.(0, index, h);
    // Each trailing set bit of the old size is a subtree of the new leaf's height waiting for its
    // right sibling: merge them, as a binary counter carries.
    let level = 0;
    let n = index;
    while (n % 2 === 1) {
      h = nodeHash(this.#stack.pop()!, h);
      level++;
      n = (n - 1) / 2;
      onNode?.(level, n, h);
    }
    this.#stack.push(h);
    this.#size = index + 1;
  }

  /** The tree head (MTH) of the leaves appended so far. */
  root(): Buffer {
    return foldRange(this.#stack);
  }
}
