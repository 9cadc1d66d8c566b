/**
 * The transparency log as readers see it: the latest checkpoint (with witnesses' cosignatures),
 * hash tiles and entry bundles (C2SP tlog-tiles), and inclusion and consistency proofs computed from
 * the stored tiles. The integrator stores every complete node inside a tile beside its hashes (the
 * inner rows), so a tile read from the database is a pyramid without hashing; a tile only ever grows
 * (its hashes never change), so tiles are cached in memory (an LRU) and read again only when a
 * request needs more hashes than the cached copy holds; the tree's size only grows too, so a size
 * once seen needs no read. A proof is then lookups, at most one tile read per tile level it crosses
 * outside the cache, and one indexed read: its leaf's entry, always from the database (an edited
 * entry is served as it is).
 */
import type { Context } from '../platform/context.js';
import { NotFoundError, ValidationError } from '../platform/errors.js';
import type { LogIntegrator } from './log.integrator.js';
import type { LogRepository, StoredCheckpoint } from './log.repository.js';
import { consistencyProof, inclusionProof, type NodesReader } from './merkle.js';
import {
  buildTilePyramid,
  encodeEntryBundle,
  pyramidNodesReader,
  storedTilePyramid,
  TILE_HEIGHT,
  TILE_WIDTH,
  type TilePyramid,
} from './tiles.js';

/** How many tiles stay in memory (each at most 16 KiB: its hashes and the nodes above them). */
const TILE_CACHE_SIZE = 2048;

/** How long the latest checkpoint is answered from memory (another instance may sign a newer one). */
const CHECKPOINT_CACHE_MS = 1000;
/** Stored checkpoints kept by size (they never change once signed). */
const CHECKPOINTS_BY_SIZE = 256;

/** An inclusion proof as the API answers it. */
export interface InclusionProofResult {
  index: number;
  size: number;
  /** The leaf's entry (UTF-8 JSON text; the leaf hashes its bytes). */
  entry: string;
  proof: Buffer[];
  /**
   * The note of the stored checkpoint of exactly `size` when there is one (`checkpointMatches`),
   * else of the latest (its size differs: tie the two with a consistency proof).
   */
  checkpoint: string | undefined;
  /** The tree size of `checkpoint`. */
  checkpointSize: number | undefined;
  /** True when `checkpoint` is of the proof's own size, so its root is the one the proof leads to. */
  checkpointMatches: boolean;
}

/** A consistency proof as the API answers it. */
export interface ConsistencyProofResult {
  from: number;
  to: number;
  proof: Buffer[];
  /** The note of the stored checkpoint of exactly `to` when there is one, else of the latest. */
  checkpoint: string | undefined;
  /** The tree size of `checkpoint`. */
  checkpointSize: number | undefined;
  /** True when `checkpoint` is of size `to`. */
  checkpointMatches: boolean;
}

/** A small least-recently-used map. */
class Lru<V> {
  readonly #max: number;
  readonly #map = new Map<string, V>();

  constructor(max: number) {
    this.#max = max;
  }

  get(key: string): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as string);
  }
}

/** Reads the transparency log: checkpoints, tiles, entries, proofs. */
export class TransparencyLog {
  readonly #repo: LogRepository;
  readonly #integrator: LogIntegrator;
  readonly #tiles = new Lru<TilePyramid>(TILE_CACHE_SIZE);
  /** The largest tree size seen: sizes up to it exist without asking. */
  #knownSize = 0;
  #checkpoint: { value: StoredCheckpoint | undefined; until: number } | undefined;
  readonly #bySize = new Lru<StoredCheckpoint>(CHECKPOINTS_BY_SIZE);

  constructor(deps: { repo: LogRepository; integrator: LogIntegrator }) {
    this.#repo = deps.repo;
    this.#integrator = deps.integrator;
  }

  /** The checkpoints' origin line and signer name. */
  get origin(): string {
    return this.#integrator.signer.name;
  }

  /** The signer's verifier key ("name+hexkeyid+base64(0x01‖pub)"), what a verifier is given. */
  get verifierKey(): string {
    return this.#integrator.signer.verifierKey();
  }

  /** The signer's Ed25519 public key (32 bytes). */
  get publicKey(): Buffer {
    return this.#integrator.signer.publicKey;
  }

