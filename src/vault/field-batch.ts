/**
 * Sealing and opening many field values at once, in columns: a batch names each record once and its
 * fields after it, and the results come back in one buffer with offsets, so a batch of thousands of
 * values makes a handful of allocations instead of several per value.
 *
 * One AES-256-GCM value costs about 5 µs in node:crypto (five native calls, whatever its size). A
 * worker-thread pool was tried and removed: cloning a batch to a worker cost nearly as much as
 * sealing it, and on two cores the main thread's database work competes with the worker anyway
 * (measured in docs/benchmarks.md).
 */
import type { KeyObject } from 'node:crypto';
import { PledgeError } from '../platform/errors.js';
import { fieldAad, open, seal } from './vault.crypto.js';

/** Values to seal or open, record by record; each record's fields are contiguous in `fields`. */
export interface CryptoBatch {
  keys: KeyObject[];
  records: {
    /** Index into `keys`. */
    key: number[];
    subjectId: string[];
    recordId: string[];
    keyVersion: number[];
    /** The index of the record's first field in `fields`; the next record's start ends it. */
    firstField: number[];
  };
  fields: {
    name: string[];
    /** To seal: the value as JSON text. To open: the sealed bytes. */
    data: Array<string | Uint8Array>;
  };
}

/** The results of a batch: value i is `buffer[offsets[i], offsets[i + 1])`. */
export interface CryptoResult {
  buffer: Uint8Array;
  offsets: Uint32Array;
}

/** Seals or opens a batch. */
export function runBatch(op: 'seal' | 'open', batch: CryptoBatch): CryptoResult {
  const { records, fields } = batch;
  const out: Buffer[] = new Array<Buffer>(fields.name.length);
  let total = 0;
  for (let r = 0; r < records.recordId.length; r++) {
    const key = batch.keys[records.key[r] ?? -1];
    if (!key) throw new PledgeError('vault.crypto_failed', 'a crypto batch named a key it did not carry');
    const binding = {
      subjectId: records.subjectId[r] ?? '',
      recordId: records.recordId[r] ?? '',
      field: '',
      keyVersion: records.keyVersion[r] ?? 0,
    };
    const end = records.firstField[r + 1] ?? fields.name.length;
    for (let f = records.firstField[r] ?? 0; f < end; f++) {
      binding.field = fields.name[f] ?? '';
      const data = fields.data[f] ?? '';
      const aad = fieldAad(binding);
      const value =
        op === 'seal'
          ? seal(key, Buffer.from(data as string, 'utf8'), aad)
          : open(
              key,
              Buffer.from(
                (data as Uint8Array).buffer,
                (data as Uint8Array).byteOffset,
                (data as Uint8Array).byteLength,
              ),
              aad,
            );
      out[f] = value;
      total += value.length;
    }
  }
  const buffer = Buffer.allocUnsafe(total);
  const offsets = new Uint32Array(out.length + 1);
  let at = 0;
  for (let i = 0; i < out.length; i++) {
    offsets[i] = at;
    at += (out[i] as Buffer).copy(buffer, at);
  }
  offsets[out.length] = at;
  return { buffer, offsets };
}

/** The i-th value of a result, as a Buffer sharing its memory. */
export function resultValue(result: CryptoResult, i: number): Buffer {
  const start = result.offsets[i] ?? 0;
  const end = result.offsets[i + 1] ?? start;
  return Buffer.from(result.buffer.buffer, result.buffer.byteOffset + start, end - start);
}

/** Seals a batch (field data: JSON text); value i is field i's sealed bytes. */
export function sealBatch(batch: CryptoBatch): Buffer[] {
  const r = runBatch('seal', batch);
  return Array.from({ length: batch.fields.name.length }, (_, i) => resultValue(r, i));
}

/** Opens a batch (field data: sealed bytes); value i is field i's JSON text as bytes. */
export function openBatch(batch: CryptoBatch): Buffer[] {
  const r = runBatch('open', batch);
  return Array.from({ length: batch.fields.name.length }, (_, i) => resultValue(r, i));
}
