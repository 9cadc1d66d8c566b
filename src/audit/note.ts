/**
 * Signed notes, checkpoints and cosignatures, as C2SP specifies them: signed-note
 * (https://c2sp.org/signed-note), tlog-checkpoint (https://c2sp.org/tlog-checkpoint) and the
 * Ed25519 cosignature/v1 of tlog-cosignature (https://c2sp.org/tlog-cosignature). Byte for byte the
 * format of golang.org/x/mod/sumdb/note, so that standard witnesses and verifiers accept what the
 * log signs and the log accepts what they return.
 *
 * Parsing is strict and every failure names what was wrong: a checkpoint is evidence, and a lenient
 * parser is where two readers start to disagree about what was signed.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { ValidationError } from '../platform/errors.js';
import { HASH_SIZE } from './merkle.js';

/** The signature type bytes of signed-note that this module speaks. */
const ALG_ED25519 = 0x01;
const ALG_COSIGNATURE_V1 = 0x04;

/** DER prefixes that turn a raw 32-byte Ed25519 seed or public key into PKCS#8 / SPKI. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const ED25519_KEY_SIZE = 32;
const ED25519_SIG_SIZE = 64;
const KEY_ID_SIZE = 4;
const TIMESTAMP_SIZE = 8;

/** Go's sumdb/note stops at this many signatures; the spec asks to accept at least 16. */
const MAX_SIGNATURES = 100;

/** The em dash and space that open every signature line. */
const SIG_PREFIX = '\u2014 ';

/** A tree head as the log signs it. */
export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  extensions?: string[];
}

function malformed(code: string, message: string): ValidationError {
  return new ValidationError(code, message);
}

/** Strict standard base64 (RFC 4648 §4, padded): undefined unless `s` is the canonical encoding. */
function decodeBase64(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return undefined;
  const b = Buffer.from(s, 'base64');
  // Node ignores stray bits in the last character; the round trip refuses a second spelling.
  return b.toString('base64') === s ? b : undefined;
}

/** Valid UTF-8 (no lone surrogates) with no ASCII control character but newline. */
function isNoteText(s: string): boolean {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u0009\u000b-\u001f]/.test(s)) return false;
  return Buffer.from(s, 'utf8').toString('utf8') === s;
}

/** A key name: non-empty, no Unicode space, no "+" (signed-note). */
function isKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && isNoteText(name);
}

function keyIdOf(name: string, alg: number, publicKey: Uint8Array): Buffer {
  return createHash('sha256')
    .update(Buffer.from(name, 'utf8'))
    .update(Buffer.from([0x0a, alg]))
    .update(publicKey)
    .digest()
    .subarray(0, KEY_ID_SIZE);
}

function privateKeyFromSeed(seed32: Uint8Array): KeyObject {
  if (seed32.length !== ED25519_KEY_SIZE) {
    throw new RangeError(`an Ed25519 seed is ${ED25519_KEY_SIZE} bytes, not ${seed32.length}`);
  }
  return createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed32]),
    format: 'der',
    type: 'pkcs8',
  });
}

function rawPublicKey(key: KeyObject): Buffer {
  // The SPKI encoding of an Ed25519 key ends with the raw 32-byte key.
  return createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(-ED25519_KEY_SIZE);
}

function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: Buffer.concat([SPKI_ED25519_PREFIX, raw]),
    format: 'der',
    type: 'spki',
  });
}

function checkName(name: string): void {
  if (!isKeyName(name)) {
    throw new RangeError(`a key name is non-empty, without spaces or "+": ${JSON.stringify(name)}`);
  }
}

function checkBody(body: string): void {
  if (!body.endsWith('\n') || !isNoteText(body)) {
    throw new RangeError('a note text ends with a newline and holds no control character but newline');
  }
}

/** "origin\nsize\nbase64root\n" (+ extension lines): the checkpoint note text. */
export function formatCheckpointBody(c: Checkpoint): string {
  if (c.origin.length === 0 || c.origin.includes('\n') || !isNoteText(c.origin)) {
    throw new RangeError(`a checkpoint origin is one non-empty line: ${JSON.stringify(c.origin)}`);
  }
  if (!Number.isSafeInteger(c.size) || c.size < 0) {
    throw new RangeError(`a checkpoint size is a non-negative integer, not ${c.size}`);
  }
  if (c.root.length !== HASH_SIZE) {
    throw new RangeError(`a checkpoint root is ${HASH_SIZE} bytes, not ${c.root.length}`);
  }
  for (const e of c.extensions ?? []) {
    if (e.length === 0 || e.includes('\n') || !isNoteText(e)) {
      throw new RangeError(`an extension line is one non-empty line: ${JSON.stringify(e)}`);
    }
  }
  return [c.origin, String(c.size), c.root.toString('base64'), ...(c.extensions ?? [])]
    .map((line) => `${line}\n`)
    .join('');
}