  /** The tree's integrated size (0 before the first leaf). */
  async size(ctx: Context): Promise<number> {
    const size = (await this.#repo.getState(ctx))?.size ?? 0;
    if (size > this.#knownSize) this.#knownSize = size;
    return size;
  }

  /** The checkpoint answered with proofs: the latest, as of at most a second ago. */
  async #recentCheckpoint(ctx: Context): Promise<StoredCheckpoint | undefined> {
    const now = performance.now();
    if (this.#checkpoint !== undefined && this.#checkpoint.until > now) return this.#checkpoint.value;
    const value = await this.#repo.latestCheckpoint(ctx);
    this.#checkpoint = { value, until: now + CHECKPOINT_CACHE_MS };
    return value;
  }

  /**
   * The checkpoint answered with a proof for the tree of `size`: the stored one of that size when
   * there is one (kept: a signed checkpoint never changes), else the latest.
   */
  async #checkpointFor(
    ctx: Context,
    size: number,
  ): Promise<Pick<InclusionProofResult, 'checkpoint' | 'checkpointSize' | 'checkpointMatches'>> {
    const key = String(size);
    let exact = this.#bySize.get(key);
    if (exact === undefined) {
      // Not kept when missing: the integrator may yet sign the tree's current size.
      exact = await this.#repo.getCheckpoint(ctx, size);
      if (exact !== undefined) this.#bySize.set(key, exact);
    }
    const c = exact ?? (await this.#recentCheckpoint(ctx));
    return { checkpoint: c?.note, checkpointSize: c?.size, checkpointMatches: c?.size === size };
  }

  /** The tree's integrated size and root. */
  async head(ctx: Context): Promise<{ size: number; root: Buffer | undefined }> {
    const s = await this.#repo.getState(ctx);
    return { size: s?.size ?? 0, root: s?.root };
  }

  /** The newest checkpoint. */
  latestCheckpoint(ctx: Context): Promise<StoredCheckpoint | undefined> {
    return this.#repo.latestCheckpoint(ctx);
  }

  /** Every stored checkpoint, oldest first. */
  listCheckpoints(ctx: Context): Promise<StoredCheckpoint[]> {
    return this.#repo.listCheckpoints(ctx);
  }

  /** The newest checkpoint's note with its witnesses' cosignature lines after its own signature. */
  async checkpointText(ctx: Context): Promise<string | undefined> {
    const c = await this.#repo.latestCheckpoint(ctx);
    if (c === undefined) return undefined;
    const cosignatures = await this.#repo.cosignatures(ctx, c.size);
    return c.note + cosignatures.map((s) => (s.line.endsWith('\n') ? s.line : `${s.line}\n`)).join('');
  }

  /** Keeps a witness's cosignature line of the checkpoint of `size` (the witness client calls it). */
  async addCosignature(ctx: Context, size: number, witness: string, line: string): Promise<void> {
    await this.#repo.addCosignature(ctx, size, witness, line, ctx.clock.now());
  }

  /** The cosignature lines of the checkpoint of `size`. */
  cosignatures(ctx: Context, size: number): Promise<Array<{ witness: string; line: string }>> {
    return this.#repo.cosignatures(ctx, size);
  }

  /**
   * A tile's hashes, at least `width` of them when the tree has them: from the cache when it holds
   * as many (a tile's hashes never change, it only grows), else from the database.
   */
  async #readTile(ctx: Context, level: number, index: number, width: number): Promise<Buffer | undefined> {
    const cached = this.#tiles.get(`${level}/${index}`);
    if (cached !== undefined && cached.width >= width) return cached.rows[0];
    return (await this.#loadPyramid(ctx, level, index, cached))?.rows[0];
  }

  /** A tile's pyramid at least `width` wide when the tree has it: no promise when it is cached. */
  #pyramid(
    ctx: Context,
    level: number,
    index: number,
    width: number,
  ): TilePyramid | Promise<TilePyramid | undefined> {
    const cached = this.#tiles.get(`${level}/${index}`);
    if (cached !== undefined && cached.width >= width) return cached;
    return this.#loadPyramid(ctx, level, index, cached);
  }

  /** Reads a tile from the database and caches its pyramid when it is wider than the cached one. */
  async #loadPyramid(
    ctx: Context,
    level: number,
    index: number,
    cached: TilePyramid | undefined,
  ): Promise<TilePyramid | undefined> {
    const stored = await this.#repo.getTile(ctx, level, index);
    if (stored === undefined) return cached;
    if (cached !== undefined && stored.hashes.length <= cached.width * 32) return cached;
    const pyramid = storedTilePyramid(stored.hashes, stored.inner) ?? buildTilePyramid(stored.hashes, cached);
    this.#tiles.set(`${level}/${index}`, pyramid);
    return pyramid;
  }

