/**
 * The log's verifier: recomputes every leaf hash and the whole tree from the entries, and checks
 * them against what the database stores (the level-0 tiles, its own checkpoints) and against the
 * checkpoints kept outside it. It reads the entries once, in pages, in leaf order, and holds only
 * the tree's right edge and one tile per level, so a log of any size verifies in constant memory.
 *
 * A problem found at an index names it (the first bad index is the smallest); what cannot be tied to
 * one index (a root that differs from a checkpoint's) names the range it lies in. Entries after the
 * last external checkpoint are counted as not yet verifiable: only a checkpoint kept outside the
 * database proves the database did not rewrite them together with its own tiles and checkpoints.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Context } from '../platform/context.js';
import type { LogVerifyRepository } from './log.verify.repository.js';
import { consistencyProof, EMPTY_ROOT, HASH_SIZE, verifyConsistency } from './merkle.js';
import { openNote, parseCheckpointBody, type NoteVerifier } from './note.js';
import { TILE_HEIGHT, TILE_WIDTH, tileNodesReader } from './tiles.js';

/** One entry of the log as stored: its leaf index and its bytes. */
export interface LogLeafRow {
  leafIndex: number;
  entry: Uint8Array;
}

/** What the verifier reads; the CLI gives it the database's and the checkpoint file's. */
export interface LogVerifySource {
  /** The log's origin line (checkpoints of another origin are refused). */
  origin: string;
  /** The log's public keys (every version a checkpoint may have been signed with). */
  verifiers: readonly NoteVerifier[];
  /** The integrated entries in leaf order, in pages (any page size). */
  rows: AsyncIterable<readonly LogLeafRow[]> | Iterable<readonly LogLeafRow[]>;
  /** A stored tile's hashes (width·32 bytes; the widest stored), or undefined when none is stored. */
  readTile: (level: number, index: number) => Promise<Buffer | undefined>;
  /**
   * A stored tile's inner rows (the tree levels inside it, as the integrator stores them beside the
   * hashes for proofs), null when it has none; omitted by sources that have none (tiles over HTTP).
   */
  readInnerRows?: (level: number, index: number) => Promise<Buffer | null | undefined>;
  /** The checkpoints the database stores (signed notes). */
  storedCheckpoints: readonly string[];
  /** The checkpoints kept outside the database (signed notes), oldest first. */
  externalCheckpoints: readonly string[];
  /** About how many entries `rows` holds (the tree's saved size): a large log hashes on two threads. */
  expectedEntries?: number;
}

/** From this many entries on, leaves are hashed on a worker thread while the next page is read. */
export const PARALLEL_FROM = 65_536;

/** What went wrong, where; `index` is the leaf it names, `range` the leaves a root mismatch covers. */
export interface LogProblem {
  code:
    | 'log.index_gap'
    | 'log.index_duplicate'
    | 'log.leaf_mismatch'
    | 'log.tile_missing'
    | 'log.tile_mismatch'
    | 'log.root_mismatch'
    | 'log.truncated'
    | 'log.checkpoint_invalid'
    | 'log.checkpoints_inconsistent';
  message: string;
  index?: number;
  range?: { from: number; to: number };
}

/** The verifier's answer. */
export interface VerifyLogResult {
  /** True when no problem was found (entries may still be not yet verifiable). */
  ok: boolean;
  /** Entries read from the database. */
  entries: number;
  /** The smallest leaf index a problem names (or the start of the earliest bad range). */
  firstBadIndex: number | undefined;
  problems: LogProblem[];
  /** Leaves [0, verifiedSize) match a signed checkpoint kept outside the database. */
  verifiedSize: number;
  /** Size of the last external checkpoint (0 when there is none). */
  lastExternalSize: number;
  /** Entries at or after the last external checkpoint's size: consistent, but not yet verifiable. */
  notYetVerifiable: number;
  storedCheckpoints: number;
  externalCheckpoints: number;
}

