/**
 * Seal and open batches packed into one buffer in and one buffer out, so a batch goes to a crypto
 * worker by transfer (no structured clone of thousands of strings) and comes back the same way.
 * The worker (crypto.worker.ts) unpacks and runs each field through the same functions as the
 * calling thread does (`sealField` and `openRecordFields` of field-batch.ts).
 *
 * A sealed batch comes back as each record's `fields` column text; an opened batch as one JSON
 * array with each record's readable fields, parsed with one `JSON.parse`. Building those texts where
 * the crypto runs takes the base64 and JSON work off the thread that talks to the database too.
 */
import { PledgeError } from '../platform/errors.js';
import {
  CategoryFilter,
  keyObjects,
  openRecordFields,
  sealField,
  type OpenBatch,
  type OpenedField,
  type SealBatch,
} from './field-batch.js';
import { FieldAadEncoder } from './vault.crypto.js';

const KEY_BYTES = 32;

/** A packed batch: an ArrayBuffer of its own (transferable) and how many values it holds. */
export interface PackedBatch {
  bytes: Uint8Array;
  /** Field values to seal, or records to open: what a worker's share is measured in. */
  values: number;
}

/** A growing buffer on its own ArrayBuffer (transferable): u32s, UTF-8 text, bytes. */
class Output {
  buf: Buffer;
  at = 0;

  constructor(capacity: number) {
    this.buf = Buffer.from(new ArrayBuffer(Math.max(64, capacity)));
  }

  u32(n: number): void {
    this.#ensure(4);
    this.buf.writeUInt32LE(n, this.at);
    this.at += 4;
  }

  /** A string as u32 byte length then its UTF-8 bytes. */
  text(s: string): void {
    this.#ensure(4 + s.length * 3);
    const n = this.buf.write(s, this.at + 4, 'utf8');
    this.buf.writeUInt32LE(n, this.at);
    this.at += 4 + n;
  }

  /** A string's UTF-8 bytes, without a length. */
  utf8(s: string): void {
    this.#ensure(s.length * 3);
    this.at += this.buf.write(s, this.at, 'utf8');
  }

  bytes(b: Uint8Array): void {
    this.#ensure(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  /** The bytes written, still on their own ArrayBuffer (the unused tail travels too; it is small). */
  done(): Uint8Array {
    return new Uint8Array(this.buf.buffer, 0, this.at);
  }

  #ensure(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.from(new ArrayBuffer(Math.max(this.buf.length * 2, this.at + n)));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
}

/** Reads what an Output wrote. */
class Reader {
  readonly buf: Buffer;
  at = 0;

