/**
 * The consistency checker behind `pledge check`: proves that every declared flow keeps every
 * pledge, that every reference resolves, that consent can be given and withdrawn, and that nothing
 * is kept longer than its purposes allow. It reports every problem at once with its location.
 */
import { durationDays, describeDuration } from './duration.js';
import { loadManifestFile, type Locator } from './manifest.loader.js';
import { consentModes, type Manifest, type Purpose } from './manifest.schema.js';
import { sortProblems, suggest, type ManifestPath, type ManifestProblem } from './problems.js';
import { coversCategory, parentKey, Taxonomy } from './taxonomy.js';
import { checkDeclarations, DECLARATION_CODES } from './manifest.declarations.js';
import { checkMarketingOptOut, checkNeverStore, checkNeverUse, checkNoSale } from './manifest.pledges.js';
import { checkFidesReferences, FIDES_CHECK_CODES } from './fides.checks.js';
import { checkDatasets, DATASET_CHECK_CODES } from './dataset.checks.js';
import { checkCredentials, CREDENTIALS_CHECK_CODES } from './credentials.checks.js';
import { BANNER_CHECK_CODES, checkBanner } from './banner.checks.js';
import { checkRecipients, RECIPIENT_CHECK_CODES } from './recipients.checks.js';
import { checkRequests, REQUESTS_CHECK_CODES } from './requests.checks.js';
import { isCredentialCategory } from './credentials.js';

/** Every code the checker can report, for docs and tools. */
export const CHECK_CODES = {
  unknownCategory: 'check.unknown_category',
  unknownPurpose: 'check.unknown_purpose',
  unknownRecipient: 'check.unknown_recipient',
  unknownTransferMechanism: 'check.unknown_transfer_mechanism',
  unknownAffiliate: 'check.unknown_affiliate',
  unknownJurisdiction: 'check.unknown_jurisdiction',
  categoryParentMissing: 'check.category_parent_missing',
  sourceCategoryUnserved: 'check.source_category_unserved',
  fieldCategoryUndeclared: 'check.field_category_undeclared',
  recipientCategoryNotCollected: 'check.recipient_category_not_collected',
  consentWithoutChoice: 'check.consent_without_choice',
  consentBasisMismatch: 'check.consent_basis_mismatch',
  pledgeViolated: 'check.pledge_violated',
  pledgeIncomplete: 'check.pledge_incomplete',
  retentionExceeded: 'check.retention_exceeded',
  retentionRuleTarget: 'check.retention_rule_target',
  affiliateRecipientUnlinked: 'check.affiliate_recipient_unlinked',
  webhookUrlInsecure: 'check.webhook_url_insecure',
  webhookUrlCredentials: 'check.webhook_url_credentials',
  ...DECLARATION_CODES,
  ...FIDES_CHECK_CODES,
  ...DATASET_CHECK_CODES,
  ...CREDENTIALS_CHECK_CODES,
  ...BANNER_CHECK_CODES,
  ...RECIPIENT_CHECK_CODES,
  ...REQUESTS_CHECK_CODES,
} as const;

/** The outcome of `checkManifest`. */
export interface CheckResult {
  problems: ManifestProblem[];
}

type Related = NonNullable<ManifestProblem['related']>[number];

