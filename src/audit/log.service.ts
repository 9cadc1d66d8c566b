/**
 * The transparency log as readers see it: the latest checkpoint (with witnesses' cosignatures),
 * hash tiles and entry bundles (C2SP tlog-tiles), and inclusion and consistency proofs computed from
 * the stored tiles. Full tiles never change, so they are cached in memory (a small LRU); a proof
 * reads a few tile rows.
 */
import type { Context } from '../platform/context.js';
import { NotFoundError, ValidationError } from '../platform/errors.js';
import type { LogIntegrator } from './log.integrator.js';
import type { LogRepository, StoredCheckpoint } from './log.repository.js';
import { consistencyProof, inclusionProof, type NodesReader } from './merkle.js';
import { encodeEntryBundle, tileNodesReader, TILE_WIDTH } from './tiles.js';

/** How many full tiles stay in memory (each at most 8 KiB of hashes). */
const TILE_CACHE_SIZE = 2048;

/** An inclusion proof as the API answers it. */
export interface InclusionProofResult {
  index: number;
  size: number;
  /** The leaf's entry (UTF-8 JSON text; the leaf hashes its bytes). */
  entry: string;
  proof: Buffer[];
  /** The latest checkpoint's note (its size may differ from `size`). */
  checkpoint: string | undefined;
}

/** A consistency proof as the API answers it. */
export interface ConsistencyProofResult {
  from: number;
  to: number;
  proof: Buffer[];
  checkpoint: string | undefined;
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
  readonly #tiles = new Lru<Buffer>(TILE_CACHE_SIZE);

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
    return (await this.#repo.getState(ctx))?.size ?? 0;
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

  /** A stored tile's hashes as far as the tree goes (full tiles from the cache). */
  async #readTile(ctx: Context, level: number, index: number): Promise<Buffer | undefined> {
    const key = `${level}/${index}`;
    const cached = this.#tiles.get(key);
    if (cached !== undefined) return cached;
    const hashes = await this.#repo.getTile(ctx, level, index);
    if (hashes !== undefined && hashes.length === TILE_WIDTH * 32) this.#tiles.set(key, hashes);
    return hashes;
  }

  /** The hashes of tile `index` of `level` at `width` (256: full), or `undefined` when the tree has no such tile. */
  async tile(ctx: Context, level: number, index: number, width: number): Promise<Buffer | undefined> {
    const hashes = await this.#readTile(ctx, level, index);
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

  #reader(ctx: Context): NodesReader {
    return tileNodesReader((level, index) => this.#readTile(ctx, level, index));
  }

  /** The inclusion proof of leaf `index` in the tree of `size` (both checked against the tree). */
  async inclusion(ctx: Context, index: number, size: number): Promise<InclusionProofResult> {
    const treeSize = await this.size(ctx);
    if (!(index >= 0 && index < size)) {
      throw new ValidationError(
        'log.index_out_of_range',
        `index must be below size (got index ${index}, size ${size})`,
        {
          problems: [{ path: '/index', message: `must be from 0 to ${size - 1}` }],
        },
      );
    }
    sizeWithinTree(size, treeSize, '/size');
    const [proof, entry, checkpoint] = await Promise.all([
      inclusionProof(index, size, this.#reader(ctx)),
      this.entryAt(ctx, index),
      this.#repo.latestCheckpoint(ctx),
    ]);
    if (entry === undefined) throw new NotFoundError('log.leaf_not_found', `the log has no leaf ${index}`);
    return { index, size, entry, proof, checkpoint: checkpoint?.note };
  }

  /** The consistency proof between the trees of sizes `from` and `to`. */
  async consistency(ctx: Context, from: number, to: number): Promise<ConsistencyProofResult> {
    const treeSize = await this.size(ctx);
    if (!(from >= 1 && from <= to)) {
      throw new ValidationError(
        'log.range_invalid',
        `from must be at least 1 and at most to (got from ${from}, to ${to})`,
        { problems: [{ path: '/from', message: `must be from 1 to ${to}` }] },
      );
    }
    sizeWithinTree(to, treeSize, '/to');
    const [proof, checkpoint] = await Promise.all([
      consistencyProof(from, to, this.#reader(ctx)),
      this.#repo.latestCheckpoint(ctx),
    ]);
    return { from, to, proof, checkpoint: checkpoint?.note };
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
