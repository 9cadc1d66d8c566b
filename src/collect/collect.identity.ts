/**
 * No silent account merge: what a request may add to a person it names only by an identifier
 * (an e-mail address, a phone number, an account id), as opposed to by `subject.id`. Anyone can type
 * someone else's address into a form; only the calling system, which authenticated the person, can
 * name their subject id. So a request that names the person by an identifier already on file may
 * add to that subject only data that says nothing about who they are (survey answers, feedback,
 * product events); a registration or trial sign-up, new identifying data (a name, an address, a
 * password, a card) or a new identifier needs the subject's id. Otherwise it is refused with 409
 * `collect.identifier_taken` and nothing is stored. docs/collect.md says why a 409 is acceptable.
 */
import { coversCategory } from '../manifest/taxonomy.js';
import { ConflictError } from '../platform/errors.js';
import type { FieldInput } from '../vault/vault.service.js';
import type { SourcePlan } from './collect.plan.js';

/**
 * Categories that say who a person is or let someone act as them: written to a subject named only
 * by an identifier, they would let a stranger rename, re-address or take over that person.
 */
export const IDENTIFYING_CATEGORIES: readonly string[] = [
  'user.name',
  'user.contact',
  'user.account',
  'user.authorization',
  'user.unique_id',
  'user.government_id',
  'user.financial',
  'user.job_title',
  'user.workplace',
  'user.location.precise',
];

/**
 * The fields of a request that would add identifying data to a subject. A field that is itself an
 * identifier of the request (the e-mail of a survey) is left out: the identifiers are checked apart,
 * each against the subject found.
 */
export function identifyingFields(plan: SourcePlan, fields: Readonly<Record<string, FieldInput>>): string[] {
  return Object.keys(fields).filter((name) => {
    const category = (fields[name] as FieldInput).category;
    if (plan.fields.get(name)?.identifier !== undefined) return false;
    return IDENTIFYING_CATEGORIES.some((c) => coversCategory(c, category));
  });
}

/** The refusal of a request that names someone else's (or a held) identifier without the subject's id. */
export function identifierTaken(sourceKey: string, kinds: readonly string[], reason: string): ConflictError {
  const what = kinds.length === 0 ? 'an identifier' : kinds.map((k) => k.replace('_', ' ')).join(' and ');
  return new ConflictError(
    'collect.identifier_taken',
    `a person with this ${what} is already on file and ${reason}; nothing was stored. To add to that person's data, authenticate them and send "subject": { "id": "<their subject id>" }`,
    { source: sourceKey, kinds: [...kinds], path: 'subject' },
  );
}
