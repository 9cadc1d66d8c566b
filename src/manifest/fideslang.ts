/**
 * fideslang's taxonomy (data categories, data uses, data subjects), read from its own data files
 * kept unchanged in ./fideslang/ (see its NOTICE.md for origin and licence). Reading the files
 * rather than a copy in code means an update is a file copy that a reviewer can diff upstream.
 */
import categoriesFile from './fideslang/data_categories.json' with { type: 'json' };
import subjectsFile from './fideslang/data_subjects.json' with { type: 'json' };
import usesFile from './fideslang/data_uses.json' with { type: 'json' };

/** One entry of a fideslang taxonomy, with fideslang's own name and description. */
export interface FideslangEntry {
  key: string;
  name: string;
  description: string;
  /** The parent's key, or `undefined` for a root (data subjects have none). */
  parent?: string;
}

interface RawEntry {
  fides_key: string;
  name: string;
  description: string;
  parent_key?: string | null;
  version_deprecated?: string | null;
}

// Deprecated entries (none today) are left out: Fides itself no longer offers them for new use.
const read = (list: readonly RawEntry[]): readonly FideslangEntry[] =>
  list
    .filter((e) => e.version_deprecated === null || e.version_deprecated === undefined)
    .map((e) => ({
      key: e.fides_key,
      name: e.name,
      description: e.description,
      ...(e.parent_key ? { parent: e.parent_key } : {}),
    }));

/** fideslang's data categories (85 at the pinned commit). */
export const FIDESLANG_CATEGORIES = read(categoriesFile.data_category);
/** fideslang's data uses (54), which Pledge purposes name in `data_use`. */
export const FIDESLANG_DATA_USES = read(usesFile.data_use);
/** fideslang's data subjects (15), which Pledge purposes name in `data_subjects`. */
export const FIDESLANG_DATA_SUBJECTS = read(subjectsFile.data_subject);

const byKey = (list: readonly FideslangEntry[]) => new Map(list.map((e) => [e.key, e]));
const CATEGORY_BY_KEY = byKey(FIDESLANG_CATEGORIES);
const USE_BY_KEY = byKey(FIDESLANG_DATA_USES);
const SUBJECT_BY_KEY = byKey(FIDESLANG_DATA_SUBJECTS);

/** fideslang's data category with this key, or `undefined`. */
export function getFideslangCategory(key: string): FideslangEntry | undefined {
  return CATEGORY_BY_KEY.get(key);
}

/** fideslang's data use with this key, or `undefined`. */
export function getDataUse(key: string): FideslangEntry | undefined {
  return USE_BY_KEY.get(key);
}

/** fideslang's data subject with this key, or `undefined`. */
export function getDataSubject(key: string): FideslangEntry | undefined {
  return SUBJECT_BY_KEY.get(key);
}
