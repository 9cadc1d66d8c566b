/**
 * Problems found in a manifest, with where they are and how to fix them. The loader and the checker
 * both produce them, so `pledge check` prints one list, sorted by position.
 */
import { closest, distance } from 'fastest-levenshtein';

/** A place in a manifest file (1-based line and column). */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

/** A path into the manifest data: keys and array indexes. */
export type ManifestPath = ReadonlyArray<string | number>;

/** One thing wrong with a manifest. */
export interface ManifestProblem {
  /** Stable code, e.g. `check.pledge_violated`; tools match on it. */
  code: string;
  message: string;
  /** How to fix it. */
  hint?: string;
  path: ManifestPath;
  location: SourceLocation;
  /** Other places involved (the pledge a flow breaks, the purpose a source lacks). */
  related?: Array<{ message: string; path: ManifestPath; location: SourceLocation }>;
}

/** `purposes[2].key` style rendering of a path, as people read it. */
export function formatPath(path: ManifestPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out === '' ? '(document)' : out;
}

/** `file:line:column`. */
export function formatLocation(loc: SourceLocation): string {
  return `${loc.file}:${loc.line}:${loc.column}`;
}

/**
 * A "did you mean" suggestion: the closest candidate when it is close enough to be a typo
 * (at most a third of the word's length, and at least one edit apart).
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const best = closest(word, [...candidates]);
  const d = distance(word, best);
  return d > 0 && d <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** Sorts problems by file position, then code, for a stable report. */
export function sortProblems(problems: ManifestProblem[]): ManifestProblem[] {
  return [...problems].sort(
    (a, b) =>
      a.location.file.localeCompare(b.location.file) ||
      a.location.line - b.location.line ||
      a.location.column - b.location.column ||
      a.code.localeCompare(b.code),
  );
}
