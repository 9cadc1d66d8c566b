/**
 * The checks of `pledge check` over the datasets' connector declarations: references that name
 * nothing, cycles in the paths, collections no identity reaches, erase actions that would break a
 * foreign key, and connected datasets without an engine. Each finding names its manifest position.
 * The paths are resolved by dataset.graph.ts, the model the connectors run on.
 */
import { datasetGraph } from './dataset.graph.js';
import type { Dataset } from './dataset.schema.js';
import type { Locator } from './manifest.loader.js';
import type { Manifest } from './manifest.schema.js';
import { suggest, type ManifestPath, type ManifestProblem } from './problems.js';

/** The codes these checks report. */
export const DATASET_CHECK_CODES = {
  unknownReference: 'check.dataset_unknown_reference',
  crossDatasetReference: 'check.dataset_cross_reference',
  pathCycle: 'check.dataset_path_cycle',
  unreachable: 'check.dataset_unreachable',
  noIdentity: 'check.dataset_no_identity',
  erasesReferencedKey: 'check.dataset_erases_referenced_key',
  orphanedChildren: 'check.dataset_orphaned_children',
  maskWithoutErase: 'check.dataset_mask_without_erase',
  noEngine: 'check.dataset_no_engine',
  duplicateName: 'check.dataset_duplicate_name',
} as const;

/** Checks every dataset's connector declarations; never throws. */
export function checkDatasets(manifest: Manifest, locator: Locator): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const report = (
    code: string,
    path: ManifestPath,
    message: string,
    hint: string,
    related: Array<{ message: string; path: ManifestPath }> = [],
  ) =>
    problems.push({
      code,
      message,
      hint,
      path,
      location: locator.locate(path),
      ...(related.length > 0
        ? { related: related.map((r) => ({ ...r, location: locator.locate(r.path) })) }
        : {}),
    });
  manifest.datasets.forEach((d, i) => checkOne(d, i, report));
  return problems;
}

