/**
 * The `pledge` command. Each subcommand lives in its own `*.command.ts` file and registers itself
 * here; exit codes are part of each command's contract (see docs/cli.md).
 */
import { Command } from 'commander';
import { registerAuditCommand } from './audit.command.js';
import { registerCheckCommand } from './check.command.js';
import { registerDiffCommand } from './diff.command.js';
import { registerFidesCommands } from './fides.command.js';
import { registerJobsCommand } from './jobs.command.js';
import { registerKeysCommand } from './keys.command.js';
import { registerLegalCommand } from './legal.command.js';
import { registerRequestsCommand } from './requests.command.js';
import { registerMigrateCommand } from './migrate.command.js';
import { registerRenderCommand } from './render.command.js';
import { registerRetentionCommand } from './retention.command.js';
import { registerSchemaCommand } from './schema.command.js';
import { registerServeCommand } from './serve.command.js';
import { registerVaultCommand } from './vault.command.js';
import { registerWebhooksCommand } from './webhooks.command.js';
import { registerRecipientsCommand } from './recipients.command.js';
import { registerShareCommand } from './share.command.js';
import { registerConnectorsCommand } from './connectors.command.js';

/** Builds the `pledge` program with every subcommand. */
export function buildProgram(): Command {
  const program = new Command('pledge')
    .description('Pledge: your privacy policy as a manifest, checked, rendered and enforced.')
    .version('0.1.0')
    // `pledge --version` is the program's; after a subcommand, `--version` is that command's own
    // (`pledge recipients acknowledge R --version V`).
    .enablePositionalOptions()
    .showHelpAfterError();
  registerServeCommand(program);
  registerCheckCommand(program);
  registerRenderCommand(program);
  registerDiffCommand(program);
  registerMigrateCommand(program);
  registerKeysCommand(program);
  registerRetentionCommand(program);
  registerSchemaCommand(program);
  registerWebhooksCommand(program);
  registerJobsCommand(program);
  registerFidesCommands(program);
  registerVaultCommand(program);
  registerLegalCommand(program);
  registerRequestsCommand(program);
  registerRecipientsCommand(program);
  registerShareCommand(program);
  registerAuditCommand(program);
  registerConnectorsCommand(program);
  return program;
}

/** Runs the CLI with `argv`; resolves when the command is done (servers keep running). */
export async function main(argv: string[] = process.argv): Promise<void> {
  await buildProgram().parseAsync(argv);
}
