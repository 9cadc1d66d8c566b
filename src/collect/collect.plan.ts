/**
 * The plan of a collection point: what the manifest says about each of a source's fields, compiled
 * once at start so that validating a request never has to read the manifest again. Which field is
 * the card number (and its security code) passed through to the card processor, which fields feed
 * the processor with the expiry and holder name, which identify the subject, which are IP addresses
 * or structured answers, and which never_store pledge a refused card number cites.
 */
import type { Manifest, Pledge, Source } from '../manifest/manifest.schema.js';
import { coversCategory } from '../manifest/taxonomy.js';
import type { IdentifierKind } from '../vault/identifiers.js';
import type { SubjectKind } from '../vault/vault.service.js';

const CARD_NUMBER = 'user.financial.payment_card.number';
const CARD_SECURITY_CODE = 'user.financial.payment_card.security_code';
/** A card's expiry date: validated as MM/YY wherever a source collects it. */
export const CARD_EXPIRY = 'user.financial.payment_card.expiry';
const EMAIL = 'user.contact.email';
const IP_ADDRESS = 'user.device.ip_address';
const SURVEY = 'user.survey';

/** How one declared field is handled. */
export interface FieldPlan {
  name: string;
  category: string;
  required: boolean;
  /** Set when the field is passed to a recipient and never stored. */
  passThrough?: { recipient: string; card?: 'number' | 'security_code' };
  /** Set when the field is also given to the card processor. */
  feedsCard?: 'expiry' | 'holder_name';
  /** Set when the field's value identifies the subject. */
  identifier?: IdentifierKind;
  /** IP addresses are truncated unless a purpose needs them whole. */
  ipAddress: boolean;
  /** Structured values (objects, arrays) are accepted: survey answers. */
  structured: boolean;
}

/** A collection point compiled from the manifest once, at start. */
export interface SourcePlan {
  source: Source;
  fields: ReadonlyMap<string, FieldPlan>;
  /** The recipient whose processor receives the card, when the source passes one through. */
  cardRecipient: string | undefined;
  /** True when one of the source's purposes declares `full_ip_address: true`. */
  keepsFullIp: boolean;
  /** The never_store pledge that covers card numbers, if the manifest makes one. */
  cardPledge: { key: string; text: string } | undefined;
  /** The kind of subject a request creates when it matches none (registration, trial sign-up). */
  createsSubject: SubjectKind | undefined;
}

/** The never_store pledge whose categories cover card numbers, or `undefined`. */
export function cardNumberPledge(manifest: Manifest): Pledge | undefined {
  return manifest.pledges.find(
    (p) => p.kind === 'never_store' && (p.categories ?? []).some((c) => coversCategory(c, CARD_NUMBER)),
  );
}

/** Compiles a source's fields, pass-through entries and purposes into a {@link SourcePlan}. */
export function compileSource(manifest: Manifest, source: Source): SourcePlan {
  const declared = Object.entries(source.fields ?? {});
  const passedTo = (category: string) =>
    source.pass_through.find((p) => coversCategory(p.category, category))?.recipient;
  // One card per request, to one processor: the first pass-through card number field is the card.
  const numberField = declared.find(
    ([, f]) => coversCategory(CARD_NUMBER, f.category) && passedTo(f.category) !== undefined,
  )?.[0];
  const cardRecipient =
    numberField === undefined ? undefined : passedTo(source.fields?.[numberField]?.category ?? '');
  let securityCodeField: string | undefined;
  const fields = new Map<string, FieldPlan>();
  for (const [name, f] of declared) {
    const recipient = passedTo(f.category);
    let card: 'number' | 'security_code' | undefined;
    if (name === numberField) card = 'number';
    else if (
      securityCodeField === undefined &&
      recipient !== undefined &&
      recipient === cardRecipient &&
      coversCategory(CARD_SECURITY_CODE, f.category)
    ) {
      card = 'security_code';
      securityCodeField = name;
    }
    // Any other pass-through field has no adapter to go to, and is refused when a value comes.
    const passThrough = recipient === undefined ? undefined : card ? { recipient, card } : { recipient };
    fields.set(name, {
      name,
      category: f.category,
      required: f.required,
      ...(passThrough ? { passThrough } : {}),
      ...(coversCategory(EMAIL, f.category) ? { identifier: 'email' as const } : {}),
      ipAddress: coversCategory(IP_ADDRESS, f.category),
      structured: coversCategory(SURVEY, f.category),
    });
  }
  if (cardRecipient !== undefined) {
    const recipient = manifest.recipients.find((r) => r.key === cardRecipient);
    const receives = (category: string) => recipient?.categories.some((c) => coversCategory(c, category));
    // Expiry and holder name go to the processor only where the manifest says the recipient gets them.
    for (const plan of fields.values()) {
      if (plan.passThrough) continue;
      if (coversCategory(CARD_EXPIRY, plan.category) && receives(plan.category)) plan.feedsCard = 'expiry';
      else if (plan.category === 'user.name' && receives(plan.category)) plan.feedsCard = 'holder_name';
    }
  }
  const pledge = cardNumberPledge(manifest);
  return {
    source,
    fields,
    cardRecipient,
    keepsFullIp: manifest.purposes.some((p) => source.purposes.includes(p.key) && p.full_ip_address),
    cardPledge: pledge ? { key: pledge.key, text: pledge.text } : undefined,
    createsSubject:
      source.kind === 'registration' ? 'customer' : source.kind === 'trial_signup' ? 'trial_user' : undefined,
  };
}
