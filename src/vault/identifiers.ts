/**
 * Identifiers (e-mail, account id, phone) are never stored: a subject is found by a keyed hash
 * (HMAC-SHA256 with the deployment's index key) of the identifier's normalized form. Normalizing
 * first makes `Alice@Example.COM ` and `alice@example.com` the same person; the key makes the hash
 * useless to anyone who copies the database without the key file.
 */
import { createHmac } from 'node:crypto';
import { isMailboxAddress } from '../platform/email-address.js';
import { ValidationError } from '../platform/errors.js';

/** The kinds of identifier a subject can be known by. */
export const IDENTIFIER_KINDS = ['email', 'account_id', 'phone'] as const;
export type IdentifierKind = (typeof IDENTIFIER_KINDS)[number];

/** How each kind is named to people, in messages that refuse one. */
export const IDENTIFIER_LABELS: Readonly<Record<IdentifierKind, string>> = {
  email: 'e-mail address',
  account_id: 'account id',
  phone: 'phone number',
};

/**
 * The canonical form of an identifier, or `undefined` when it is not a valid one of its kind.
 * E-mail: trimmed, Unicode NFC, lower-cased (mailbox providers treat the local part case-insensitively
 * in practice), and a mailbox as RFC 5321 writes it unquoted (isMailboxAddress). Phone: digits only,
 * with a leading "+" kept. Account id: trimmed, NFC, case kept.
 */
export function normalizeIdentifier(kind: IdentifierKind, raw: string): string | undefined {
  const value = raw.normalize('NFC').trim();
  switch (kind) {
    case 'email': {
      const email = value.toLowerCase();
      return isMailboxAddress(email) ? email : undefined;
    }
    case 'phone': {
      const plus = value.startsWith('+');
      const digits = value.replace(/[\s().-]/g, '').replace(/^\+/, '');
      if (!/^\d{6,15}$/.test(digits)) return undefined;
      return `${plus ? '+' : ''}${digits}`;
    }
    case 'account_id':
      return value.length > 0 && value.length <= 200 ? value : undefined;
  }
}

/** Like {@link normalizeIdentifier}, but throws `vault.identifier_invalid` naming the kind. */
export function normalizeIdentifierOrThrow(kind: IdentifierKind, raw: string, path = 'identifier'): string {
  const normalized = normalizeIdentifier(kind, raw);
  if (normalized === undefined) {
    throw new ValidationError(
      'vault.identifier_invalid',
      `${path} is not a valid ${IDENTIFIER_LABELS[kind]}`,
      { path, kind },
      422,
    );
  }
  return normalized;
}

/** The blind-index hash of an identifier: HMAC-SHA256(index key, kind ":" normalized), hex. */
export function identifierHash(indexKey: Buffer, kind: IdentifierKind, normalized: string): string {
  return createHmac('sha256', indexKey).update(`${kind}:${normalized}`, 'utf8').digest('hex');
}
