/**
 * The decision itself: given the manifest, where a person is and the choices they have made, may a
 * purpose (on a channel) use their data? Pure and synchronous, so the warm path of `decide` is a few
 * map lookups. Everything here is precomputed once per manifest.
 */
import {
  consentModeFor,
  type ConsentMode,
  type Manifest,
  type Purpose,
} from '../manifest/manifest.schema.js';

/** The states a choice can be in. */
export const CONSENT_STATES = ['granted', 'denied', 'withdrawn'] as const;
export type ConsentState = (typeof CONSENT_STATES)[number];

/** How a choice was made. */
export const CONSENT_METHODS = [
  'preference_center',
  'unsubscribe_link',
  'one_click',
  'banner',
  'api',
  'gpc',
  'import',
  /** A spam complaint (an ARF report) about a message of the list: the person no longer wants it. */
  'complaint',
] as const;
export type ConsentMethod = (typeof CONSENT_METHODS)[number];

/** The purpose key that stands for "opt out of the collection, use and distribution of my information". */
export const GLOBAL_PURPOSE = '*';

/** Why a decision came out as it did. */
export type DecisionReason =
  /** The purpose is needed for the service the person asked for, or by law (consent mode "required"). */
  | 'required'
  /** The person opted in. */
  | 'opt_in_granted'
  /** Opt-in purpose, and the person has not opted in. */
  | 'opt_in_missing'
  /** Opt-out purpose, and the person has not opted out. */
  | 'opt_out_default'
  /** The person gave and then withdrew consent, or opted out. */
  | 'withdrawn'
  /** The person said no when asked. */
  | 'denied'
  /** The person opted out of everything optional. */
  | 'global_opt_out'
  /** A Global Privacy Control signal opted the person out. */
  | 'gpc'
  /** A pledge in the manifest forbids the purpose outright. */
  | 'pledge'
  /** The purpose is not declared on this channel. */
  | 'channel_not_declared';

/** A decision. */
export interface Decision {
  allowed: boolean;
  reason: DecisionReason;
  /**
   * For a decision without a channel, of a purpose allowed as a whole: the channels whose own
   * choice says no (withdrawn, denied, GPC), which make the decision a no. Absent otherwise.
   */
  withdrawnChannels?: readonly string[];
}

/** The latest choice for one purpose and channel, as the projection keeps it. */
export interface ChoiceState {
  state: ConsentState;
  method: ConsentMethod;
  at: Date;
  eventId: string;
}

/**
 * What `decide` needs to know about a holder (a subject or a browser): where they are and their
 * choices keyed by {@link choiceKey}.
 */
export interface HolderChoices {
  jurisdiction: string | undefined;
  choices: ReadonlyMap<string, ChoiceState>;
}

/** The key of a choice in {@link HolderChoices.choices}: purpose and channel ("" for every channel). */
export function choiceKey(purpose: string, channel: string): string {
  return `${purpose}\u0000${channel}`;
}

const DECISIONS: Record<DecisionReason, Decision> = {
  required: { allowed: true, reason: 'required' },
  opt_in_granted: { allowed: true, reason: 'opt_in_granted' },
  opt_in_missing: { allowed: false, reason: 'opt_in_missing' },
  opt_out_default: { allowed: true, reason: 'opt_out_default' },
  withdrawn: { allowed: false, reason: 'withdrawn' },
  denied: { allowed: false, reason: 'denied' },
  global_opt_out: { allowed: false, reason: 'global_opt_out' },
  gpc: { allowed: false, reason: 'gpc' },
  pledge: { allowed: false, reason: 'pledge' },
  channel_not_declared: { allowed: false, reason: 'channel_not_declared' },
};

/** Purpose uses that the no-sale pledge forbids outright. */
const SALE_USES = new Set(['sale', 'trade', 'rent']);

/** A purpose as the decision needs it, precomputed. */
interface PurposeRule {
  purpose: Purpose;
  /** Forbidden by a pledge whatever anyone chooses. */
  pledged: boolean;
  channels: ReadonlySet<string>;
  /** Consent mode by jurisdiction, filled lazily (a handful of jurisdictions in practice). */
  modes: Map<string, ConsentMode>;
}

/** The manifest's purposes, indexed for decisions. Build once per manifest. */
export class DecisionRules {
  readonly #rules = new Map<string, PurposeRule>();
  /** purpose -> channel ("" for the purpose as a whole) -> slot, for every declared pair. */
  readonly #slots = new Map<string, Map<string, number>>();

