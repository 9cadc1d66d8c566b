/**
 * The share gate's decisions that need nothing but the manifest: is this a declared flow (a
 * recipient, a purpose it is declared for, categories it may receive for that purpose), does it
 * amount to a sale, and does it break a pledge. Each refusal has its own stable code and says what,
 * where (the request's JSON path) and how to fix it. The service (share.service.ts) adds what needs
 * the database: the recipient's standing, a legal request's approval and each person's choices.
 */
import { CARD_TOKEN_CATEGORIES } from '../collect/collect.service.js';
import type { Manifest, Pledge, Purpose, PurposeUse, Recipient } from '../manifest/manifest.schema.js';
import { coversCategory } from '../manifest/taxonomy.js';
import { ForbiddenError, ValidationError, type PledgeError } from '../platform/errors.js';

/** Every code the share gate refuses with (docs/sharing.md lists what each means and how to fix it). */
export const SHARE_CODES = {
  recipientUndeclared: 'share.recipient_undeclared',
  purposeUndeclared: 'share.purpose_undeclared',
  purposeNotForRecipient: 'share.purpose_not_declared_for_recipient',
  categoryNotDeclared: 'share.category_not_declared',
  fieldUnknown: 'share.field_unknown',
  systemCategory: 'share.category_not_allowed_for_system',
  saleForbidden: 'share.sale_forbidden',
  pledgeBreach: 'share.pledge_breach',
  legalRequestRequired: 'share.legal_request_required',
  legalRequestNotApproved: 'share.legal_request_not_approved',
  legalScopeExceeded: 'share.legal_scope_exceeded',
  legalRequestUnexpected: 'share.legal_request_unexpected',
  acknowledgementRequired: 'share.acknowledgement_required',
  recipientPaused: 'share.recipient_paused',
  subjectNotFound: 'share.subject_not_found',
  optedOut: 'share.opted_out',
  consentWithheld: 'share.consent_withheld',
} as const;

/** A code of {@link SHARE_CODES}. */
export type ShareCode = (typeof SHARE_CODES)[keyof typeof SHARE_CODES];

/** Purpose uses that sell, trade or rent: never a reason to disclose, whatever a manifest says. */
const SELLING: ReadonlySet<PurposeUse> = new Set(['sale', 'trade', 'rent']);

/** A field asked for, and the categories it may leave under for this flow. */
export interface PlannedField {
  name: string;
  /** The categories the manifest's sources store this field under that may leave for this flow. */
  categories: readonly string[];
}

/** A flow the manifest allows: who, for what, which categories, which fields. */
export interface FlowPlan {
  recipient: Recipient;
  purpose: Purpose;
  /** What the recipient may receive for the purpose (its declaration), narrowed by the caller's system. */
  allowed: readonly string[];
  fields: readonly PlannedField[];
  /** Categories that leave (the union of the fields'), for the record. */
  categories: readonly string[];
}

/** What a flow is asked with: a field is a name (the vault's) or a name with its category (pass-through). */
export interface FlowRequest {
  recipient: string;
  purpose: string;
  fields: ReadonlyArray<string | { name: string; category: string }>;
  /** The categories the caller's system may use for the purpose (`undefined`: all of the purpose's). */
  systemCategories?: readonly string[] | undefined;
}

/** True when one of `list` covers `category`. */
function covered(list: readonly string[], category: string): boolean {
  return list.some((c) => coversCategory(c, category));
}

function quoted(keys: readonly string[]): string {
  return keys.length === 0 ? 'none' : keys.map((k) => `"${k}"`).join(', ');
}

/** The categories a recipient is declared to receive for a purpose; `undefined` when it is not declared for it. */
export function recipientCategoriesFor(
  recipient: Recipient,
  purposeKey: string,
): readonly string[] | undefined {
  if (recipient.declarations !== undefined) {
    const d = recipient.declarations.filter((x) => x.purpose === purposeKey);
    if (d.length === 0) return undefined;
    return d.flatMap((x) => x.categories ?? []);
  }
  return recipient.purposes.includes(purposeKey) ? recipient.categories : undefined;
}