/**
 * Parses a checkpoint note text (what openNote returns as `body`). Throws a ValidationError
 * (`log.checkpoint_malformed`) saying which line is wrong: fewer than three lines, an empty origin,
 * a size that is not a decimal without leading zeroes, a root that is not the base64 of 32 bytes,
 * an empty extension line, or a text not ending in a newline.
 */
export function parseCheckpointBody(text: string): Checkpoint {
  const bad = (message: string) => malformed('log.checkpoint_malformed', `checkpoint: ${message}`);
  if (typeof text !== 'string' || !isNoteText(text)) {
    throw bad('the text must be UTF-8 with no control character but newline');
  }
  if (!text.endsWith('\n')) throw bad('the text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) {
    throw bad(`${lines.length} line(s); a checkpoint has an origin, a size and a root hash line`);
  }
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) throw bad('line 1 (origin) is empty');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) {
    throw bad(`line 2 (tree size) must be a decimal with no leading zeroes: ${JSON.stringify(sizeLine)}`);
  }
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw bad(`line 2 (tree size) is too large: ${sizeLine}`);
  const root = decodeBase64(rootLine);
  if (root === undefined || root.length !== HASH_SIZE) {
    throw bad(`line 3 (root hash) must be the base64 of ${HASH_SIZE} bytes: ${JSON.stringify(rootLine)}`);
  }
  extensions.forEach((e, i) => {
    if (e.length === 0) throw bad(`line ${i + 4} (extension) is empty`);
  });
  return extensions.length > 0 ? { origin, size, root, extensions } : { origin, size, root };
}

/** Ed25519 note signer; key id = first 4 bytes of SHA-256(name || "\n" || 0x01 || publicKey). */
export class NoteSigner {
  /** The key name, as the signature lines carry it. */
  readonly name: string;
  /** The 4-byte key id. */
  readonly keyId: Buffer;
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Buffer;
  readonly #key: KeyObject;

  private constructor(name: string, key: KeyObject) {
    this.name = name;
    this.#key = key;
    this.publicKey = rawPublicKey(key);
    this.keyId = keyIdOf(name, ALG_ED25519, this.publicKey);
  }

  /** The signer of key `name` whose private key is the 32-byte Ed25519 seed `seed32`. */
  static fromSeed(name: string, seed32: Uint8Array): NoteSigner {
    checkName(name);
    return new NoteSigner(name, privateKeyFromSeed(seed32));
  }

  /** The whole note: `body` (which must end with a newline), a blank line and this key's signature line. */
  sign(body: string): string {
    checkBody(body);
    const sig = sign(null, Buffer.from(body, 'utf8'), this.#key);
    return `${body}\n${SIG_PREFIX}${this.name} ${Buffer.concat([this.keyId, sig]).toString('base64')}\n`;
  }

  /** The verifier key: "name+hexkeyid+base64(0x01||publicKey)". */
  verifierKey(): string {
    return formatVerifierKey(this.name, this.keyId, ALG_ED25519, this.publicKey);
  }
}

function formatVerifierKey(name: string, keyId: Buffer, alg: number, publicKey: Uint8Array): string {
  return `${name}+${keyId.toString('hex')}+${Buffer.concat([Buffer.from([alg]), publicKey]).toString('base64')}`;
}

/** A key that checks signatures on notes: what openNote is given. */
export interface NoteVerifier {
  name: string;
  keyId: Buffer;
  /** Whether `sig` (the signature bytes after the key id) is valid for the note text `body`. */
  verify(body: Buffer, sig: Buffer): boolean;
}

function ed25519Verify(key: KeyObject, message: Buffer, sig: Buffer): boolean {
  try {
    return sig.length === ED25519_SIG_SIZE && verify(null, message, key, sig);
  } catch {
    return false;
  }
}

/** The signed message of a cosignature/v1: header line, time line, then the checkpoint text. */
function cosignedMessage(timestamp: bigint | number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`cosignature/v1\ntime ${timestamp}\n`, 'utf8'), body]);
}

