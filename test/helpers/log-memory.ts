/**
 * A transparency log held in memory, built as the integrator builds one (leaf hashes, tiles from the
 * tree's nodes, signed checkpoints), for tests and benches of what reads a log: the verifier, the
 * proof verifier, the witness client. No database: what it stores is what a test hands over.
 */
import { randomBytes } from 'node:crypto';
import { leafHash, TreeFrontier } from '../../src/audit/merkle.js';
import { formatCheckpointBody, NoteSigner, parseVerifierKey } from '../../src/audit/note.js';
import { TILE_HEIGHT, TILE_WIDTH } from '../../src/audit/tiles.js';
import type { LogLeafRow, LogVerifySource } from '../../src/audit/log.verify.js';

/** A log in memory. */
export interface MemoryLog {
  origin: string;
  signer: NoteSigner;
  entries: Buffer[];
  /** `level/index` → the tile's hashes (as long as the tile is filled). */
  tiles: Map<string, Buffer>;
  /** The root after each size (index = size). */
  roots: Buffer[];
  /** A signed checkpoint note of `size` (≤ entries). */
  checkpoint(size: number): string;
  /** What the verifier reads, with these checkpoints; rows in pages of `pageSize`. */
  source(options: {
    stored?: number[];
    external?: number[];
    pageSize?: number;
    rows?: LogLeafRow[];
  }): LogVerifySource;
}

/** A test entry: JSON as the log's entries are, of about `bytes` bytes. */
export function testEntry(i: number, bytes = 200): Buffer {
  const pad = 'x'.repeat(Math.max(0, bytes - 60));
  return Buffer.from(`{"action":"vault.read","i":${i},"pad":"${pad}","version":1}`);
}

/** Builds a log of `count` entries (`entry(i)` each), tiles and roots included. */
export function buildMemoryLog(
  count: number,
  options: { entry?: (i: number) => Buffer; origin?: string; signer?: NoteSigner } = {},
): MemoryLog {
  const origin = options.origin ?? 'pledge.test/log';
  const signer = options.signer ?? NoteSigner.fromSeed(origin, randomBytes(32));
  const make = options.entry ?? ((i: number) => testEntry(i));
  const entries: Buffer[] = [];
  const tiles = new Map<string, Buffer>();
  const frontier = TreeFrontier.empty();
  const roots: Buffer[] = [frontier.root()];
  const onNode = (level: number, index: number, hash: Buffer): void => {
    if (level % TILE_HEIGHT !== 0) return;
    const key = `${level / TILE_HEIGHT}/${Math.floor(index / TILE_WIDTH)}`;
    const at = (index % TILE_WIDTH) * 32;
    const old = tiles.get(key) ?? Buffer.alloc(0);
    const grown = Buffer.alloc(at + 32);
    old.copy(grown);
    hash.copy(grown, at);
    tiles.set(key, grown);
  };
  for (let i = 0; i < count; i++) {
    const e = make(i);
    entries.push(e);
    frontier.append(leafHash(e), onNode);
    roots.push(frontier.root());
  }
  const checkpoint = (size: number): string =>
    signer.sign(formatCheckpointBody({ origin, size, root: roots[size]! }));
  return {
    origin,
    signer,
    entries,
    tiles,
    roots,
    checkpoint,
    source({ stored = [], external = [], pageSize = 1000, rows }) {
      const all = rows ?? entries.map((entry, leafIndex) => ({ leafIndex, entry }));
      return {
        origin,
        // The verifier a reader builds from the published key, not from the signer object.
        verifiers: [parseVerifierKey(signer.verifierKey())],
        rows: (function* () {
          for (let i = 0; i < all.length; i += pageSize) yield all.slice(i, i + pageSize);
        })(),
        readTile: (level, index) => Promise.resolve(tiles.get(`${level}/${index}`)),
        storedCheckpoints: stored.map(checkpoint),
        externalCheckpoints: external.map(checkpoint),
      };
    },
  };
}