/** Checks a schema-valid manifest. Never throws; every finding is in the result. */
export function checkManifest(manifest: Manifest, locator: Locator): CheckResult {
  const problems: ManifestProblem[] = [];
  const taxonomy = new Taxonomy(manifest.categories);
  const purposes = new Map(manifest.purposes.map((p, i) => [p.key, { purpose: p, index: i }]));
  const recipients = new Map(manifest.recipients.map((r, i) => [r.key, { recipient: r, index: i }]));

  const report = (
    code: string,
    path: ManifestPath,
    message: string,
    hint: string,
    related: Related[] = [],
  ) => {
    problems.push({
      code,
      message,
      hint,
      path,
      location: locator.locate(path),
      ...(related.length > 0 ? { related } : {}),
    });
  };
  const rel = (path: ManifestPath, message: string): Related => ({
    message,
    path,
    location: locator.locate(path),
  });

  // ---- references ----------------------------------------------------------------------------
  const categoryRef = (key: string, path: ManifestPath) => {
    if (taxonomy.has(key)) return true;
    const guess = suggest(key, taxonomy.keys());
    report(
      CHECK_CODES.unknownCategory,
      path,
      `unknown data category "${key}"${guess ? ` (did you mean "${guess}"?)` : ''}`,
      guess
        ? `write "${guess}", or declare "${key}" under categories:`
        : `use a built-in category (see docs/taxonomy.md) or declare "${key}" under categories:`,
    );
    return false;
  };
  const purposeRef = (key: string, path: ManifestPath) => {
    if (purposes.has(key)) return true;
    const guess = suggest(key, [...purposes.keys()]);
    report(
      CHECK_CODES.unknownPurpose,
      path,
      `unknown purpose "${key}"${guess ? ` (did you mean "${guess}"?)` : ''}`,
      guess
        ? `write "${guess}"`
        : `declare a purpose with key "${key}" under purposes:, or remove the reference`,
    );
    return false;
  };
  const recipientRef = (key: string, path: ManifestPath) => {
    if (recipients.has(key)) return true;
    const guess = suggest(key, [...recipients.keys()]);
    report(
      CHECK_CODES.unknownRecipient,
      path,
      `unknown recipient "${key}"${guess ? ` (did you mean "${guess}"?)` : ''}`,
      guess ? `write "${guess}"` : `declare a recipient with key "${key}" under recipients:`,
    );
    return false;
  };

  manifest.categories.forEach((c, i) => {
    const parent = parentKey(c.key);
    if (parent !== undefined && !taxonomy.has(parent)) {
      report(
        CHECK_CODES.categoryParentMissing,
        ['categories', i, 'key'],
        `category "${c.key}" extends "${parent}", which is not a known category`,
        `declare "${parent}" first, or place "${c.key}" under a built-in parent such as "user"`,
      );
    }
  });

  const knownJurisdictions = new Set(manifest.jurisdictions);
  manifest.purposes.forEach((p, i) => {
    p.categories.forEach((c, j) => categoryRef(c, ['purposes', i, 'categories', j]));
    if (typeof p.consent !== 'string' && knownJurisdictions.size > 0) {
      for (const j of Object.keys(p.consent)) {
        if (j !== 'default' && !knownJurisdictions.has(j) && !(j === 'EEA' && knownJurisdictions.has('EU'))) {
          report(
            CHECK_CODES.unknownJurisdiction,
            ['purposes', i, 'consent', j],
            `purpose "${p.key}" sets a consent mode for "${j}", which is not in jurisdictions:`,
            `add "${j}" to jurisdictions:, or remove it here`,
          );
        }
      }
    }
  });

  manifest.sources.forEach((s, i) => {
    s.categories.forEach((c, j) => categoryRef(c, ['sources', i, 'categories', j]));
    s.purposes.forEach((p, j) => purposeRef(p, ['sources', i, 'purposes', j]));
    s.pass_through.forEach((pt, j) => {
      categoryRef(pt.category, ['sources', i, 'pass_through', j, 'category']);
      recipientRef(pt.recipient, ['sources', i, 'pass_through', j, 'recipient']);
    });
    for (const [name, field] of Object.entries(s.fields ?? {})) {
      const path = ['sources', i, 'fields', name, 'category'];
      if (categoryRef(field.category, path) && !taxonomy.isCoveredBy(field.category, s.categories)) {
        report(
          CHECK_CODES.fieldCategoryUndeclared,
          path,
          `field "${name}" of source "${s.key}" holds "${field.category}", which the source does not declare it collects`,
          `add "${field.category}" (or a parent of it) to sources[${i}].categories, or change the field's category`,
          [rel(['sources', i, 'categories'], 'the categories this source declares')],
        );
      }
    }
  });

  manifest.recipients.forEach((r, i) => {
    if (
      r.transfer_mechanism !== undefined &&
      !manifest.organization.transfer_mechanisms.some((t) => t.key === r.transfer_mechanism)
    ) {
      report(
        CHECK_CODES.unknownTransferMechanism,
        ['recipients', i, 'transfer_mechanism'],
        `recipient "${r.key}" names transfer mechanism "${r.transfer_mechanism}", which organization.transfer_mechanisms does not declare`,
        'declare it under organization.transfer_mechanisms:, or name a declared one',
      );
    }
    if (r.affiliate !== undefined && !manifest.organization.affiliates.some((a) => a.key === r.affiliate)) {
      report(
        CHECK_CODES.unknownAffiliate,
        ['recipients', i, 'affiliate'],
        `recipient "${r.key}" names affiliate "${r.affiliate}", which organization.affiliates does not declare`,
        'declare the company under organization.affiliates:, or fix the key',
      );
    }
    if (r.kind === 'affiliate' && r.affiliate === undefined) {
      report(
        CHECK_CODES.affiliateRecipientUnlinked,
        ['recipients', i, 'kind'],
        `recipient "${r.key}" is an affiliate but does not say which company of the group it is`,
        'add affiliate: <key of an organization.affiliates entry>',
      );
    }
  });

  manifest.retention.forEach((rule, i) => {
    const hasCategory = rule.category !== undefined;
    const hasPurpose = rule.purpose !== undefined;
    if (hasCategory === hasPurpose) {
      report(
        CHECK_CODES.retentionRuleTarget,
        ['retention', i],
        'a retention rule limits either a category or a purpose',
        'give exactly one of category: or purpose:',
      );
    }
    if (rule.category !== undefined) categoryRef(rule.category, ['retention', i, 'category']);
    if (rule.purpose !== undefined) purposeRef(rule.purpose, ['retention', i, 'purpose']);
  });

  manifest.choices.forEach((c, i) => {
    if (c.purposes !== 'all') c.purposes.forEach((p, j) => purposeRef(p, ['choices', i, 'purposes', j]));
  });

  manifest.webhooks.forEach((w, i) => {
    if (w.purposes !== 'all') w.purposes.forEach((p, j) => purposeRef(p, ['webhooks', i, 'purposes', j]));
    const url = new URL(w.url);
    if (url.protocol !== 'https:' && !isLoopbackHost(url.hostname)) {
      report(
        CHECK_CODES.webhookUrlInsecure,
        ['webhooks', i, 'url'],
        `webhook "${w.key}" would send people's choices to ${url.host} unencrypted (http)`,
        `use https://${url.host}${url.pathname}; plain http is accepted only for localhost, 127.0.0.1 or [::1]`,
      );
    }
    if (url.username !== '' || url.password !== '') {
      report(
        CHECK_CODES.webhookUrlCredentials,
        ['webhooks', i, 'url'],
        `webhook "${w.key}" has a user name or password in its URL, and the manifest is published`,
        'remove them from the URL: a receiver authenticates deliveries by their Pledge-Signature header (see docs/webhooks.md)',
      );
    }
  });

  manifest.pledges.forEach((p, i) => {
    p.categories?.forEach((c, j) => categoryRef(c, ['pledges', i, 'categories', j]));
    p.purposes?.forEach((k, j) => purposeRef(k, ['pledges', i, 'purposes', j]));
    p.only_to?.forEach((k, j) => recipientRef(k, ['pledges', i, 'only_to', j]));
    const needs: Record<string, Array<'categories' | 'purposes'>> = {
      never_store: ['categories'],
      never_use: ['categories', 'purposes'],
    };
    for (const field of needs[p.kind] ?? []) {
      if (!p[field] || p[field].length === 0) {
        report(
          CHECK_CODES.pledgeIncomplete,
          ['pledges', i],
          `pledge "${p.key}" (${p.kind}) needs ${field}: to say what it protects`,
          `add ${field}: [...] to the pledge`,
        );
      }
    }
  });

  checkDeclarations(manifest, { taxonomy, purposes, report, rel, categoryRef, purposeRef });

  // ---- flows: what each source collects is served by its purposes --------------------------------
  const purposeCategories = (keys: readonly string[]) =>
    keys.flatMap((k) => purposes.get(k)?.purpose.categories ?? []);

  manifest.sources.forEach((s, i) => {
    const served = purposeCategories(s.purposes);
    s.categories.forEach((c, j) => {
      if (!taxonomy.has(c) || taxonomy.isCoveredBy(c, served)) return;
      // A credential serves no purpose by design: it is kept as a verifier, which only the verify
      // endpoint checks (credentials.ts).
      if (isCredentialCategory(c)) return;
      if (s.pass_through.some((pt) => coversCategory(c, pt.category) || coversCategory(pt.category, c))) {
        // A passed-through category is forwarded, not used; it is served by the recipient's purposes.
        const forwarded = s.pass_through
          .filter((pt) => coversCategory(c, pt.category) || coversCategory(pt.category, c))
          .every((pt) =>
            taxonomy.isCoveredBy(
              pt.category,
              purposeCategories(recipients.get(pt.recipient)?.recipient.purposes ?? []),
            ),
          );
        if (forwarded) return;
      }
      report(
        CHECK_CODES.sourceCategoryUnserved,
        ['sources', i, 'categories', j],
        `source "${s.key}" collects "${c}" but none of its purposes (${s.purposes.join(', ')}) uses that category`,
        `add "${c}" to the categories of one of those purposes, or stop collecting it here`,
        s.purposes
          .filter((k) => purposes.has(k))
          .map((k) =>
            rel(
              ['purposes', purposes.get(k)?.index ?? 0, 'categories'],
              `purpose "${k}" uses these categories`,
            ),
          ),
      );
    });
  });

  const collected = manifest.sources.flatMap((s) => s.categories);
  manifest.recipients.forEach((r, i) => {
    // Each declared pair is checked in manifest.declarations.ts; here, that what is shared is collected.
    r.categories.forEach((c, j) => {
      if (!taxonomy.has(c)) return;
      if (!collected.some((k) => taxonomy.overlaps(k, c))) {
        report(
          CHECK_CODES.recipientCategoryNotCollected,
          recipientCategoryPath(r, i, c, j),
          `recipient "${r.key}" receives "${c}", which no collection point collects`,
          `declare the source that collects "${c}" under sources:, or remove it from this recipient`,
        );
      }
    });
  });

  // ---- consent: every choice can be given and withdrawn --------------------------------------
  manifest.purposes.forEach((p, i) => {
    const modes = consentModes(p);
    const needsChoice = Object.values(modes).some((m) => m !== 'required');
    if (p.legal_basis === 'consent') {
      for (const [j, mode] of Object.entries(modes)) {
        if (mode === 'required') {
          report(
            CHECK_CODES.consentBasisMismatch,
            ['purposes', i, 'consent'],
            `purpose "${p.key}" rests on consent but is required (no choice) in ${j === 'default' ? 'its default jurisdiction' : j}`,
            'consent must be freely given: use opt_in or opt_out there, or choose another legal basis',
          );
        }
      }
    }
    if (!needsChoice) return;
    const offering = manifest.choices.filter((c) => c.purposes === 'all' || c.purposes.includes(p.key));
    for (const action of ['give', 'withdraw'] as const) {
      if (!offering.some((c) => c.actions.includes(action))) {
        report(
          CHECK_CODES.consentWithoutChoice,
          ['purposes', i, 'consent'],
          `purpose "${p.key}" asks for a choice, but no choice lets a person ${action === 'give' ? 'give' : 'withdraw'} it`,
          `add a choice (preference_center, unsubscribe_page, ...) with actions: [${action}] whose purposes include "${p.key}"`,
        );
      }
    }
  });

  // ---- pledges over every flow ----------------------------------------------------------------
  manifest.pledges.forEach((pledge, pi) => {
    const pledgePath: ManifestPath = ['pledges', pi];
    const pledgeRel = rel(pledgePath, `pledge "${pledge.key}": ${pledge.text}`);
    const violate = (path: ManifestPath, flow: string, hint: string) =>
      report(
        CHECK_CODES.pledgeViolated,
        path,
        `${flow} breaks pledge "${pledge.key}" (${pledge.kind}): ${pledge.text}`,
        hint,
        [pledgeRel],
      );
    switch (pledge.kind) {
      case 'no_sale':
        checkNoSale(manifest, purposes, violate);
        break;
      case 'never_store':
        checkNeverStore(manifest, pledge, violate);
        break;
      case 'never_use':
        checkNeverUse(manifest, pledge, purposes, taxonomy, violate);
        break;
      case 'marketing_opt_out':
        checkMarketingOptOut(manifest, pledge, violate);
        break;
      case 'processor_agreement':
        manifest.recipients.forEach((r, i) => {
          if (r.kind !== 'authority' && r.agreement === undefined) {
            violate(
              ['recipients', i],
              `recipient "${r.key}" (${r.kind}) has no agreement binding it to the policy, so it`,
              'add agreement: { reference: ..., signed: YYYY-MM-DD } naming the contract that binds it',
            );
          }
        });
        break;
      case 'legal_disclosure':
        manifest.recipients.forEach((r, i) => {
          if (r.kind !== 'authority') return;
          r.purposes.forEach((k, j) => {
            const p = purposes.get(k)?.purpose;
            if (p && p.legal_basis !== 'legal_obligation') {
              violate(
                ['recipients', i, 'purposes', j],
                `disclosing to authority "${r.key}" for "${k}" (legal basis ${p.legal_basis})`,
                'disclose to authorities only for purposes whose legal basis is legal_obligation',
              );
            }
          });
        });
        break;
      case 'encryption':
        // Enforced at run time by the vault: every value is encrypted per field before it is stored.
        break;
    }
  });

  // ---- retention ------------------------------------------------------------------------------
  manifest.sources.forEach((s, i) => {
    const kept = durationDays(s.retention);
    s.categories.forEach((c, j) => {
      const servingPurposes = s.purposes
        .map((k) => purposes.get(k))
        .filter((e): e is { purpose: Purpose; index: number } => e !== undefined)
        .filter((e) => taxonomy.isCoveredBy(c, e.purpose.categories));
      if (servingPurposes.length > 0 && servingPurposes.every((e) => e.purpose.retention !== undefined)) {
        const longest = servingPurposes.reduce((a, b) =>
          durationDays(a.purpose.retention ?? 'P0D') >= durationDays(b.purpose.retention ?? 'P0D') ? a : b,
        );
        const allowed = longest.purpose.retention ?? 'P0D';
        if (kept > durationDays(allowed) + 1e-9) {
          report(
            CHECK_CODES.retentionExceeded,
            ['sources', i, 'retention'],
            `source "${s.key}" keeps "${c}" for ${describeDuration(s.retention)}, longer than its purposes allow (${describeDuration(allowed)}, purpose "${longest.purpose.key}")`,
            `shorten the retention to ${allowed} or less, or extend the purpose's retention`,
            [
              rel(
                ['purposes', longest.index, 'retention'],
                `purpose "${longest.purpose.key}" keeps data at most ${describeDuration(allowed)}`,
              ),
              rel(['sources', i, 'categories', j], 'the category'),
            ],
          );
        }
      }
      manifest.retention.forEach((rule, ri) => {
        if (rule.category === undefined || !coversCategory(rule.category, c)) return;
        if (kept > durationDays(rule.max) + 1e-9) {
          report(
            CHECK_CODES.retentionExceeded,
            ['sources', i, 'retention'],
            `source "${s.key}" keeps "${c}" for ${describeDuration(s.retention)}, but "${rule.category}" may be kept at most ${describeDuration(rule.max)}`,
            `shorten the retention to ${rule.max} or less`,
            [rel(['retention', ri], 'the retention rule')],
          );
        }
      });
    });
  });
  manifest.retention.forEach((rule, ri) => {
    if (rule.purpose === undefined) return;
    const entry = purposes.get(rule.purpose);
    if (!entry) return;
    const { purpose, index } = entry;
    if (purpose.retention === undefined || durationDays(purpose.retention) > durationDays(rule.max) + 1e-9) {
      report(
        CHECK_CODES.retentionExceeded,
        ['purposes', index, purpose.retention === undefined ? 'key' : 'retention'],
        `purpose "${purpose.key}" keeps data ${purpose.retention === undefined ? 'without a limit' : `for ${describeDuration(purpose.retention)}`}, but retention limits it to ${describeDuration(rule.max)}`,
        `set retention: ${rule.max} (or less) on the purpose`,
        [rel(['retention', ri], 'the retention rule')],
      );
    }
  });
  problems.push(...checkFidesReferences(manifest, locator, taxonomy));
  problems.push(...checkDatasets(manifest, locator));
  problems.push(...checkCredentials(manifest, locator));
  problems.push(...checkBanner(manifest, locator));
  problems.push(...checkRecipients(manifest, locator));
  problems.push(...checkRequests(manifest, locator));

  return { problems };
}