  /** The hashes of tile `index` of `level` at `width` (256: full), or `undefined` when the tree has no such tile. */
  async tile(ctx: Context, level: number, index: number, width: number): Promise<Buffer | undefined> {
    const hashes = await this.#readTile(ctx, level, index, width);
    if (hashes === undefined || hashes.length < width * 32) return undefined;
    return hashes.length === width * 32 ? hashes : hashes.subarray(0, width * 32);
  }

  /** The entry bundle of tile `index` at `width`, or `undefined` when the tree does not reach it. */
  async entryBundle(ctx: Context, index: number, width: number): Promise<Buffer | undefined> {
    const from = index * TILE_WIDTH;
    const rows = await this.#repo.entries(ctx, from, from + width);
    if (rows.length !== width) return undefined;
    return encodeEntryBundle(rows.map((r) => Buffer.from(r.entry, 'utf8')));
  }

  /** The entry of leaf `index`, or `undefined`. */
  async entryAt(ctx: Context, index: number): Promise<string | undefined> {
    return (await this.#repo.entries(ctx, index, index + 1))[0]?.entry;
  }

  /** Reads nodes of the tree of `size` from tiles, each as wide as that tree makes it. */
  #reader(ctx: Context, size: number): NodesReader {
    return pyramidNodesReader((level, index) => {
      const nodes = Math.floor(size / 2 ** (level * TILE_HEIGHT));
      return this.#pyramid(ctx, level, index, Math.min(TILE_WIDTH, nodes - index * TILE_WIDTH));
    });
  }

  /** Checks `size` against the tree, reading its state only when `size` is beyond any seen. */
  async #sizeWithinTree(ctx: Context, size: number, where: string): Promise<void> {
    if (size <= this.#knownSize) return;
    sizeWithinTree(size, await this.size(ctx), where);
  }

  /** The inclusion proof of leaf `index` in the tree of `size` (both checked against the tree). */
  async inclusion(ctx: Context, index: number, size: number): Promise<InclusionProofResult> {
    if (!(index >= 0 && index < size)) {
      throw new ValidationError(
        'log.index_out_of_range',
        `index must be below size (got index ${index}, size ${size})`,
        {
          problems: [{ path: '/index', message: `must be from 0 to ${size - 1}` }],
        },
      );
    }
    await this.#sizeWithinTree(ctx, size, '/size');
    const [proof, entry, checkpoint] = await Promise.all([
      inclusionProof(index, size, this.#reader(ctx, size)),
      this.entryAt(ctx, index),
      this.#checkpointFor(ctx, size),
    ]);
    if (entry === undefined) throw new NotFoundError('log.leaf_not_found', `the log has no leaf ${index}`);
    return { index, size, entry, proof, ...checkpoint };
  }

  /** The consistency proof between the trees of sizes `from` and `to`. */
  async consistency(ctx: Context, from: number, to: number): Promise<ConsistencyProofResult> {
    if (!(from >= 1 && from <= to)) {
      throw new ValidationError(
        'log.range_invalid',
        `from must be at least 1 and at most to (got from ${from}, to ${to})`,
        { problems: [{ path: '/from', message: `must be from 1 to ${to}` }] },
      );
    }
    await this.#sizeWithinTree(ctx, to, '/to');
    const [proof, checkpoint] = await Promise.all([
      consistencyProof(from, to, this.#reader(ctx, to)),
      this.#checkpointFor(ctx, to),
    ]);
    return { from, to, proof, ...checkpoint };
  }
}

function sizeWithinTree(size: number, treeSize: number, where: string): void {
  if (size > treeSize) {
    throw new ValidationError(
      'log.size_beyond_tree',
      `the log has ${treeSize} integrated entries; ask for a size of at most ${treeSize} (got ${size})`,
      { problems: [{ path: where, message: `must be at most ${treeSize}` }] },
    );
  }
}