  constructor(bytes: Uint8Array) {
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  u32(): number {
    const n = this.buf.readUInt32LE(this.at);
    this.at += 4;
    return n;
  }

  /** The next length-prefixed string's bytes, without copying. */
  slice(): Buffer {
    return this.take(this.u32());
  }

  take(n: number): Buffer {
    const s = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return s;
  }
}

/** Splits `n` items into about `parts` runs of similar weight, in order: [from, to) pairs. */
function ranges(n: number, parts: number, weight: (i: number) => number): Array<[number, number]> {
  let total = 0;
  for (let i = 0; i < n; i++) total += weight(i);
  const per = Math.ceil(total / Math.max(1, parts));
  const out: Array<[number, number]> = [];
  for (let from = 0; from < n;) {
    let to = from;
    let w = 0;
    while (to < n && (w < per || to === from)) w += weight(to++);
    out.push([from, to]);
    from = to;
  }
  return out;
}

// ---- sealing -------------------------------------------------------------------------------------

/** Packs a seal batch into about `parts` batches of similar size, in record order. */
export function packSeal(batch: SealBatch, parts: number): PackedBatch[] {
  const { keys, slots, records } = batch;
  return ranges(records.length, parts, (i) => records[i]?.slots.length ?? 0).map(([from, to]) => {
    let size = 16 + keys.length * KEY_BYTES;
    for (const s of slots) size += 8 + (s.name.length + s.prefix.length) * 3;
    let values = 0;
    for (let r = from; r < to; r++) {
      const rec = records[r];
      if (!rec) continue;
      size += 32 + (rec.subjectId.length + rec.recordId.length) * 3 + rec.slots.length * 8 + rec.size * 3;
      values += rec.slots.length;
    }
    const p = new Output(size);
    p.u32(keys.length);
    p.u32(slots.length);
    p.u32(to - from);
    for (const k of keys) p.bytes(k);
    for (const s of slots) {
      p.text(s.name);
      p.text(s.prefix);
    }
    for (let r = from; r < to; r++) {
      const rec = records[r];
      if (!rec) continue;
      p.u32(rec.key);
      p.u32(rec.keyVersion);
      p.u32(rec.slots.length);
      p.text(rec.subjectId);
      p.text(rec.recordId);
      for (let f = 0; f < rec.slots.length; f++) {
        p.u32(rec.slots[f] ?? 0);
        p.text(rec.json[f] ?? 'null');
      }
    }
    return { bytes: p.done(), values };
  });
}

/**
 * Seals a packed batch: each record's `fields` column text, as `u32 count | u32 offsets[count + 1]
 * | texts`. Runs on a worker; throws PledgeErrors only.
 */
export function sealPacked(input: Uint8Array): Uint8Array {
  const r = new Reader(input);
  const nKeys = r.u32();
  const nSlots = r.u32();
  const nRecords = r.u32();
  const keys = keyObjects(Array.from({ length: nKeys }, () => r.take(KEY_BYTES)));
  const names: Buffer[] = [];
  const prefixes: string[] = [];
  for (let i = 0; i < nSlots; i++) {
    names.push(r.slice());
    prefixes.push(r.slice().toString('utf8'));
  }
  const header = 4 + 4 * (nRecords + 1);
  const out = new Output(header + Math.ceil(input.length * 1.6) + nRecords * 16);
  out.at = header;
  const offsets: number[] = [];
  const aad = new FieldAadEncoder();
  for (let i = 0; i < nRecords; i++) {
    const key = keys[r.u32()];
    const version = Buffer.from(String(r.u32()), 'utf8');
    const nFields = r.u32();
    const subject = r.slice();
    const recordId = r.slice();
    if (!key) throw new PledgeError('vault.crypto_failed', 'a crypto batch named a key it did not carry');
    aad.record(subject, recordId);
    offsets.push(out.at - header);
    let text = '{';
    for (let f = 0; f < nFields; f++) {
      const slot = r.u32();
      const plaintext = r.slice();
      const name = names[slot];
      const prefix = prefixes[slot];
      if (!name || prefix === undefined)
        throw new PledgeError('vault.crypto_failed', 'a crypto batch named an unknown field');
      if (f > 0) text += ',';
      text += sealField(aad, key, name, version, prefix, plaintext);
    }
    out.utf8(`${text}}`);
  }
  offsets.push(out.at - header);
  out.buf.writeUInt32LE(nRecords, 0);
  offsets.forEach((o, i) => out.buf.writeUInt32LE(o, 4 + 4 * i));
  return out.done();
}

/** The `fields` column texts of sealed batches, one per record, in order. */
export function readSealed(outputs: readonly Uint8Array[]): string[] {
  const texts: string[] = [];
  for (const output of outputs) {
    const r = new Reader(output);
    const n = r.u32();
    const header = 4 + 4 * (n + 1);
    let start = r.u32();
    for (let i = 0; i < n; i++) {
      const end = r.u32();
      texts.push(r.buf.toString('utf8', header + start, header + end));
      start = end;
    }
  }
  return texts;
}

// ---- opening -------------------------------------------------------------------------------------

/** Packs an open batch into about `parts` batches of similar size, in record order. */
export function packOpen(batch: OpenBatch, parts: number): PackedBatch[] {
  const { keys, categories, records } = batch;
  return ranges(records.length, parts, (i) => records[i]?.fields.length ?? 0).map(([from, to]) => {
    let size = 64 + keys.length * KEY_BYTES;
    for (const c of categories) size += 4 + c.length * 3;
    for (let r = from; r < to; r++) {
      const rec = records[r];
      if (rec) size += 16 + (rec.recordId.length + rec.subjectId.length + rec.fields.length) * 3;
    }
    const p = new Output(size);
    p.u32(keys.length);
    p.u32(categories.length);
    p.u32(to - from);
    for (const k of keys) p.bytes(k);
    for (const c of categories) p.text(c);
    for (let r = from; r < to; r++) {
      const rec = records[r];
      if (!rec) continue;
      p.u32(rec.key);
      p.u32(rec.keyVersion);
      p.text(rec.subjectId);
      p.text(rec.recordId);
      p.text(rec.fields);
    }
    return { bytes: p.done(), values: to - from };
  });
}

/**
 * Opens a packed batch: a JSON array with, for each record, an object of the fields whose category
 * the purpose may use (`{}` when none), each `{ "category", "value" }`. A value that does not open
 * fails the whole batch with `vault.decrypt_failed`. Runs on a worker.
 */
export function openPacked(input: Uint8Array): Uint8Array {
  const r = new Reader(input);
  const nKeys = r.u32();
  const nCategories = r.u32();
  const nRecords = r.u32();
  const keys = keyObjects(Array.from({ length: nKeys }, () => r.take(KEY_BYTES)));
  const categories: string[] = [];
  for (let i = 0; i < nCategories; i++) categories.push(r.slice().toString('utf8'));
  const filter = new CategoryFilter(categories);
  /** (name, category) -> the JSON text before the value. */
  const prefixes = new Map<string, string>();
  const out = new Output(input.length + 64);
  const aad = new FieldAadEncoder();
  let first = true;
  const emit = (name: string, category: string, plaintext: Buffer) => {
    const id = `${name}\u0000${category}`;
    let prefix = prefixes.get(id);
    if (prefix === undefined) {
      prefix = `${JSON.stringify(name)}:{"category":${JSON.stringify(category)},"value":`;
      prefixes.set(id, prefix);
    }
    out.utf8(first ? prefix : `,${prefix}`);
    first = false;
    out.bytes(plaintext);
    out.utf8('}');
  };
  out.utf8('[');
  for (let i = 0; i < nRecords; i++) {
    const key = keys[r.u32()];
    const version = String(r.u32());
    const subject = r.slice();
    const recordId = r.slice();
    const stored = r.slice().toString('utf8');
    if (!key) throw new PledgeError('vault.crypto_failed', 'a crypto batch named a key it did not carry');
    out.utf8(i > 0 ? ',{' : '{');
    first = true;
    openRecordFields(aad, key, subject, recordId, version, stored, filter, emit);
    out.utf8('}');
  }
  out.utf8(']');
  return out.done();
}

/** The records' readable fields of opened batches, one object per record, in order. */
export function readOpened(outputs: readonly Uint8Array[]): Array<Record<string, OpenedField>> {
  const all: Array<Record<string, OpenedField>> = [];
  for (const o of outputs) {
    const text = Buffer.from(o.buffer, o.byteOffset, o.byteLength).toString('utf8');
    for (const fields of JSON.parse(text) as Array<Record<string, OpenedField>>) all.push(fields);
  }
  return all;
}
