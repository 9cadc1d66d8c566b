/**
 * Field encryption spread over the machine's cores. One AES-256-GCM value costs about 6 µs in
 * node:crypto (four native calls per value, whatever its size), so a record of 8 fields is ~50 µs of
 * one core: a batch is split between this thread and worker threads so large writes and reads use
 * every core. Small jobs run inline: posting to a worker would cost more than it saves.
 */
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { PledgeError } from '../platform/errors.js';
import { openField, sealField, type FieldBinding } from './vault.crypto.js';

/** A value to seal: under `keys[key]`, for `binding`. */
export interface SealItem {
  key: number;
  binding: FieldBinding;
  value: unknown;
}

/** A value to open: under `keys[key]`, for `binding`. */
export interface OpenItem {
  key: number;
  binding: FieldBinding;
  sealed: Uint8Array;
}

/** A job as posted to a worker. */
export type CryptoJob =
  | { id: number; op: 'seal'; keys: KeyObject[]; items: SealItem[] }
  | { id: number; op: 'open'; keys: KeyObject[]; items: OpenItem[] };

/** A worker's answer. */
export type CryptoJobResult =
  { id: number; ok: true; values: unknown[] } | { id: number; ok: false; code: string };

/** Tuning. */
export interface CryptoPoolOptions {
  /** Worker threads (default: cores - 1; 0 runs everything inline). */
  workers?: number;
  /** Jobs smaller than this many values run inline (default 256). */
  inlineBelow?: number;
}

interface Pending {
  resolve: (values: unknown[]) => void;
  reject: (err: unknown) => void;
}

/** Seals items inline; shared by this thread and the workers. */
export function sealItems(keys: readonly KeyObject[], items: readonly SealItem[]): Buffer[] {
  return items.map((it) => sealField(keyAt(keys, it.key), it.binding, it.value));
}

/** Opens items inline; shared by this thread and the workers. */
export function openItems(keys: readonly KeyObject[], items: readonly OpenItem[]): unknown[] {
  return items.map((it) =>
    openField(
      keyAt(keys, it.key),
      it.binding,
      Buffer.from(it.sealed.buffer, it.sealed.byteOffset, it.sealed.byteLength),
    ),
  );
}

function keyAt(keys: readonly KeyObject[], i: number): KeyObject {
  const key = keys[i];
  if (!key) throw new PledgeError('vault.crypto_failed', 'a crypto job named a key it did not carry');
  return key;
}

/**
 * Starts a crypto worker. Built, it is seal.worker.js beside this file. From the TypeScript sources
 * (tests, `tsx`), Node 20 does not apply the parent's module hooks to a worker's entry point, so the
 * worker registers tsx itself before importing the .ts entry.
 */
function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./seal.worker.js', import.meta.url));
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./seal.worker.ts', import.meta.url).href;
  return new Worker(
    `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`,
    { eval: true },
  );
}

/** A small pool of crypto workers. */
export class CryptoPool {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, Pending>();
  readonly #inlineBelow: number;
  #nextId = 1;
  #next = 0;

  constructor(options: CryptoPoolOptions = {}) {
    const count = options.workers ?? Math.max(0, availableParallelism() - 1);
    this.#inlineBelow = options.inlineBelow ?? 256;
    // Under tsx (tests) the worker is the TypeScript source; built, it is the .js beside this file.
    for (let i = 0; i < count; i++) {
      const worker = startWorker();
      // An idle pool must not keep the process alive.
      worker.unref();
      worker.on('message', (r: CryptoJobResult) => {
        const p = this.#pending.get(r.id);
        if (!p) return;
        this.#pending.delete(r.id);
        if (r.ok) p.resolve(r.values);
        else p.reject(new PledgeError(r.code, 'a stored value does not decrypt under its key and binding'));
      });
      worker.on('error', (err) => {
        for (const [id, p] of this.#pending) {
          this.#pending.delete(id);
          p.reject(err);
        }
      });
      this.#workers.push(worker);
    }
  }

  /** Seals every item; the result is in the items' order. */
  async seal(keys: KeyObject[], items: SealItem[]): Promise<Buffer[]> {
    const values = await this.#run('seal', keys, items, (part) => sealItems(keys, part));
    // Buffers come back from workers as Uint8Array copies.
    return values.map((v) => (Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array)));
  }

  /** Opens every item; throws `vault.decrypt_failed` if any fails. */
  open(keys: KeyObject[], items: OpenItem[]): Promise<unknown[]> {
    return this.#run('open', keys, items, (part) => openItems(keys, part));
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
    this.#workers.length = 0;
  }

  async #run<T extends SealItem | OpenItem>(
    op: 'seal' | 'open',
    keys: KeyObject[],
    items: T[],
    inline: (part: T[]) => unknown[],
  ): Promise<unknown[]> {
    if (this.#workers.length === 0 || items.length < this.#inlineBelow) return inline(items);
    // This thread takes one share, each worker another.
    const shares = this.#workers.length + 1;
    const size = Math.ceil(items.length / shares);
    const remote: Array<Promise<unknown[]>> = [];
    for (let i = 1; i < shares; i++) {
      const part = items.slice(i * size, (i + 1) * size);
      if (part.length > 0)
        remote.push(this.#post({ id: this.#nextId++, op, keys, items: part } as CryptoJob));
    }
    let local: unknown[];
    try {
      local = inline(items.slice(0, size));
    } catch (err) {
      await Promise.allSettled(remote);
      throw err;
    }
    const rest = await Promise.all(remote);
    return local.concat(...rest);
  }

  #post(job: CryptoJob): Promise<unknown[]> {
    const worker = this.#workers[this.#next++ % this.#workers.length];
    if (!worker) return Promise.reject(new PledgeError('vault.crypto_failed', 'no crypto worker'));
    return new Promise<unknown[]>((resolve, reject) => {
      this.#pending.set(job.id, { resolve, reject });
      worker.postMessage(job);
    });
  }
}
