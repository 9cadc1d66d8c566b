/**
 * Where a beacon's crypto runs: the seal of its fields (AES-256-GCM) and its visitor hash
 * (HMAC-SHA256). A CPU profile of `pledge serve` under beacon load put them at a fifth of the
 * main thread's time per beacon; the beacons of one event-loop turn are sealed together on a worker
 * thread of their own while the main thread goes on parsing requests, and only then handed to the
 * group commit (before its transaction opens, so the database is never held while a worker works).
 * Small batches, and every batch when the worker cannot start, run inline. Either way a value
 * comes out exactly as BeaconSeal makes it (the worker's envelope is checked against
 * BeaconSeal.open by the tests).
 *
 * The worker is inline code (no file to find in dist/ or the CLI bundle), holds the current seal and
 * visitor keys only, and is unreferenced, so it never keeps a process alive.
 */
import { createHmac } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { BeaconFields, BeaconSeal } from './beacons.seal.js';

/** What a row needs before it is stored. */
export interface BeaconCryptoJob {
  /** The event's id, which the seal is bound to. */
  id: string;
  fields: BeaconFields;
  /** The visitor cookie's id (hashed under the beacons key), or a cookieless hash's input and salt. */
  visitor: { cookie: string } | { salt: Buffer; material: string };
}

/** A row's sealed fields and visitor hash. */
export interface BeaconCryptoResult {
  sealed: string;
  visitor: string;
}

/** Options of {@link BeaconCrypto}. */
export interface BeaconCryptoOptions {
  /** Use a worker thread (default true); false runs everything inline. */
  worker?: boolean;
  /** Batches smaller than this run inline: the hop to the worker costs more (default 4). */
  inlineBelow?: number;
}

type Wire = [id: string, fields: string, cookie: string | null, salt: Uint8Array | null, material: string];

// The worker: the same envelope as vault.crypto.ts's seal (format byte 1, 12-byte nonce, ciphertext,
// 16-byte tag; base64 after `k<version>:`), the same AAD as beacons.seal.ts, the same HMACs.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createCipheriv, createHmac, createSecretKey, randomFillSync } = require('node:crypto');
const sealKey = createSecretKey(Buffer.from(workerData.sealKey));
const visitorKey = createSecretKey(Buffer.from(workerData.visitorKey));
const prefix = 'k' + workerData.version + ':';
const nonces = Buffer.alloc(12 * 1024);
let at = nonces.length;
function seal(id, plaintext) {
  if (at >= nonces.length) { randomFillSync(nonces); at = 0; }
  const nonce = nonces.subarray(at, at + 12);
  at += 12;
  const cipher = createCipheriv('aes-256-gcm', sealKey, nonce, { authTagLength: 16 });
  cipher.setAAD(Buffer.from('pledge.beacon.v1:' + id));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return prefix + Buffer.concat([Buffer.from([1]), nonce, body, cipher.getAuthTag()]).toString('base64');
}
parentPort.on('message', ({ n, jobs }) => {
  try {
    const out = jobs.map(([id, fields, cookie, salt, material]) => [
      seal(id, fields),
      cookie !== null
        ? createHmac('sha256', visitorKey).update(cookie, 'utf8').digest('hex')
        : createHmac('sha256', Buffer.from(salt)).update(material, 'utf8').digest('hex'),
    ]);
    parentPort.postMessage({ n, out });
  } catch (err) {
    parentPort.postMessage({ n, error: String(err && err.message) });
  }
});
`;

/** Seals and hashes beacons, batched per event-loop turn on a worker thread. */
export class BeaconCrypto {
  readonly #seal: BeaconSeal;
  readonly #inlineBelow: number;
  #worker: Worker | undefined | false;
  #next = 0;
  readonly #pending = new Map<number, { resolve: (out: string[][]) => void; reject: (err: Error) => void }>();
  #queue: Array<{
    job: BeaconCryptoJob;
    resolve: (r: BeaconCryptoResult) => void;
    reject: (e: unknown) => void;
  }> = [];
  #scheduled = false;

  constructor(seal: BeaconSeal, options: BeaconCryptoOptions = {}) {
    this.#seal = seal;
    this.#inlineBelow = options.inlineBelow ?? 4;
    this.#worker = options.worker === false ? false : undefined;
  }

  /** The job's seal and visitor hash; jobs of the same turn are done together. Never rejects for load. */
  submit(job: BeaconCryptoJob): Promise<BeaconCryptoResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  /** A worker thread is running (the last batch big enough went to it). */
  get threaded(): boolean {
    return this.#worker instanceof Worker;
  }

  /** Stops the worker (the next batch starts one again). */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (worker) {
      this.#worker = undefined;
      await worker.terminate();
    }
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    const worker = batch.length >= this.#inlineBelow ? this.#workerOrUndefined() : undefined;
    if (worker !== undefined) {
      try {
        const out = await this.#post(
          worker,
          batch.map(({ job }) => wire(job)),
        );
        batch.forEach((b, i) => b.resolve({ sealed: out[i]![0]!, visitor: out[i]![1]! }));
        return;
      } catch {
        // The worker failed: this batch, and the next ones, inline.
        this.#worker = false;
      }
    }
    for (const b of batch) {
      try {
        b.resolve(this.inline(b.job));
      } catch (err) {
        b.reject(err);
      }
    }
  }

  /** One job on this thread, as the worker does it. */
  inline(job: BeaconCryptoJob): BeaconCryptoResult {
    const sealed = this.#seal.seal(job.id, job.fields);
    const visitor =
      'cookie' in job.visitor
        ? this.#seal.visitorHash(job.visitor.cookie)
        : createHmac('sha256', job.visitor.salt).update(job.visitor.material, 'utf8').digest('hex');
    return { sealed, visitor };
  }

  #workerOrUndefined(): Worker | undefined {
    if (this.#worker === false) return undefined;
    if (this.#worker !== undefined) return this.#worker;
    try {
      const keys = this.#seal.workerKeys();
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: keys,
        resourceLimits: { maxYoungGenerationSizeMb: 8 },
      });
      worker.unref();
      worker.on('message', (m: { n: number; out?: string[][]; error?: string }) => {
        const p = this.#pending.get(m.n);
        if (p === undefined) return;
        this.#pending.delete(m.n);
        if (m.out !== undefined) p.resolve(m.out);
        else p.reject(new Error(m.error ?? 'the beacon crypto worker failed'));
      });
      const failAll = (err: Error, next: false | undefined) => {
        if (this.#worker === worker) this.#worker = next;
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
      };
      // A worker that fails is not tried again; one stopped by close() is started anew when needed.
      worker.on('error', (err) => failAll(err, false));
      worker.on('exit', () => failAll(new Error('the beacon crypto worker stopped'), undefined));
      this.#worker = worker;
      return worker;
    } catch {
      this.#worker = false;
      return undefined;
    }
  }

  #post(worker: Worker, jobs: Wire[]): Promise<string[][]> {
    return new Promise((resolve, reject) => {
      const n = this.#next++;
      this.#pending.set(n, { resolve, reject });
      worker.postMessage({ n, jobs });
    });
  }
}

function wire(job: BeaconCryptoJob): Wire {
  const fields = JSON.stringify(job.fields);
  return 'cookie' in job.visitor
    ? [job.id, fields, job.visitor.cookie, null, '']
    : [job.id, fields, null, job.visitor.salt, job.visitor.material];
}
