/**
 * What a legal request must be at intake, and what a review may say. Every problem is reported at
 * once, each with its JSON path, before anything is written. Messages never repeat a value given
 * (a reference or a name could be anything).
 */
import { coversCategory, type Taxonomy } from '../manifest/taxonomy.js';
import { ValidationError } from '../platform/errors.js';
import { UUID_PATTERN } from '../platform/ids.js';

/** Who may send a request. */
export const AUTHORITY_TYPES = ['court', 'law_enforcement', 'regulator', 'other'] as const;
/** The instrument a request rests on. */
export const LEGAL_BASES = [
  'subpoena',
  'court_order',
  'search_warrant',
  'emergency',
  'regulatory_order',
  'other',
] as const;
/** Why a reviewer refused a request (a code: no free text about anyone is kept). */
export const REJECT_REASONS = [
  'no_valid_legal_basis',
  'overbroad',
  'wrong_jurisdiction',
  'authority_unverified',
  'data_not_held',
  'defective_request',
  'other',
] as const;

/** An authority's type. */
export type AuthorityType = (typeof AUTHORITY_TYPES)[number];
/** A request's legal basis. */
export type LegalBasis = (typeof LEGAL_BASES)[number];
/** A rejection's reason. */
export type RejectReason = (typeof REJECT_REASONS)[number];

/** A request as it arrives (`POST /api/v1/legal-requests`). */
export interface LegalIntakeInput {
  authority: { name: string; type: AuthorityType };
  legalBasis: LegalBasis;
  /** The provision cited, if any (a statute's section). */
  citation?: string | undefined;
  /** The authority's own reference: its docket or case number. */
  reference: string;
  scope: { subjects: string[]; categories: string[] };
  /** YYYY-MM-DD. */
  deadline: string;
  notice: { prohibited: boolean; until?: string | undefined };
}

/** The most subjects one request may name: as many as one disclosure of the share gate takes. */
export const MAX_SCOPE_SUBJECTS = 100;
const NAME_MAX = 200;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;
// Control characters would let a name break a CSV row or a terminal line.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A problem of an input: where (a JSON path) and what. */
export interface InputProblem {
  path: string;
  message: string;
}

/** Collects problems; `throwIfAny` raises them all as one ValidationError `code`. */
export class InputProblems {
  readonly list: InputProblem[] = [];

  add(path: string, message: string): void {
    this.list.push({ path, message });
  }

  throwIfAny(code: string): void {
    if (this.list.length === 0) return;
    throw new ValidationError(code, this.list.map((p) => `${p.path}: ${p.message}`).join('; '), {
      problems: this.list,
    });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function unknownKeys(
  value: Record<string, unknown>,
  allowed: readonly string[],
  at: string,
  problems: InputProblems,
): void {
  for (const k of Object.keys(value)) {
    if (!allowed.includes(k))
      problems.add(join(at, k), `is not a field of a legal request; its fields are ${allowed.join(', ')}`);
  }
}

function join(at: string, key: string): string {
  return at === '' ? key : `${at}.${key}`;
}

function text(
  value: unknown,
  path: string,
  problems: InputProblems,
  options: { required: boolean; max: number; what: string },
): string | undefined {
  if (value === undefined && !options.required) return undefined;
  if (typeof value !== 'string' || value.trim() === '') {
    problems.add(path, `is required: ${options.what}`);
    return undefined;
  }
  const trimmed = value.trim();
  if (trimmed.length > options.max) problems.add(path, `must be at most ${options.max} characters`);
  else if (CONTROL.test(trimmed)) problems.add(path, 'must be one line without control characters');
  return trimmed;
}

function oneOf<T extends string>(
  value: unknown,
  allowed: readonly T[],
  path: string,
  problems: InputProblems,
): T | undefined {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  problems.add(path, `must be one of ${allowed.join(', ')}`);
  return undefined;
}

/** A calendar date that exists (2026-02-30 does not). */
function isCalendarDate(value: string): boolean {
  if (!DATE.test(value)) return false;
  const d = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === value;
}

/** The end of a prohibition: a date (its start, UTC) or a date-time; `undefined` when malformed. */
export function parseUntil(value: string): Date | undefined {
  if (isCalendarDate(value)) return new Date(`${value}T00:00:00Z`);
  if (!DATE_TIME.test(value)) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Subject ids: a non-empty array of unique UUIDs, at most {@link MAX_SCOPE_SUBJECTS}. */
export function checkSubjectIds(value: unknown, path: string, problems: InputProblems): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.add(path, 'must be a non-empty array of subject ids (the ids Pledge gave the people concerned)');
    return [];
  }
  if (value.length > MAX_SCOPE_SUBJECTS) {
    problems.add(path, `may name at most ${MAX_SCOPE_SUBJECTS} subjects; split the request`);
    return [];
  }
  const seen = new Set<string>();
  value.forEach((v, i) => {
    if (typeof v !== 'string' || !UUID_PATTERN.test(v))
      problems.add(`${path}[${i}]`, 'must be a subject id (a UUID)');
    else if (seen.has(v.toLowerCase())) problems.add(`${path}[${i}]`, 'names a subject already listed');
    else seen.add(v.toLowerCase());
  });
  return [...seen];
}

/**
 * Categories: a non-empty array of unique known keys, each one the `authorities` recipient may
 * receive (`allowed`); none covered by another in the list.
 */
export function checkCategories(
  value: unknown,
  path: string,
  problems: InputProblems,
  taxonomy: Taxonomy | undefined,
  allowed: readonly string[] | undefined,
): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.add(
      path,
      'must be a non-empty array of data categories (taxonomy keys such as "user.contact.email")',
    );
    return [];
  }
  const out: string[] = [];
  value.forEach((v, i) => {
    const at = `${path}[${i}]`;
    if (typeof v !== 'string' || v === '') {
      problems.add(at, 'must be a data category (a taxonomy key such as "user.contact.email")');
      return;
    }
    if (taxonomy !== undefined && !taxonomy.has(v)) {
      problems.add(at, `"${v}" is not a data category of the manifest's taxonomy`);
      return;
    }
    if (allowed !== undefined && !allowed.some((a) => coversCategory(a, v))) {
      problems.add(
        at,
        `the manifest's authorities recipient may not receive "${v}"; it receives ${allowed.join(', ')}`,
      );
      return;
    }
    if (out.includes(v)) {
      problems.add(at, `"${v}" is listed already`);
      return;
    }
    out.push(v);
  });
  return out;
}