  constructor(manifest: Manifest) {
    const noSale = manifest.pledges.some((p) => p.kind === 'no_sale');
    const neverUse = new Set(
      manifest.pledges
        .filter((p) => p.kind === 'never_use' && (p.categories === undefined || p.categories.length === 0))
        .flatMap((p) => p.purposes ?? []),
    );
    let next = 0;
    for (const purpose of manifest.purposes) {
      this.#rules.set(purpose.key, {
        purpose,
        pledged: neverUse.has(purpose.key) || (noSale && SALE_USES.has(purpose.use)),
        channels: new Set(purpose.channels),
        modes: new Map(),
      });
      const slots = new Map<string, number>();
      for (const channel of ['', ...purpose.channels]) if (!slots.has(channel)) slots.set(channel, next++);
      this.#slots.set(purpose.key, slots);
    }
    this.slotCount = next;
  }

  /** How many slots {@link DecisionRules.slotOf} hands out (numbered from 0). */
  readonly slotCount: number;

  /**
   * A small number for a declared purpose on one of its declared channels ("" or undefined: the
   * purpose as a whole), under which a holder's decision can be kept in an array; undefined for an
   * undeclared purpose or channel. Decisions for these pairs depend on nothing but the holder.
   */
  slotOf(purposeKey: string, channel: string | undefined): number | undefined {
    return this.#slots.get(purposeKey)?.get(channel ?? '');
  }

  /** The purpose with this key, or `undefined` (closed world: callers refuse unknown purposes). */
  getPurpose(key: string): Purpose | undefined {
    return this.#rules.get(key)?.purpose;
  }

  /**
   * Decides for a declared purpose. `channel` narrows to one channel of the purpose ("" or
   * undefined: the purpose as a whole, which for a purpose used on channels means on every one of
   * them). Callers check the purpose is declared first.
   */
  decide(holder: HolderChoices, purposeKey: string, channel: string | undefined): Decision {
    const rule = this.#ruleOrThrow(purposeKey);
    if (rule.pledged) return DECISIONS.pledge;
    const ch = channel ?? '';
    if (ch !== '' && !rule.channels.has(ch)) return DECISIONS.channel_not_declared;
    const mode = this.#mode(rule, holder.jurisdiction);
    if (mode === 'required') return DECISIONS.required;
    const global = holder.choices.get(choiceKey(GLOBAL_PURPOSE, ''));
    if (global !== undefined && global.state !== 'granted') return DECISIONS.global_opt_out;
    if (ch === '' && rule.channels.size > 0) return this.#decideEveryChannel(holder, purposeKey, rule, mode);
    return this.#decideByChoice(holder, purposeKey, ch, mode);
  }

  /**
   * A decision without a channel for a purpose used on channels: allowed only when it is allowed
   * on every one of them, so that a caller who does not name a channel (a CRM reading the consent
   * view, a collection point) never reads "allowed" for a channel the person withdrew. When the
   * purpose as a whole would be allowed but a channel's own choice says no (a one-click
   * unsubscribe withdraws marketing on e-mail only), the decision is that channel's, with the
   * channels withdrawn; when the purpose as a whole is refused, that decision stands as it is.
   */
  #decideEveryChannel(
    holder: HolderChoices,
    purposeKey: string,
    rule: PurposeRule,
    mode: ConsentMode,
  ): Decision {
    const whole = this.#decideByChoice(holder, purposeKey, '', mode);
    let refused: Decision | undefined;
    const withdrawn: string[] = [];
    for (const ch of rule.channels) {
      const d = this.#decideByChoice(holder, purposeKey, ch, mode);
      if (d.allowed) continue;
      refused ??= d;
      withdrawn.push(ch);
    }
    // Every channel has its own "yes": allowed, whatever was chosen for the purpose as a whole.
    if (refused === undefined) return whole.allowed ? whole : DECISIONS.opt_in_granted;
    if (!whole.allowed) return whole;
    // Allowed as a whole, so each refusal is a channel's own choice (withdrawn, denied or GPC).
    return { ...refused, withdrawnChannels: withdrawn };
  }

  /** The person's own choice for the channel ("" the purpose as a whole), or the mode's default. */
  #decideByChoice(holder: HolderChoices, purposeKey: string, ch: string, mode: ConsentMode): Decision {
    // A choice for the channel outranks one for the purpose as a whole, whichever came later: "no
    // marketing e-mail" stays in force when the person later allows marketing in general.
    const choice =
      (ch !== '' ? holder.choices.get(choiceKey(purposeKey, ch)) : undefined) ??
      holder.choices.get(choiceKey(purposeKey, ''));
    if (choice !== undefined) {
      switch (choice.state) {
        case 'granted':
          return DECISIONS.opt_in_granted;
        case 'withdrawn':
          return choice.method === 'gpc' ? DECISIONS.gpc : DECISIONS.withdrawn;
        case 'denied':
          return choice.method === 'gpc' ? DECISIONS.gpc : DECISIONS.denied;
      }
    }
    return mode === 'opt_out' ? DECISIONS.opt_out_default : DECISIONS.opt_in_missing;
  }

  /** Keys of the purposes a GPC signal opts out of. */
  gpcPurposes(): string[] {
    return [...this.#rules.values()].filter((r) => r.purpose.gpc).map((r) => r.purpose.key);
  }

  /** Every declared purpose. */
  purposes(): Purpose[] {
    return [...this.#rules.values()].map((r) => r.purpose);
  }

  #ruleOrThrow(key: string): PurposeRule {
    const rule = this.#rules.get(key);
    if (rule === undefined) throw new Error(`purpose "${key}" is not declared (callers check first)`);
    return rule;
  }

  #mode(rule: PurposeRule, jurisdiction: string | undefined): ConsentMode {
    const j = jurisdiction ?? '';
    let mode = rule.modes.get(j);
    if (mode === undefined) {
      mode = consentModeFor(rule.purpose, jurisdiction);
      rule.modes.set(j, mode);
    }
    return mode;
  }
}
