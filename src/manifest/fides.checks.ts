/**
 * The checks of `pledge check` over the manifest's fideslang references: each purpose's `data_use`
 * and `data_subjects`, and the categories of each dataset field. They live apart from
 * manifest.checker.ts, which calls them, to keep the Fides vocabulary in one place.
 */
import { FIDESLANG_DATA_SUBJECTS, FIDESLANG_DATA_USES, getDataSubject, getDataUse } from './fideslang.js';
import type { Locator } from './manifest.loader.js';
import type { Manifest } from './manifest.schema.js';
import { suggest, type ManifestPath, type ManifestProblem } from './problems.js';
import type { Taxonomy } from './taxonomy.js';

/** The codes these checks report. */
export const FIDES_CHECK_CODES = {
  unknownDataUse: 'check.unknown_data_use',
  unknownDataSubject: 'check.unknown_data_subject',
} as const;

const DATA_USE_KEYS = FIDESLANG_DATA_USES.map((u) => u.key);
const DATA_SUBJECT_KEYS = FIDESLANG_DATA_SUBJECTS.map((s) => s.key);

/** Checks the fideslang references of a schema-valid manifest; never throws. */
export function checkFidesReferences(
  manifest: Manifest,
  locator: Locator,
  taxonomy: Taxonomy,
): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const report = (code: string, path: ManifestPath, message: string, hint: string) =>
    problems.push({ code, message, hint, path, location: locator.locate(path) });

  manifest.purposes.forEach((p, i) => {
    if (p.data_use !== undefined && getDataUse(p.data_use) === undefined) {
      const guess = suggest(p.data_use, DATA_USE_KEYS);
      report(
        FIDES_CHECK_CODES.unknownDataUse,
        ['purposes', i, 'data_use'],
        `purpose "${p.key}" names the data use "${p.data_use}", which fideslang does not have${guess ? ` (did you mean "${guess}"?)` : ''}`,
        guess
          ? `write "${guess}"`
          : 'use one of fideslang’s data uses (docs/taxonomy.md#data-uses), such as "essential.service"',
      );
    }
    (p.data_subjects ?? []).forEach((s, j) => {
      if (getDataSubject(s) !== undefined) return;
      const guess = suggest(s, DATA_SUBJECT_KEYS);
      report(
        FIDES_CHECK_CODES.unknownDataSubject,
        ['purposes', i, 'data_subjects', j],
        `purpose "${p.key}" names the data subject "${s}", which fideslang does not have${guess ? ` (did you mean "${guess}"?)` : ''}`,
        guess
          ? `write "${guess}"`
          : 'use one of fideslang’s data subjects (docs/taxonomy.md#data-subjects), such as "customer"',
      );
    });
  });

  manifest.datasets.forEach((d, i) =>
    d.collections.forEach((c, j) =>
      c.fields.forEach((f, k) =>
        f.data_categories.forEach((key, l) => {
          if (taxonomy.has(key)) return;
          const guess = suggest(key, taxonomy.keys());
          report(
            'check.unknown_category',
            ['datasets', i, 'collections', j, 'fields', k, 'data_categories', l],
            `unknown data category "${key}"${guess ? ` (did you mean "${guess}"?)` : ''}`,
            guess
              ? `write "${guess}", or declare "${key}" under categories:`
              : `use a built-in category (see docs/taxonomy.md) or declare "${key}" under categories:`,
          );
        }),
      ),
    ),
  );
  return problems;
}