/** What {@link checkIntake} needs of the manifest. */
export interface IntakeRules {
  taxonomy: Taxonomy;
  /** The categories the `authorities` recipient may receive. */
  recipientCategories: readonly string[];
  now: Date;
}

/**
 * Checks notice terms (`{ prohibited, until? }`) at `path`, adding problems; the end date must be
 * after `now`.
 */
export function checkNotice(
  value: unknown,
  path: string,
  problems: InputProblems,
  now: Date,
): { prohibited: boolean; until: Date | undefined; untilText: string | undefined } {
  let prohibited = false;
  let until: Date | undefined;
  let untilText: string | undefined;
  const at = (key: string) => (path === '' ? key : `${path}.${key}`);
  if (!isObject(value)) {
    problems.add(
      path === '' ? '(body)' : path,
      'is required: { "prohibited": false }, or { "prohibited": true, "until": "YYYY-MM-DD" } when the law forbids telling the people concerned',
    );
    return { prohibited, until, untilText };
  }
  unknownKeys(value, ['prohibited', 'until'], path, problems);
  if (typeof value.prohibited !== 'boolean') problems.add(at('prohibited'), 'must be true or false');
  else prohibited = value.prohibited;
  if (value.until !== undefined && value.until !== null) {
    if (!prohibited)
      problems.add(at('until'), 'is only for a prohibition: set prohibited to true, or leave until out');
    else if (typeof value.until !== 'string' || (until = parseUntil(value.until)) === undefined)
      problems.add(at('until'), 'must be a date (YYYY-MM-DD) or a date-time with its offset (RFC 3339)');
    else if (until.getTime() <= now.getTime()) {
      problems.add(at('until'), 'is in the past: the prohibition is over, so set prohibited to false');
      until = undefined;
    } else untilText = value.until;
  }
  return { prohibited, until, untilText };
}

/** Checks a request's body; throws `legal.request_invalid` listing every problem. */
export function checkIntake(
  body: unknown,
  rules: IntakeRules,
): LegalIntakeInput & { until: Date | undefined } {
  const problems = new InputProblems();
  if (!isObject(body)) {
    problems.add(
      '(body)',
      'must be a JSON object with authority, legalBasis, reference, scope, deadline and notice',
    );
    problems.throwIfAny('legal.request_invalid');
    throw new Error('unreachable');
  }
  unknownKeys(
    body,
    ['authority', 'legalBasis', 'citation', 'reference', 'scope', 'deadline', 'notice'],
    '',
    problems,
  );
  let authority: { name: string; type: AuthorityType } | undefined;
  if (!isObject(body.authority)) {
    problems.add(
      'authority',
      'is required: an object with the name and type of the authority that sent the request',
    );
  } else {
    unknownKeys(body.authority, ['name', 'type'], 'authority', problems);
    const name = text(body.authority.name, 'authority.name', problems, {
      required: true,
      max: NAME_MAX,
      what: 'the name of the court, agency or regulator',
    });
    const type = oneOf(body.authority.type, AUTHORITY_TYPES, 'authority.type', problems);
    if (name !== undefined && type !== undefined) authority = { name, type };
  }
  const legalBasis = oneOf(body.legalBasis, LEGAL_BASES, 'legalBasis', problems);
  const citation = text(body.citation, 'citation', problems, {
    required: false,
    max: NAME_MAX,
    what: 'the provision cited',
  });
  const reference = text(body.reference, 'reference', problems, {
    required: true,
    max: NAME_MAX,
    what: "the authority's docket or case number (not a person's name)",
  });
  let subjects: string[] = [];
  let categories: string[] = [];
  if (!isObject(body.scope)) {
    problems.add('scope', 'is required: an object with subjects (ids) and categories');
  } else {
    unknownKeys(body.scope, ['subjects', 'categories'], 'scope', problems);
    subjects = checkSubjectIds(body.scope.subjects, 'scope.subjects', problems);
    categories = checkCategories(
      body.scope.categories,
      'scope.categories',
      problems,
      rules.taxonomy,
      rules.recipientCategories,
    );
  }
  let deadline: string | undefined;
  if (typeof body.deadline !== 'string' || !isCalendarDate(body.deadline)) {
    problems.add('deadline', 'must be the date the authority wants an answer by, as YYYY-MM-DD');
  } else deadline = body.deadline;
  const { prohibited, until, untilText } = checkNotice(body.notice, 'notice', problems, rules.now);
  problems.throwIfAny('legal.request_invalid');
  return {
    authority: authority!,
    legalBasis: legalBasis!,
    citation,
    reference: reference!,
    scope: { subjects, categories },
    deadline: deadline!,
    notice: { prohibited, until: untilText },
    until,
  };
}
