/**
 * The log as C2SP tlog-tiles (https://c2sp.org/tlog-tiles): the path of every tile and entry
 * bundle, which tiles a tree of a given size has, the entry-bundle encoding, and a NodesReader over
 * stored tiles, so that roots and proofs are computed from the same files outside clients read.
 *
 * Tiles have height 8: a tile at level L holds up to 256 hashes of nodes at tree level 8·L (level-0
 * tiles hold leaf hashes; a hash in a level-1 tile is the root of a full level-0 tile). The tree
 * levels in between are not stored: they are recomputed from the tile below, as
 * golang.org/x/mod/sumdb/tlog does.
 */
import { HASH_SIZE, nodeHash, type NodesReader } from './merkle.js';

/** The number of tree levels a tile spans. */
export const TILE_HEIGHT = 8;
/** The number of hashes (or entries) in a full tile (or bundle). */
export const TILE_WIDTH = 256;

/** The highest tile level the spec allows. */
const MAX_LEVEL = 63;
/** The largest entry a bundle's 2-byte length can carry. */
const MAX_ENTRY = 0xffff;

function checkIndex(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`${name} must be a non-negative integer, not ${n}`);
  }
}

/** "x001/x234/067" for 1234067 (tlog-tiles path encoding of an index). */
export function encodeTileIndex(n: number): string {
  checkIndex('a tile index', n);
  // Groups of three digits, most significant first; every group but the last carries an "x" so
  // that a directory and a file never share a name.
  const groups: string[] = [];
  let rest = n;
  do {
    groups.unshift(String(rest % 1000).padStart(3, '0'));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

/** The ".p/W" suffix of a partial tile or bundle; none for a full one. */
function widthSuffix(width: number | undefined): string {
  if (width === undefined || width === TILE_WIDTH) return '';
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) {
    throw new RangeError(`a tile is 1 to ${TILE_WIDTH} wide, not ${width}`);
  }
  return `.p/${width}`;
}

/**
 * The path of a hash tile: "tile/0/x001/234" for a full tile, "tile/0/x001/234.p/17" for a partial
 * one (no leading slash). `width` 256 or absent means full.
 */
export function tilePath(level: number, index: number, width?: number): string {
  if (!Number.isInteger(level) || level < 0 || level > MAX_LEVEL) {
    throw new RangeError(`a tile level is 0 to ${MAX_LEVEL}, not ${level}`);
  }
  return `tile/${level}/${encodeTileIndex(index)}${widthSuffix(width)}`;
}

/** The path of an entry bundle: "tile/entries/x001/234" (or with ".p/W" when partial). */
export function entriesPath(index: number, width?: number): string {
  return `tile/entries/${encodeTileIndex(index)}${widthSuffix(width)}`;
}

/** A path the tiles endpoint serves, as parseTilePath gives it back. */
export type TilePathResult =
  | { kind: 'hashes'; level: number; index: number; width: number }
  | { kind: 'entries'; index: number; width: number };

const DECIMAL = /^(0|[1-9][0-9]*)$/;

/**
 * Parses a tile or entry-bundle path (without leading slash or prefix); undefined for anything that
 * is not one in canonical form. Canonical means what tilePath would write: no leading zeroes in the
 * level or the width, three digits in each group, "x" on every group but the last and no leading
 * "x000" group, a width from 1 to 255 after ".p/". A server that took two spellings of one tile
 * would let caches hold two versions of it.
 */
export function parseTilePath(path: string): TilePathResult | undefined {
  if (typeof path !== 'string' || path.length > 200) return undefined;
  const parts = path.split('/');
  if (parts.length < 3 || parts[0] !== 'tile') return undefined;
  const head = parts[1]!;
  let rest = parts.slice(2);

  let width = TILE_WIDTH;
  const last = rest[rest.length - 1]!;
  const beforeLast = rest[rest.length - 2];
  if (beforeLast !== undefined && beforeLast.endsWith('.p')) {
    if (!DECIMAL.test(last)) return undefined;
    width = Number(last);
    if (width < 1 || width >= TILE_WIDTH) return undefined;
    rest = [...rest.slice(0, -2), beforeLast.slice(0, -2)];
  }

  // The index: groups "xDDD/" ... "DDD".
  let index = 0;
  for (const [i, group] of rest.entries()) {
    const digits = i < rest.length - 1 ? (group.startsWith('x') ? group.slice(1) : '') : group;
    if (!/^[0-9]{3}$/.test(digits)) return undefined;
    index = index * 1000 + Number(digits);
  }
  if (!Number.isSafeInteger(index)) return undefined;
  if (rest.length > 1 && rest[0] === 'x000') return undefined;

  if (head === 'entries') return { kind: 'entries', index, width };
  if (!DECIMAL.test(head)) return undefined;
  const level = Number(head);
  if (level > MAX_LEVEL) return undefined;
  return { kind: 'hashes', level, index, width };
}

/** The tiles a tree of `size` has: for level L, tile index k, width w (w < 256 = partial, the rightmost). */
export function tilesOfTree(size: number): Array<{ level: number; index: number; width: number }> {
  checkIndex('a tree size', size);
  const tiles: Array<{ level: number; index: number; width: number }> = [];
  // At tile level L there is one hash per complete subtree of 256^L leaves.
  for (let level = 0, span = 1; level <= MAX_LEVEL; level++, span *= TILE_WIDTH) {
    const hashes = Math.floor(size / span);
    if (hashes === 0) break;
    const full = Math.floor(hashes / TILE_WIDTH);
    for (let index = 0; index < full; index++) tiles.push({ level, index, width: TILE_WIDTH });
    const partial = hashes % TILE_WIDTH;
    if (partial > 0) tiles.push({ level, index: full, width: partial });
  }
  return tiles;
}

/** Entry bundle: each entry as a 2-byte big-endian length and its bytes. */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Buffer {
  if (entries.length > TILE_WIDTH) {
    throw new RangeError(`a bundle holds at most ${TILE_WIDTH} entries, not ${entries.length}`);
  }
  let total = 0;
  for (const [i, e] of entries.entries()) {
    if (e.length > MAX_ENTRY) {
      throw new RangeError(`entry ${i} is ${e.length} bytes; a bundle entry is at most ${MAX_ENTRY}`);
    }
    total += 2 + e.length;
  }
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const e of entries) {
    out.writeUInt16BE(e.length, at);
    out.set(e, at + 2);
    at += 2 + e.length;
  }
  return out;
}