/**
 * Parses a verifier key "name+hexkeyid+base64(type||key)": Ed25519 (0x01) and cosignature/v1
 * (0x04). Throws a ValidationError (`log.vkey_malformed`) for anything else, or when the key id is
 * not the one the name and key give (a vkey whose id lies would match signatures it cannot check).
 */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const bad = (message: string) =>
    malformed('log.vkey_malformed', `verifier key ${JSON.stringify(vkey)}: ${message}`);
  if (typeof vkey !== 'string') throw bad('not a string');
  // The name holds no "+" and the id is hex, so the first two "+" split the parts; the base64 of
  // the key may hold "+" of its own.
  const first = vkey.indexOf('+');
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1);
  if (second < 0) throw bad('expected name+keyid+key, three parts separated by "+"');
  const name = vkey.slice(0, first);
  const idHex = vkey.slice(first + 1, second);
  const keyB64 = vkey.slice(second + 1);
  if (!isKeyName(name)) throw bad('the name must be non-empty and hold no space');
  if (!/^[0-9a-f]{8}$/.test(idHex)) throw bad('the key id must be 8 lowercase hex digits');
  const key = decodeBase64(keyB64);
  if (key === undefined || key.length !== 1 + ED25519_KEY_SIZE) {
    throw bad(`the key must be the base64 of a type byte and ${ED25519_KEY_SIZE} bytes`);
  }
  const alg = key[0]!;
  if (alg !== ALG_ED25519 && alg !== ALG_COSIGNATURE_V1) {
    throw bad(
      `signature type 0x${alg.toString(16).padStart(2, '0')} is not Ed25519 (01) or cosignature/v1 (04)`,
    );
  }
  const raw = key.subarray(1);
  const keyId = keyIdOf(name, alg, raw);
  if (keyId.toString('hex') !== idHex) {
    throw bad(`the key id does not match the name and key (it is ${keyId.toString('hex')})`);
  }
  let publicKey: KeyObject;
  try {
    publicKey = publicKeyFromRaw(raw);
  } catch {
    throw bad('not an Ed25519 public key');
  }
  if (alg === ALG_ED25519) {
    return { name, keyId, verify: (body, sig) => ed25519Verify(publicKey, body, sig) };
  }
  return {
    name,
    keyId,
    verify: (body, sig) => {
      if (sig.length !== TIMESTAMP_SIZE + ED25519_SIG_SIZE) return false;
      const timestamp = sig.readBigUInt64BE(0);
      if (timestamp >= 1n << 63n) return false;
      return ed25519Verify(publicKey, cosignedMessage(timestamp, body), sig.subarray(TIMESTAMP_SIZE));
    },
  };
}

/** A note as openNote reads it. */
export interface OpenedNote {
  /** The note text (ends with a newline; the blank line before the signatures excluded). */
  body: string;
  /** The names of the given verifiers whose signature verified, each once, in note order. */
  verifiedBy: string[];
  /** Every signature line, known or not: its key name, key id and the bytes after the key id. */
  signatures: Array<{ name: string; keyId: Buffer; sig: Buffer }>;
}

/**
 * Opens a signed note: checks its form, and the signature of every given verifier that signed it
 * (matched by name and key id; other signatures are ignored, as the spec requires). Throws a
 * ValidationError: `log.note_malformed` for a note not in the format, `log.signature_invalid` when
 * a known key's signature does not verify (the whole note is then suspect), `log.note_unverified`
 * when no known key signed it.
 */
