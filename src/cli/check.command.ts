/**
 * `pledge check [FILE]`: proves a manifest consistent. Exit 0 when clean, 1 when it has problems,
 * 2 when it cannot be read or parsed. `--format json` prints a machine-readable report.
 */
import type { Command } from 'commander';
import { checkManifestFile } from '../manifest/manifest.checker.js';
import { formatLocation, formatPath } from '../manifest/problems.js';
import { defaultManifestPath } from './cli.shared.js';

/** Registers `pledge check`. */
export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description('check a manifest: schema, references, consent choices, pledges over every flow, retention')
    .argument('[file]', 'the manifest (default: $PLEDGE_MANIFEST or examples/example-online/pledge.yaml)')
    .option('--format <format>', 'text or json', 'text')
    .action(async (file: string | undefined, opts: { format: string }) => {
      if (opts.format !== 'text' && opts.format !== 'json') {
        process.stderr.write(`pledge check: --format must be "text" or "json", not "${opts.format}"\n`);
        process.exitCode = 2;
        return;
      }
      const target = file ?? defaultManifestPath();
      const result = await checkManifestFile(target);
      const exitCode = result.unreadable ? 2 : result.problems.length > 0 ? 1 : 0;
      if (opts.format === 'json') {
        const report = {
          file: target,
          ok: exitCode === 0,
          exitCode,
          problems: result.problems.map((p) => ({ ...p, path: formatPath(p.path) })),
        };
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else if (exitCode === 0) {
        process.stdout.write(
          `${target}: ok — the manifest is consistent and every declared flow keeps every pledge\n`,
        );
      } else {
        const lines = result.problems.flatMap((p) => [
          `${formatLocation(p.location)}: error ${p.code}: ${p.message}`,
          ...(p.hint ? [`    fix: ${p.hint}`] : []),
          ...(p.related ?? []).map((r) => `    see ${formatLocation(r.location)}: ${r.message}`),
        ]);
        const n = result.problems.length;
        process.stderr.write(`${lines.join('\n')}\n\n${n} problem${n === 1 ? '' : 's'} in ${target}\n`);
      }
      process.exitCode = exitCode;
    });
}
