/**
 * Manifest-driven validation of what a collection point receives. The manifest is the closed list
 * of what each source may carry; this file walks a request against it (the checks of one value or
 * field are in collect.fields.ts) and returns every problem at once, each with its JSON path, so a
 * client fixes a form in one round trip.
 *
 * Two rules are stricter than a schema: a card number found anywhere (in any field, at any depth,
 * under any name) is refused unless it is the source's own pass-through card field, and nothing
 * here ever repeats a value it refuses. Problems carry paths and field names, never values, and a
 * card number used as an object key is masked in the path too.
 *
 * These functions are pure and never throw for any input except {@link assertEventBatchSize}; the
 * service turns problems into one error with `collectProblemsError` (collect.problems.ts).
 */
import { ValidationError } from '../platform/errors.js';
import { normalizeIdentifier } from '../vault/identifiers.js';
import type { FieldInput, Identifiers } from '../vault/vault.service.js';
import type { CardDetails } from './card-processor.js';
import {
  checkField,
  checkSubject,
  inspect,
  isPlainObject,
  reportUndeclared,
  reportUnknownKeys,
  type SubjectReference,
} from './collect.fields.js';
import type { SourcePlan } from './collect.plan.js';
import { formatPath, Problems, safeName, type CollectProblem, type Segment } from './collect.problems.js';

/** The most events one request may carry. */
export const MAX_EVENTS_PER_REQUEST = 1_000;

const JURISDICTION = /^(EU|EEA|[A-Z]{2}(-[A-Z0-9]{1,3})?)$/;

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
  reportUnknownKeys(body, ['subject', 'jurisdiction', 'data'], problems);
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
        reportUndeclared(plan, name, segments, problems);
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
  reportUnknownKeys(body, ['subject', 'events'], problems);
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
