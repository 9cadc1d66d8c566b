/**
 * Where field values are sealed and opened: worker threads for batches big enough to repay the hop,
 * inline for small ones. One AES-256-GCM value costs ~5 µs of CPU in node:crypto whatever its size,
 * so a 500-record write (4,000 values) or a 1,000-record read is tens of milliseconds of crypto; in
 * a worker it runs on another core while the main thread talks to the database, and it does not
 * stall the event loop (an HTTP server keeps answering during a large read).
 *
 * Batches travel packed in one ArrayBuffer each way, by transfer: a structured clone of thousands
 * of strings cost about as much as the crypto itself, which is why an earlier pool was removed.
 *
 * The pool is shared by the process. Workers start on first use and are unreferenced while idle,
 * so they never keep a process alive. If a worker cannot start (the worker file is missing, as when
 * the CLI runs its TypeScript sources without tsx in worker threads), batches run inline.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PledgeError } from '../platform/errors.js';
import type { OpenBatch, OpenedField, SealBatch } from './field-batch.js';
import { openPacked, packOpen, packSeal, readOpened, readSealed, sealPacked } from './field-batch.wire.js';

/** Tuning, mostly for tests. */
export interface CryptoPoolOptions {
  /** Worker threads (default: the available parallelism, at most 4; 0 runs everything inline). */
  workers?: number;
  /** Batches of fewer values than this run inline: the hop to a worker costs ~50 µs (default 64). */
  inlineBelow?: number;
  /** The worker module; defaults to crypto.worker beside this file. A .ts module is loaded through tsx. */
  workerUrl?: URL;
}

type Op = 'seal' | 'open';

/**
 * A young generation of 8 MiB per worker instead of V8's default (16 MiB semi-spaces, grown to fit
 * the allocation rate). A batch's garbage is short-lived, so the smaller nursery costs no
 * throughput, while the default let each worker's heap grow with the work it had done: the process
 * writing 1,000,000 records grew ~42 MiB from the 100k to the 800k mark with it, and stayed flat
 * (−1 and −13 MiB) with 8 MiB. 4 MiB was as flat but slowed 8,000-value reads by ~10 %.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 8 };

interface Pending {
  resolve: (output: Uint8Array) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /** Jobs sent and not answered. */
  pending: Map<number, Pending>;
  /** Jobs waiting for the worker to be ready (not yet transferred, so they can still run inline). */
  waiting: Array<{ id: number; op: Op; input: Uint8Array; pending: Pending }>;
}

/** The worker module beside this one: .ts under tsx, .js once built (dist/vault or the CLI bundle). */
function defaultWorkerUrl(): URL | undefined {
  const here = import.meta.url;
  // From dist/cli-bundle/*.js as from dist/vault/*.js, ../vault/ is dist/vault/.
  const url = here.endsWith('.ts')
    ? new URL('./crypto.worker.ts', here)
    : new URL('../vault/crypto.worker.js', here);
  try {
    return existsSync(fileURLToPath(url)) ? url : undefined;
  } catch {
    return undefined;
  }
}

function run(op: Op, input: Uint8Array): Uint8Array {
  try {
    return op === 'seal' ? sealPacked(input) : openPacked(input);
  } catch (err) {
    throw asCryptoError(err);
  }
}

function here<T>(work: () => T): T {
  try {
    return work();
  } catch (err) {
    throw asCryptoError(err);
  }
}

function asCryptoError(err: unknown): PledgeError {
  return err instanceof PledgeError
    ? err
    : new PledgeError('vault.crypto_failed', 'a crypto batch could not be processed', { cause: err });
}

/** Runs packed crypto batches on worker threads or inline. */
export class CryptoPool {
  static #shared: CryptoPool | undefined;

  readonly #size: number;
  readonly #inlineBelow: number;
  readonly #url: URL | undefined;
  readonly #slots: Slot[] = [];
  #ids = 0;
  /** Set when a worker failed to start: everything runs inline from then on. */
  #broken = false;

  constructor(options: CryptoPoolOptions = {}) {
    this.#size = Math.max(0, options.workers ?? Math.min(4, availableParallelism()));
    this.#inlineBelow = options.inlineBelow ?? 64;
    this.#url = options.workerUrl ?? defaultWorkerUrl();
  }

