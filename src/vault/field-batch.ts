/**
 * Sealing and opening many field values at once, packed into one buffer in and one buffer out, so a
 * batch can go to a worker thread by transfer (no structured clone of thousands of strings) and
 * come back the same way. The same functions run inline and in the worker (crypto.worker.ts): the
 * envelope is `seal` and `open` of vault.crypto.ts and the AAD is the bytes `fieldAad` makes, either way.
 *
 * A sealed batch comes back as each record's `fields` column text, ready to store
 * (`{"email":{"c":"user.contact.email","v":"<base64>"}}`); an opened batch as one JSON array with
 * each record's readable fields (`[{"email":{"category":"...","value":...}}]`), parsed with one
 * `JSON.parse`. Building those texts where the crypto runs takes the base64 and JSON work off the
 * thread that talks to the database as well.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { coversCategory } from '../manifest/taxonomy.js';
import { PledgeError } from '../platform/errors.js';
import { open, seal } from './vault.crypto.js';

const KEY_BYTES = 32;
const AAD_LABEL = Buffer.from('pledge.field.v1', 'utf8');

/** A packed batch: an ArrayBuffer of its own (transferable) and how many values it holds. */
export interface PackedBatch {
  bytes: Uint8Array;
  /** Field values to seal, or records to open: what a worker's share is measured in. */
  values: number;
}

/** Writes little-endian u32s and UTF-8 strings into a growing buffer backed by its own ArrayBuffer. */
class Packer {
  #buf: Buffer;
  at = 0;

  constructor(capacity: number) {
    this.#buf = Buffer.from(new ArrayBuffer(Math.max(64, capacity)));
  }

  u32(n: number): void {
    this.#ensure(4);
    this.#buf.writeUInt32LE(n, this.at);
    this.at += 4;
  }

  /** A string as u32 byte length then its UTF-8 bytes. */
  text(s: string): void {
    this.#ensure(4 + s.length * 3);
    const n = this.#buf.write(s, this.at + 4, 'utf8');
    this.#buf.writeUInt32LE(n, this.at);
    this.at += 4 + n;
  }

  bytes(b: Uint8Array): void {
    this.#ensure(b.length);
    this.#buf.set(b, this.at);
    this.at += b.length;
  }

