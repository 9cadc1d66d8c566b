/**
 * Reads Fides resource files (YAML with a `system:` and/or `dataset:` list) and turns them into the
 * manifest's `systems:` and `datasets:` blocks. Each Fides privacy declaration's `data_use` becomes
 * the Pledge purpose whose `data_use` is that key. What has no place in a manifest, or cannot be
 * mapped, is not guessed at: it is listed in `notes`, one line per thing left out.
 */
import { parse } from 'yaml';
import type { Dataset } from './dataset.schema.js';
import { getDataUse } from './fideslang.js';
import type { Manifest } from './manifest.schema.js';
import { parentKey, Taxonomy } from './taxonomy.js';

/** One imported system, in the manifest's declaration form. */
export interface ImportedSystem {
  key: string;
  name: string;
  description?: string;
  system_type?: string;
  declarations: Array<{ purpose: string; categories?: string[] }>;
}

/** The outcome of {@link importFides}. */
export interface FidesImportResult {
  systems: ImportedSystem[];
  datasets: Dataset[];
  /** What was not imported and why, as `file: what: why`. */
  notes: string[];
}

/** A Fides file's text and the name it is reported under. */
export interface FidesFile {
  file: string;
  text: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);
const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
/** A value worth reporting as dropped: not null, not an empty list or string. */
const present = (v: unknown) =>
  v !== null && v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0);

const KEY = /^[a-z][a-z0-9_-]*$/;

/** A Fides key as a Pledge key (lower case, `_` for anything else), or `undefined` if none is left. */
function pledgeKey(fidesKey: string): string | undefined {
  const k = fidesKey.toLowerCase().replace(/[^a-z0-9_-]+/g, '_');
  const trimmed = k.replace(/^[^a-z]+/, '');
  return trimmed === '' ? undefined : trimmed;
}

type ImportedField = Dataset['collections'][number]['fields'][number];

/**
 * What a Fides field's `fides_meta` tells the connectors: the identity it holds, whether it is the
 * primary key, and its references (Fides' `dataset` + `collection.field`, with a direction). The
 * rest of `fides_meta` (data_type, length, read_only, …) has no use here and is noted.
 */
function connectorMeta(
  meta: unknown,
  where: string,
  note: (what: string, why: string) => void,
): Pick<ImportedField, 'identity' | 'primary_key' | 'references'> {
  if (!isObj(meta)) {
    if (present(meta)) note(where, 'fides_meta is not a mapping; not imported');
    return {};
  }
  const out: Pick<ImportedField, 'identity' | 'primary_key' | 'references'> = {};
  for (const [k, v] of Object.entries(meta)) {
    if (!['identity', 'primary_key', 'references'].includes(k) && present(v))
      note(where, `fides_meta.${k} not imported (connectors do not use it)`);
  }
  const identity = str(meta.identity);
  if (identity !== undefined) {
    const id = identity === 'phone_number' ? 'phone' : identity.toLowerCase().replace(/[^a-z0-9_]+/g, '_');
    if (/^[a-z][a-z0-9_]*$/.test(id)) out.identity = id;
    else note(where, `fides_meta.identity "${identity}" cannot be written as an identity key; not imported`);
  }
  if (meta.primary_key === true) out.primary_key = true;
  const refs: NonNullable<ImportedField['references']> = [];
  (Array.isArray(meta.references) ? (meta.references as unknown[]) : []).forEach((r, i) => {
    const field = isObj(r) ? str(r.field) : undefined;
    if (!isObj(r) || field === undefined || !/^[^.\s]+\.[^.\s]+(\.[^.\s]+)?$/.test(field)) {
      note(`${where} fides_meta.references[${i}]`, 'not "collection.field"; not imported');
      return;
    }
    const dataset = str(r.dataset);
    const direction = r.direction === 'from' || r.direction === 'to' ? r.direction : undefined;
    const datasetKey = dataset === undefined ? undefined : KEY.test(dataset) ? dataset : pledgeKey(dataset);
    refs.push({
      ...(datasetKey === undefined ? {} : { dataset: datasetKey }),
      field,
      ...(direction === undefined ? {} : { direction }),
    });
  });
  if (refs.length > 0) out.references = refs;
  return out;
}

