/**
 * Checks a proof as the log's API answers it (`GET /api/v1/log/proofs/inclusion` or
 * `.../consistency`) against signed checkpoints and the log's public key, and nothing else: no
 * database, no network. What `pledge audit verify-proof` runs, and what an outsider can rebuild from
 * the C2SP specifications.
 */
import { ValidationError } from '../platform/errors.js';
import { HASH_SIZE, leafHash, verifyConsistency, verifyInclusion } from './merkle.js';
import { openNote, parseCheckpointBody, parseVerifierKey, type Checkpoint } from './note.js';

/** What {@link verifyProofFiles} decided. */
export interface VerifyProofResult {
  ok: boolean;
  kind: 'inclusion' | 'consistency';
  /** In words: what was proven, or what failed. */
  message: string;
  index?: number;
  size?: number;
  from?: number;
  to?: number;
}

/** The inputs: the proof JSON's text, signed checkpoint notes, the verifier key, the entry's bytes. */
export interface VerifyProofInput {
  proof: string;
  checkpoints: readonly string[];
  key: string;
  /** For an inclusion proof: the entry's bytes (default: the `entry` in the proof). */
  entry?: Uint8Array;
}

/**
 * Verifies the proof; bad input (unreadable JSON, a key that does not parse) throws a
 * ValidationError; a proof that does not hold, or a checkpoint the key does not verify, is
 * `ok: false` with the reason.
 */
export function verifyProofFiles(input: VerifyProofInput): VerifyProofResult {
  let verifier;
  try {
    verifier = parseVerifierKey(input.key.trim());
  } catch (err) {
    throw new ValidationError('audit.key_invalid', `the key is not a note verifier key: ${messageOf(err)}`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(input.proof) as Record<string, unknown>;
  } catch (err) {
    throw new ValidationError('audit.proof_invalid', `the proof is not JSON: ${messageOf(err)}`);
  }
  if (json === null || typeof json !== 'object' || !Array.isArray(json.proof))
    throw new ValidationError('audit.proof_invalid', 'the proof has no "proof" array of base64 hashes');
  const hashes = (json.proof as unknown[]).map((h, i) => {
    const b = typeof h === 'string' ? Buffer.from(h, 'base64') : Buffer.alloc(0);
    if (b.length !== HASH_SIZE || b.toString('base64') !== h)
      throw new ValidationError('audit.proof_invalid', `proof[${i}] is not the base64 of a 32-byte hash`);
    return b;
  });

  // A checkpoint given that the key does not verify proves nothing: the proof fails, saying why.
  const signed: Checkpoint[] = [];
  const refused: string[] = [];
  input.checkpoints.forEach((note, i) => {
    try {
      signed.push(parseCheckpointBody(openNote(note, [verifier]).body));
    } catch (err) {
      refused.push(`checkpoint ${i + 1} is not a checkpoint signed by ${verifier.name}: ${messageOf(err)}`);
    }
  });
  // The checkpoint the API sent along counts only when it verifies too.
  if (typeof json.checkpoint === 'string') {
    try {
      signed.push(parseCheckpointBody(openNote(json.checkpoint, [verifier]).body));
    } catch {
      // Not signed by this key: ignored (the checkpoints given on the command line decide).
    }
  }
  const ofSize = (size: number) => signed.find((c) => c.size === size && c.origin === verifier.name);

  const kind = typeof json.index === 'number' ? 'inclusion' : 'consistency';
  if (refused.length > 0) return { ok: false, kind, message: refused.join('; ') };
  if (typeof json.index === 'number' && typeof json.size === 'number') {
    const index = json.index;
    const size = json.size;
    const entry =
      input.entry ?? (typeof json.entry === 'string' ? Buffer.from(json.entry, 'utf8') : undefined);
    if (entry === undefined)
      throw new ValidationError(
        'audit.entry_missing',
        'an inclusion proof needs the entry: give --entry FILE',
      );
    const checkpoint = ofSize(size);
    if (checkpoint === undefined)
      return {
        ok: false,
        kind: 'inclusion',
        index,
        size,
        message: `no checkpoint of size ${size} signed by ${verifier.name} was given (sizes given: ${signed.map((c) => c.size).join(', ') || 'none'}); ask for the proof at a checkpoint's size`,
      };
    const ok = verifyInclusion(leafHash(entry), index, size, hashes, checkpoint.root);
    return {
      ok,
      kind: 'inclusion',
      index,
      size,
      message: ok
        ? `entry ${index} is in the log of size ${size} signed by ${verifier.name}`
        : `the proof does not put this entry at index ${index} of the tree of size ${size} signed by ${verifier.name}`,
    };
  }
  if (typeof json.from === 'number' && typeof json.to === 'number') {
    const from = json.from;
    const to = json.to;
    const older = ofSize(from);
    const newer = ofSize(to);
    if (older === undefined || newer === undefined)
      return {
        ok: false,
        kind: 'consistency',
        from,
        to,
        message: `a consistency proof needs the signed checkpoints of sizes ${from} and ${to} (given: ${signed.map((c) => c.size).join(', ') || 'none'})`,
      };
    const ok = verifyConsistency(from, to, hashes, older.root, newer.root);
    return {
      ok,
      kind: 'consistency',
      from,
      to,
      message: ok
        ? `the log of size ${from} is a prefix of the log of size ${to}, both signed by ${verifier.name}`
        : `the proof does not show the log of size ${from} is a prefix of the log of size ${to}: history was rewritten, or the proof is wrong`,
    };
  }
  throw new ValidationError(
    'audit.proof_invalid',
    'the proof names neither a leaf ("index", "size") nor two sizes ("from", "to")',
  );
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