/**
 * The entries of a bundle. Throws on a malformed bundle: empty (an empty tile is never served),
 * cut short inside a length or an entry, or holding more than 256 entries.
 */
export function decodeEntryBundle(bundle: Uint8Array): Buffer[] {
  const b = Buffer.from(bundle.buffer, bundle.byteOffset, bundle.byteLength);
  if (b.length === 0) throw new Error('an entry bundle holds at least one entry; this one is empty');
  const entries: Buffer[] = [];
  let at = 0;
  while (at < b.length) {
    if (entries.length === TILE_WIDTH) {
      throw new Error(`an entry bundle holds at most ${TILE_WIDTH} entries; this one has more`);
    }
    if (at + 2 > b.length) throw new Error(`entry ${entries.length}: the bundle ends inside its length`);
    const length = b.readUInt16BE(at);
    if (at + 2 + length > b.length) {
      throw new Error(
        `entry ${entries.length}: ${length} bytes announced, ${b.length - at - 2} left in the bundle`,
      );
    }
    entries.push(Buffer.from(b.subarray(at + 2, at + 2 + length)));
    at += 2 + length;
  }
  return entries;
}

/**
 * A NodesReader over stored tiles: `readTile(level, index)` returns the tile's hashes (a Buffer of
 * width·32 bytes; the latest/partial one is fine); nodes at levels between multiples of 8 are computed
 * from the tile below them, as Go's golang.org/x/mod/sumdb/tlog does.
 *
 * Each tile is read once per call however many nodes it serves; a tile that is missing or too
 * narrow for a node asked of it is an error (the store does not hold the tree it claims).
 */
export function tileNodesReader(
  readTile: (level: number, index: number) => Promise<Buffer | undefined>,
): NodesReader {
  return async (nodes) => {
    // Where each node's hashes lie: tile level, tile index, first hash and count in that tile.
    const places = nodes.map(({ level, index }) => {
      if (!Number.isInteger(level) || level < 0 || !Number.isSafeInteger(index) || index < 0) {
        throw new RangeError(`no node ${level}/${index}`);
      }
      const tileLevel = Math.floor(level / TILE_HEIGHT);
      const count = 2 ** (level - tileLevel * TILE_HEIGHT);
      const first = index * count;
      return {
        tileLevel,
        tileIndex: Math.floor(first / TILE_WIDTH),
        offset: first % TILE_WIDTH,
        count,
      };
    });
    const tiles = new Map<string, Promise<Buffer | undefined>>();
    for (const p of places) {
      const key = `${p.tileLevel}/${p.tileIndex}`;
      if (!tiles.has(key)) tiles.set(key, readTile(p.tileLevel, p.tileIndex));
    }
    const read = new Map<string, Buffer | undefined>();
    await Promise.all(
      [...tiles].map(async ([key, tile]) => {
        read.set(key, await tile);
      }),
    );
    return places.map((p, i) => {
      const tile = read.get(`${p.tileLevel}/${p.tileIndex}`);
      const end = (p.offset + p.count) * HASH_SIZE;
      const node = nodes[i]!;
      if (tile === undefined || tile.length < end) {
        throw new Error(
          `node ${node.level}/${node.index} needs ${p.offset + p.count} hashes of tile ` +
            `${p.tileLevel}/${p.tileIndex}, which holds ${tile === undefined ? 'none' : Math.floor(tile.length / HASH_SIZE)}`,
        );
      }
      return hashSpan(tile, p.offset, p.count);
    });
  };
}

/** The root of the complete subtree whose `count` (a power of two) leaves start at `offset`. */
function hashSpan(tile: Buffer, offset: number, count: number): Buffer {
  let level = Array.from({ length: count }, (_, i) =>
    tile.subarray((offset + i) * HASH_SIZE, (offset + i + 1) * HASH_SIZE),
  );
  while (level.length > 1) {
    const up: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) up.push(nodeHash(level[i]!, level[i + 1]!));
    level = up;
  }
  // A copy: the caller may keep it, and the tile's buffer may be reused by the store.
  return Buffer.from(level[0]!);
}

