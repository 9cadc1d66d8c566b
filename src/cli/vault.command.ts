/**
 * `pledge vault rehash-credentials`: replaces every credential stored before verifiers (a password
 * sealed as it was typed) by its argon2id verifier, in one run, instead of waiting for each person's
 * next successful verify (docs/vault.md, "Credentials"). Idempotent, and safe while servers run:
 * a credential already a verifier is left as it is. Builds the application as `serve` does, without
 * listening (no HTTP port, no inbound SMTP, no retention timer).
 * Exit codes: 0 done (also when there was nothing to rehash), 1 invalid configuration, unreachable
 * database, or some credential whose collection point no longer declares it (left as it was).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { App } from '../app.js';
import { loadConfig } from '../platform/config.js';
import { createContext } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import { cliUser } from './keys.command.js';

interface RehashOptions {
  dataDir?: string;
  manifest?: string;
  batchSize?: number;
  format: 'text' | 'json';
}

/** Registers `pledge vault` and its subcommands. */
export function registerVaultCommand(program: Command): void {
  const vault = program.command('vault').description('maintain the vault (encrypted personal data)');
  vault
    .command('rehash-credentials')
    .description('replace every credential stored before verifiers by its argon2id verifier, all at once')
    .option(
      '--data-dir <dir>',
      'directory of the SQLite database and keys (default: $PLEDGE_DATA_DIR or ./data)',
    )
    .option('-m, --manifest <file>', 'the manifest in force (default $PLEDGE_MANIFEST)')
    .option('--batch-size <n>', 'records read per page (default 500)', parseBatchSize)
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (options: RehashOptions) => {
      let app: App | undefined;
      try {
        const config = loadConfig(process.env, { dataDir: options.dataDir, manifest: options.manifest });
        const { createApp } = await import('../app.js');
        app = await createApp(
          { ...config, inboundSmtpPort: 0, retentionIntervalSeconds: 0 },
          { logStream: process.stderr },
        );
        const result = await app.credentials.rehashAll(createContext({ kind: 'cli', id: cliUser() }), {
          ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
        });
        if (options.format === 'json') process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else {
          const lines = [
            result.rehashed === 0
              ? `nothing to rehash: every stored credential is a verifier (${result.scanned} record${result.scanned === 1 ? '' : 's'} looked at)`
              : `rehashed ${result.rehashed} credential${result.rehashed === 1 ? '' : 's'} stored before verifiers (${result.scanned} record${result.scanned === 1 ? '' : 's'} looked at)`,
          ];
          if (result.failed > 0)
            lines.push(
              `${result.failed} left as they were: their collection point no longer declares the field; declare it again and rerun, or erase them`,
            );
          process.stdout.write(`${lines.join('\n')}\n`);
        }
        if (result.failed > 0) process.exitCode = 1;
      } catch (err) {
        if (!(err instanceof PledgeError && err.expose)) throw err;
        process.stderr.write(`error: ${err.message}\n`);
        process.exitCode = 1;
      } finally {
        await app?.close();
      }
    });
}

function parseBatchSize(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < 1 || n > 10_000)
    throw new InvalidArgumentError('give a whole number from 1 to 10000.');
  return n;
}
