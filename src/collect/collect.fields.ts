/**
 * The checks of single values in a collection request: one declared field against its plan, any
 * JSON value for card numbers and size, the `subject` reference, and the keys a body may not have.
 * collect.validator.ts walks a request and calls these; they add to a {@link Problems} list and
 * never throw, so every problem of a request is reported at once.
 *
 * No problem added here repeats the value it refuses: messages carry paths and field names only.
 */
import { coversCategory } from '../manifest/taxonomy.js';
import { UUID_PATTERN } from '../platform/ids.js';
import { normalizeIp, truncateIp } from '../platform/ip.js';
import { normalizeIdentifier, type IdentifierKind } from '../vault/identifiers.js';
import type { FieldInput, Identifiers } from '../vault/vault.service.js';
import { formatCardExpiry, isCardExpired, parseCardExpiry, type CardDetails } from './card-processor.js';
import { CARD_EXPIRY, type FieldPlan, type SourcePlan } from './collect.plan.js';
import { formatPath, safeName, type Problems, type Segment } from './collect.problems.js';
import { cardDigits, findCardNumbers, isCardNumber } from './pan.js';

/** The longest string accepted anywhere in a request, in UTF-16 code units. */
export const MAX_STRING_LENGTH = 10_000;
/** How deeply a structured value (a survey's answers) may nest. */
export const MAX_VALUE_DEPTH = 8;
/** How many values (objects, arrays and leaves) one field may hold. */
export const MAX_VALUE_NODES = 1_000;

const SUBJECT_KEYS = ['id', 'email', 'account_id', 'phone'] as const;

/** A subject named in a request: by id or by one of its identifiers. */
export interface SubjectReference {
  id?: string;
  email?: string;
  account_id?: string;
  phone?: string;
}

/** Whether a JSON value is an object (not an array, not null). */
export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks any JSON value for card numbers, over-long strings and excessive nesting. Stops descending
 * past the limits, so a hostile body cannot exhaust the stack.
 */
export function inspect(
  value: unknown,
  segments: Segment[],
  problems: Problems,
  field: string | undefined,
  options: { scanCards: boolean },
): void {
  let nodes = 0;
  let tooComplex = false;
  const visit = (v: unknown, path: Segment[], depth: number): void => {
    if (tooComplex) return;
    nodes++;
    if (nodes > MAX_VALUE_NODES || depth > MAX_VALUE_DEPTH) {
      tooComplex = true;
      problems.add(
        'collect.value_too_complex',
        `${formatPath(segments)} is too large: at most ${MAX_VALUE_NODES} values nested at most ${MAX_VALUE_DEPTH} deep`,
        segments,
        field,
      );
      return;
    }
    if (typeof v === 'string') {
      if (v.length > MAX_STRING_LENGTH) {
        problems.add(
          'collect.value_too_long',
          `${formatPath(path)} is ${v.length} characters long; the limit is ${MAX_STRING_LENGTH}`,
          path,
          field,
        );
      }
      if (options.scanCards && findCardNumbers(v).length > 0) problems.card(path, field);
    } else if (typeof v === 'number') {
      if (options.scanCards && Number.isInteger(v) && findCardNumbers(String(v)).length > 0)
        problems.card(path, field);
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => visit(item, [...path, i], depth + 1));
    } else if (isPlainObject(v)) {
      for (const [k, item] of Object.entries(v)) {
        const at = [...path, k];
        if (options.scanCards && findCardNumbers(k).length > 0) problems.card(at, field);
        if (k.length > MAX_STRING_LENGTH) {
          problems.add('collect.value_too_long', `a key at ${formatPath(path)} is too long`, path, field);
        }
        visit(item, at, depth + 1);
      }
    }
  };
  visit(value, segments, 0);
}

const TYPE_HINT = 'a string, a number or true/false';

/**
 * Checks one declared field's value: what to store, what goes to the card processor, or nothing.
 * A problem is added instead when the value does not fit the field.
 */
