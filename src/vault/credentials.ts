/**
 * Credential verifiers: a value of a credentials category is never stored, only its argon2id
 * verifier (OWASP's parameters: 19 MiB, 2 passes, 1 lane), which the vault then seals like any
 * other value. Argon2id comes from @node-rs/argon2: Node 20's node:crypto has no argon2 (scrypt at
 * OWASP's parameters costs about ten times the CPU per registration, see docs/vault.md), the
 * package ships its binary in a platform package with no install script, and it hashes on libuv's
 * thread pool, never on the event loop. The comparison itself is ours: the candidate is hashed
 * raw with the stored salt and parameters and compared with timingSafeEqual.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { hashRaw, type Algorithm } from '@node-rs/argon2';
import { isCredentialCategory } from '../manifest/credentials.js';
import { ValidationError } from '../platform/errors.js';
import type { FieldInput, WriteRecordInput } from './vault.types.js';

/** The argon2id parameters of new verifiers (OWASP Password Storage Cheat Sheet, first option). */
export const VERIFIER_PARAMS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

// The package's Algorithm is an ambient const enum, which isolated modules cannot read: Argon2id is 2.
const ARGON2ID = 2 as Algorithm;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** The longest secret taken: argon2 takes any length, and a megabyte password is only a CPU cost. */
const MAX_SECRET_BYTES = 1024;
const PHC = /^\$argon2id\$v=19\$m=(\d{1,7}),t=(\d{1,3}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/** A credential as the vault stores it (sealed, like every value): the verifier, never the secret. */
export interface StoredVerifier {
  verifier: string;
}

/** True when a stored credential value is a verifier (not a secret stored before verifiers). */
export function isVerifier(value: unknown): value is StoredVerifier {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.keys(value).length === 1 &&
    typeof (value as { verifier?: unknown }).verifier === 'string'
  );
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/=+$/, '');
}

function raw(
  secret: string,
  salt: Buffer,
  params: { memoryCost: number; timeCost: number; parallelism: number },
) {
  return hashRaw(secret, { algorithm: ARGON2ID, outputLen: HASH_BYTES, salt, ...params });
}

/** The argon2id verifier of `secret` (a PHC string), hashed on the thread pool. */
export async function makeVerifier(secret: string): Promise<StoredVerifier> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await raw(secret, salt, VERIFIER_PARAMS);
  const p = VERIFIER_PARAMS;
  return {
    verifier: `$argon2id$v=19$m=${p.memoryCost},t=${p.timeCost},p=${p.parallelism}$${b64(salt)}$${b64(hash)}`,
  };
}

// A verifier nobody's secret matches, checked when there is none to check, so that "no credential"
// takes as long as "wrong secret".
let decoy: Promise<StoredVerifier> | undefined;

/**
 * True when `secret` matches the stored value: a verifier (by argon2id, compared constant-time), or
 * a secret stored before verifiers (compared constant-time through SHA-256, so lengths do not
 * show). `undefined` (no credential on file) runs a decoy verification and answers false.
 */
export async function matchesStored(stored: unknown, secret: string): Promise<boolean> {
  if (stored === undefined || (!isVerifier(stored) && typeof stored !== 'string')) {
    await matchesStored(await (decoy ??= makeVerifier(randomBytes(16).toString('hex'))), secret);
    return false;
  }
  if (typeof stored === 'string') {
    // A secret stored before verifiers compares in microseconds: the decoy keeps its answer as slow
    // as a verifier's, so timing does not tell which kind a subject has.
    await matchesStored(await (decoy ??= makeVerifier(randomBytes(16).toString('hex'))), secret);
    const a = createHash('sha256').update(stored, 'utf8').digest();
    const b = createHash('sha256').update(secret, 'utf8').digest();
    return timingSafeEqual(a, b);
  }
  const m = PHC.exec(stored.verifier);
  if (!m) return false;
  const salt = Buffer.from(m[4] ?? '', 'base64');
  const expected = Buffer.from(m[5] ?? '', 'base64');
  const actual = await raw(secret, salt, {
    memoryCost: Number(m[1]),
    timeCost: Number(m[2]),
    parallelism: Number(m[3]),
  });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** Refuses a secret that is not a string of at most {@link MAX_SECRET_BYTES} bytes. */
export function secretOrThrow(value: unknown, path: string): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    Buffer.byteLength(value, 'utf8') > MAX_SECRET_BYTES
  ) {
    throw new ValidationError(
      'vault.credential_invalid',
      `${path} must be a non-empty string of at most ${MAX_SECRET_BYTES} bytes (a secret, kept only as its verifier)`,
      { path },
      422,
    );
  }
  return value;
}

function holdsCredential(input: WriteRecordInput): boolean {
  for (const name in input.fields) {
    if (Object.hasOwn(input.fields, name) && isCredentialCategory(input.fields[name]?.category ?? ''))
      return true;
  }
  return false;
}

/**
 * The inputs with every value of a credentials category replaced by its verifier (the same array
 * when there is none, the usual case: nothing is copied). Hashes run in parallel on the thread pool.
 */
export function withVerifiers(
  inputs: readonly WriteRecordInput[],
): readonly WriteRecordInput[] | Promise<readonly WriteRecordInput[]> {
  // Without a credential (the usual write) the same array, synchronously: no promise, no copy.
  if (!inputs.some(holdsCredential)) return inputs;
  return Promise.all(
    inputs.map(async (input) => {
      const names = Object.keys(input.fields).filter((n) =>
        isCredentialCategory(input.fields[n]?.category ?? ''),
      );
      if (names.length === 0) return input;
      const fields: Record<string, FieldInput> = { ...input.fields };
      await Promise.all(
        names.map(async (name) => {
          const field = input.fields[name] as FieldInput;
          const secret = secretOrThrow(field.value, `fields.${name}`);
          // Defined, not assigned: a field named "__proto__" is a field like any other.
          Object.defineProperty(fields, name, {
            value: { category: field.category, value: await makeVerifier(secret) },
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }),
      );
      return { ...input, fields };
    }),
  );
}