  /** The process's pool. */
  static shared(): CryptoPool {
    return (CryptoPool.#shared ??= new CryptoPool());
  }

  /** How many worker threads run (0 until the first batch that uses them, or when running inline). */
  get workers(): number {
    return this.#slots.length;
  }

  /** Seals a write's fields: each record's `fields` column text, in order. */
  async seal(batch: SealBatch): Promise<string[]> {
    const parts = this.#partsFor(batch.values);
    if (parts === 0) return here(() => batch.sealHere());
    return readSealed(await Promise.all(packSeal(batch, parts).map((b) => this.#submit('seal', b.bytes))));
  }

  /**
   * Opens a read's records: for each, in order, its fields whose category the batch's purpose may
   * use. A value that does not open fails the batch with `vault.decrypt_failed`.
   */
  async open(batch: OpenBatch): Promise<Array<Record<string, OpenedField>>> {
    const parts = this.#partsFor(batch.records.length);
    if (parts === 0) return here(() => batch.openHere());
    return readOpened(await Promise.all(packOpen(batch, parts).map((b) => this.#submit('open', b.bytes))));
  }

  /** How many parts a batch of `weight` goes to the workers in; 0 to run it on this thread. */
  #partsFor(weight: number): number {
    if (weight < this.#inlineBelow || this.#size === 0 || this.#url === undefined || this.#broken) return 0;
    return Math.max(1, Math.min(this.#size, Math.floor(weight / Math.max(1, this.#inlineBelow))));
  }

  /** Stops the workers (tests; a process exits without it, the workers are unreferenced when idle). */
  async close(): Promise<void> {
    const slots = this.#slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  #submit(op: Op, input: Uint8Array): Promise<Uint8Array> {
    const slot = this.#pick();
    if (!slot) return Promise.resolve().then(() => run(op, input));
    const id = ++this.#ids;
    return new Promise<Uint8Array>((resolve, reject) => {
      const pending = { resolve, reject };
      if (!slot.ready) {
        slot.waiting.push({ id, op, input, pending });
        return;
      }
      this.#send(slot, id, op, input, pending);
    });
  }

  #send(slot: Slot, id: number, op: Op, input: Uint8Array, pending: Pending): void {
    slot.pending.set(id, pending);
    if (slot.pending.size === 1) slot.worker.ref();
    slot.worker.postMessage({ id, op, input }, [input.buffer as ArrayBuffer]);
  }

  /** The worker with the fewest jobs in hand, starting workers up to the pool's size. */
  #pick(): Slot | undefined {
    if (this.#broken) return undefined;
    let best: Slot | undefined;
    for (const s of this.#slots) {
      if (!best || s.pending.size + s.waiting.length < best.pending.size + best.waiting.length) best = s;
    }
    if ((!best || best.pending.size + best.waiting.length > 0) && this.#slots.length < this.#size) {
      const started = this.#start();
      if (started) return started;
    }
    return best;
  }

  #start(): Slot | undefined {
    if (!this.#url) return undefined;
    let worker: Worker;
    try {
      worker = this.#url.pathname.endsWith('.ts')
        ? // Running from the TypeScript sources: Node 20 does not pass tsx's loader hooks on to
          // worker threads, so the worker registers tsx itself before loading the module.
          new Worker(
            `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
              `.then(({ register }) => { register(); return import(${JSON.stringify(this.#url.href)}); });`,
            { eval: true, resourceLimits: WORKER_LIMITS },
          )
        : new Worker(this.#url, { resourceLimits: WORKER_LIMITS });
    } catch {
      this.#broken = true;
      return undefined;
    }
    worker.unref();
    const slot: Slot = { worker, ready: false, pending: new Map(), waiting: [] };
    worker.on(
      'message',
      (msg: {
        ready?: true;
        id?: number;
        output?: Uint8Array;
        error?: { code: string; message: string };
      }) => {
        if (msg.ready) {
          slot.ready = true;
          for (const w of slot.waiting.splice(0)) this.#send(slot, w.id, w.op, w.input, w.pending);
          return;
        }
        const pending = msg.id === undefined ? undefined : slot.pending.get(msg.id);
        if (!pending || msg.id === undefined) return;
        slot.pending.delete(msg.id);
        if (slot.pending.size === 0) worker.unref();
        if (msg.error) pending.reject(new PledgeError(msg.error.code, msg.error.message));
        else if (msg.output) pending.resolve(msg.output);
        else pending.reject(new PledgeError('vault.crypto_failed', 'a crypto worker answered nothing'));
      },
    );
    const fail = (err: unknown) => {
      const index = this.#slots.indexOf(slot);
      if (index >= 0) this.#slots.splice(index, 1);
      if (!slot.ready) {
        // It never started: run inline from now on, including what waited for it.
        this.#broken = true;
        for (const w of slot.waiting.splice(0)) {
          try {
            w.pending.resolve(run(w.op, w.input));
          } catch (e) {
            w.pending.reject(e);
          }
        }
      }
      // Sent jobs are lost with the worker (their buffers went with them): they fail, the caller retries.
      for (const p of slot.pending.values()) {
        p.reject(new PledgeError('vault.crypto_failed', 'a crypto worker stopped', { cause: err }));
      }
      slot.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (this.#slots.includes(slot) || slot.pending.size > 0 || slot.waiting.length > 0) {
        fail(new Error(`crypto worker exited with code ${code}`));
      }
    });
    this.#slots.push(slot);
    return slot;
  }
}