export function openNote(note: string, verifiers: readonly NoteVerifier[]): OpenedNote {
  const bad = (message: string) => malformed('log.note_malformed', `signed note: ${message}`);
  if (typeof note !== 'string' || !isNoteText(note)) {
    throw bad('must be UTF-8 with no control character but newline');
  }
  // The text ends at the last blank line; what follows is the signature block.
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw bad('no blank line before the signatures');
  const body = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) {
    throw bad('the signature lines must follow the blank line, each ending with a newline');
  }
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw bad(`more than ${MAX_SIGNATURES} signatures`);

  const bodyBytes = Buffer.from(body, 'utf8');
  const signatures: OpenedNote['signatures'] = [];
  const verifiedBy: string[] = [];
  const verified = new Set<string>();
  lines.forEach((line, i) => {
    const at = `signature line ${i + 1}`;
    if (!line.startsWith(SIG_PREFIX)) throw bad(`${at} must start with an em dash and a space`);
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(' ');
    const name = space < 0 ? '' : rest.slice(0, space);
    const bytes = space < 0 ? undefined : decodeBase64(rest.slice(space + 1));
    if (!isKeyName(name) || bytes === undefined || bytes.length < KEY_ID_SIZE + 1) {
      throw bad(`${at} must be "— <key name> <base64 of key id and signature>"`);
    }
    const keyId = Buffer.from(bytes.subarray(0, KEY_ID_SIZE));
    const sig = Buffer.from(bytes.subarray(KEY_ID_SIZE));
    signatures.push({ name, keyId, sig });
    const known = verifiers.filter((v) => v.name === name && v.keyId.equals(keyId));
    if (known.length === 0) return;
    if (known.length > 1) {
      throw malformed(
        'log.verifier_ambiguous',
        `two verifiers are given for key ${name}+${keyId.toString('hex')}`,
      );
    }
    if (!known[0]!.verify(bodyBytes, sig)) {
      throw malformed(
        'log.signature_invalid',
        `signed note: the signature of ${name}+${keyId.toString('hex')} (${at}) does not verify`,
      );
    }
    const id = `${name}+${keyId.toString('hex')}`;
    if (!verified.has(id)) {
      verified.add(id);
      if (!verifiedBy.includes(name)) verifiedBy.push(name);
    }
  });
  if (verifiedBy.length === 0) {
    throw malformed(
      'log.note_unverified',
      `signed note: no signature by a known key (signed by ${signatures.map((s) => s.name).join(', ')})`,
    );
  }
  return { body, verifiedBy, signatures };
}

/**
 * cosignature/v1 (timestamped Ed25519, alg 0x04): what a witness adds. Returns the signature line
 * (ending with a newline) "— name base64(keyid || 8-byte big-endian timestamp || signature)", the
 * signature over "cosignature/v1\ntime <timestampSeconds>\n" followed by the checkpoint text `body`.
 */
export function cosign(name: string, seed32: Uint8Array, body: string, timestampSeconds: number): string {
  checkName(name);
  checkBody(body);
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new RangeError(`a cosignature time is a non-negative integer of seconds, not ${timestampSeconds}`);
  }
  const key = privateKeyFromSeed(seed32);
  const keyId = keyIdOf(name, ALG_COSIGNATURE_V1, rawPublicKey(key));
  const time = Buffer.alloc(TIMESTAMP_SIZE);
  time.writeBigUInt64BE(BigInt(timestampSeconds));
  const sig = sign(null, cosignedMessage(timestampSeconds, Buffer.from(body, 'utf8')), key);
  return `${SIG_PREFIX}${name} ${Buffer.concat([keyId, time, sig]).toString('base64')}\n`;
}

/** The cosignature/v1 verifier key "name+hexkeyid+base64(0x04||publicKey)" of a witness. */
export function cosignatureVerifierKey(name: string, publicKey: Uint8Array): string {
  checkName(name);
  if (publicKey.length !== ED25519_KEY_SIZE) {
    throw new RangeError(`an Ed25519 public key is ${ED25519_KEY_SIZE} bytes, not ${publicKey.length}`);
  }
  return formatVerifierKey(name, keyIdOf(name, ALG_COSIGNATURE_V1, publicKey), ALG_COSIGNATURE_V1, publicKey);
}

/**
 * The time a cosignature/v1 claims, in seconds, from its signature bytes (as openNote's
 * `signatures[i].sig` gives them); undefined if they are not a cosignature/v1's.
 */
export function cosignatureTimestamp(sig: Uint8Array): number | undefined {
  if (sig.length !== TIMESTAMP_SIZE + ED25519_SIG_SIZE) return undefined;
  const t = Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength).readBigUInt64BE(0);
  return t <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(t) : undefined;
}

/** The raw 32-byte Ed25519 public key of a seed (a witness's key, for its verifier key). */
export function ed25519PublicKey(seed32: Uint8Array): Buffer {
  return rawPublicKey(privateKeyFromSeed(seed32));
}
