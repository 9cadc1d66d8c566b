/**
 * Manifest-driven validation of what a collection point receives. The manifest is the closed list
 * of what each source may carry; this file checks a request against it and returns every problem
 * at once, each with its JSON path, so a client fixes a form in one round trip.
 *
 * Two rules are stricter than a schema: a card number found anywhere (in any field, at any depth,
 * under any name) is refused unless it is the source's own pass-through card field, and nothing
 * here ever repeats a value it refuses. Problems carry paths and field names, never values, and a
 * card number used as an object key is masked in the path too.
 *
 * These functions are pure and never throw for any input except {@link assertEventBatchSize}; the
 * service turns problems into one error with {@link collectProblemsError}.
 */
import { coversCategory } from '../manifest/taxonomy.js';
import { ValidationError } from '../platform/errors.js';
import { normalizeIdentifier, type IdentifierKind } from '../vault/identifiers.js';
import type { FieldInput, Identifiers } from '../vault/vault.service.js';
import { formatCardExpiry, isCardExpired, parseCardExpiry, type CardDetails } from './card-processor.js';
import { CARD_EXPIRY, type FieldPlan, type SourcePlan } from './collect.plan.js';
import { normalizeIp, truncateIp } from '../platform/ip.js';
import { cardDigits, findCardNumbers, isCardNumber } from './pan.js';
import { formatPath, Problems, safeName, type CollectProblem, type Segment } from './collect.problems.js';

export { collectProblemsError, formatPath, type CollectProblem } from './collect.problems.js';

/** The longest string accepted anywhere in a request, in UTF-16 code units. */
export const MAX_STRING_LENGTH = 10_000;
/** How deeply a structured value (a survey's answers) may nest. */
export const MAX_VALUE_DEPTH = 8;
/** How many values (objects, arrays and leaves) one field may hold. */
export const MAX_VALUE_NODES = 1_000;
/** The most events one request may carry. */
export const MAX_EVENTS_PER_REQUEST = 1_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const JURISDICTION = /^(EU|EEA|[A-Z]{2}(-[A-Z0-9]{1,3})?)$/;
const SUBJECT_KEYS = ['id', 'email', 'account_id', 'phone'] as const;

/** A subject named in a request: by id or by one of its identifiers. */
export interface SubjectReference {
  id?: string;
  email?: string;
  account_id?: string;
  phone?: string;
}

/** A request to a collection point that passed validation, ready to store. */
export interface ValidatedCollect {
  subject: SubjectReference | undefined;
  jurisdiction: string | undefined;
  /** Identifiers from the subject reference and from identifying fields, normalized. */
  identifiers: Identifiers;
  /** What to store: pass-through fields are not here, IP addresses are already truncated. */
  fields: Record<string, FieldInput>;
  /** The card for the processor, when one was given; its expiry field is stored from the answer. */
  card: { details: CardDetails; recipient: string; expiryField: string | undefined } | undefined;
}

/** A field of an event that was not declared and so was dropped. */
export interface DroppedField {
  index: number;
  field: string;
  path: string;
}

/** An event batch that passed validation. */
export interface ValidatedEvents {
  subject: SubjectReference;
  identifiers: Identifiers;
  events: Array<Record<string, FieldInput>>;
  dropped: DroppedField[];
}

/** The outcome of a validation: every problem, and the validated value when there are none. */
export interface ValidationResult<T> {
  problems: CollectProblem[];
  value: T | undefined;
}

// ---- values ------------------------------------------------------------------------------------

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks any JSON value for card numbers, over-long strings and excessive nesting. Stops descending
 * past the limits, so a hostile body cannot exhaust the stack.
 */
function inspect(
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
function checkField(
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
      problems.add('vault.identifier_invalid', `${path} is not a valid e-mail address`, segments, plan.name);
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
function checkSubject(
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
      if (!UUID.test(value)) problems.add('collect.subject_invalid', `subject.id must be a UUID`, at);
      else subject.id = value.toLowerCase();
      continue;
    }
    const kind = key as IdentifierKind;
    const normalized = normalizeIdentifier(kind, value);
    if (normalized === undefined) {
      problems.add(
        'vault.identifier_invalid',
        `${formatPath(at)} is not a valid ${kind.replace('_', ' ')}`,
        at,
      );
      continue;
    }
    subject[kind] = value;
    identifiers[kind] = normalized;
  }
  return problems.list.length > before ? undefined : { subject, identifiers };
}

function unknownKeys(body: Record<string, unknown>, allowed: readonly string[], problems: Problems): void {
  for (const key of Object.keys(body)) {
    if (allowed.includes(key)) continue;
    problems.add(
      'collect.body_invalid',
      `${formatPath([key])} is not part of this request; the body has ${allowed.map((k) => `"${k}"`).join(', ')}`,
      [key],
    );
  }
}

