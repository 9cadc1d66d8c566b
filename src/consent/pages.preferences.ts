/**
 * What the preference center shows and saves: one switch per purpose a person may turn off, the
 * purposes they may not (and why), and the global opt-out. Saving compares the submitted form with
 * the ledger and records only the switches that moved.
 *
 * A switch stands for the purpose on every channel: it shows "on" only when the purpose and each of
 * its channels are allowed (an unsubscribe link withdraws one channel, e.g. marketing by e-mail, and
 * the switch must then show "off"). Moving it records the purpose as a whole and, where a channel
 * has a choice of its own that says otherwise, that channel too, because a channel's choice
 * outranks the purpose's.
 */
import type { Purpose } from '../manifest/manifest.schema.js';
import type { Context } from '../platform/context.js';
import { GLOBAL_PURPOSE, choiceKey, type ChoiceState, type HolderChoices } from './consent.decide.js';
import type { ConsentEvidence, ConsentService, RecordChoiceInput } from './consent.service.js';

/** A purpose as the preference center lists it. */
export interface PreferenceItem {
  purpose: Purpose;
  /** Whether the person may switch it. */
  optional: boolean;
  /** The switch: the person's own setting, whatever the global opt-out says. */
  on: boolean;
  /** Whether the purpose may use the person's data now (the switch and the global opt-out). */
  allowed: boolean;
  /** Why a purpose that is not optional cannot be switched off. */
  fixed?: 'needed_for_service' | 'required_by_law' | 'never' | undefined;
  /** The person is opted out by a Global Privacy Control signal. */
  byGpc: boolean;
}

/** The preference center of one subject. */
export interface Preferences {
  items: PreferenceItem[];
  /** Opted out of everything optional. */
  globalOptOut: boolean;
  /** Purposes a Global Privacy Control signal opts out of. */
  gpcPurposes: string[];
}

/** A submitted preference form. */
export interface PreferenceForm {
  /** The optional purposes the form showed (only these may change). */
  shown: ReadonlySet<string>;
  /** The shown purposes whose switch was on. */
  on: ReadonlySet<string>;
  /** Whether the form showed the global opt-out, and its state. */
  globalShown: boolean;
  globalOptOut: boolean;
}

/** One line of "what changed", as a person reads it. */
export interface PreferenceChange {
  /** The purpose key, or "*" for the global opt-out. */
  key: string;
  name: string;
  on: boolean;
  /** Changed by the browser's Global Privacy Control signal rather than a switch. */
  byGpc: boolean;
}

/** Loads the preference center of a subject; throws `consent.subject_not_found` when unknown or erased. */
export async function loadPreferences(
  ctx: Context,
  consent: ConsentService,
  subjectId: string,
): Promise<Preferences> {
  const views = await consent.purposeChoices(ctx, { subjectId });
  const choices = await consent.choicesOfSubject(ctx, subjectId);
  const own: HolderChoices = {
    jurisdiction: choices?.jurisdiction,
    choices: withoutGlobal(choices?.choices ?? new Map<string, ChoiceState>()),
  };
  const items = views.map((view): PreferenceItem => {
    const purpose = view.purpose;
    const channels: Array<string | undefined> = [undefined, ...purpose.channels];
    const decisions = channels.map((ch) => consent.rules.decide(own, purpose.key, ch));
    return {
      purpose,
      optional: view.optional,
      on: decisions.every((d) => d.allowed),
      allowed: view.decision.allowed && decisions.every((d) => d.allowed),
      fixed: view.optional
        ? undefined
        : view.decision.reason === 'pledge'
          ? 'never'
          : purpose.legal_basis === 'legal_obligation'
            ? 'required_by_law'
            : 'needed_for_service',
      byGpc: decisions.some((d) => d.reason === 'gpc'),
    };
  });
  const global = choices?.choices.get(choiceKey(GLOBAL_PURPOSE, ''));
  return {
    items,
    globalOptOut: global !== undefined && global.state !== 'granted',
    gpcPurposes: consent.rules.gpcPurposes(),
  };
}

/**
 * The choices to record for a submitted form: nothing for a switch that did not move or a purpose
 * the form did not show.
 */
export async function planPreferenceChanges(
  ctx: Context,
  consent: ConsentService,
  subjectId: string,
  current: Preferences,
  form: PreferenceForm,
  evidence: ConsentEvidence,
): Promise<RecordChoiceInput[]> {
  const choices = (await consent.choicesOfSubject(ctx, subjectId))?.choices ?? new Map<string, ChoiceState>();
  const base = { holder: { subjectId }, method: 'preference_center' as const, evidence };
  const inputs: RecordChoiceInput[] = [];
  for (const item of current.items) {
    if (!item.optional || !form.shown.has(item.purpose.key)) continue;
    const wanted = form.on.has(item.purpose.key);
    if (wanted === item.on) continue;
    const state = wanted ? 'granted' : 'withdrawn';
    inputs.push({ ...base, purpose: item.purpose.key, state });
    for (const channel of item.purpose.channels) {
      const own = choices.get(choiceKey(item.purpose.key, channel));
      if (own !== undefined && (own.state === 'granted') !== wanted) {
        inputs.push({ ...base, purpose: item.purpose.key, channel, state });
      }
    }
  }
  if (form.globalShown && form.globalOptOut !== current.globalOptOut) {
    inputs.push({ ...base, purpose: GLOBAL_PURPOSE, state: form.globalOptOut ? 'withdrawn' : 'granted' });
  }
  return inputs;
}

/**
 * What changed between two loads of the preference center, as a person sees it: each switch that
 * moved, and the global opt-out. `gpcChanged` names the purposes the GPC signal changed.
 */
export function describeChanges(
  before: Preferences,
  after: Preferences,
  gpcChanged: ReadonlySet<string>,
  userChanged: ReadonlySet<string>,
): PreferenceChange[] {
  const changes: PreferenceChange[] = [];
  for (const item of after.items) {
    const was = before.items.find((i) => i.purpose.key === item.purpose.key);
    if (was === undefined || was.on === item.on) continue;
    const key = item.purpose.key;
    changes.push({
      key,
      name: item.purpose.name,
      on: item.on,
      byGpc: gpcChanged.has(key) && !userChanged.has(key),
    });
  }
  if (before.globalOptOut !== after.globalOptOut) {
    changes.push({
      key: GLOBAL_PURPOSE,
      name: 'Opt out of everything optional',
      on: after.globalOptOut,
      byGpc: false,
    });
  }
  return changes;
}

function withoutGlobal(choices: ReadonlyMap<string, ChoiceState>): Map<string, ChoiceState> {
  const copy = new Map(choices);
  copy.delete(choiceKey(GLOBAL_PURPOSE, ''));
  return copy;
}
