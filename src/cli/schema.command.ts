/** `pledge schema`: prints the manifest's JSON Schema (the source of docs/pledge.schema.json). */
import type { Command } from 'commander';
import { manifestJsonSchema } from '../manifest/manifest.schema.js';

/** Registers `pledge schema`. */
export function registerSchemaCommand(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of pledge.yaml (for editors: docs/pledge.schema.json)')
    .action(() => {
      process.stdout.write(`${JSON.stringify(manifestJsonSchema(), null, 2)}\n`);
    });
}