function undeclared(plan: SourcePlan, name: string, segments: Segment[], problems: Problems): void {
  const declared = [...plan.fields.keys()];
  const field = safeName(name);
  problems.add(
    'collect.field_undeclared',
    `${formatPath(segments)}: the manifest does not declare a field "${field}" for the collection point "${plan.source.key}"; remove it, or declare it under the source's fields (declared: ${declared.length > 0 ? declared.join(', ') : 'none'})`,
    segments,
    field,
  );
}

// ---- requests ----------------------------------------------------------------------------------

/**
 * Validates a request to `POST /api/v1/collect/:source` against the source's declared fields.
 * Returns every problem, or the values to store and the card to tokenize. Never throws.
 */
export function validateCollectBody(
  plan: SourcePlan,
  body: unknown,
  options: { now: Date },
): ValidationResult<ValidatedCollect> {
  const problems = new Problems(plan);
  if (!isPlainObject(body)) {
    problems.add('collect.body_invalid', 'the body must be a JSON object with a "data" object', []);
    return { problems: problems.list, value: undefined };
  }
  unknownKeys(body, ['subject', 'jurisdiction', 'data'], problems);
  for (const [key, value] of Object.entries(body)) {
    if (key !== 'data') inspect(value, [key], problems, undefined, { scanCards: true });
  }
  const subject = checkSubject(body.subject, problems);

  let jurisdiction: string | undefined;
  if (body.jurisdiction !== undefined && body.jurisdiction !== null) {
    const j = typeof body.jurisdiction === 'string' ? body.jurisdiction.trim().toUpperCase() : undefined;
    if (j === undefined || !JURISDICTION.test(j)) {
      problems.add(
        'collect.jurisdiction_invalid',
        'jurisdiction must be an ISO country code such as "US" or "DE", or "EU"',
        ['jurisdiction'],
      );
    } else jurisdiction = j;
  }

  const fields: Record<string, FieldInput> = {};
  const card: Partial<CardDetails> = {};
  const identifiers: Identifiers = { ...subject?.identifiers };
  let expiryField: string | undefined;
  if (!isPlainObject(body.data)) {
    problems.add(
      body.data === undefined ? 'collect.field_missing' : 'collect.body_invalid',
      'data must be an object of the collection point’s fields, e.g. { "data": { "email": "..." } }',
      ['data'],
    );
  } else {
    for (const [name, raw] of Object.entries(body.data)) {
      const segments = ['data', name];
      // A Map, not an object lookup: a field named "__proto__" or "toString" is simply undeclared.
      const plan_ = plan.fields.get(name);
      if (!plan_) {
        inspect(raw, segments, problems, safeName(name), { scanCards: true });
        undeclared(plan, name, segments, problems);
        continue;
      }
      if (raw === null || raw === undefined) continue;
      const checked = checkField(plan_, raw, segments, problems, options.now, 'collect');
      if (checked.store) fields[name] = checked.store;
      if (checked.cardPart) card[checked.cardPart.key] = checked.cardPart.value;
      if (plan_.feedsCard === 'expiry') expiryField = name;
      if (plan_.identifier !== undefined && checked.store && typeof checked.store.value === 'string') {
        const normalized = normalizeIdentifier(plan_.identifier, checked.store.value);
        const given = identifiers[plan_.identifier];
        if (normalized !== undefined && given !== undefined && given !== normalized) {
          problems.add(
            'collect.identifier_conflict',
            `${formatPath(segments)} and subject.${plan_.identifier} name different people; send one of them`,
            segments,
            name,
          );
        } else if (normalized !== undefined) identifiers[plan_.identifier] = normalized;
      }
    }
    const data = body.data;
    for (const f of plan.fields.values()) {
      const given = Object.hasOwn(data, f.name) && data[f.name] !== null && data[f.name] !== undefined;
      if (f.required && !given) {
        problems.add(
          'collect.field_missing',
          `data.${f.name} is required by the collection point "${plan.source.key}"`,
          ['data', f.name],
          f.name,
        );
      }
    }
  }

  let cardResult: ValidatedCollect['card'];
  const hasCardPart = Object.keys(card).length > 0;
  if (hasCardPart && plan.cardRecipient !== undefined) {
    const numberField = [...plan.fields.values()].find((f) => f.passThrough?.card === 'number');
    if (card.number === undefined) {
      if (
        card.securityCode !== undefined &&
        numberField &&
        !problems.list.some((p) => p.field === numberField.name)
      )
        problems.add(
          'collect.field_missing',
          `data.${numberField.name} is needed with the card's security code`,
          ['data', numberField.name],
          numberField.name,
        );
    } else if (card.expiry === undefined) {
      const expiry = [...plan.fields.values()].find((f) => f.feedsCard === 'expiry');
      if (!problems.list.some((p) => p.field === expiry?.name)) {
        problems.add(
          'collect.field_missing',
          expiry
            ? `data.${expiry.name} (the card expiry) is needed with the card number`
            : `the collection point "${plan.source.key}" declares no card expiry field, which the card processor needs`,
          expiry ? ['data', expiry.name] : ['data'],
          expiry?.name,
        );
      }
    } else {
      cardResult = {
        details: {
          number: card.number,
          expiry: card.expiry,
          ...(card.securityCode !== undefined ? { securityCode: card.securityCode } : {}),
          ...(card.holderName !== undefined ? { holderName: card.holderName } : {}),
        },
        recipient: plan.cardRecipient,
        expiryField,
      };
      // The processor's own expiry is what is stored.
      if (expiryField !== undefined) delete fields[expiryField];
    }
  }

  if (problems.list.length > 0) return { problems: problems.list, value: undefined };
  return {
    problems: [],
    value: { subject: subject?.subject, jurisdiction, identifiers, fields, card: cardResult },
  };
}