/** Hosts plain http may go to: nothing leaves the machine. */
function isLoopbackHost(hostname: string): boolean {
  return (
    hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  );
}

/** The outcome of checking a manifest file: load problems and consistency problems together. */
export interface CheckFileResult {
  file: string;
  manifest?: Manifest;
  problems: ManifestProblem[];
  /** True when the file could not be read or parsed at all (exit code 2). */
  unreadable: boolean;
}

/** Loads and checks a manifest file; the manifest is returned only when there is no problem. */
export async function checkManifestFile(file: string): Promise<CheckFileResult> {
  const loaded = await loadManifestFile(file);
  if (!loaded.manifest)
    return { file, problems: sortProblems(loaded.problems), unreadable: loaded.unreadable };
  const { problems } = checkManifest(loaded.manifest, loaded.locator);
  return {
    file,
    problems: sortProblems(problems),
    unreadable: false,
    ...(problems.length === 0 ? { manifest: loaded.manifest } : {}),
  };
}

/** Where a recipient's category `c` (its `j`th, in the two-list form) is written. */
function recipientCategoryPath(
  r: Manifest['recipients'][number],
  i: number,
  c: string,
  j: number,
): ManifestPath {
  if (r.declarations === undefined) return ['recipients', i, 'categories', j];
  const d = r.declarations.findIndex((x) => x.categories.includes(c));
  return ['recipients', i, 'declarations', d, 'categories', r.declarations[d]?.categories.indexOf(c) ?? 0];
}
