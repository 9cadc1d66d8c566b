/**
 * Sealing and opening the fields of many records at once: the one seal/open API of the vault. A
 * write collects its records in a {@link SealBatch}, a read in an {@link OpenBatch}; the crypto
 * pool (crypto-pool.ts) runs a batch here, on the calling thread, or packs it for its worker threads
 * (field-batch.wire.ts). Either way each field goes through {@link sealField} or
 * {@link openRecordFields} with the AAD of vault.crypto.ts, so what one thread seals any other opens.
 *
 * A sealed record is its `fields` column text, ready to store
 * (`{"email":{"c":"user.contact.email","v":"<base64>"}}`); an opened record is an object with its
 * readable fields (`{"email":{"category":"...","value":...}}`).
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { isCredentialCategory } from '../manifest/credentials.js';
import { coversCategory } from '../manifest/taxonomy.js';
import { PledgeError } from '../platform/errors.js';
import { FieldAadEncoder, open, seal } from './vault.crypto.js';

const KEY_BYTES = 32;

/** A field as the use gate returns it. */
export interface OpenedField {
  category: string;
  value: unknown;
}

/** Checks a data key's length; returns it. */
function checkKey(key: Uint8Array): Uint8Array {
  if (key.length !== KEY_BYTES)
    throw new PledgeError('vault.key_invalid', 'an encryption key must be 32 bytes');
  return key;
}

/** KeyObjects for raw keys: node:crypto then imports each key once per batch, not once per value. */
export function keyObjects(keys: readonly Uint8Array[]): KeyObject[] {
  return keys.map((k) => createSecretKey(k));
}

/** The text of a field in the `fields` column before its base64 value: `"name":{"c":"cat","v":"`. */
export function sealedFieldPrefix(name: string, category: string): string {
  return `${JSON.stringify(name)}:{"c":${JSON.stringify(category)},"v":"`;
}

/**
 * Seals one field of the record `aad` was started for and returns its text in the `fields` column:
 * `prefix` (from {@link sealedFieldPrefix}), the base64 sealed value, `"}`.
 */
export function sealField(
  aad: FieldAadEncoder,
  key: KeyObject,
  name: string | Uint8Array,
  keyVersion: string | Uint8Array,
  prefix: string,
  plaintext: Uint8Array,
): string {
  return `${prefix}${seal(key, plaintext, aad.field(name, keyVersion)).toString('base64')}"}`;
}

/**
 * Which categories a purpose may use, each answer worked out once per batch. A credentials category
 * is never one of them, whatever the purpose names (credentials.ts): only a filter made with
 * `credentials: true`, which the verify endpoint makes for itself, opens a verifier.
 */
export class CategoryFilter {
  readonly #allowed: readonly string[];
  readonly #credentials: boolean;
  readonly #answers = new Map<string, boolean>();

  constructor(allowed: readonly string[], options: { credentials?: boolean } = {}) {
    this.#allowed = allowed;
    this.#credentials = options.credentials === true;
  }

  /** True when `category` is one of the allowed ones or under one. */
  allows(category: string): boolean {
    let ok = this.#answers.get(category);
    if (ok === undefined) {
      ok =
        (this.#credentials || !isCredentialCategory(category)) &&
        this.#allowed.some((c) => coversCategory(c, category));
      this.#answers.set(category, ok);
    }
    return ok;
  }
}

/**
 * Opens the fields of one stored record (its `fields` column text) whose category `filter` allows,
 * in stored order, calling `emit` with each field's name, category and plaintext (JSON bytes).
 * Throws `vault.decrypt_failed` when a value does not open under its key and binding.
 */
export function openRecordFields(
  aad: FieldAadEncoder,
  key: KeyObject,
  subjectId: string | Uint8Array,
  recordId: string | Uint8Array,
  keyVersion: string,
  storedJson: string,
  filter: CategoryFilter,
  emit: (name: string, category: string, plaintext: Buffer) => void,
): void {
  const stored = JSON.parse(storedJson) as Record<string, { c?: unknown; v?: unknown }>;
  let started = false;
  for (const name of Object.keys(stored)) {
    const field = stored[name];
    const category = field?.c;
    if (typeof category !== 'string' || typeof field?.v !== 'string' || !filter.allows(category)) continue;
    if (!started) {
      aad.record(subjectId, recordId);
      started = true;
    }
    emit(name, category, open(key, Buffer.from(field.v, 'base64'), aad.field(name, keyVersion)));
  }
}

// ---- sealing -------------------------------------------------------------------------------------

/** A distinct (field name, category) of a seal batch: the name for the AAD, the column text before the value. */
export interface SealSlot {
  name: string;
  prefix: string;
}

/** A record of a seal batch: its key (an index), binding and fields (slots and JSON texts). */
export interface SealRecord {
  key: number;
  subjectId: string;
  recordId: string;
  keyVersion: number;
  slots: number[];
  json: string[];
  /** The JSON texts' total length, for sizing a packed batch. */
  size: number;
}

/**
 * The values of a write: keys (raw bytes, carried by the batch and dropped with it, so no thread
 * keeps a key that erasure destroyed), records and their fields as JSON text.
 */
export class SealBatch {
  /** The data keys, by index. */
  readonly keys: Uint8Array[] = [];
  /** Each distinct (field name, category). */
  readonly slots: SealSlot[] = [];
  readonly records: SealRecord[] = [];
  readonly #slotIndex = new Map<string, number>();
  #values = 0;

