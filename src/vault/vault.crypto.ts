/**
 * The envelope: AES-256-GCM from node:crypto, a random 96-bit nonce per value, a 16-byte tag
 * checked with a fixed `authTagLength`. The additional authenticated data binds a ciphertext to the
 * subject, record, field and key version it was written for, so a ciphertext copied to another
 * record or field (or replayed under another key version) fails to decrypt instead of lying.
 *
 * Layout of a sealed value: 1 byte format (1) | 12 bytes nonce | ciphertext | 16 bytes tag.
 *
 * This file is the only AAD encoder: a single value's ({@link fieldAad}) and a batch's
 * ({@link FieldAadEncoder}, which the batches of field-batch.ts use inline and on the crypto
 * workers alike) write the same bytes.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomFillSync, type KeyObject } from 'node:crypto';
import { PledgeError } from '../platform/errors.js';

const FORMAT = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const HEADER_BYTES = 1 + NONCE_BYTES;
const FIELD_LABEL = 'pledge.field.v1';

/** Where a field value belongs; every part is authenticated. */
export interface FieldBinding {
  subjectId: string;
  recordId: string;
  field: string;
  keyVersion: number;
}

/**
 * Builds field AADs in one scratch buffer: the label, subject and record once per record, then the
 * field and key version per value. Each part is its byte length (u32, big-endian) then its UTF-8
 * bytes, so no two bindings share an encoding. A part is a string or its UTF-8 bytes (a crypto
 * worker reads them from its batch without decoding). The buffer {@link field} returns is valid
 * until the next call: `setAAD` consumes it at once.
 */
export class FieldAadEncoder {
  #scratch = Buffer.allocUnsafe(256);
  #head = 0;

  /** Starts the AADs of a record's fields. */
  record(subjectId: string | Uint8Array, recordId: string | Uint8Array): void {
    this.#head = this.#part(0, FIELD_LABEL);
    this.#head = this.#part(this.#head, subjectId);
    this.#head = this.#part(this.#head, recordId);
  }

  /** The AAD of one field of the current record. */
  field(name: string | Uint8Array, keyVersion: string | Uint8Array): Buffer {
    const end = this.#part(this.#part(this.#head, name), keyVersion);
    return this.#scratch.subarray(0, end);
  }

  #part(at: number, part: string | Uint8Array): number {
    const most = typeof part === 'string' ? part.length * 3 : part.length;
    if (at + 4 + most > this.#scratch.length) {
      const next = Buffer.allocUnsafe(Math.max(this.#scratch.length * 2, at + 4 + most));
      this.#scratch.copy(next, 0, 0, at);
      this.#scratch = next;
    }
    let n: number;
    if (typeof part === 'string') n = this.#scratch.write(part, at + 4, 'utf8');
    else {
      this.#scratch.set(part, at + 4);
      n = part.length;
    }
    this.#scratch.writeUInt32BE(n, at);
    return at + 4 + n;
  }
}

/** The AAD of a field value (a copy: the batch encoder's own buffer is reused). */
export function fieldAad(b: FieldBinding): Buffer {
  const encoder = new FieldAadEncoder();
  encoder.record(b.subjectId, b.recordId);
  return Buffer.from(encoder.field(b.field, String(b.keyVersion)));
}

/** The AAD of a wrapped data key: the subject, the data key's version and the KEK version. */
export function dataKeyAad(subjectId: string, dataKeyVersion: number, kekVersion: number): Buffer {
  const parts = ['pledge.data-key.v1', subjectId, String(dataKeyVersion), String(kekVersion)];
  let size = 0;
  for (const p of parts) size += 4 + Buffer.byteLength(p, 'utf8');
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const p of parts) {
    const n = out.write(p, at + 4, 'utf8');
    out.writeUInt32BE(n, at);
    at += 4 + n;
  }
  return out;
}

// Nonces come from the same CSPRNG as randomBytes, drawn 4,096 at a time: one randomBytes call per
// value cost a fifth of the whole write path.
const NONCE_POOL = Buffer.alloc(NONCE_BYTES * 4096);
let noncePoolAt = NONCE_POOL.length;

function nextNonce(): Buffer {
  if (noncePoolAt >= NONCE_POOL.length) {
    randomFillSync(NONCE_POOL);
    noncePoolAt = 0;
  }
  const nonce = NONCE_POOL.subarray(noncePoolAt, noncePoolAt + NONCE_BYTES);
  noncePoolAt += NONCE_BYTES;
  return nonce;
}

/**
 * Encrypts `plaintext` under `key` (32 raw bytes, or a KeyObject made from them, which saves
 * node:crypto importing the bytes on every value) with `aad`.
 */
export function seal(key: Buffer | KeyObject, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  if (Buffer.isBuffer(key) && key.length !== KEY_BYTES) {
    throw new PledgeError('vault.key_invalid', 'an encryption key must be 32 bytes');
  }
  const nonce = nextNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const final = cipher.final();
  const tag = cipher.getAuthTag();
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length + final.length + TAG_BYTES);
  out[0] = FORMAT;
  nonce.copy(out, 1);
  body.copy(out, HEADER_BYTES);
  final.copy(out, HEADER_BYTES + body.length);
  tag.copy(out, out.length - TAG_BYTES);
  return out;
}

/**
 * Decrypts a sealed value. Throws `vault.decrypt_failed` when the key, the AAD, the nonce, the
 * ciphertext or the tag does not match: a wrong binding is indistinguishable from tampering.
 */
export function open(key: Buffer | KeyObject, sealed: Buffer, aad: Uint8Array): Buffer {
  if (sealed.length < HEADER_BYTES + TAG_BYTES || sealed[0] !== FORMAT) {
    throw new PledgeError('vault.decrypt_failed', 'the stored value is not a sealed Pledge value');
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, HEADER_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const body = decipher.update(sealed.subarray(HEADER_BYTES, sealed.length - TAG_BYTES));
    const final = decipher.final();
    return final.length === 0 ? body : Buffer.concat([body, final]);
  } catch (err) {
    throw new PledgeError(
      'vault.decrypt_failed',
      'the stored value does not decrypt under its key and binding',
      {
        cause: err,
      },
    );
  }
}

/** A fresh random 256-bit key. */
export function generateKey(): Buffer {
  return randomBytes(KEY_BYTES);
}