/**
 * Imports Fides systems and datasets for `manifest` (whose purposes' `data_use` and categories the
 * mapping uses). Never throws on content: an unreadable file or entry is a note.
 */
export function importFides(files: readonly FidesFile[], manifest: Manifest): FidesImportResult {
  const taxonomy = new Taxonomy(manifest.categories);
  const byUse = new Map<string, string[]>();
  for (const p of manifest.purposes) {
    if (p.data_use !== undefined) byUse.set(p.data_use, [...(byUse.get(p.data_use) ?? []), p.key]);
  }
  const purposes = new Map(manifest.purposes.map((p) => [p.key, p]));
  const result: FidesImportResult = { systems: [], datasets: [], notes: [] };

  for (const { file, text } of files) {
    const note = (what: string, why: string) => result.notes.push(`${file}: ${what}: ${why}`);
    let doc: unknown;
    try {
      doc = parse(text);
    } catch (err) {
      note('file', `not YAML (${(err as Error).message.split('\n')[0] ?? ''})`);
      continue;
    }
    if (!isObj(doc)) {
      note('file', 'not a Fides resource file (a mapping with system: or dataset:)');
      continue;
    }
    for (const [top, value] of Object.entries(doc)) {
      if (top !== 'system' && top !== 'dataset') {
        note(top, 'not imported (only system and dataset resources have a place in a manifest)');
        continue;
      }
      if (!Array.isArray(value)) {
        note(top, 'not a list');
        continue;
      }
      for (const entry of value) {
        if (top === 'system') importSystem(entry, note);
        else importDataset(entry, note);
      }
    }
  }
  return result;

  function categoriesOf(list: unknown, where: string, note: (what: string, why: string) => void) {
    return strings(list).filter((c) => {
      if (taxonomy.has(c)) return true;
      note(where, `data category "${c}" is not in the taxonomy (declare it under categories: first)`);
      return false;
    });
  }

  function keyOf(entry: Obj, kind: string, note: (what: string, why: string) => void) {
    const fidesKey = str(entry.fides_key);
    if (fidesKey === undefined) {
      note(kind, 'has no fides_key; skipped');
      return undefined;
    }
    const key = KEY.test(fidesKey) ? fidesKey : pledgeKey(fidesKey);
    if (key === undefined)
      note(`${kind} ${fidesKey}`, 'its fides_key cannot be written as a Pledge key; skipped');
    else if (key !== fidesKey) note(`${kind} ${fidesKey}`, `imported under the key "${key}"`);
    return key;
  }

  function dropped(
    entry: Obj,
    handled: readonly string[],
    where: string,
    note: (w: string, y: string) => void,
  ) {
    for (const [k, v] of Object.entries(entry)) {
      if (!handled.includes(k) && present(v))
        note(where, `${k} not imported (a manifest has no place for it)`);
    }
  }

  /** The purpose for a Fides data use: its own, else the nearest data use above it that one has. */
  function purposeFor(use: string, where: string, note: (what: string, why: string) => void) {
    for (let u: string | undefined = use; u !== undefined; u = parentKey(u)) {
      const keys = byUse.get(u);
      if (keys === undefined) continue;
      if (keys.length > 1)
        note(where, `data use "${u}" is declared by purposes ${keys.join(', ')}; used ${keys[0]}`);
      if (u !== use)
        note(where, `no purpose declares data use "${use}"; mapped to ${keys[0]}, which declares "${u}"`);
      return keys[0];
    }
    note(
      where,
      getDataUse(use) === undefined
        ? `data use "${use}" is not fideslang's and no purpose declares it; declaration skipped`
        : `no purpose declares data use "${use}" (set data_use: ${use} on the purpose it is); declaration skipped`,
    );
    return undefined;
  }

  function importSystem(entry: unknown, note: (what: string, why: string) => void) {
    if (!isObj(entry)) return note('system', 'an entry that is not a mapping; skipped');
    const key = keyOf(entry, 'system', note);
    if (key === undefined) return;
    const where = `system ${key}`;
    dropped(
      entry,
      ['fides_key', 'name', 'description', 'system_type', 'privacy_declarations', 'organization_fides_key'],
      where,
      note,
    );
    const declarations: ImportedSystem['declarations'] = [];
    const list: unknown[] = Array.isArray(entry.privacy_declarations) ? entry.privacy_declarations : [];
    list.forEach((d, i) => {
      const at = `${where} privacy_declarations[${i}]`;
      if (!isObj(d)) return note(at, 'not a mapping; skipped');
      dropped(d, ['name', 'data_use', 'data_categories', 'data_subjects'], at, note);
      if (str(d.name) !== undefined)
        note(at, `name "${String(d.name)}" not kept (the purpose's name is used)`);
      const use = str(d.data_use);
      const purpose = use === undefined ? undefined : purposeFor(use, at, note);
      if (use === undefined) note(at, 'has no data_use; skipped');
      if (purpose === undefined) return;
      const declared = purposes.get(purpose)?.data_subjects ?? [];
      const missing = strings(d.data_subjects).filter((s) => !declared.includes(s));
      if (missing.length > 0) {
        note(at, `data subjects ${missing.join(', ')} are not in data_subjects of purpose ${purpose}`);
      }
      const categories = categoriesOf(d.data_categories, at, note);
      declarations.push({ purpose, ...(categories.length > 0 ? { categories } : {}) });
    });
    if (declarations.length === 0)
      return note(where, 'no privacy declaration could be mapped; system skipped');
    result.systems.push({
      key,
      name: str(entry.name) ?? key,
      ...(str(entry.description) === undefined ? {} : { description: String(entry.description) }),
      ...(str(entry.system_type) === undefined ? {} : { system_type: String(entry.system_type) }),
      declarations,
    });
  }

  function importDataset(entry: unknown, note: (what: string, why: string) => void) {
    if (!isObj(entry)) return note('dataset', 'an entry that is not a mapping; skipped');
    const key = keyOf(entry, 'dataset', note);
    if (key === undefined) return;
    const where = `dataset ${key}`;
    dropped(
      entry,
      ['fides_key', 'name', 'description', 'collections', 'organization_fides_key'],
      where,
      note,
    );
    const collections: Dataset['collections'] = [];
    const list: unknown[] = Array.isArray(entry.collections) ? entry.collections : [];
    for (const c of list) {
      const name = isObj(c) ? str(c.name) : undefined;
      if (!isObj(c) || name === undefined) {
        note(where, 'a collection without a name; skipped');
        continue;
      }
      const at = `${where} collection ${name}`;
      dropped(c, ['name', 'description', 'fields'], at, note);
      const fields: Dataset['collections'][number]['fields'] = [];
      for (const f of Array.isArray(c.fields) ? (c.fields as unknown[]) : []) {
        const fieldName = isObj(f) ? str(f.name) : undefined;
        if (!isObj(f) || fieldName === undefined) {
          note(at, 'a field without a name; skipped');
          continue;
        }
        const fat = `${at} field ${fieldName}`;
        dropped(f, ['name', 'description', 'data_categories', 'fides_meta'], fat, note);
        fields.push({
          name: fieldName,
          ...(str(f.description) === undefined ? {} : { description: String(f.description) }),
          data_categories: categoriesOf(f.data_categories, fat, note),
          ...connectorMeta(f.fides_meta, fat, note),
        });
      }
      collections.push({
        name,
        ...(str(c.description) === undefined ? {} : { description: String(c.description) }),
        fields,
      });
    }
    if (collections.length === 0) return note(where, 'no collection; dataset skipped');
    result.datasets.push({
      key,
      name: str(entry.name) ?? key,
      ...(str(entry.description) === undefined ? {} : { description: String(entry.description) }),
      collections,
    });
  }
}
