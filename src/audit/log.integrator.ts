/**
 * The integrator: the one sequencer of the transparency log. Writers only INSERT their entries (in
 * the transaction of their change, with no lock beyond their rows); the integrator takes committed
 * rows that have no leaf index yet, in id order, gives them the next leaf indexes, advances the tree
 * (its right edge, a TreeFrontier, is saved in log_state), writes the hash tiles and, when one is
 * due, signs a checkpoint, all in one transaction. On PostgreSQL that transaction holds an advisory
 * lock, so integrators on any number of instances never interleave: every entry gets exactly one
 * index and all agree on the order. Row ids do not arrive in commit order on PostgreSQL; leaf
 * indexes do, which is why they are a column of their own.
 *
 * A checkpoint is signed at least every {@link CHECKPOINT_EVERY} entries (a batch stops at that
 * boundary) and at least every {@link CHECKPOINT_INTERVAL_MS} while there are new entries.
 */
import { hkdfSync } from 'node:crypto';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import type { UseKeys } from '../vault/use-keys.js';
import { encodeEntry, type SubjectCommitments } from './log.entry.js';
import type { LegacyColumns, LogRepository, StoredCheckpoint } from './log.repository.js';
import { leafHash, TreeFrontier } from './merkle.js';
import { formatCheckpointBody, NoteSigner } from './note.js';
import { buildTilePyramid, storedTilePyramid, TILE_HEIGHT, TILE_WIDTH } from './tiles.js';

/** Entries between two checkpoints at most. */
export const CHECKPOINT_EVERY = 1000;

/** The longest a new entry waits for a checkpoint that covers it. */
export const CHECKPOINT_INTERVAL_MS = 10_000;

/** What one integration pass did. */
export interface IntegrateResult {
  /** Entries given a leaf index. */
  integrated: number;
  /** The tree's size after it. */
  size: number;
  /** Rows of earlier versions converted on the way. */
  converted: number;
  /** The checkpoint it signed, if one was due. */
  checkpoint: StoredCheckpoint | undefined;
  /** True when it stopped at its batch's end with rows still pending. */
  more: boolean;
}

/** What the integrator is built from. */
export interface LogIntegratorDeps {
  db: Transactions;
  repo: LogRepository;
  commitments: SubjectCommitments;
  /** The checkpoints' origin line (and the signer's name). */
  origin: string;
  /** The `log_checkpoints` key material: its current version seeds the Ed25519 signer. */
  checkpointKeys: UseKeys;
  /** After a checkpoint's transaction commits: publish it outside the database. */
  published?: (ctx: Context, checkpoint: StoredCheckpoint) => Promise<void>;
  /** In the checkpoint's transaction: enqueue durable work for it (the webhook job). */
  enqueue?: (ctx: Context, checkpoint: StoredCheckpoint) => Promise<void>;
  /** Rows per pass (default {@link CHECKPOINT_EVERY}). */
  batchSize?: number;
}

const SEED_INFO = 'pledge transparency log checkpoint signer v1';

/** The Ed25519 signer of checkpoints, from the current `log_checkpoints` key version. */
export function checkpointSigner(origin: string, keys: UseKeys): NoteSigner {
  const seed = Buffer.from(hkdfSync('sha256', keys.current().secret, Buffer.alloc(0), SEED_INFO, 32));
  return NoteSigner.fromSeed(origin, seed);
}

/** Sequences committed entries into the tree, signs checkpoints. */
export class LogIntegrator {
  readonly #deps: LogIntegratorDeps;
  readonly #signer: NoteSigner;
  readonly #batch: number;

  constructor(deps: LogIntegratorDeps) {
    this.#deps = deps;
    this.#signer = checkpointSigner(deps.origin, deps.checkpointKeys);
    this.#batch = Math.max(1, Math.min(deps.batchSize ?? CHECKPOINT_EVERY, CHECKPOINT_EVERY));
  }

  /** The checkpoints' signer (its public key and verifier key). */
  get signer(): NoteSigner {
    return this.#signer;
  }