/**
 * A tile with every complete node inside it: `rows[k]` holds the hashes of the tile's level k (row 0
 * the tile's own hashes, row 8 its root once it is full). A complete node never changes, so a
 * pyramid built for a narrower copy of the tile stays true as the tile grows.
 */
export interface TilePyramid {
  /** How many hashes the tile held when the pyramid was built. */
  width: number;
  rows: Buffer[];
}

/**
 * The pyramid of a tile's `hashes`, reusing the nodes of `previous` (a pyramid of a narrower copy of
 * the same tile), so only the nodes the new hashes complete are hashed.
 */
export function buildTilePyramid(hashes: Buffer, previous?: TilePyramid): TilePyramid {
  const width = Math.floor(hashes.length / HASH_SIZE);
  const rows: Buffer[] = [hashes];
  for (let k = 1, below = hashes; k <= TILE_HEIGHT; k++) {
    const count = Math.floor(below.length / HASH_SIZE / 2);
    if (count === 0) break;
    const row = Buffer.allocUnsafe(count * HASH_SIZE);
    const kept = Math.min(count, Math.floor((previous?.rows[k]?.length ?? 0) / HASH_SIZE));
    if (kept > 0) previous!.rows[k]!.copy(row, 0, 0, kept * HASH_SIZE);
    for (let i = kept; i < count; i++) {
      const at = 2 * i * HASH_SIZE;
      nodeHash(below.subarray(at, at + HASH_SIZE), below.subarray(at + HASH_SIZE, at + 2 * HASH_SIZE)).copy(
        row,
        i * HASH_SIZE,
      );
    }
    rows.push(row);
    below = row;
  }
  return { width, rows };
}

/**
 * A NodesReader over tile pyramids: each node is a lookup in its tile's pyramid, no hashing. `readTile`
 * gives the pyramid of tile `index` of `level` holding at least `width` hashes (the width the tree
 * being read has there), or `undefined` when the tile is missing.
 */
export function pyramidNodesReader(
  readTile: (level: number, index: number) => Promise<TilePyramid | undefined> | TilePyramid | undefined,
): NodesReader {
  return async (nodes) => {
    const out: Buffer[] = [];
    for (const { level, index } of nodes) {
      if (!Number.isInteger(level) || level < 0 || !Number.isSafeInteger(index) || index < 0) {
        throw new RangeError(`no node ${level}/${index}`);
      }
      const tileLevel = Math.floor(level / TILE_HEIGHT);
      const sub = level - tileLevel * TILE_HEIGHT;
      const perTile = TILE_WIDTH >> sub;
      const tileIndex = Math.floor(index / perTile);
      const at = (index - tileIndex * perTile) * HASH_SIZE;
      const pyramid = await readTile(tileLevel, tileIndex);
      const row = pyramid?.rows[sub];
      if (row === undefined || row.length < at + HASH_SIZE) {
        throw new Error(
          `node ${level}/${index} needs ${(at / HASH_SIZE + 1) << sub} hashes of tile ` +
            `${tileLevel}/${tileIndex}, which holds ${pyramid?.width ?? 'none'}`,
        );
      }
      // A copy: the caller may keep it.
      out.push(Buffer.from(row.subarray(at, at + HASH_SIZE)));
    }
    return out;
  };
}

/**
 * The length in bytes of a tile's inner rows (the tree levels 1 to 7 inside it) when it holds
 * `width` hashes: row k holds one node per 2^k hashes below it, complete nodes only.
 */
export function innerRowsLength(width: number): number {
  let n = 0;
  for (let k = 1; k < TILE_HEIGHT; k++) n += Math.floor(width / 2 ** k);
  return n * HASH_SIZE;
}

/**
 * The pyramid of a tile from its hashes and its stored inner rows (rows 1 to 7 one after another,
 * as the integrator writes them), hashing nothing; `undefined` when the inner rows do not fit the
 * hashes (a tile written before they were stored, or a damaged row): build it instead.
 */
export function storedTilePyramid(hashes: Buffer, inner: Buffer | null | undefined): TilePyramid | undefined {
  const width = Math.floor(hashes.length / HASH_SIZE);
  if (inner === null || inner === undefined || inner.length !== innerRowsLength(width)) return undefined;
  const rows: Buffer[] = [hashes];
  let at = 0;
  for (let k = 1; k < TILE_HEIGHT; k++) {
    const count = Math.floor(width / 2 ** k);
    if (count === 0) break;
    rows.push(inner.subarray(at, at + count * HASH_SIZE));
    at += count * HASH_SIZE;
  }
  return { width, rows };
}

/** A pyramid's inner rows (1 to 7) as one buffer, what `storedTilePyramid` takes back. */
export function encodeInnerRows(pyramid: TilePyramid): Buffer {
  return Buffer.concat(pyramid.rows.slice(1, TILE_HEIGHT));
}
