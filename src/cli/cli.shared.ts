/** Small pieces every CLI command shares. */
import { DEFAULT_MANIFEST } from '../platform/config.js';

/** The manifest a command reads when none is named: $PLEDGE_MANIFEST, else the example. */
export function defaultManifestPath(): string {
  return process.env.PLEDGE_MANIFEST ?? DEFAULT_MANIFEST;
}

/**
 * Prints a list as a command's answer: JSON on stdout for `--format json`, else `table(list)` on
 * stdout, or `empty` on stderr when there is nothing (so a pipe reading stdout gets no prose).
 */
export function printList<T>(
  format: string,
  list: readonly T[],
  empty: string,
  table: (list: readonly T[]) => string,
): void {
  if (format === 'json') process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
  else if (list.length === 0) process.stderr.write(`${empty}\n`);
  else process.stdout.write(table(list));
}
