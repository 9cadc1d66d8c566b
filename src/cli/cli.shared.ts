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

/** Rows as a plain-text table: columns padded to their widest cell, two spaces apart, one line each. */
export function alignColumns(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0))) ?? [];
  return rows
    .map(
      (r) =>
        `${r
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}