interface Target {
  kind: 'stored' | 'external';
  /** Position in its list (external: file order). */
  position: number;
  size: number;
  root: Buffer;
  matched?: boolean;
}

/** Verifies the log; never throws on bad data (every finding is a problem in the result). */
export async function verifyLog(source: LogVerifySource): Promise<VerifyLogResult> {
  const problems: LogProblem[] = [];
  const opened = new Map<string, string>();
  const stored = openCheckpoints(source, source.storedCheckpoints, 'stored', problems, opened);
  const external = openCheckpoints(source, source.externalCheckpoints, 'external', problems, opened);
  const bySize = new Map<number, Target[]>();
  for (const t of [...stored, ...external]) {
    const list = bySize.get(t.size);
    if (list === undefined) bySize.set(t.size, [t]);
    else list.push(t);
  }

  const tree = new RecomputedTree();
  checkRootsAt(0, EMPTY_ROOT, bySize, problems, stored, external);
  const tiles = new TileCursor(source.readTile, source.readInnerRows);
  let expected = 0;
  let entries = 0;
  let broken = false;
  let leafMismatches = 0;
  // Interior nodes that fall on a tile level (tree levels 8, 16, ...) are compared with their tile,
  // and those between with the tile's stored inner rows when the source has them (the proofs read
  // those): comparisons only, the nodes are the ones the recomputed tree makes anyway.
  const pendingNodes: Array<{ level: number; index: number; hash: Buffer }> = [];
  const innerRows = source.readInnerRows !== undefined;
  const onNode = (level: number, index: number, hash: Buffer): void => {
    if (level === 0) return;
    if (level % TILE_HEIGHT === 0) pendingNodes.push({ level, index, hash });
    else if (innerRows) {
      // Compared at once while its tile is held (nearly always: it is the current leaf's).
      const same = tiles.innerMatches(level, index, hash);
      if (same === false) checkNode({ level, index, hash }, undefined, undefined, problems, true);
      else if (same === undefined) pendingNodes.push({ level, index, hash });
    }
  };

  const parallel = (source.expectedEntries ?? 0) >= PARALLEL_FROM;
  for await (const { page, hashes } of hashedPages(source.rows, parallel)) {
    for (let k = 0; k < page.length; k++) {
      const row = page[k]!;
      entries += 1;
      if (broken) continue;
      const i = row.leafIndex;
      if (i !== expected) {
        broken = true;
        if (i < expected)
          problems.push({
            code: 'log.index_duplicate',
            index: i,
            message: `leaf index ${i} appears again (or out of order) after index ${expected - 1}`,
          });
        else
          problems.push({
            code: 'log.index_gap',
            index: expected,
            message: `leaf index ${expected} is missing: the next stored entry has index ${i}`,
          });
        continue;
      }
      const h = hashes.subarray(k * HASH_SIZE, (k + 1) * HASH_SIZE);
      let tile = tiles.get(0, Math.floor(i / TILE_WIDTH));
      // Awaited only when a new tile is read: one await per leaf would cost a microtask each.
      if (tile instanceof Promise) tile = await tile;
      const at = (i % TILE_WIDTH) * HASH_SIZE;
      if (tile === undefined || tile.length < at + HASH_SIZE) {
        problems.push({
          code: 'log.tile_missing',
          index: i,
          message: `no stored tile hash for leaf ${i} (level-0 tile ${Math.floor(i / TILE_WIDTH)})`,
        });
      } else if (!equalAt(tile, at, h)) {
        // Every mismatch counts, but only the first few are listed: one edit rarely comes alone.
        if (leafMismatches < 10)
          problems.push({
            code: 'log.leaf_mismatch',
            index: i,
            message: `entry ${i} does not hash to the stored leaf hash: the entry or its tile was changed`,
          });
        leafMismatches += 1;
      }
      tree.append(h, onNode);
      expected += 1;
      if (pendingNodes.length > 0) {
        const waiting = checkNodes(pendingNodes, tiles, problems);
        pendingNodes.length = 0;
        // A promise only when a tile had to be read: the common case costs no microtask.
        if (waiting !== undefined) await waiting;
      }
      const targets = bySize.get(expected);
      if (targets !== undefined) checkRootsAt(expected, tree.root(), bySize, problems, stored, external);
    }
  }
  if (leafMismatches > 10)
    problems.push({
      code: 'log.leaf_mismatch',
      message: `${leafMismatches - 10} more entries do not hash to their stored leaf hash`,
    });

  for (const t of [...stored, ...external]) {
    if (t.size > expected && t.matched === undefined) {
      t.matched = false;
      problems.push({
        code: 'log.truncated',
        index: expected,
        message: `the ${t.kind} checkpoint of size ${t.size} covers leaves up to ${t.size - 1}, but the log's entries stop at index ${expected}${broken ? ' (where its indexes break)' : ''}`,
      });
    }
  }
  await checkExternalConsistency(external, source.readTile, problems);

  // A problem at an index comes before a root mismatch whose range holds it (which it explains).
  problems.sort((a, b) => orderOf(a) - orderOf(b));
  const exact = problems.flatMap((p) => (p.index === undefined ? [] : [p.index]));
  let firstBadIndex = exact.length > 0 ? Math.min(...exact) : undefined;
  for (const p of problems) {
    // A range wholly before the first exact index is damage that no leaf check caught (entries and
    // tiles rewritten alike): it starts earlier.
    if (
      p.index === undefined &&
      p.range !== undefined &&
      (firstBadIndex === undefined || p.range.to <= firstBadIndex)
    )
      firstBadIndex = Math.min(firstBadIndex ?? p.range.from, p.range.from);
  }
  const lastExternalSize = external.reduce((m, t) => Math.max(m, t.size), 0);
  const verifiedSize = external
    .filter((t) => t.matched === true && (firstBadIndex === undefined || t.size <= firstBadIndex))
    .reduce((m, t) => Math.max(m, t.size), 0);
  return {
    ok: problems.length === 0,
    entries,
    firstBadIndex,
    problems,
    verifiedSize,
    lastExternalSize,
    notYetVerifiable: Math.max(0, entries - lastExternalSize),
    storedCheckpoints: source.storedCheckpoints.length,
    externalCheckpoints: source.externalCheckpoints.length,
  };
}

