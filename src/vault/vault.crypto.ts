/**
 * The envelope: AES-256-GCM from node:crypto, a random 96-bit nonce per value, a 16-byte tag
 * checked with a fixed `authTagLength`. The additional authenticated data binds a ciphertext to the
 * subject, record, field and key version it was written for, so a ciphertext copied to another
 * record or field (or replayed under another key version) fails to decrypt instead of lying.
 *
 * Layout of a sealed value: 1 byte format (1) | 12 bytes nonce | ciphertext | 16 bytes tag.
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  randomBytes,
  randomFillSync,
  type KeyObject,
} from 'node:crypto';
import { PledgeError } from '../platform/errors.js';

const FORMAT = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const HEADER_BYTES = 1 + NONCE_BYTES;

/** Where a field value belongs; every part is authenticated. */
export interface FieldBinding {
  subjectId: string;
  recordId: string;
  field: string;
  keyVersion: number;
}

/** The AAD of a field value. Lengths prefix each part, so no two bindings share an encoding. */
export function fieldAad(b: FieldBinding): Buffer {
  return encodeParts(['pledge.field.v1', b.subjectId, b.recordId, b.field, String(b.keyVersion)]);
}

/** The AAD of a wrapped data key: the subject, the data key's version and the KEK version. */
export function dataKeyAad(subjectId: string, dataKeyVersion: number, kekVersion: number): Buffer {
  return encodeParts(['pledge.data-key.v1', subjectId, String(dataKeyVersion), String(kekVersion)]);
}

function encodeParts(parts: readonly string[]): Buffer {
  // One allocation: this runs once per value sealed or opened.
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

/** A key as the cipher functions take it: raw bytes, or a KeyObject (faster to set up per call). */
export type CipherKey = Buffer | KeyObject;

/** A KeyObject for a raw 32-byte key; cache it with the key, it saves work on every value. */
export function toCipherKey(key: Buffer): KeyObject {
  if (key.length !== KEY_BYTES)
    throw new PledgeError('vault.key_invalid', 'an encryption key must be 32 bytes');
  return createSecretKey(key);
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

/** Encrypts `plaintext` under `key` (32 bytes) with `aad`. */
export function seal(key: CipherKey, plaintext: Buffer, aad: Buffer): Buffer {
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
export function open(key: CipherKey, sealed: Buffer, aad: Buffer): Buffer {
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

/** Encrypts a JSON value for a field. */
export function sealField(key: CipherKey, binding: FieldBinding, value: unknown): Buffer {
  return seal(key, Buffer.from(JSON.stringify(value), 'utf8'), fieldAad(binding));
}

/** Decrypts a field's JSON value; throws `vault.decrypt_failed` on any mismatch. */
export function openField(key: CipherKey, binding: FieldBinding, sealed: Buffer): unknown {
  return JSON.parse(open(key, sealed, fieldAad(binding)).toString('utf8'));
}

/** A fresh random 256-bit key. */
export function generateKey(): Buffer {
  return randomBytes(KEY_BYTES);
}
