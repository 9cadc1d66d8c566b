/** Checks of what people and staff send about requests: every problem with its JSON path. */
import { ValidationError } from '../platform/errors.js';
import { normalizeIdentifier } from '../vault/identifiers.js';
import { REQUEST_TYPES, type RequestType } from './requests.repository.js';

/** A checked intake. */
export interface IntakeInput {
  type: RequestType;
  email: string | undefined;
  phone: string | undefined;
  jurisdiction: string;
  /** Whether the requester named their jurisdiction (if not, the manifest's default deadline rule applies). */
  jurisdictionGiven: boolean;
  details: string | undefined;
}

/** Why an answer may be extended, in the words the notice uses. */
export const EXTEND_REASONS = {
  complexity: 'the request is complex and needs more time to answer completely',
  volume: 'we received many requests at the same time and need more time to answer each one properly',
  stores: 'the data asked for is kept in several systems that must each be searched',
} as const;

/** Why a request may be rejected, in the words the requester sees. */
export const REJECT_REASONS = {
  unverified: 'we could not verify that the request comes from the person it concerns',
  manifestly_unfounded: 'the request is manifestly unfounded',
  excessive: 'the request is excessive (it repeats a recent one)',
  duplicate: 'the same request is already being answered',
  not_applicable: 'the right asked for does not apply to this data',
} as const;

/** An extension's reason code. */
export type ExtendReason = keyof typeof EXTEND_REASONS;
/** A rejection's reason code. */
export type RejectReason = keyof typeof REJECT_REASONS;

/** Checks an intake body (`requests.request_invalid`, each problem with its path). */
export function checkIntake(body: unknown, defaultJurisdiction: string): IntakeInput {
  const problems: Array<{ path: string; message: string }> = [];
  const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<
    string,
    unknown
  >;
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    problems.push({ path: '', message: 'must be an object' });
  const type = b.type;
  if (typeof type !== 'string' || !(REQUEST_TYPES as readonly string[]).includes(type))
    problems.push({ path: 'type', message: `must be one of ${REQUEST_TYPES.join(', ')}` });
  const text = (name: string, max: number): string | undefined => {
    const v = b[name];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string' || v.length > max) {
      problems.push({ path: name, message: `must be text of at most ${max} characters` });
      return undefined;
    }
    return v.trim() === '' ? undefined : v;
  };
  const rawEmail = text('email', 320);
  const rawPhone = text('phone', 40);
  const email = rawEmail === undefined ? undefined : normalizeIdentifier('email', rawEmail);
  if (rawEmail !== undefined && email === undefined)
    problems.push({ path: 'email', message: 'is not an e-mail address (like name@example.com)' });
  const phone = rawPhone === undefined ? undefined : normalizeIdentifier('phone', rawPhone);
  if (rawPhone !== undefined && phone === undefined)
    problems.push({
      path: 'phone',
      message: 'is not a phone number (digits, with the country code, like +44 20 7946 0000)',
    });
  if (rawEmail === undefined && rawPhone === undefined)
    problems.push({
      path: 'email',
      message: 'give an e-mail address or a phone number, so we can verify the request is yours',
    });
  const jurisdiction = text('jurisdiction', 10);
  if (jurisdiction !== undefined && !/^[A-Z]{2}(-[A-Z0-9]{1,3})?$/.test(jurisdiction))
    problems.push({
      path: 'jurisdiction',
      message: 'must be a country code, optionally with a region (EU, US-CA)',
    });
  const details = text('details', 2000);
  if (problems.length > 0) {
    throw new ValidationError(
      'requests.request_invalid',
      problems.map((p) => `${p.path === '' ? 'body' : p.path}: ${p.message}`).join('; '),
      { problems },
    );
  }
  return {
    type: type as RequestType,
    email,
    phone,
    jurisdiction: jurisdiction ?? defaultJurisdiction,
    jurisdictionGiven: jurisdiction !== undefined,
    details,
  };
}

/** A reason code from a table, or `requests.reason_invalid` listing them. */
export function reasonOrThrow<K extends string>(value: unknown, table: Readonly<Record<K, string>>): K {
  const codes = Object.keys(table);
  if (typeof value !== 'string' || !codes.includes(value)) {
    throw new ValidationError('requests.reason_invalid', `reason: must be one of ${codes.join(', ')}`, {
      problems: [{ path: 'reason', message: `must be one of ${codes.join(', ')}` }],
    });
  }
  return value as K;
}
