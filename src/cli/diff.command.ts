/**
 * `pledge diff OLD NEW`: what changed between two manifests and whether the change is material,
 * i.e. must be announced to the people whose data is held. The verdict is in the output (the last
 * line of the text report, `material` in JSON), so the exit code is 0 for any successful comparison
 * and 2 when either manifest cannot be read or is invalid.
 */
import { Option, type Command } from 'commander';
import { loadManifestFile } from '../manifest/manifest.loader.js';
import { diffManifests, renderDiffText } from '../manifest/manifest.diff.js';
import { formatManifestProblems } from './render.command.js';

/** Registers `pledge diff`. */
export function registerDiffCommand(program: Command): void {
  program
    .command('diff')
    .description('compare two manifests and say whether the change is material (people must be told)')
    .argument('<old>', 'the manifest in force')
    .argument('<new>', 'the proposed manifest')
    .addOption(new Option('--format <format>', 'text or json').choices(['text', 'json']).default('text'))
    // A usage error (unknown format, missing file) exits 2 like an unreadable manifest: 1 would
    // claim a verdict about a manifest that was never read. Commander itself exits on these.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .action(async (oldFile: string, newFile: string, opts: { format: 'text' | 'json' }) => {
      const [before, after] = await Promise.all([loadManifestFile(oldFile), loadManifestFile(newFile)]);
      if (before.manifest === undefined || after.manifest === undefined) {
        for (const loaded of [before, after]) {
          if (loaded.manifest !== undefined) continue;
          process.stderr.write(formatManifestProblems(loaded.problems));
          process.stderr.write(`${loaded.file} cannot be compared until it is fixed\n`);
        }
        process.exitCode = 2;
        return;
      }
      const result = diffManifests(before.manifest, after.manifest);
      process.stdout.write(
        opts.format === 'json' ? `${JSON.stringify(result, null, 2)}\n` : renderDiffText(result),
      );
    });
}