  /** The bytes written, still on their own ArrayBuffer (the unused tail travels too; it is small). */
  done(): Uint8Array {
    return new Uint8Array(this.#buf.buffer, 0, this.at);
  }

  #ensure(n: number): void {
    if (this.at + n <= this.#buf.length) return;
    const next = Buffer.from(new ArrayBuffer(Math.max(this.#buf.length * 2, this.at + n)));
    this.#buf.copy(next, 0, 0, this.at);
    this.#buf = next;
  }
}

/** Reads what a Packer wrote. */
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
    const n = this.u32();
    const s = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return s;
  }

  take(n: number): Buffer {
    const s = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return s;
  }
}

/**
 * Builds the AAD of `fieldAad` from bytes: the label, subject and record once per record, then the
 * field and key version per value, in one scratch buffer (setAAD consumes it at once).
 */
class AadBuilder {
  #scratch = Buffer.allocUnsafe(256);
  #head = 0;

  record(subject: Uint8Array, recordId: Uint8Array): void {
    this.#head = 0;
    this.#head = this.#part(0, AAD_LABEL);
    this.#head = this.#part(this.#head, subject);
    this.#head = this.#part(this.#head, recordId);
  }

  field(name: Uint8Array, keyVersion: Uint8Array): Buffer {
    const at = this.#part(this.#head, name);
    const end = this.#part(at, keyVersion);
    return this.#scratch.subarray(0, end);
  }

  #part(at: number, bytes: Uint8Array): number {
    if (at + 4 + bytes.length > this.#scratch.length) {
      const next = Buffer.allocUnsafe(Math.max(this.#scratch.length * 2, at + 4 + bytes.length));
      this.#scratch.copy(next, 0, 0, at);
      this.#scratch = next;
    }
    this.#scratch.writeUInt32BE(bytes.length, at);
    this.#scratch.set(bytes, at + 4);
    return at + 4 + bytes.length;
  }
}

/** A growing output buffer on its own ArrayBuffer. */
class Output {
  buf: Buffer;
  at = 0;

  constructor(capacity: number) {
    this.buf = Buffer.from(new ArrayBuffer(Math.max(64, capacity)));
  }

  ensure(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.from(new ArrayBuffer(Math.max(this.buf.length * 2, this.at + n)));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  ascii(s: string): void {
    this.ensure(s.length);
    this.at += this.buf.write(s, this.at, 'latin1');
  }

  utf8(s: string): void {
    this.ensure(s.length * 3);
    this.at += this.buf.write(s, this.at, 'utf8');
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  done(): Uint8Array {
    return new Uint8Array(this.buf.buffer, 0, this.at);
  }
}

function readKeys(r: Reader, n: number): KeyObject[] {
  const keys: KeyObject[] = [];
  for (let i = 0; i < n; i++) keys.push(createSecretKey(r.take(KEY_BYTES)));
  return keys;
}

// ---- sealing -------------------------------------------------------------------------------------

/**
 * Collects the values of a write: keys (raw bytes, sent with the batch and dropped with it, so no
 * thread keeps a key that erasure destroyed), records and their fields as JSON text.
 */
export class SealBatchBuilder {
  readonly #keys: Uint8Array[] = [];
  /** Each distinct (field name, category): the name for the AAD, the JSON text before the value. */
  readonly #slots: Array<{ name: string; prefix: string }> = [];
  readonly #slotIndex = new Map<string, number>();
  readonly #records: Array<{
    key: number;
    subjectId: string;
    recordId: string;
    keyVersion: number;
    slots: number[];
    json: string[];
    size: number;
  }> = [];
  #values = 0;

  /** Adds a data key (32 bytes); returns its index for {@link addRecord}. */
  addKey(key: Uint8Array): number {
    if (key.length !== KEY_BYTES)
      throw new PledgeError('vault.key_invalid', 'an encryption key must be 32 bytes');
    return this.#keys.push(key) - 1;
  }

  /** Starts a record; its fields follow with {@link addField}. */
  addRecord(key: number, subjectId: string, recordId: string, keyVersion: number): void {
    this.#records.push({ key, subjectId, recordId, keyVersion, slots: [], json: [], size: 0 });
  }

  /** Adds a field to the last record: its name, category and value as JSON text. */
  addField(name: string, category: string, json: string): void {
    const record = this.#records[this.#records.length - 1];
    if (!record) throw new PledgeError('vault.internal', 'a field was added before its record');
    const id = `${name}\u0000${category}`;
    let slot = this.#slotIndex.get(id);
    if (slot === undefined) {
      slot =
        this.#slots.push({ name, prefix: `${JSON.stringify(name)}:{"c":${JSON.stringify(category)},"v":"` }) -
        1;
      this.#slotIndex.set(id, slot);
    }
    record.slots.push(slot);
    record.json.push(json);
    record.size += json.length;
    this.#values++;
  }

  /** How many values the batch seals. */
  get values(): number {
    return this.#values;
  }

  /** How many records the batch holds. */
  get records(): number {
    return this.#records.length;
  }

  /** Packs the records into about `parts` batches of similar size, in record order. */
  pack(parts = 1): PackedBatch[] {
    const out: PackedBatch[] = [];
    const per = Math.ceil(this.#values / Math.max(1, parts));
    let from = 0;
    while (from < this.#records.length) {
      let to = from;
      let values = 0;
      while (to < this.#records.length && (values < per || to === from)) {
        values += this.#records[to]?.slots.length ?? 0;
        to++;
      }
      out.push({ bytes: this.#packRange(from, to), values });
      from = to;
    }
    return out;
  }

  #packRange(from: number, to: number): Uint8Array {
    let size = 16 + this.#keys.length * KEY_BYTES;
    for (const s of this.#slots) size += 8 + (s.name.length + s.prefix.length) * 3;
    for (let r = from; r < to; r++) {
      const rec = this.#records[r];
      if (rec)
        size += 32 + (rec.subjectId.length + rec.recordId.length) * 3 + rec.slots.length * 8 + rec.size * 3;
    }
    const p = new Packer(size);
    p.u32(this.#keys.length);
    p.u32(this.#slots.length);
    p.u32(to - from);
    for (const k of this.#keys) p.bytes(k);
    for (const s of this.#slots) {
      p.text(s.name);
      p.text(s.prefix);
    }
    for (let r = from; r < to; r++) {
      const rec = this.#records[r];
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
    return p.done();
  }
}

/**
 * Seals a packed batch: each record's `fields` column text, as `u32 count | u32 offsets[count + 1]
 * | texts`. Runs in a worker or inline; throws PledgeErrors only.
 */
export function sealPacked(input: Uint8Array): Uint8Array {
  const r = new Reader(input);
  const nKeys = r.u32();
  const nSlots = r.u32();
  const nRecords = r.u32();
  const keys = readKeys(r, nKeys);
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
  const aad = new AadBuilder();
  for (let i = 0; i < nRecords; i++) {
    const key = keys[r.u32()];
    const version = Buffer.from(String(r.u32()), 'utf8');
    const nFields = r.u32();
    const subject = r.slice();
    const recordId = r.slice();
    if (!key) throw new PledgeError('vault.crypto_failed', 'a crypto batch named a key it did not carry');
    aad.record(subject, recordId);
    offsets.push(out.at - header);
    out.ascii('{');
    for (let f = 0; f < nFields; f++) {
      const slot = r.u32();
      const plaintext = r.slice();
      const name = names[slot];
      const prefix = prefixes[slot];
      if (!name || prefix === undefined)
        throw new PledgeError('vault.crypto_failed', 'a crypto batch named an unknown field');
      if (f > 0) out.ascii(',');
      out.utf8(prefix);
      out.ascii(seal(key, plaintext, aad.field(name, version)).toString('base64'));
      out.ascii('"}');
    }
    out.ascii('}');
  }
  offsets.push(out.at - header);
  out.buf.writeUInt32LE(nRecords, 0);
  offsets.forEach((o, i) => out.buf.writeUInt32LE(o, 4 + 4 * i));
  return out.done();
}

/** The `fields` column texts of a sealed batch, one per record, in order. */
export function readSealed(output: Uint8Array): string[] {
  const r = new Reader(output);
  const n = r.u32();
  const header = 4 + 4 * (n + 1);
  const texts: string[] = [];
  let start = r.u32();
  for (let i = 0; i < n; i++) {
    const end = r.u32();
    texts.push(r.buf.toString('utf8', header + start, header + end));
    start = end;
  }
  return texts;
}

// ---- opening -------------------------------------------------------------------------------------

/** A field as the use gate returns it. */
export interface OpenedField {
  category: string;
  value: unknown;
}

/**
 * Collects the records of a read, of one subject or several (a mail campaign reads a page of
 * recipients at once): each record's subject and `fields` column text as stored, and the categories
 * the purpose may use. Opening decrypts only the fields of those categories.
 */
export class OpenBatchBuilder {
  readonly #categories: readonly string[];
  readonly #keys: Uint8Array[] = [];
  readonly #records: Array<{
    key: number;
    subjectId: string;
    recordId: string;
    keyVersion: number;
    fields: string;
  }> = [];

  constructor(categories: readonly string[]) {
    this.#categories = categories;
  }

  /** Adds a data key (32 bytes); returns its index for {@link addRecord}. */
  addKey(key: Uint8Array): number {
    if (key.length !== KEY_BYTES)
      throw new PledgeError('vault.key_invalid', 'an encryption key must be 32 bytes');
    return this.#keys.push(key) - 1;
  }

  /** Adds a record with its subject and its `fields` column text as stored. */
  addRecord(key: number, subjectId: string, recordId: string, keyVersion: number, fields: string): void {
    this.#records.push({ key, subjectId, recordId, keyVersion, fields });
  }

  /** How many records the batch holds. */
  get records(): number {
    return this.#records.length;
  }

  /** Packs the records into about `parts` batches of similar size, in record order. */
  pack(parts = 1): PackedBatch[] {
    let total = 0;
    for (const rec of this.#records) total += rec.fields.length;
    const per = Math.ceil(total / Math.max(1, parts));
    const out: PackedBatch[] = [];
    let from = 0;
    while (from < this.#records.length) {
      let to = from;
      let size = 0;
      while (to < this.#records.length && (size < per || to === from)) {
        size += this.#records[to]?.fields.length ?? 0;
        to++;
      }
      out.push({ bytes: this.#packRange(from, to, size), values: to - from });
      from = to;
    }
    return out;
  }

  #packRange(from: number, to: number, textSize: number): Uint8Array {
    let size = 64 + this.#keys.length * KEY_BYTES + textSize * 3;
    for (const c of this.#categories) size += 4 + c.length * 3;
    for (let r = from; r < to; r++) {
      const rec = this.#records[r];
      size += 16 + ((rec?.recordId.length ?? 0) + (rec?.subjectId.length ?? 0)) * 3;
    }
    const p = new Packer(size);
    p.u32(this.#keys.length);
    p.u32(this.#categories.length);
    p.u32(to - from);
    for (const k of this.#keys) p.bytes(k);
    for (const c of this.#categories) p.text(c);
    for (let r = from; r < to; r++) {
      const rec = this.#records[r];
      if (!rec) continue;
      p.u32(rec.key);
      p.u32(rec.keyVersion);
      p.text(rec.subjectId);
      p.text(rec.recordId);
      p.text(rec.fields);
    }
    return p.done();
  }
}

/**
 * Opens a packed batch: a JSON array with, for each record, an object of the fields whose category
 * the purpose may use (`{}` when none), each `{ "category", "value" }`. A value that does not open
 * fails the whole batch with `vault.decrypt_failed`. Runs in a worker or inline.
 */
export function openPacked(input: Uint8Array): Uint8Array {
  const r = new Reader(input);
  const nKeys = r.u32();
  const nCategories = r.u32();
  const nRecords = r.u32();
  const keys = readKeys(r, nKeys);
  const categories: string[] = [];
  for (let i = 0; i < nCategories; i++) categories.push(r.slice().toString('utf8'));
  const allowed = new Map<string, boolean>();
  /** (name, category) -> the JSON text before the value and the name's bytes for the AAD. */
  const slots = new Map<string, { prefix: string; name: Buffer }>();
  const out = new Output(input.length + 64);
  const aad = new AadBuilder();
  out.ascii('[');
  for (let i = 0; i < nRecords; i++) {
    const key = keys[r.u32()];
    const version = Buffer.from(String(r.u32()), 'utf8');
    const subject = r.slice();
    const recordId = r.slice();
    const stored = JSON.parse(r.slice().toString('utf8')) as Record<string, { c?: unknown; v?: unknown }>;
    if (!key) throw new PledgeError('vault.crypto_failed', 'a crypto batch named a key it did not carry');
    aad.record(subject, recordId);
    if (i > 0) out.ascii(',');
    out.ascii('{');
    let first = true;
    for (const name of Object.keys(stored)) {
      const field = stored[name];
      const category = field?.c;
      if (typeof category !== 'string' || typeof field?.v !== 'string') continue;
      let ok = allowed.get(category);
      if (ok === undefined) {
        ok = categories.some((c) => coversCategory(c, category));
        allowed.set(category, ok);
      }
      if (!ok) continue;
      const id = `${name}\u0000${category}`;
      let slot = slots.get(id);
      if (!slot) {
        slot = {
          prefix: `${JSON.stringify(name)}:{"category":${JSON.stringify(category)},"value":`,
          name: Buffer.from(name, 'utf8'),
        };
        slots.set(id, slot);
      }
      const plaintext = open(key, Buffer.from(field.v, 'base64'), aad.field(slot.name, version));
      if (!first) out.ascii(',');
      first = false;
      out.utf8(slot.prefix);
      out.bytes(plaintext);
      out.ascii('}');
    }
    out.ascii('}');
  }
  out.ascii(']');
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