/** The purposes a recipient is declared for. */
function recipientPurposes(recipient: Recipient): string[] {
  return recipient.declarations !== undefined
    ? [...new Set(recipient.declarations.map((d) => d.purpose))]
    : [...recipient.purposes];
}

/** Field name → the categories the manifest's sources store it under (plus the card processor's token fields). */
export function fieldCategories(
  manifest: Manifest,
  extra: Readonly<Record<string, string>> = {},
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (name: string, category: string) => {
    const list = out.get(name);
    if (list === undefined) out.set(name, [category]);
    else if (!list.includes(category)) list.push(category);
  };
  for (const s of manifest.sources)
    for (const [name, f] of Object.entries(s.fields ?? {})) add(name, f.category);
  for (const [name, category] of Object.entries(extra)) add(name, category);
  return out;
}

/** The disclosure field index of each manifest, made once per manifest (a manifest never changes). */
const FIELD_INDEXES = new WeakMap<Manifest, Map<string, string[]>>();

/**
 * Field name → categories as disclosures see them: the fields of the manifest's collection points
 * and the card processor's token fields. One index for every path that checks fields against
 * categories (the share gate, the legal requests' approved scope), so they cannot disagree.
 */
export function shareFieldIndex(manifest: Manifest): ReadonlyMap<string, readonly string[]> {
  let index = FIELD_INDEXES.get(manifest);
  if (index === undefined) {
    index = fieldCategories(manifest, {
      card_token: CARD_TOKEN_CATEGORIES.token,
      card_brand: CARD_TOKEN_CATEGORIES.brand,
      card_last_four: CARD_TOKEN_CATEGORIES.lastFour,
    });
    FIELD_INDEXES.set(manifest, index);
  }
  return index;
}

/** True for a disclosure that sells, trades or rents: a recipient with consideration, or a purpose of that use. */
export function isSale(recipient: Recipient, purpose: Purpose): boolean {
  return recipient.consideration !== 'none' || SELLING.has(purpose.use);
}

/**
 * Checks a flow against the manifest and returns its plan; throws the refusal otherwise, in this
 * order: `share.recipient_undeclared`, `share.purpose_undeclared`, `share.sale_forbidden` (the
 * second wall, which holds even for a manifest the checker never saw), `share.purpose_not_declared_for_recipient`,
 * `share.field_unknown`, `share.pledge_breach` (a never_store pledge whose categories go only to
 * its `only_to`), `share.category_not_declared`, `share.category_not_allowed_for_system`.
 */
