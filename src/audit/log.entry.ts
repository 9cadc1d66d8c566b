/**
 * A log entry's canonical bytes: what a leaf of the transparency log hashes (leaf = SHA-256(0x00 ‖
 * entry)). UTF-8 JSON with sorted keys and no whitespace, so anyone can recompute it from the fields.
 * A person never appears in it by id: a subject is a keyed commitment (HMAC-SHA256 of the subject id
 * under the `log_subjects` key), and so is a person acting through their own signed link, so the tree
 * can be shown to auditors without naming anyone.
 */
import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import type { Actor } from '../platform/context.js';
import type { UseKeys } from '../vault/use-keys.js';

/** The version of the entry format: the `version` key of every entry. */
export const ENTRY_VERSION = 1;

/** What an entry is made of, before it is encoded. */
export interface LogEntryFields {
  /** ISO-8601 time of the action. */
  time: string;
  /** The actor, with any person's id already replaced by its commitment ({@link SubjectCommitments.actor}). */
  actor: Actor;
  action: string;
  purpose: string | undefined;
  requestId: string | undefined;
  details: Record<string, unknown>;
  /** The subject's commitment (hex), when the entry is about a person. */
  subject: string | undefined;
}

/** JSON with object keys sorted at every depth and undefined members left out. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const members = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`);
  return `{${members.join(',')}}`;
}

/**
 * The canonical entry text from parts already in canonical JSON (the actor's, once per caller; the
 * details', also stored as the row's details): the same text as {@link encodeEntry}, assembled in
 * the keys' sorted order without walking the objects again (appends are a hot path).
 */
export function assembleEntry(parts: {
  time: string;
  actorJson: string;
  action: string;
  purpose: string | undefined;
  requestId: string | undefined;
  detailsJson: string;
  subject: string | undefined;
}): string {
  return (
    `{"action":${JSON.stringify(parts.action)},"actor":${parts.actorJson},"details":${parts.detailsJson}` +
    (parts.purpose === undefined ? '' : `,"purpose":${JSON.stringify(parts.purpose)}`) +
    (parts.requestId === undefined ? '' : `,"request_id":${JSON.stringify(parts.requestId)}`) +
    (parts.subject === undefined ? '' : `,"subject":${JSON.stringify(parts.subject)}`) +
    `,"time":${JSON.stringify(parts.time)},"version":${ENTRY_VERSION}}`
  );
}

/** The canonical entry text (its UTF-8 bytes are the leaf's input). */
export function encodeEntry(fields: LogEntryFields): string {
  return canonicalJson({
    version: ENTRY_VERSION,
    time: fields.time,
    actor: fields.actor,
    action: fields.action,
    purpose: fields.purpose,
    request_id: fields.requestId,
    details: fields.details,
    subject: fields.subject,
  });
}

const COMMITMENT_INFO = 'pledge transparency log subject commitment v1';

/**
 * Keyed commitments of subject ids under the `log_subjects` key: the current version commits new
 * entries; every version the keyring holds is tried when a subject's entries are looked up.
 */
export class SubjectCommitments {
  readonly #keys: ReadonlyArray<KeyObject>;
  readonly #current: KeyObject;

  constructor(keys: UseKeys) {
    const derived = keys.derive((s) =>
      createSecretKey(Buffer.from(hkdfSync('sha256', s, Buffer.alloc(0), COMMITMENT_INFO, 32))),
    );
    this.#current = derived.current.key;
    this.#keys = keys.versions().map((v) => derived.get(v.version) as KeyObject);
  }

  /** The commitment new entries carry for `subjectId` (hex). */
  commit(subjectId: string): string {
    return hmacHex(this.#current, subjectId);
  }

  /** Every commitment `subjectId` may have been recorded under (one per key version). */
  all(subjectId: string): string[] {
    return [...new Set(this.#keys.map((k) => hmacHex(k, subjectId)))];
  }

  /** The actor as an entry records it: a person's own link names them by commitment only. */
  actor(actor: Actor): Actor {
    return actor.kind === 'subject_link' ? { ...actor, id: this.commit(actor.id) } : actor;
  }
}

function hmacHex(key: KeyObject, value: string): string {
  return createHmac('sha256', key).update(value, 'utf8').digest('hex');
}
