/**
 * The problems a collection request can have, as a client reads them: each with a stable code, the
 * JSON path it is at (card numbers in keys masked) and what to do; and the one 422 error that lists
 * them. The validator (collect.validator.ts, collect.fields.ts) finds them; nothing here repeats a
 * refused value.
 */
import { ValidationError } from '../platform/errors.js';
import { IDENTIFIER_LABELS, type IdentifierKind } from '../vault/identifiers.js';
import type { SourcePlan } from './collect.plan.js';
import { maskCardNumbers } from './pan.js';

/** The most problems an error lists; the rest are counted. */
export const MAX_REPORTED_PROBLEMS = 50;

/** One thing wrong with a request: a stable code, where (JSON path) and what to do. */
export interface CollectProblem {
  code: string;
  message: string;
  /** JSON path into the request body, e.g. `data.answers.q3[1]`. */
  path: string;
  /** The field of the collection point (or event) the problem is in, when there is one. */
  field?: string;
  /** For refused card numbers: the pledge that forbids storing them. */
  pledge?: { key: string; text: string };
  /** For a refused identifier (`vault.identifier_invalid`): its kind, as the vault's error names it. */
  kind?: IdentifierKind;
}

/** A step of a JSON path: an object key or an array index. */
export type Segment = string | number;

/** A JSON path such as `data.answers["what next?"][2]`; card numbers in keys are masked. */
export function formatPath(segments: readonly Segment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else {
      const key = maskCardNumbers(s.length > 100 ? `${s.slice(0, 100)}…` : s);
      out += /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)
        ? `${out === '' ? '' : '.'}${key}`
        : `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

/** A field name as it may be shown: card numbers masked, long names cut. */
export function safeName(name: string): string {
  return maskCardNumbers(name.length > 100 ? `${name.slice(0, 100)}…` : name);
}

/** The problems found in one request, in the order they were found. */
export class Problems {
  readonly list: CollectProblem[] = [];
  constructor(readonly plan: SourcePlan) {}

  add(code: string, message: string, segments: readonly Segment[], field?: string): void {
    this.list.push({ code, message, path: formatPath(segments), ...(field !== undefined ? { field } : {}) });
  }

  /** An identifier that is not a valid one of its kind: the message and `kind` name the kind. */
  identifier(kind: IdentifierKind, segments: readonly Segment[], field?: string): void {
    const path = formatPath(segments);
    this.list.push({
      code: 'vault.identifier_invalid',
      message: `${path} is not a valid ${IDENTIFIER_LABELS[kind]}`,
      path,
      ...(field !== undefined ? { field } : {}),
      kind,
    });
  }

  card(segments: readonly Segment[], field?: string): void {
    const pledge = this.plan.cardPledge;
    const path = formatPath(segments);
    const why = pledge
      ? `we never store one: "${pledge.text}" (pledge "${pledge.key}")`
      : 'card numbers are never stored';
    this.list.push({
      code: 'collect.card_number_refused',
      message: `${path} holds a payment card number, and ${why}. Remove it: a card number is accepted only in a billing collection point's card number field, which passes it to the card processor`,
      path,
      ...(field !== undefined ? { field } : {}),
      ...(pledge ? { pledge } : {}),
    });
  }
}

const PRIORITY: Record<string, number> = { 'collect.card_number_refused': 0, 'collect.field_undeclared': 1 };

/**
 * One 422 error for a list of problems. Its code and top-level `path`/`field` are the first
 * problem's, a refused card number first of all (it names the pledge); `details.problems` lists up to
 * {@link MAX_REPORTED_PROBLEMS} of them.
 */
export function collectProblemsError(source: string, problems: readonly CollectProblem[]): ValidationError {
  const sorted = [...problems].sort((a, b) => (PRIORITY[a.code] ?? 2) - (PRIORITY[b.code] ?? 2));
  const top = sorted[0] ?? { code: 'collect.body_invalid', message: 'the request is invalid', path: '' };
  const shown = sorted.slice(0, MAX_REPORTED_PROBLEMS);
  const message =
    sorted.length > 1
      ? `${top.message} (and ${sorted.length - 1} more problem${sorted.length > 2 ? 's' : ''}; see details.problems)`
      : top.message;
  return new ValidationError(
    top.code,
    message,
    {
      source,
      path: top.path,
      ...(top.field !== undefined ? { field: top.field } : {}),
      ...(top.pledge ? { pledge: top.pledge } : {}),
      ...(top.kind !== undefined ? { kind: top.kind } : {}),
      problems: shown.map((p) => ({
        code: p.code,
        path: p.path,
        ...(p.field !== undefined ? { field: p.field } : {}),
        ...(p.kind !== undefined ? { kind: p.kind } : {}),
        message: p.message,
      })),
      ...(sorted.length > shown.length ? { more: sorted.length - shown.length } : {}),
    },
    422,
  );
}