function checkOne(
  d: Dataset,
  i: number,
  report: (
    code: string,
    path: ManifestPath,
    message: string,
    hint: string,
    related?: Array<{ message: string; path: ManifestPath }>,
  ) => void,
): void {
  const C = DATASET_CHECK_CODES;
  const at = (j: number, ...rest: Array<string | number>): ManifestPath => [
    'datasets',
    i,
    'collections',
    j,
    ...rest,
  ];
  const index = new Map(d.collections.map((c, j) => [c.name, j]));
  const fieldAt = (collection: string, field: string): ManifestPath => {
    const j = index.get(collection) ?? 0;
    const k = d.collections[j]?.fields.findIndex((f) => f.name === field) ?? 0;
    return at(j, 'fields', k, 'name');
  };

  if (d.connected === true && d.engine === undefined)
    report(
      C.noEngine,
      ['datasets', i, 'connected'],
      `dataset "${d.key}" is connected but names no engine`,
      'add engine: postgresql or engine: mysql (MySQL and MariaDB)',
    );

  const seen = new Set<string>();
  d.collections.forEach((c, j) => {
    if (seen.has(c.name))
      report(
        C.duplicateName,
        at(j, 'name'),
        `dataset "${d.key}" declares collection "${c.name}" twice`,
        'merge the two collections',
      );
    seen.add(c.name);
    const fields = new Set<string>();
    c.fields.forEach((f, k) => {
      if (fields.has(f.name))
        report(
          C.duplicateName,
          at(j, 'fields', k, 'name'),
          `collection "${c.name}" declares field "${f.name}" twice`,
          'merge the two fields',
        );
      fields.add(f.name);
      if (f.mask !== undefined && f.erase !== 'mask')
        report(
          C.maskWithoutErase,
          at(j, 'fields', k, 'mask'),
          `field "${c.name}.${f.name}" has a mask but its erase action is ${f.erase ?? 'none'}`,
          'write erase: mask, or remove mask:',
        );
    });
  });

  const g = datasetGraph(d, i);
  for (const u of g.unresolved) {
    const fieldPath = [...u.path, 'field'];
    if (u.missing === 'dataset') {
      if (d.connected === true)
        report(
          C.crossDatasetReference,
          fieldPath,
          `reference "${u.ref.field}" leads to another dataset; a connector follows paths inside one database only`,
          'reference a collection of this dataset, or give the other dataset an identity of its own',
        );
      continue;
    }
    const [collection, field] = u.ref.field.split('.').slice(-2) as [string, string];
    const guess =
      u.missing === 'collection'
        ? suggest(collection, [...index.keys()])
        : suggest(field, d.collections[index.get(collection) ?? 0]?.fields.map((f) => f.name) ?? []);
    report(
      C.unknownReference,
      fieldPath,
      u.missing === 'collection'
        ? `reference "${u.ref.field}" names collection "${collection}", which dataset "${d.key}" does not declare${guess ? ` (did you mean "${guess}"?)` : ''}`
        : `reference "${u.ref.field}" names field "${field}", which collection "${collection}" does not declare${guess ? ` (did you mean "${guess}"?)` : ''}`,
      guess ? `write "${guess}"` : `declare it under collection "${collection}", or fix the reference`,
    );
  }

  // Paths matter where a connector follows them: a connected dataset, or one with erase actions. A
  // Fides dataset as imported (identities and references, often across datasets) is left alone.
  const acts = d.connected === true || d.collections.some((c) => c.fields.some((f) => f.erase !== undefined));
  for (const [cycle, what] of [
    [g.readCycle, 'the paths from the identities go round in a circle'],
    [g.eraseCycle, 'the foreign keys form a cycle, so no erase order puts every child before its parent'],
  ] as const) {
    const first = cycle[0];
    if (first === undefined || !acts) continue;
    report(
      C.pathCycle,
      first.path,
      `dataset "${d.key}": ${what} (${cycle.map((e) => `${e.holder}.${e.holderField} → ${e.referenced}.${e.referencedField}`).join(', ')})`,
      'remove one reference of the cycle, or give it the direction the data is found in',
      cycle.slice(1).map((e) => ({ message: 'part of the cycle', path: e.path })),
    );
  }

  const hasIdentity = g.identities.size > 0;
  if (d.connected === true && !hasIdentity)
    report(
      C.noIdentity,
      ['datasets', i, 'key'],
      `dataset "${d.key}" is connected but no field holds an identity, so no request can find anyone in it`,
      'mark the column that holds the person’s identifier with identity: email (or phone, subject_id, …)',
    );
  if (hasIdentity && acts)
    for (const name of g.unreachable) {
      const j = index.get(name) ?? 0;
      const c = d.collections[j];
      if (c === undefined || !c.fields.some((f) => f.data_categories.length > 0 || f.erase !== undefined))
        continue;
      report(
        C.unreachable,
        at(j, 'name'),
        `collection "${name}" holds personal data but no identity reaches it, so requests would neither find nor erase it`,
        'add a references: path from a collection with an identity, or an identity field of its own',
      );
    }

  // Erase actions against the foreign keys.
  const field = (collection: string, name: string) =>
    d.collections[index.get(collection) ?? -1]?.fields.find((f) => f.name === name);
  const deletes = (collection: string) =>
    d.collections[index.get(collection) ?? -1]?.fields.some((f) => f.erase === 'delete_row') ?? false;
  for (const e of g.edges) {
    const key = field(e.referenced, e.referencedField);
    if (key?.erase === 'set_null' || key?.erase === 'mask')
      report(
        C.erasesReferencedKey,
        fieldAt(e.referenced, e.referencedField),
        `erase: ${key.erase} on "${e.referenced}.${e.referencedField}", which "${e.holder}.${e.holderField}" references: the rows pointing at it would break`,
        'leave keys as they are (erase the other columns, or delete the row)',
        [{ message: 'the reference', path: e.path }],
      );
    const holder = field(e.holder, e.holderField);
    if (holder?.erase === 'mask')
      report(
        C.erasesReferencedKey,
        fieldAt(e.holder, e.holderField),
        `erase: mask on "${e.holder}.${e.holderField}", a reference to "${e.referenced}.${e.referencedField}": the mask is not a key there`,
        'use erase: set_null to detach the row, or delete_row',
      );
    if (
      deletes(e.referenced) &&
      !deletes(e.holder) &&
      holder?.erase !== 'set_null' &&
      e.holder !== e.referenced
    )
      report(
        C.orphanedChildren,
        fieldAt(e.holder, e.holderField),
        `rows of "${e.referenced}" are deleted on erasure, but rows of "${e.holder}" keep pointing at them through "${e.holderField}"`,
        `give "${e.holder}" a delete_row field, or erase: set_null on "${e.holderField}"`,
      );
  }
}
