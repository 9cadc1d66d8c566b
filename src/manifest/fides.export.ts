/**
 * Writes the manifest's systems and datasets as Fides resources (`system:` and `dataset:` YAML), so
 * a Fides user can load Pledge's data map. Categories are written as fideslang keys: a Pledge
 * extension becomes the fideslang key it extends (`user.financial.payment_card.number` is
 * `user.financial.credit_card`). A system's declaration whose purpose has no `data_use` cannot be
 * written (Fides requires one) and is listed in `notes`.
 */
import { stringify } from 'yaml';
import { fieldIdentity, fieldReferences, isPrimaryKey, type DatasetField } from './dataset.schema.js';
import type { Manifest, System } from './manifest.schema.js';
import { Taxonomy } from './taxonomy.js';

/** The outcome of {@link exportFides}. */
export interface FidesExportResult {
  /** The Fides resource file (YAML). */
  yaml: string;
  /** What could not be written and why. */
  notes: string[];
}

interface FidesDeclaration {
  name: string;
  data_use: string;
  data_categories: string[];
  data_subjects: string[];
}

/** The manifest's systems and datasets as one Fides resource file. */
export function exportFides(manifest: Manifest): FidesExportResult {
  const taxonomy = new Taxonomy(manifest.categories);
  const purposes = new Map(manifest.purposes.map((p) => [p.key, p]));
  const notes: string[] = [];
  const fidesCategories = (keys: readonly string[], where: string) => {
    const out: string[] = [];
    for (const k of keys) {
      const f = taxonomy.fidesKeyOf(k);
      if (f === undefined)
        notes.push(`${where}: category "${k}" has no fideslang counterpart (set fides: on it)`);
      else if (!out.includes(f)) out.push(f);
    }
    return out;
  };

  const system = manifest.systems.map((s) => {
    const privacy_declarations: FidesDeclaration[] = [];
    for (const d of declarationsOf(s)) {
      const purpose = purposes.get(d.purpose);
      const where = `system ${s.key}, purpose ${d.purpose}`;
      if (purpose === undefined) continue; // `pledge check` reports the unknown purpose
      if (purpose.data_use === undefined) {
        notes.push(`${where}: not written (the purpose has no data_use, which Fides requires)`);
        continue;
      }
      privacy_declarations.push({
        name: purpose.name,
        data_use: purpose.data_use,
        data_categories: fidesCategories(d.categories ?? s.categories ?? purpose.categories, where),
        data_subjects: [...(purpose.data_subjects ?? [])],
      });
    }
    return {
      fides_key: s.key,
      name: s.name,
      ...(s.description === undefined ? {} : { description: s.description }),
      ...(s.system_type === undefined ? {} : { system_type: s.system_type }),
      privacy_declarations,
    };
  });

  const dataset = manifest.datasets.map((d) => ({
    fides_key: d.key,
    name: d.name,
    ...(d.description === undefined ? {} : { description: d.description }),
    collections: d.collections.map((c) => ({
      name: c.name,
      ...(c.description === undefined ? {} : { description: c.description }),
      fields: c.fields.map((f) => ({
        name: f.name,
        ...(f.description === undefined ? {} : { description: f.description }),
        data_categories: fidesCategories(f.data_categories, `dataset ${d.key}, field ${c.name}.${f.name}`),
        ...fidesMetaOf(f),
      })),
    })),
  }));

  const doc = { ...(system.length > 0 ? { system } : {}), ...(dataset.length > 0 ? { dataset } : {}) };
  return { yaml: stringify(doc, { lineWidth: 0 }), notes };
}

/** A system's declarations; the two-list form is one declaration per purpose. */
function declarationsOf(s: System): Array<{ purpose: string; categories?: readonly string[] }> {
  return s.declarations ?? s.purposes.map((purpose) => ({ purpose }));
}

/** The field's connector facts in Fides' spelling (`fides_meta`), when it has any. */
function fidesMetaOf(f: DatasetField): { fides_meta?: Record<string, unknown> } {
  const identity = fieldIdentity(f);
  const references = fieldReferences(f).map((r) => r.ref);
  const meta = {
    ...(identity === undefined ? {} : { identity: identity === 'phone' ? 'phone_number' : identity }),
    ...(isPrimaryKey(f) ? { primary_key: true } : {}),
    ...(references.length > 0 ? { references } : {}),
  };
  return Object.keys(meta).length > 0 ? { fides_meta: meta } : {};
}
