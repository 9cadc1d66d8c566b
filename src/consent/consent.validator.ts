/**
 * What a recorded choice must be: a declared purpose (or "*"), a channel of it, a known state and
 * method, a jurisdiction code, a browser id of the banner's form. Every problem is reported at once,
 * each with where it is, before anything is written.
 */
import { ValidationError } from '../platform/errors.js';
import { CONSENT_METHODS, CONSENT_STATES, GLOBAL_PURPOSE, type DecisionRules } from './consent.decide.js';
import type { RecordChoiceInput } from './consent.service.js';

const BROWSER_ID = /^[A-Za-z0-9_-]{16,128}$/;
const JURISDICTION = /^(EU|EEA|[A-Z]{2}(-[A-Z0-9]{1,3})?)$/;
const BROWSER_ID_RULE = 'must be 16 to 128 letters, digits, "-" or "_" (the id the banner gave this browser)';

/** Throws `consent.choice_invalid` listing every problem of `inputs`. */
export function validateChoices(rules: DecisionRules, inputs: readonly RecordChoiceInput[]): void {
  const problems: Array<{ path: string; message: string }> = [];
  inputs.forEach((input, i) => {
    const at = inputs.length === 1 ? '' : `[${i}].`;
    if ('browserId' in input.holder && !BROWSER_ID.test(input.holder.browserId)) {
      problems.push({
        path: `${at}browser`,
        message: 'must be 16 to 128 letters, digits, "-" or "_" (the id the banner gave this browser)',
      });
    }
    const purpose = input.purpose === GLOBAL_PURPOSE ? undefined : rules.getPurpose(input.purpose);
    if (input.purpose !== GLOBAL_PURPOSE && purpose === undefined) {
      problems.push({
        path: `${at}purpose`,
        message: `"${input.purpose}" is not a purpose of the manifest; use one of ${purposeList(rules)} or "*" for everything optional`,
      });
    }
    if (input.channel !== undefined && input.channel !== '') {
      if (input.purpose === GLOBAL_PURPOSE) {
        problems.push({
          path: `${at}channel`,
          message: 'the global opt-out ("*") has no channel; leave it out',
        });
      } else if (purpose !== undefined && !purpose.channels.includes(input.channel as never)) {
        problems.push({
          path: `${at}channel`,
          message: `purpose "${input.purpose}" is not used on channel "${input.channel}"; its channels are ${purpose.channels.length > 0 ? purpose.channels.join(', ') : '(none)'}`,
        });
      }
    }
    if (!(CONSENT_STATES as readonly string[]).includes(input.state)) {
      problems.push({ path: `${at}state`, message: `must be one of ${CONSENT_STATES.join(', ')}` });
    }
    if (!(CONSENT_METHODS as readonly string[]).includes(input.method)) {
      problems.push({ path: `${at}method`, message: `must be one of ${CONSENT_METHODS.join(', ')}` });
    }
    if (input.jurisdiction !== undefined && !JURISDICTION.test(input.jurisdiction)) {
      problems.push({
        path: `${at}jurisdiction`,
        message: 'must be an ISO country code such as "US" or "DE", or "EU"',
      });
    }
    if (
      input.noticeVersion !== undefined &&
      (input.noticeVersion.length === 0 || input.noticeVersion.length > 100)
    ) {
      problems.push({ path: `${at}noticeVersion`, message: 'must be 1 to 100 characters' });
    }
  });
  if (problems.length > 0) {
    throw new ValidationError(
      'consent.choice_invalid',
      problems.map((p) => `${p.path}: ${p.message}`).join('; '),
      { problems },
    );
  }
}

/** Throws `consent.browser_invalid` unless `browserId` has the banner's form. */
export function browserIdOrThrow(browserId: string, path: string): void {
  if (!BROWSER_ID.test(browserId)) {
    throw new ValidationError('consent.browser_invalid', `${path}: ${BROWSER_ID_RULE}`);
  }
}

/** The manifest's purposes, quoted, for messages. */
export function purposeList(rules: DecisionRules): string {
  return rules
    .purposes()
    .map((p) => `"${p.key}"`)
    .join(', ');
}
