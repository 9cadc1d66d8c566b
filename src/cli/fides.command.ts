/**
 * `pledge import fides FILE...` and `pledge export fides [FILE]`: the round trip with Fides.
 *
 * Import writes the manifest's `systems:` and `datasets:` blocks (YAML, to paste into pledge.yaml)
 * from Fides system and dataset files, mapping each data use to the purpose of the manifest that
 * declares it; export writes the manifest's systems and datasets as a Fides resource file. Both
 * print on stderr what they could not map. Exit 0 when everything was mapped, 1 when something was
 * left out (the output is still written), 2 when an input cannot be read or the manifest is invalid.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { exportFides } from '../manifest/fides.export.js';
import { importFides, type FidesFile } from '../manifest/fides.import.js';
import { checkManifestFile } from '../manifest/manifest.checker.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import { defaultManifestPath } from './cli.shared.js';
import { formatManifestProblems } from './render.command.js';

/** The manifest, checked; `undefined` (with the problems printed and exit code 2 set) when unusable. */
async function manifestOrExit(file: string, command: string): Promise<Manifest | undefined> {
  const result = await checkManifestFile(file);
  if (result.manifest !== undefined) return result.manifest;
  process.stderr.write(formatManifestProblems(result.problems));
  process.stderr.write(`\npledge ${command}: ${file} must pass \`pledge check\` first\n`);
  process.exitCode = 2;
  return undefined;
}

async function output(text: string, file: string | undefined, command: string): Promise<boolean> {
  if (file === undefined) {
    process.stdout.write(text);
    return true;
  }
  try {
    await writeFile(file, text, 'utf8');
    return true;
  } catch (err) {
    process.stderr.write(`pledge ${command}: cannot write ${file}: ${(err as Error).message}\n`);
    process.exitCode = 2;
    return false;
  }
}

function reportNotes(notes: readonly string[], command: string): void {
  for (const n of notes) process.stderr.write(`not mapped: ${n}\n`);
  if (notes.length > 0) {
    process.stderr.write(
      `\npledge ${command}: ${notes.length} thing${notes.length === 1 ? '' : 's'} not mapped\n`,
    );
  }
  process.exitCode = notes.length > 0 ? 1 : 0;
}

/** Registers `pledge import fides` and `pledge export fides`. */
export function registerFidesCommands(program: Command): void {
  const importCommand = program
    .command('import')
    .description('bring another tool’s data map into a manifest');
  importCommand
    .command('fides')
    .description('write manifest systems: and datasets: blocks from Fides system and dataset YAML')
    .argument('<files...>', 'Fides resource files (YAML with system: or dataset:)')
    .option(
      '--manifest <file>',
      'the manifest whose purposes the data uses map to (default: $PLEDGE_MANIFEST or the example)',
    )
    .option('-o, --output <file>', 'write to this file instead of standard output')
    .action(async (files: string[], opts: { manifest?: string; output?: string }) => {
      const manifest = await manifestOrExit(opts.manifest ?? defaultManifestPath(), 'import fides');
      if (manifest === undefined) return;
      const inputs: FidesFile[] = [];
      for (const file of files) {
        try {
          inputs.push({ file, text: await readFile(file, 'utf8') });
        } catch (err) {
          process.stderr.write(`pledge import fides: cannot read ${file}: ${(err as Error).message}\n`);
          process.exitCode = 2;
          return;
        }
      }
      const result = importFides(inputs, manifest);
      const blocks = {
        ...(result.systems.length > 0 ? { systems: result.systems } : {}),
        ...(result.datasets.length > 0 ? { datasets: result.datasets } : {}),
      };
      const text = `# Imported by \`pledge import fides\` from ${files.join(', ')}; add these blocks to pledge.yaml.\n${stringify(blocks, { lineWidth: 0 })}`;
      if (await output(text, opts.output, 'import fides')) reportNotes(result.notes, 'import fides');
    });

  const exportCommand = program.command('export').description('write a manifest’s data map for another tool');
  exportCommand
    .command('fides')
    .description('write the manifest’s systems and datasets as Fides resource YAML')
    .argument('[file]', 'the manifest (default: $PLEDGE_MANIFEST or examples/example-online/pledge.yaml)')
    .option('-o, --output <file>', 'write to this file instead of standard output')
    .action(async (file: string | undefined, opts: { output?: string }) => {
      const manifest = await manifestOrExit(file ?? defaultManifestPath(), 'export fides');
      if (manifest === undefined) return;
      const result = exportFides(manifest);
      if (await output(result.yaml, opts.output, 'export fides')) reportNotes(result.notes, 'export fides');
    });
}