export function planFlow(
  manifest: Manifest,
  request: FlowRequest,
  fieldIndex: ReadonlyMap<string, readonly string[]>,
): FlowPlan {
  const recipient = manifest.recipients.find((r) => r.key === request.recipient);
  if (recipient === undefined) {
    throw new ForbiddenError(
      SHARE_CODES.recipientUndeclared,
      `recipient: "${request.recipient}" is not a recipient the manifest declares, so nothing may be disclosed to it; ` +
        `use one of ${quoted(manifest.recipients.map((r) => r.key))}, or declare it under recipients: (with what it receives for which purpose) and activate the manifest`,
      { path: 'recipient', recipient: request.recipient, recipients: manifest.recipients.map((r) => r.key) },
    );
  }
  const purpose = manifest.purposes.find((p) => p.key === request.purpose);
  if (purpose === undefined) {
    throw new ValidationError(
      SHARE_CODES.purposeUndeclared,
      `purpose: "${request.purpose}" is not a purpose the manifest declares; use one of ${quoted(manifest.purposes.map((p) => p.key))}`,
      { path: 'purpose', purpose: request.purpose, purposes: manifest.purposes.map((p) => p.key) },
      422,
    );
  }
  if (isSale(recipient, purpose)) {
    const why =
      recipient.consideration !== 'none'
        ? `recipient "${recipient.key}" gives ${recipient.consideration === 'sale' ? 'payment' : recipient.consideration} in return (consideration: ${recipient.consideration})`
        : `purpose "${purpose.key}" is of use "${purpose.use}"`;
    throw new ForbiddenError(
      SHARE_CODES.saleForbidden,
      `${recipient.consideration !== 'none' ? 'recipient' : 'purpose'}: ${why}, so this disclosure would sell, trade or rent personal data, which Pledge never does, whatever the manifest declares; ` +
        'share only without consideration and for a purpose that is not a sale (pledge check reports where the manifest says otherwise)',
      {
        path: recipient.consideration !== 'none' ? 'recipient' : 'purpose',
        recipient: recipient.key,
        purpose: purpose.key,
        consideration: recipient.consideration,
        use: purpose.use,
      },
    );
  }
  const declared = recipientCategoriesFor(recipient, purpose.key);
  if (declared === undefined) {
    throw new ForbiddenError(
      SHARE_CODES.purposeNotForRecipient,
      `purpose: recipient "${recipient.key}" is not declared to receive anything for "${purpose.key}"; it receives for ${quoted(recipientPurposes(recipient))}. ` +
        `Ask for one of those, or declare "${purpose.key}" for it in the manifest (recipients: ${recipient.key}, declarations:)`,
      {
        path: 'purpose',
        recipient: recipient.key,
        purpose: purpose.key,
        purposes: recipientPurposes(recipient),
      },
    );
  }
  // What leaves must be the purpose's too, and the caller's system's.
  const allowed = [
    ...new Set([
      ...declared.filter((c) => covered(purpose.categories, c)),
      ...purpose.categories.filter((c) => covered(declared, c)),
    ]),
  ];

  const unknown: Array<{ path: string; field: string }> = [];
  const breaches: Array<{ path: string; field: string; category: string; pledge: Pledge }> = [];
  const undeclared: Array<{ path: string; field: string; categories: readonly string[] }> = [];
  const notForSystem: Array<{ path: string; field: string; categories: readonly string[] }> = [];
  const fields: PlannedField[] = [];
  const neverStore = manifest.pledges.filter((p) => p.kind === 'never_store' && p.only_to !== undefined);
  request.fields.forEach((f, i) => {
    const path = `fields[${i}]`;
    const name = typeof f === 'string' ? f : f.name;
    const stored = typeof f === 'string' ? fieldIndex.get(f) : [f.category];
    if (stored === undefined || stored.length === 0) {
      unknown.push({ path, field: name });
      return;
    }
    for (const category of stored) {
      const pledge = neverStore.find(
        (p) =>
          (p.categories ?? []).some((k) => coversCategory(k, category)) &&
          !(p.only_to ?? []).includes(recipient.key),
      );
      if (pledge) breaches.push({ path, field: name, category, pledge });
    }
    const ok = stored.filter((c) => covered(allowed, c));
    if (ok.length === 0) {
      undeclared.push({ path, field: name, categories: stored });
      return;
    }
    const system = request.systemCategories;
    const forSystem = system === undefined ? ok : ok.filter((c) => covered(system, c));
    if (forSystem.length === 0) {
      notForSystem.push({ path, field: name, categories: ok });
      return;
    }
    fields.push({ name, categories: forSystem });
  });
  if (unknown.length > 0) {
    throw new ValidationError(
      SHARE_CODES.fieldUnknown,
      `${unknown.map((u) => `${u.path}: "${u.field}"`).join('; ')}: no collection point of the manifest has such a field; ask for fields by the names the sources declare (sources: <key>: fields:)`,
      { path: unknown[0]!.path, fields: unknown },
      422,
    );
  }
  if (breaches.length > 0) {
    const b = breaches[0]!;
    throw new ForbiddenError(
      SHARE_CODES.pledgeBreach,
      `${b.path}: "${b.field}" is of category "${b.category}", which pledge "${b.pledge.key}" sends only to ${quoted(b.pledge.only_to ?? [])}, never to "${recipient.key}"; ` +
        'leave the field out of this disclosure',
      {
        path: b.path,
        pledge: b.pledge.key,
        recipient: recipient.key,
        fields: breaches.map((x) => ({
          path: x.path,
          field: x.field,
          category: x.category,
          pledge: x.pledge.key,
        })),
      },
    );
  }
  if (undeclared.length > 0) {
    const u = undeclared[0]!;
    throw new ForbiddenError(
      SHARE_CODES.categoryNotDeclared,
      `${undeclared.map((x) => `${x.path}: "${x.field}" (${quoted(x.categories)})`).join('; ')}: recipient "${recipient.key}" is not declared to receive ${undeclared.length === 1 ? 'that category' : 'those categories'} for "${purpose.key}"; ` +
        `it may receive ${quoted(allowed)}. Leave ${undeclared.length === 1 ? 'the field' : 'them'} out, or declare the category for "${recipient.key}" and "${purpose.key}" in the manifest`,
      { path: u.path, recipient: recipient.key, purpose: purpose.key, fields: undeclared, allowed },
    );
  }
  if (notForSystem.length > 0) {
    const n = notForSystem[0]!;
    throw new ForbiddenError(
      SHARE_CODES.systemCategory,
      `${notForSystem.map((x) => `${x.path}: "${x.field}"`).join('; ')}: the calling system may not use ${quoted(n.categories)} for "${purpose.key}", so it cannot disclose ${notForSystem.length === 1 ? 'it' : 'them'}; ` +
        'use the key of a system declared for those categories, or leave the field out',
      { path: n.path, purpose: purpose.key, fields: notForSystem },
    );
  }
  return {
    recipient,
    purpose,
    allowed,
    fields,
    categories: [...new Set(fields.flatMap((f) => f.categories))],
  };
}