  /** Adds a data key (32 bytes); returns its index for {@link addRecord}. */
  addKey(key: Uint8Array): number {
    return this.keys.push(checkKey(key)) - 1;
  }

  /** Starts a record; its fields follow with {@link addField}. */
  addRecord(key: number, subjectId: string, recordId: string, keyVersion: number): void {
    this.records.push({ key, subjectId, recordId, keyVersion, slots: [], json: [], size: 0 });
  }

  /** Adds a field to the last record: its name, category and value as JSON text. */
  addField(name: string, category: string, json: string): void {
    const record = this.records[this.records.length - 1];
    if (!record) throw new PledgeError('vault.internal', 'a field was added before its record');
    const id = `${name}\u0000${category}`;
    let slot = this.#slotIndex.get(id);
    if (slot === undefined) {
      slot = this.slots.push({ name, prefix: sealedFieldPrefix(name, category) }) - 1;
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

  /** Seals every record on this thread; returns each record's `fields` column text, in order. */
  sealHere(): string[] {
    const keys = keyObjects(this.keys);
    const aad = new FieldAadEncoder();
    return this.records.map((rec) => {
      const key = keys[rec.key];
      if (!key) throw new PledgeError('vault.crypto_failed', 'a crypto batch named a key it did not carry');
      aad.record(rec.subjectId, rec.recordId);
      const version = String(rec.keyVersion);
      let text = '{';
      for (let f = 0; f < rec.slots.length; f++) {
        const slot = this.slots[rec.slots[f] ?? -1];
        if (!slot) throw new PledgeError('vault.crypto_failed', 'a crypto batch named an unknown field');
        if (f > 0) text += ',';
        text += sealField(
          aad,
          key,
          slot.name,
          version,
          slot.prefix,
          Buffer.from(rec.json[f] ?? 'null', 'utf8'),
        );
      }
      return `${text}}`;
    });
  }
}

// ---- opening -------------------------------------------------------------------------------------

/** A record of an open batch: its key (an index), binding and `fields` column text as stored. */
export interface OpenRecord {
  key: number;
  subjectId: string;
  recordId: string;
  keyVersion: number;
  fields: string;
}

/**
 * The records of a read, of one subject or several (a mail campaign reads a page of recipients at
 * once): each record's binding and `fields` column text as stored, and the categories the purpose
 * may use. Opening decrypts only the fields of those categories.
 */
export class OpenBatch {
  readonly categories: readonly string[];
  /** The data keys, by index. */
  readonly keys: Uint8Array[] = [];
  readonly records: OpenRecord[] = [];
  /**
   * True for the verify endpoint's batch, which opens credentials' verifiers. Such a batch is opened
   * with {@link openHere} only: the worker wire format does not carry the flag, so a worker would
   * leave verifiers closed (failing safe).
   */
  readonly credentials: boolean;

  constructor(categories: readonly string[], options: { credentials?: boolean } = {}) {
    this.categories = categories;
    this.credentials = options.credentials === true;
  }

  /** Adds a data key (32 bytes); returns its index for {@link addRecord}. */
  addKey(key: Uint8Array): number {
    return this.keys.push(checkKey(key)) - 1;
  }

  /** Adds a record with its binding and its `fields` column text as stored. */
  addRecord(key: number, subjectId: string, recordId: string, keyVersion: number, fields: string): void {
    this.records.push({ key, subjectId, recordId, keyVersion, fields });
  }

  /**
   * Opens every record on this thread: for each, in order, its fields whose category the purpose may
   * use (`{}` when none). A value that does not open fails the batch with `vault.decrypt_failed`.
   */
  openHere(): Array<Record<string, OpenedField>> {
    const keys = keyObjects(this.keys);
    const aad = new FieldAadEncoder();
    const filter = new CategoryFilter(this.categories, { credentials: this.credentials });
    return this.records.map((rec) => {
      const key = keys[rec.key];
      if (!key) throw new PledgeError('vault.crypto_failed', 'a crypto batch named a key it did not carry');
      const fields: Record<string, OpenedField> = {};
      openRecordFields(
        aad,
        key,
        rec.subjectId,
        rec.recordId,
        String(rec.keyVersion),
        rec.fields,
        filter,
        (name, category, plaintext) => {
          // Defined, not assigned: a field named "__proto__" is a field like any other.
          Object.defineProperty(fields, name, {
            value: { category, value: JSON.parse(plaintext.toString('utf8')) as unknown },
            enumerable: true,
            writable: true,
            configurable: true,
          });
        },
      );
      return fields;
    });
  }
}