function orderOf(p: LogProblem): number {
  return p.index ?? (p.range === undefined ? Number.POSITIVE_INFINITY : p.range.to - 0.5);
}

/** Opens each signed note with the log's key; one that does not open is a problem and is not used. */
function openCheckpoints(
  source: LogVerifySource,
  notes: readonly string[],
  kind: Target['kind'],
  problems: LogProblem[],
  opened: Map<string, string>,
): Target[] {
  const out: Target[] = [];
  notes.forEach((note, position) => {
    const name = `${kind} checkpoint #${position + 1}`;
    try {
      // The same text opens the same way: a note stored and kept outside is checked once.
      let body = opened.get(note);
      if (body === undefined) opened.set(note, (body = openNote(note, source.verifiers).body));
      const c = parseCheckpointBody(body);
      if (c.origin !== source.origin) throw new Error(`its origin is "${c.origin}", not "${source.origin}"`);
      out.push({ kind, position, size: c.size, root: c.root });
    } catch (err) {
      problems.push({
        code: 'log.checkpoint_invalid',
        message: `${name} is not a valid checkpoint signed by the log's key: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  });
  return out;
}

function checkRootsAt(
  size: number,
  root: Buffer,
  bySize: Map<number, Target[]>,
  problems: LogProblem[],
  stored: readonly Target[],
  external: readonly Target[],
): void {
  for (const t of bySize.get(size) ?? []) {
    t.matched = t.root.length === root.length && timingSafeEqual(t.root, root);
    if (t.matched) continue;
    // The bad leaf lies after the largest smaller checkpoint that matched.
    const from = [...stored, ...external]
      .filter((o) => o.matched === true && o.size < size)
      .reduce((m, o) => Math.max(m, o.size), 0);
    problems.push({
      code: 'log.root_mismatch',
      range: { from, to: size },
      message: `the ${t.kind} checkpoint of size ${size} has root ${t.root.toString('base64')}, but the entries give ${root.toString('base64')}: a leaf in [${from}, ${size}) differs from what was signed`,
    });
  }
}

/** Consecutive external checkpoints must describe one growing tree. */
async function checkExternalConsistency(
  external: readonly Target[],
  readTile: LogVerifySource['readTile'],
  problems: LogProblem[],
): Promise<void> {
  const read = tileNodesReader(readTile);
  for (let k = 1; k < external.length; k++) {
    const a = external[k - 1]!;
    const b = external[k]!;
    const where = `external checkpoints #${a.position + 1} (size ${a.size}) and #${b.position + 1} (size ${b.size})`;
    if (b.size < a.size) {
      problems.push({
        code: 'log.checkpoints_inconsistent',
        range: { from: b.size, to: a.size },
        message: `${where}: the later one is smaller, so the log shrank`,
      });
      continue;
    }
    // Both equal to the recomputed tree's roots: prefixes of one tree, consistent by construction.
    if (a.matched === true && b.matched === true) continue;
    let consistent = false;
    try {
      if (a.size === b.size) consistent = a.root.equals(b.root);
      else if (a.size === 0) consistent = a.root.equals(EMPTY_ROOT);
      else
        consistent = verifyConsistency(
          a.size,
          b.size,
          await consistencyProof(a.size, b.size, read),
          a.root,
          b.root,
        );
    } catch {
      consistent = false;
    }
    if (!consistent)
      problems.push({
        code: 'log.checkpoints_inconsistent',
        // When the older one matched the entries, the history they disagree on lies after it.
        range: { from: a.matched === true ? a.size : 0, to: b.size },
        message: `${where} cannot be shown consistent from the stored tiles: the history they sign was rewritten (or the tiles were)`,
      });
  }
}

/**
 * Compares recomputed nodes with the stored tiles: on a tile level with the tile's hashes, between
 * with its inner rows. Synchronous while the tiles are held; a promise once one has to be read.
 */
function checkNodes(
  nodes: ReadonlyArray<{ level: number; index: number; hash: Buffer }>,
  tiles: TileCursor,
  problems: LogProblem[],
): Promise<void> | undefined {
  for (let k = 0; k < nodes.length; k++) {
    const n = nodes[k]!;
    const tileLevel = Math.floor(n.level / TILE_HEIGHT);
    const tileIndex = Math.floor(n.index / (TILE_WIDTH >> (n.level % TILE_HEIGHT)));
    const held = tiles.get(tileLevel, tileIndex);
    if (held instanceof Promise) {
      const rest = nodes.slice(k);
      return held.then(() => checkNodes(rest, tiles, problems));
    }
    checkNode(n, held, tiles.innerOf(tileLevel), problems);
  }
  return undefined;
}

function checkNode(
  n: { level: number; index: number; hash: Buffer },
  tile: Buffer | undefined,
  inner: Buffer | null | undefined,
  problems: LogProblem[],
  knownMismatch = false,
): void {
  const tileLevel = Math.floor(n.level / TILE_HEIGHT);
  const sub = n.level % TILE_HEIGHT;
  const perTile = TILE_WIDTH >> sub;
  const tileIndex = Math.floor(n.index / perTile);
  const from = n.index * 2 ** n.level;
  const range = { from, to: from + 2 ** n.level };
  if (sub !== 0) {
    if (!knownMismatch) {
      if (tile === undefined || inner === null || inner === undefined) return;
      const at = innerOffset(Math.floor(tile.length / HASH_SIZE), sub, n.index - tileIndex * perTile);
      if (inner.length >= at + HASH_SIZE && equalAt(inner, at, n.hash)) return;
    }
    problems.push({
      code: 'log.tile_mismatch',
      range,
      message: `the stored inner node of level-${tileLevel} tile ${tileIndex} over leaves [${range.from}, ${range.to}) is not the one the entries give: inclusion proofs through it would fail`,
    });
    return;
  }
  const at = (n.index % TILE_WIDTH) * HASH_SIZE;
  if (tile === undefined || tile.length < at + HASH_SIZE)
    problems.push({
      code: 'log.tile_missing',
      range,
      message: `no stored tile hash for the node over leaves [${range.from}, ${range.to}) (level-${tileLevel} tile ${tileIndex})`,
    });
  else if (!equalAt(tile, at, n.hash))
    problems.push({
      code: 'log.tile_mismatch',
      range,
      message: `the stored level-${tileLevel} tile hash over leaves [${range.from}, ${range.to}) is not the one the entries give`,
    });
}

/** Where node `pos` of row `sub` starts in the inner rows of a tile of `width` hashes (rows 1..7 one after another). */
function innerOffset(width: number, sub: number, pos: number): number {
  let at = 0;
  for (let k = 1; k < sub; k++) at += Math.floor(width / 2 ** k) * HASH_SIZE;
  return at + pos * HASH_SIZE;
}

function equalAt(buf: Buffer, at: number, h: Buffer): boolean {
  return buf.compare(h, 0, HASH_SIZE, at, at + HASH_SIZE) === 0;
}

/** The current tile of each level, read once as the leaves move through it. */
class TileCursor {
  readonly #read: LogVerifySource['readTile'];
  readonly #readInner: LogVerifySource['readInnerRows'];
  readonly #current = new Map<
    number,
    { index: number; hashes: Buffer | undefined; inner: Buffer | null | undefined }
  >();

  constructor(read: LogVerifySource['readTile'], readInner: LogVerifySource['readInnerRows']) {
    this.#read = read;
    this.#readInner = readInner;
  }

  /** The tile's hashes; sync fast path when it is the tile already held (the common case). */
  get(level: number, index: number): Buffer | undefined | Promise<Buffer | undefined> {
    const held = this.#current.get(level);
    if (held?.index === index) return held.hashes;
    return this.#read(level, index).then(async (hashes) => {
      // After the hashes: a source may hand over the inner rows it read with them.
      const inner = await this.#readInner?.(level, index);
      this.#current.set(level, { index, hashes, inner });
      return hashes;
    });
  }

  /**
   * Whether a node between tile levels equals the stored one, when its tile is held and has inner
   * rows: `undefined` when that cannot be told without a read (or there are no rows to compare).
   */
  innerMatches(level: number, index: number, hash: Buffer): boolean | undefined {
    const tileLevel = Math.floor(level / TILE_HEIGHT);
    const sub = level % TILE_HEIGHT;
    const perTile = TILE_WIDTH >> sub;
    const tileIndex = Math.floor(index / perTile);
    const held = this.#current.get(tileLevel);
    if (
      held?.index !== tileIndex ||
      held.hashes === undefined ||
      held.inner === null ||
      held.inner === undefined
    )
      return undefined;
    const at = innerOffset(Math.floor(held.hashes.length / HASH_SIZE), sub, index - tileIndex * perTile);
    return held.inner.length >= at + HASH_SIZE && equalAt(held.inner, at, hash);
  }

  /** The inner rows of the tile held at `level` (the one `get` last read there). */
  innerOf(level: number): Buffer | null | undefined {
    return this.#current.get(level)?.inner;
  }
}

/** Leaves per page when the verifier reads the database. */
export const VERIFY_PAGE_SIZE = 10_000;

/**
 * The verifier's source over the database: entries read by leaf index in pages (so a gap is seen as
 * one), tiles as the verifier reaches them, every stored checkpoint; the external checkpoints are
 * the caller's (read from the file kept outside).
 */
export async function storedLogSource(
  ctx: Context,
  reader: LogVerifyRepository,
  options: {
    origin: string;
    verifiers: readonly NoteVerifier[];
    externalCheckpoints: readonly string[];
    pageSize?: number;
  },
): Promise<LogVerifySource> {
  const pageSize = options.pageSize ?? VERIFY_PAGE_SIZE;
  const [size, checkpoints] = await Promise.all([reader.stateSize(ctx), reader.checkpointNotes(ctx)]);
  const innerRead = new Map<string, Buffer | null | undefined>();
  return {
    origin: options.origin,
    verifiers: options.verifiers,
    rows: (async function* () {
      // Up to the saved size, and on while pages come back full: rows past the state are read too.
      for (let from = 0; ; from += pageSize) {
        const page = await reader.leafEntries(ctx, from, from + pageSize);
        if (page.length > 0) yield page;
        if (from + pageSize >= size && page.length === 0) break;
      }
    })(),
    readTile: async (level, index) => {
      const tile = await reader.getTileWithInnerRows(ctx, level, index);
      innerRead.set(`${level}/${index}`, tile?.inner);
      return tile?.hashes;
    },
    // The verifier asks for a tile's inner rows with its hashes: the row read for those has them.
    readInnerRows: async (level, index) => {
      const key = `${level}/${index}`;
      if (!innerRead.has(key)) return (await reader.getTileWithInnerRows(ctx, level, index))?.inner;
      const inner = innerRead.get(key);
      innerRead.delete(key);
      return inner;
    },
    expectedEntries: size,
    storedCheckpoints: checkpoints,
    externalCheckpoints: options.externalCheckpoints,
  };
}

/**
 * The tree as the verifier rebuilds it: RFC 6962 hashing of its own (not the integrator's
 * TreeFrontier, so a fault there cannot hide itself), with one-shot hashes over reused buffers,
 * the cost of a verification being almost all hashing.
 */
class RecomputedTree {
  /** The maximal complete subtrees, largest first. */
  readonly #stack: Buffer[] = [];
  #size = 0;
  #leaf = Buffer.alloc(1024);
  readonly #node = Buffer.alloc(1 + 2 * HASH_SIZE);

  constructor() {
    this.#node[0] = 1;
  }

  get size(): number {
    return this.#size;
  }

  /** SHA-256(0x00 ‖ entry). */
  leafHash(entry: Uint8Array): Buffer {
    if (entry.length + 1 > this.#leaf.length) this.#leaf = Buffer.alloc(2 * (entry.length + 1));
    this.#leaf[0] = 0;
    this.#leaf.set(entry, 1);
    return hash('sha256', this.#leaf.subarray(0, entry.length + 1), 'buffer');
  }

  /** SHA-256(0x01 ‖ left ‖ right). */
  nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
    this.#node.set(left, 1);
    this.#node.set(right, 1 + HASH_SIZE);
    return hash('sha256', this.#node, 'buffer');
  }

  /** Appends a leaf hash; `onNode` hears every complete node (level ≥ 1) it completes. */
  append(leaf: Buffer, onNode: (level: number, index: number, hash: Buffer) => void): void {
    let h = leaf;
    let level = 0;
    for (let n = this.#size; n % 2 === 1; n = (n - 1) / 2) {
      h = this.nodeHash(this.#stack.pop()!, h);
      level += 1;
      onNode(level, (n - 1) / 2, h);
    }
    this.#stack.push(h);
    this.#size += 1;
  }

  /** The root of the leaves so far (the empty root before any). */
  root(): Buffer {
    let r = this.#stack[this.#stack.length - 1];
    if (r === undefined) return EMPTY_ROOT;
    for (let i = this.#stack.length - 2; i >= 0; i--) r = this.nodeHash(this.#stack[i]!, r);
    return r;
  }
}

/** The leaf hashes of a page, 32 bytes each, in the page's order. */
function hashLeaves(tree: RecomputedTree, page: readonly LogLeafRow[]): Buffer {
  const out = Buffer.allocUnsafe(page.length * HASH_SIZE);
  for (let k = 0; k < page.length; k++) tree.leafHash(page[k]!.entry).copy(out, k * HASH_SIZE);
  return out;
}

/**
 * The pages with their leaf hashes. In parallel, a worker thread hashes one page's leaves while this
 * thread reads the next page and builds the tree over the one before: reading the database and
 * hashing the leaves are each about as long as the other, so a large log verifies in about the
 * time of the longer of the two rather than their sum.
 */
async function* hashedPages(
  rows: LogVerifySource['rows'],
  parallel: boolean,
): AsyncGenerator<{ page: readonly LogLeafRow[]; hashes: Buffer }> {
  // `for await` takes a sync iterable too; the union only needs telling what its pages are.
  const pages = rows as AsyncIterable<readonly LogLeafRow[]>;
  if (!parallel) {
    const tree = new RecomputedTree();
    for await (const page of pages) yield { page, hashes: hashLeaves(tree, page) };
    return;
  }
  const hasher = new LeafHasher();
  try {
    let inFlight: Promise<{ page: readonly LogLeafRow[]; hashes: Buffer }> | undefined;
    for await (const page of pages) {
      const next = hasher.hash(page).then((hashes) => ({ page, hashes }));
      // A rejection is taken when this page's turn comes, never left unhandled meanwhile.
      next.catch(() => undefined);
      if (inFlight !== undefined) yield await inFlight;
      inFlight = next;
    }
    if (inFlight !== undefined) yield await inFlight;
  } finally {
    await hasher.close();
  }
}

/** The worker's code: SHA-256(0x00 ‖ entry) of each entry of a packed page (CommonJS, node:crypto only). */
const LEAF_HASHER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { hash } = require('node:crypto');
let scratch = Buffer.alloc(1024);
parentPort.on('message', (m) => {
  const data = Buffer.from(m.data);
  const offsets = new Uint32Array(m.offsets);
  const n = offsets.length - 1;
  const out = new ArrayBuffer(32 * n);
  const o = Buffer.from(out);
  for (let i = 0; i < n; i++) {
    const len = offsets[i + 1] - offsets[i];
    if (len + 1 > scratch.length) scratch = Buffer.alloc(2 * (len + 1));
    scratch[0] = 0;
    data.copy(scratch, 1, offsets[i], offsets[i + 1]);
    hash('sha256', scratch.subarray(0, len + 1), 'buffer').copy(o, 32 * i);
  }
  parentPort.postMessage({ id: m.id, hashes: out }, [out]);
});
`;

/** Leaf hashing on a worker thread: a page goes over packed in one buffer, its hashes come back in one. */
class LeafHasher {
  readonly #worker = new Worker(LEAF_HASHER_SOURCE, { eval: true });
  readonly #waiting = new Map<number, { resolve: (b: Buffer) => void; reject: (e: unknown) => void }>();
  #next = 0;
  #failed: Error | undefined;

  constructor() {
    this.#worker.on('message', (m: { id: number; hashes: ArrayBuffer }) => {
      const w = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      w?.resolve(Buffer.from(m.hashes));
    });
    this.#worker.on('error', (err) => {
      this.#failed = err;
      for (const w of this.#waiting.values()) w.reject(err);
      this.#waiting.clear();
    });
  }

  hash(page: readonly LogLeafRow[]): Promise<Buffer> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    let total = 0;
    for (const r of page) total += r.entry.length;
    const data = new ArrayBuffer(total);
    const bytes = new Uint8Array(data);
    const offsets = new Uint32Array(page.length + 1);
    let at = 0;
    for (let k = 0; k < page.length; k++) {
      bytes.set(page[k]!.entry, at);
      at += page[k]!.entry.length;
      offsets[k + 1] = at;
    }
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#worker.postMessage({ id, data, offsets: offsets.buffer }, [data, offsets.buffer]);
    });
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }
}