/** Throws `collect.batch_too_large` (413) when a body carries more events than one request may. */
export function assertEventBatchSize(body: unknown, source: string): void {
  if (isPlainObject(body) && Array.isArray(body.events) && body.events.length > MAX_EVENTS_PER_REQUEST) {
    throw new ValidationError(
      'collect.batch_too_large',
      `a request may carry at most ${MAX_EVENTS_PER_REQUEST} events; this one has ${body.events.length}. Send them in smaller batches`,
      { source, path: 'events', limit: MAX_EVENTS_PER_REQUEST, received: body.events.length },
      413,
    );
  }
}

/**
 * Validates a batch of product-use events. Undeclared fields are not errors here: they are dropped
 * (minimization) and reported, unless they hold a card number, which refuses the whole batch.
 * Never throws (call {@link assertEventBatchSize} first).
 */
export function validateEventsBody(
  plan: SourcePlan,
  body: unknown,
  options: { now: Date },
): ValidationResult<ValidatedEvents> {
  const problems = new Problems(plan);
  const dropped: DroppedField[] = [];
  const fail = () => ({ problems: problems.list, value: undefined });
  if (!isPlainObject(body)) {
    problems.add(
      'collect.body_invalid',
      'the body must be a JSON object { "subject": {...}, "events": [...] }',
      [],
    );
    return fail();
  }
  unknownKeys(body, ['subject', 'events'], problems);
  for (const [key, value] of Object.entries(body)) {
    if (key !== 'events') inspect(value, [key], problems, undefined, { scanCards: true });
  }
  const subject = checkSubject(body.subject, problems);
  if (body.subject === undefined || body.subject === null) {
    problems.add('collect.subject_missing', 'subject is required: name it by { "id": "<uuid>" }', [
      'subject',
    ]);
  }
  const events: Array<Record<string, FieldInput>> = [];
  if (!Array.isArray(body.events)) {
    problems.add('collect.body_invalid', 'events must be an array of event objects', ['events']);
  } else if (body.events.length === 0) {
    problems.add('collect.batch_empty', 'events is empty; send at least one event', ['events']);
  } else {
    body.events.forEach((event: unknown, index) => {
      const at: Segment[] = ['events', index];
      if (!isPlainObject(event)) {
        problems.add(
          'collect.event_invalid',
          `${formatPath(at)} must be an object of the event's fields`,
          at,
        );
        return;
      }
      const before = problems.list.length;
      const fields: Record<string, FieldInput> = {};
      for (const [name, raw] of Object.entries(event)) {
        const segments = [...at, name];
        const fieldPlan = plan.fields.get(name);
        if (!fieldPlan) {
          // Dropped, but still searched: a card number is refused even where it would not be kept.
          inspect(raw, segments, problems, safeName(name), { scanCards: true });
          dropped.push({ index, field: safeName(name), path: formatPath(segments) });
          continue;
        }
        if (raw === null || raw === undefined) continue;
        const checked = checkField(fieldPlan, raw, segments, problems, options.now, 'event');
        if (checked.store) fields[name] = checked.store;
      }
      for (const f of plan.fields.values()) {
        const given = Object.hasOwn(event, f.name) && event[f.name] !== null && event[f.name] !== undefined;
        if (f.required && !given) {
          problems.add(
            'collect.field_missing',
            `${formatPath([...at, f.name])} is required by the collection point "${plan.source.key}"`,
            [...at, f.name],
            f.name,
          );
        }
      }
      if (Object.keys(fields).length === 0 && problems.list.length === before) {
        problems.add('collect.event_empty', `${formatPath(at)} has none of the declared fields`, at);
      }
      events.push(fields);
    });
  }
  if (problems.list.length > 0 || !subject) return fail();
  return {
    problems: [],
    value: { subject: subject.subject, identifiers: subject.identifiers, events, dropped },
  };
}
