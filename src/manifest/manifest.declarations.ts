/**
 * The checks of `pledge check` on who uses or receives what for which purpose: the systems (the
 * company's own services that call Pledge) and the recipients, each as privacy declarations, pairs
 * of a purpose and its categories. The two-list form (`purposes` and `categories`) stands for every
 * pair of the two, so it holds only where every listed purpose covers every listed category: a
 * recipient with purposes [provide-service, marketing-email] and categories
 * [user.financial.payment_card] would otherwise be declared to receive card data for marketing.
 */
import type { Manifest } from './manifest.schema.js';
import type { ManifestPath, ManifestProblem } from './problems.js';
import type { Taxonomy } from './taxonomy.js';

/** What the checker lends these checks. */
export interface DeclarationCheckTools {
  taxonomy: Taxonomy;
  purposes: ReadonlyMap<string, { purpose: Manifest['purposes'][number]; index: number }>;
  report: (code: string, path: ManifestPath, message: string, hint: string, related?: Related[]) => void;
  rel: (path: ManifestPath, message: string) => Related;
  categoryRef: (key: string, path: ManifestPath) => boolean;
  purposeRef: (key: string, path: ManifestPath) => boolean;
}

type Related = NonNullable<ManifestProblem['related']>[number];

export const DECLARATION_CODES = {
  recipientCategoryUnserved: 'check.recipient_category_unserved',
  systemCategoryUnserved: 'check.system_category_unserved',
  unknownSource: 'check.unknown_source',
  unknownSystem: 'check.unknown_system',
} as const;

/** One declared pair, where it is written, and where its category is written. */
interface Pair {
  purpose: string;
  category: string;
  /** The path of the category entry (the problem's location). */
  at: ManifestPath;
}

/** Checks systems' and recipients' references and that each declared pair is served by its purpose. */
export function checkDeclarations(manifest: Manifest, tools: DeclarationCheckTools): void {
  const { report, taxonomy } = tools;
  const served = (purpose: string, category: string) => {
    const p = tools.purposes.get(purpose);
    return p === undefined || !taxonomy.has(category) || taxonomy.isCoveredBy(category, p.purpose.categories);
  };
  const purposeRelated = (purpose: string) => {
    const p = tools.purposes.get(purpose);
    return p === undefined
      ? []
      : [tools.rel(['purposes', p.index, 'categories'], `purpose "${purpose}" uses these categories`)];
  };

  manifest.recipients.forEach((r, i) => {
    for (const pair of pairsOf(r, ['recipients', i], tools)) {
      if (served(pair.purpose, pair.category)) continue;
      report(
        DECLARATION_CODES.recipientCategoryUnserved,
        pair.at,
        `recipient "${r.key}" is declared to receive "${pair.category}" for "${pair.purpose}", which does not use that category`,
        r.declarations === undefined
          ? `purposes and categories declare every pair of the two: write declarations: (a purpose with its categories each) so that "${pair.category}" goes only with the purposes that use it`
          : `add "${pair.category}" to purpose "${pair.purpose}", or declare it for a purpose that uses it`,
        purposeRelated(pair.purpose),
      );
    }
  });

  const sources = new Set(manifest.sources.map((s) => s.key));
  manifest.systems.forEach((s, i) => {
    s.sources.forEach((k, j) => {
      if (sources.has(k)) return;
      report(
        DECLARATION_CODES.unknownSource,
        ['systems', i, 'sources', j],
        `system "${s.key}" submits to collection point "${k}", which sources: does not declare`,
        `declare a source with key "${k}", or remove it here`,
      );
    });
    for (const pair of pairsOf(s, ['systems', i], tools)) {
      if (served(pair.purpose, pair.category)) continue;
      report(
        DECLARATION_CODES.systemCategoryUnserved,
        pair.at,
        `system "${s.key}" is declared to use "${pair.category}" for "${pair.purpose}", which does not use that category`,
        s.declarations === undefined
          ? `its categories must be covered by every one of its purposes: write declarations: (a purpose with its categories each) instead`
          : `add "${pair.category}" to purpose "${pair.purpose}", or remove it from this declaration`,
        purposeRelated(pair.purpose),
      );
    }
  });

  const systems = new Set(manifest.systems.map((s) => s.key));
  manifest.webhooks.forEach((w, i) => {
    if (w.system === undefined) {
      report(
        DECLARATION_CODES.unknownSystem,
        ['webhooks', i],
        `webhook "${w.key}" does not say which system it delivers to`,
        'add system: <key of the system under systems: that receives the deliveries>',
      );
      return;
    }
    if (systems.has(w.system)) return;
    report(
      DECLARATION_CODES.unknownSystem,
      ['webhooks', i, 'system'],
      `webhook "${w.key}" delivers to system "${w.system}", which systems: does not declare`,
      `declare the system under systems: (the service that receives the deliveries), or fix the key`,
    );
  });
}

/**
 * The pairs a recipient or system declares, with their references checked: the declarations as
 * written, or every pair of the two lists. A system without categories declares none (it uses
 * each purpose's own).
 */
function pairsOf(
  item: {
    purposes: readonly string[];
    categories?: readonly string[] | undefined;
    declarations?: ReadonlyArray<{ purpose: string; categories?: readonly string[] | undefined }> | undefined;
  },
  base: ManifestPath,
  tools: DeclarationCheckTools,
): Pair[] {
  const pairs: Pair[] = [];
  if (item.declarations !== undefined) {
    item.declarations.forEach((d, j) => {
      const purposeOk = tools.purposeRef(d.purpose, [...base, 'declarations', j, 'purpose']);
      d.categories?.forEach((c, k) => {
        const at = [...base, 'declarations', j, 'categories', k];
        if (tools.categoryRef(c, at) && purposeOk) pairs.push({ purpose: d.purpose, category: c, at });
      });
    });
    return pairs;
  }
  const known = item.purposes.filter((p, j) => tools.purposeRef(p, [...base, 'purposes', j]));
  item.categories?.forEach((c, k) => {
    const at = [...base, 'categories', k];
    if (!tools.categoryRef(c, at)) return;
    for (const purpose of known) pairs.push({ purpose, category: c, at });
  });
  return pairs;
}