  /**
   * Converts the rows written by earlier versions (plaintext subject id, no entry) into entries,
   * oldest first, each batch in a transaction under the integrator's lock. Run once at start, before
   * the integrator; it may run on several instances at once (each row converts once).
   */
  async convertLegacy(ctx: Context): Promise<number> {
    let converted = 0;
    for (;;) {
      const n = await this.#deps.db.transaction(ctx, async (trx) => {
        await this.#deps.repo.lockIntegration(trx);
        const rows = await this.#deps.repo.unconverted(trx, 500);
        for (const row of rows) if (row.entry === null) await this.#convert(trx, row);
        return rows.length;
      });
      converted += n;
      if (n < 500) return converted;
    }
  }

  async #convert(ctx: Context, row: { id: number; legacy: LegacyColumns }): Promise<string> {
    const { commitments, repo } = this.#deps;
    const l = row.legacy;
    const actor = commitments.actor(JSON.parse(l.actor) as Context['actor']);
    const subject = l.subjectId === null ? undefined : commitments.commit(l.subjectId);
    const entry = encodeEntry({
      time: l.at,
      actor,
      action: l.action,
      purpose: l.purpose ?? undefined,
      requestId: l.requestId ?? undefined,
      details: JSON.parse(l.details) as Record<string, unknown>,
      subject,
    });
    await repo.convert(ctx, row.id, { entry, subject: subject ?? null, actor: JSON.stringify(actor) });
    return entry;
  }

  /**
   * One pass: integrates up to a batch of committed pending rows and signs a checkpoint if one is
   * due, in one transaction. Returns what it did; an empty pass costs a few indexed reads.
   */
  async integrateOnce(ctx: Context): Promise<IntegrateResult> {
    const { db, repo } = this.#deps;
    const result = await db.transaction(ctx, async (trx) => {
      await repo.lockIntegration(trx);
      const now = trx.clock.now();
      const state = await repo.getState(trx);
      const frontier =
        state === undefined ? TreeFrontier.empty() : TreeFrontier.fromState(state.size, state.frontier);
      const start = frontier.size;
      const last = await repo.latestCheckpoint(trx);
      const lastSize = last?.size ?? 0;
      // A batch ends at the next checkpoint boundary, so no more than CHECKPOINT_EVERY entries ever
      // wait for a checkpoint.
      const toBoundary = lastSize + CHECKPOINT_EVERY - start;
      const limit = Math.max(1, Math.min(this.#batch, toBoundary > 0 ? toBoundary : CHECKPOINT_EVERY));
      const rows = await repo.pending(trx, limit);
      let converted = 0;
      if (rows.length > 0) {
        const tiles = await this.#rightmostTiles(trx, start);
        // The tile each level is growing, looked up without a key: nodes come in tree order, so a
        // level moves on to its next tile and never back.
        const growing: Array<GrowingTile | undefined> = [];
        for (const t of tiles.values()) growing[t.level] = t;
        // Every node the frontier completes is kept: those on a tile level are the tile's hashes,
        // the ones between are its inner rows, so a proof never hashes them again.
        const onNode = (level: number, index: number, hash: Buffer): void => {
          const tileLevel = Math.floor(level / TILE_HEIGHT);
          const sub = level - tileLevel * TILE_HEIGHT;
          const tileIndex = Math.floor(index / (TILE_WIDTH >> sub));
          let tile = growing[tileLevel];
          if (tile?.index !== tileIndex) {
            tile = { level: tileLevel, index: tileIndex, hashes: [], inner: emptyInnerRows() };
            tiles.set(`${tileLevel}/${tileIndex}`, tile);
            growing[tileLevel] = tile;
          }
          if (sub === 0) tile.hashes.push(hash);
          else tile.inner[sub]!.push(hash);
          tile.dirty = true;
        };
        for (const row of rows) {
          let entry: string;
          if (row.entry === null) {
            entry = await this.#convert(trx, row);
            converted++;
          } else entry = row.entry;
          frontier.append(leafHash(Buffer.from(entry, 'utf8')), onNode);
        }
        await repo.assignLeaves(
          trx,
          rows.map((r) => r.id),
          start,
        );
        await repo.upsertTiles(
          trx,
          [...tiles.values()]
            .filter((t) => t.dirty === true)
            .map((t) => ({
              level: t.level,
              index: t.index,
              hashes: Buffer.concat(t.hashes),
              inner: Buffer.concat(t.inner.flat()),
            })),
        );
        await repo.saveState(
          trx,
          { size: frontier.size, frontier: frontier.state(), root: frontier.root() },
          now,
        );
      }
      const size = frontier.size;
      // The first pass signs one at once (of the empty tree, if so): a tile client needs a checkpoint.
      const due =
        last === undefined ||
        (size > lastSize &&
          (size - lastSize >= CHECKPOINT_EVERY ||
            now.getTime() - last.createdAt.getTime() >= CHECKPOINT_INTERVAL_MS));
      let checkpoint: StoredCheckpoint | undefined;
      if (due) {
        const root = frontier.root();
        const note = this.#signer.sign(formatCheckpointBody({ origin: this.#deps.origin, size, root }));
        checkpoint = { size, root, note, createdAt: now };
        await repo.insertCheckpoint(trx, checkpoint);
        await this.#deps.enqueue?.(trx, checkpoint);
      }
      return { integrated: rows.length, size, converted, checkpoint, more: rows.length === limit };
    });
    if (result.checkpoint !== undefined) await this.#deps.published?.(ctx, result.checkpoint);
    return result;
  }

  /**
   * The partial rightmost tile of each level a tree of `size` has: appends grow them. A level-L tile
   * holds the hashes of tree level 8·L; one with no node yet at that level is left out.
   */
  async #rightmostTiles(ctx: Context, size: number): Promise<Map<string, GrowingTile>> {
    const keys: Array<{ level: number; index: number }> = [];
    for (let level = 0; ; level++) {
      const nodes = Math.floor(size / 2 ** (level * TILE_HEIGHT));
      if (nodes === 0) break;
      if (nodes % TILE_WIDTH !== 0) keys.push({ level, index: Math.floor(nodes / TILE_WIDTH) });
    }
    const stored = await this.#deps.repo.getTiles(ctx, keys);
    const tiles = new Map<string, GrowingTile>();
    for (const k of keys) {
      const found = stored.get(`${k.level}/${k.index}`);
      if (found === undefined)
        throw new Error(`the log's tile ${k.level}/${k.index} is missing; the tree cannot grow`);
      // A tile stored without its inner rows (or with rows that do not fit) gets them rebuilt here,
      // once, so the rows it is written back with are whole.
      const pyramid = storedTilePyramid(found.hashes, found.inner) ?? buildTilePyramid(found.hashes);
      const inner = emptyInnerRows();
      for (let sub = 1; sub < TILE_HEIGHT; sub++) inner[sub] = splitHashes(pyramid.rows[sub]);
      tiles.set(`${k.level}/${k.index}`, { ...k, hashes: splitHashes(found.hashes), inner });
    }
    return tiles;
  }
}

/** A tile the pass grows: its hashes (tree level 8·level) and inner rows (`inner[k]`, k = 1..7). */
interface GrowingTile {
  level: number;
  index: number;
  hashes: Buffer[];
  inner: Buffer[][];
  dirty?: boolean;
}

/** Inner rows with nothing in them (index 0 unused: row 0 is the tile's own hashes). */
function emptyInnerRows(): Buffer[][] {
  return Array.from({ length: TILE_HEIGHT }, () => []);
}

/** 32-byte views of a row of hashes (none for `undefined`). */
function splitHashes(bytes: Buffer | undefined): Buffer[] {
  const out: Buffer[] = [];
  if (bytes === undefined) return out;
  for (let at = 0; at + 32 <= bytes.length; at += 32) out.push(bytes.subarray(at, at + 32));
  return out;
}
