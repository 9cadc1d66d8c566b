/**
 * The client side of C2SP tlog-witness (https://c2sp.org/tlog-witness): sends a checkpoint with a
 * consistency proof from the size a witness last cosigned to `add-checkpoint`, and keeps only the
 * cosignatures that verify with that witness's key. A 409 answers the witness's own size: the proof is
 * rebuilt from it and the checkpoint sent once more. Anything else that fails is for the caller (a
 * job) to retry later.
 */
import type { LogWitnessSetting } from '../platform/config.js';
import { ConfigError } from '../platform/errors.js';
import { openNote, parseVerifierKey, type NoteVerifier } from './note.js';

/** A witness as configured: its verifier key (cosignature/v1 or Ed25519) and its submission prefix. */
export interface Witness {
  /** The key's name (the witness's name). */
  name: string;
  vkey: string;
  verifier: NoteVerifier;
  /** The submission prefix, without a trailing slash. */
  url: string;
}

/**
 * A witness of the configuration (PLEDGE_LOG_WITNESSES, whose form config.ts checked) with its key
 * parsed; throws `config.invalid`, naming the witness, when the key does not parse (checked at boot).
 */
export function witnessOf(setting: LogWitnessSetting): Witness {
  let verifier: NoteVerifier;
  try {
    verifier = parseVerifierKey(setting.vkey);
  } catch (err) {
    throw new ConfigError([
      `PLEDGE_LOG_WITNESSES: the key "${setting.vkey}" is not a note verifier key: ${errorText(err)}`,
    ]);
  }
  return { name: verifier.name, vkey: setting.vkey, verifier, url: setting.url };
}

/** What one `add-checkpoint` call came to. */
export type AddCheckpointResult =
  | { kind: 'cosigned'; signatures: string[] }
  /** 409: the witness last cosigned `size` (the old size sent was not it). */
  | { kind: 'conflict'; size: number }
  | { kind: 'failed'; status: number | undefined; error: string };

/** The request body: the old size line, the proof lines, an empty line, then the signed checkpoint. */
export function formatAddCheckpoint(oldSize: number, proof: readonly Uint8Array[], note: string): string {
  return `old ${oldSize}\n${proof.map((h) => `${Buffer.from(h).toString('base64')}\n`).join('')}\n${note}`;
}

/** Sends one `add-checkpoint`; never throws (a network failure is a failed result). */
export async function addCheckpoint(
  witness: Witness,
  request: { oldSize: number; proof: readonly Uint8Array[]; note: string },
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<AddCheckpointResult> {
  let res: Response;
  const signals = [AbortSignal.timeout(options.timeoutMs ?? 10_000)];
  if (options.signal !== undefined) signals.push(options.signal);
  try {
    res = await fetch(`${witness.url}/add-checkpoint`, {
      method: 'POST',
      body: formatAddCheckpoint(request.oldSize, request.proof, request.note),
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      signal: AbortSignal.any(signals),
    });
  } catch (err) {
    return { kind: 'failed', status: undefined, error: `${witness.url}: ${errorText(err)}` };
  }
  const text = await res.text().catch(() => '');
  if (res.status === 409) {
    const m = /^(0|[1-9][0-9]*)\n?$/.exec(text);
    if (m !== null) return { kind: 'conflict', size: Number(m[1]) };
    return {
      kind: 'failed',
      status: 409,
      error: `${witness.url}: 409 without a tree size (the roots differ?)`,
    };
  }
  if (res.status !== 200)
    return {
      kind: 'failed',
      status: res.status,
      error: `${witness.url}: ${res.status} ${text.trim().slice(0, 200)}`,
    };
  const signatures = verifiedCosignatures(witness, request.note, text);
  if (signatures.length === 0)
    return {
      kind: 'failed',
      status: 200,
      error: `${witness.url}: no returned cosignature verifies with ${witness.vkey}`,
    };
  return { kind: 'cosigned', signatures };
}

/** The signature lines of `response` that verify on `note` with the witness's key (others are ignored). */
export function verifiedCosignatures(witness: Witness, note: string, response: string): string[] {
  const out: string[] = [];
  for (const line of response.split('\n')) {
    if (!line.startsWith('— ')) continue;
    try {
      const opened = openNote(`${note}${line}\n`, [witness.verifier]);
      if (opened.verifiedBy.includes(witness.name)) out.push(line);
    } catch {
      // Not this witness's, or not valid: the specification says to ignore it.
    }
  }
  return out;
}

/** What asking one witness to cosign came to. */
export type CosignResult =
  | { kind: 'cosigned'; size: number; signatures: string[] }
  | { kind: 'failed'; error: string; witnessSize?: number };

/**
 * Asks `witness` to cosign the checkpoint `note` of tree size `size`, starting from `knownSize` (the
 * size it last cosigned for us, 0 when unknown); on a 409, proves from the size it answers, once.
 * `proof(old, size)` gives the consistency proof (empty for old 0 or old = size).
 */
export async function requestCosignature(
  witness: Witness,
  request: {
    note: string;
    size: number;
    knownSize: number;
    proof: (oldSize: number, newSize: number) => Promise<Buffer[]>;
  },
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<CosignResult> {
  let oldSize = Math.min(request.knownSize, request.size);
  for (let attempt = 0; attempt < 2; attempt++) {
    const proof = oldSize === 0 || oldSize === request.size ? [] : await request.proof(oldSize, request.size);
    const result = await addCheckpoint(witness, { oldSize, proof, note: request.note }, options);
    if (result.kind === 'cosigned')
      return { kind: 'cosigned', size: request.size, signatures: result.signatures };
    if (result.kind === 'failed') return { kind: 'failed', error: result.error };
    if (result.size > request.size)
      return {
        kind: 'failed',
        witnessSize: result.size,
        error: `${witness.url} has cosigned size ${result.size}, larger than this checkpoint's ${request.size}: it is for a later checkpoint`,
      };
    if (result.size === oldSize)
      return {
        kind: 'failed',
        witnessSize: result.size,
        error: `${witness.url} refuses size ${oldSize} (409): the roots differ`,
      };
    oldSize = result.size;
  }
  return { kind: 'failed', error: `${witness.url} answered 409 twice` };
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}