export function checkField(
  plan: FieldPlan,
  raw: unknown,
  segments: Segment[],
  problems: Problems,
  now: Date,
  mode: 'collect' | 'event',
): { store?: FieldInput; cardPart?: { key: keyof CardDetails; value: string } } {
  const path = formatPath(segments);
  const before = problems.list.length;
  const passThroughString = plan.passThrough !== undefined && typeof raw === 'string';
  inspect(raw, segments, problems, plan.name, { scanCards: !passThroughString });
  if (problems.list.length > before) return {};

  if (plan.passThrough) {
    const card = mode === 'collect' ? plan.passThrough.card : undefined;
    if (card === undefined) {
      problems.add(
        'collect.pass_through_unsupported',
        `${path} is passed through to "${plan.passThrough.recipient}", which ${mode === 'event' ? 'events cannot do' : 'Pledge has no adapter for'}; send it to the recipient directly`,
        segments,
        plan.name,
      );
      return {};
    }
    if (typeof raw !== 'string') {
      problems.add('collect.field_invalid', `${path} must be a string of digits`, segments, plan.name);
      return {};
    }
    if (card === 'number') {
      const digits = cardDigits(raw);
      if (digits === undefined || !isCardNumber(digits)) {
        problems.add(
          'collect.card_invalid',
          `${path} is not a valid card number: check the digits (12 to 19, passing the Luhn check)`,
          segments,
          plan.name,
        );
        return {};
      }
      return { cardPart: { key: 'number', value: digits } };
    }
    if (!/^\d{3,4}$/.test(raw.trim())) {
      problems.add(
        'collect.card_security_code_invalid',
        `${path} must be the 3 or 4 digits printed on the card`,
        segments,
        plan.name,
      );
      return {};
    }
    return { cardPart: { key: 'securityCode', value: raw.trim() } };
  }

  if (plan.structured) {
    if (typeof raw === 'string' && raw.trim() === '' && plan.required) {
      problems.add('collect.field_missing', `${path} is required and empty`, segments, plan.name);
      return {};
    }
    return { store: { category: plan.category, value: raw } };
  }
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
    problems.add(
      'collect.field_invalid',
      `${path} must be ${TYPE_HINT}, not ${Array.isArray(raw) ? 'an array' : 'an object'}`,
      segments,
      plan.name,
    );
    return {};
  }
  if (typeof raw === 'string' && raw.trim() === '' && plan.required) {
    problems.add('collect.field_missing', `${path} is required and empty`, segments, plan.name);
    return {};
  }
  if (plan.identifier !== undefined) {
    if (typeof raw !== 'string' || normalizeIdentifier(plan.identifier, raw) === undefined) {
      problems.identifier(plan.identifier, segments, plan.name);
      return {};
    }
    return { store: { category: plan.category, value: raw.trim() } };
  }
  if (plan.ipAddress) {
    const ip =
      typeof raw === 'string' ? (problems.plan.keepsFullIp ? normalizeIp(raw) : truncateIp(raw)) : undefined;
    if (ip === undefined) {
      problems.add('collect.ip_invalid', `${path} is not an IPv4 or IPv6 address`, segments, plan.name);
      return {};
    }
    return { store: { category: plan.category, value: ip } };
  }
  if (plan.feedsCard === 'expiry' || coversCategory(CARD_EXPIRY, plan.category)) {
    const expiry = typeof raw === 'string' ? parseCardExpiry(raw) : undefined;
    if (!expiry) {
      problems.add(
        'collect.card_expiry_invalid',
        `${path} must be a card expiry written MM/YY`,
        segments,
        plan.name,
      );
      return {};
    }
    if (isCardExpired(expiry, now)) {
      problems.add(
        'collect.card_expired',
        `${path} is in the past: the card has expired`,
        segments,
        plan.name,
      );
      return {};
    }
    const text = formatCardExpiry(expiry);
    return {
      store: { category: plan.category, value: text },
      ...(plan.feedsCard === 'expiry' ? { cardPart: { key: 'expiry' as const, value: text } } : {}),
    };
  }
  if (plan.feedsCard === 'holder_name' && typeof raw === 'string') {
    return { store: { category: plan.category, value: raw }, cardPart: { key: 'holderName', value: raw } };
  }
  return { store: { category: plan.category, value: raw } };
}

/** Checks the `subject` of a request; returns the reference and its identifiers. */
export function checkSubject(
  raw: unknown,
  problems: Problems,
): { subject: SubjectReference; identifiers: Identifiers } | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isPlainObject(raw)) {
    problems.add(
      'collect.subject_invalid',
      'subject must be an object such as { "id": "<uuid>" } or { "email": "..." }',
      ['subject'],
    );
    return undefined;
  }
  const before = problems.list.length;
  const subject: SubjectReference = {};
  const identifiers: Identifiers = {};
  for (const [key, value] of Object.entries(raw)) {
    const at = ['subject', key];
    if (!(SUBJECT_KEYS as readonly string[]).includes(key)) {
      problems.add(
        'collect.subject_invalid',
        `${formatPath(at)} is not a way to name a subject; use one of ${SUBJECT_KEYS.join(', ')}`,
        at,
      );
      continue;
    }
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') {
      problems.add('collect.subject_invalid', `${formatPath(at)} must be a string`, at);
      continue;
    }
    if (key === 'id') {
      if (!UUID_PATTERN.test(value)) problems.add('collect.subject_invalid', `subject.id must be a UUID`, at);
      else subject.id = value.toLowerCase();
      continue;
    }
    const kind = key as IdentifierKind;
    const normalized = normalizeIdentifier(kind, value);
    if (normalized === undefined) {
      problems.identifier(kind, at);
      continue;
    }
    subject[kind] = value;
    identifiers[kind] = normalized;
  }
  return problems.list.length > before ? undefined : { subject, identifiers };
}

/** Adds a problem for each key of `body` outside `allowed`. */
export function reportUnknownKeys(
  body: Record<string, unknown>,
  allowed: readonly string[],
  problems: Problems,
): void {
  for (const key of Object.keys(body)) {
    if (allowed.includes(key)) continue;
    problems.add(
      'collect.body_invalid',
      `${formatPath([key])} is not part of this request; the body has ${allowed.map((k) => `"${k}"`).join(', ')}`,
      [key],
    );
  }
}

/** Adds the problem for a field the manifest does not declare, naming the fields it does. */
export function reportUndeclared(
  plan: SourcePlan,
  name: string,
  segments: Segment[],
  problems: Problems,
): void {
  const declared = [...plan.fields.keys()];
  const field = safeName(name);
  problems.add(
    'collect.field_undeclared',
    `${formatPath(segments)}: the manifest does not declare a field "${field}" for the collection point "${plan.source.key}"; remove it, or declare it under the source's fields (declared: ${declared.length > 0 ? declared.join(', ') : 'none'})`,
    segments,
    field,
  );
}