/**
 * Whether the global opt-out of distribution ("opt out of ... distribution of your information")
 * stops this flow. It stops every disclosure but two: to a processor for a purpose of use `service`
 * (it acts for us to provide the service the person asked for: the card processor at billing, the
 * e-mail delivery provider for service mail) and to an authority under an approved legal request
 * (the law requires it). Affiliates, third parties, and processors for any other use are stopped.
 */
export function optOutStops(plan: Pick<FlowPlan, 'recipient' | 'purpose'>): boolean {
  if (plan.recipient.kind === 'processor' && plan.purpose.use === 'service') return false;
  if (plan.recipient.kind === 'authority') return false;
  return true;
}

/** A refusal of one subject, in the answer and the record (not thrown: the others may still be served). */
export interface SubjectRefusal {
  code: ShareCode;
  message: string;
}

/** The refusal for a subject whose choices do not allow the disclosure. */
export function subjectRefusal(
  // 'unknown', 'global_opt_out', or the consent decision's reason.
  reason: string,
  plan: Pick<FlowPlan, 'recipient' | 'purpose'>,
): SubjectRefusal {
  if (reason === 'unknown') {
    return {
      code: SHARE_CODES.subjectNotFound,
      message: 'there is no subject with this id (or it was erased)',
    };
  }
  if (reason === 'global_opt_out') {
    return {
      code: SHARE_CODES.optedOut,
      message: `this person opted out of the distribution of their information, so nothing goes to "${plan.recipient.key}" for "${plan.purpose.key}"; only what is needed to provide the service they asked for, or what the law requires, still may`,
    };
  }
  return {
    code: SHARE_CODES.consentWithheld,
    message: `this person's choices do not allow "${plan.purpose.key}" (${reason}), so nothing of theirs is disclosed for it`,
  };
}

/** The error a refusal of one subject becomes when there is only that one (pass-through). */
export function subjectRefusalError(refusal: SubjectRefusal): PledgeError {
  return new ForbiddenError(refusal.code, refusal.message);
}

/** The category a message's address is of. */
export const MAIL_CATEGORY = 'user.contact.email';

/**
 * The recipient that delivers a purpose's mail: the first processor the manifest declares to
 * receive e-mail addresses for it; `undefined` when there is none (then no mail goes out).
 */
export function mailRecipientOf(manifest: Manifest, purpose: Purpose): string | undefined {
  return manifest.recipients.find((r) => {
    if (r.kind !== 'processor') return false;
    const categories =
      r.declarations !== undefined
        ? r.declarations.filter((d) => d.purpose === purpose.key).flatMap((d) => d.categories ?? [])
        : r.purposes.includes(purpose.key)
          ? r.categories
          : [];
    return categories.some((c) => coversCategory(c, MAIL_CATEGORY));
  })?.key;
}
