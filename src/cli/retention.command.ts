/**
 * `pledge retention run`: deletes every record past its retention deadline now, in batches (each
 * batch one transaction and one audit entry). Safe to run at any time, from cron or by hand, while
 * servers run their own schedule: it is idempotent and resumes whatever a crashed run left.
 * Exit codes: 0 done (also when nothing had expired), 1 invalid configuration, unreachable database
 * or bad input.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { loadConfig } from '../platform/config.js';
import { createContext } from '../platform/context.js';
import { cliUser } from './keys.command.js';
import { addDataDirOption, runWithDatabase, type DatabaseCommandOptions } from './migrate.command.js';

interface RunOptions extends DatabaseCommandOptions {
  batchSize?: number;
  format: 'text' | 'json';
}

/** Registers `pledge retention` and its subcommands. */
export function registerRetentionCommand(program: Command): void {
  const retention = program.command('retention').description('delete data whose retention has ended');
  addDataDirOption(
    retention
      .command('run')
      .description('delete every record past its retention deadline now, in batches')
      .option('--batch-size <n>', 'records deleted per transaction (default 1000)', parseBatchSize)
      .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text')),
  ).action(async (options: RunOptions) => {
    await runWithDatabase(options, async (database) => {
      // Loaded here, like the database stack: `pledge check` does not pay for the vault.
      const [{ RetentionService }, { RecordsRepository }, { AuditLog }, { Keyring }, { keyFileDirOf }] =
        await Promise.all([
          import('../vault/retention.service.js'),
          import('../vault/records.repository.js'),
          import('../audit/audit.service.js'),
          import('../vault/keyring.js'),
          import('../vault/keystore.js'),
        ]);
      const config = loadConfig(process.env, { dataDir: options.dataDir });
      // The audit log commits subjects under the log's key (retention's entries name none).
      const keyring = await Keyring.load({ dataDir: keyFileDirOf(config), envKeys: config.keys });
      const ctx = createContext({ kind: 'cli', id: cliUser() });
      const retention = new RetentionService({
        db: database.db,
        records: new RecordsRepository(database.db),
        audit: AuditLog.over(database.db, keyring.use('log_subjects')),
      });
      const result = await retention.run(ctx, {
        ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
      });
      if (options.format === 'json') {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      if (result.deleted === 0) {
        process.stdout.write('nothing to delete: no record has passed its retention deadline\n');
        return;
      }
      const lines = [
        `deleted ${result.deleted} record${result.deleted === 1 ? '' : 's'} past their retention deadline in ${result.batches} batch${result.batches === 1 ? '' : 'es'}:`,
        ...Object.entries(result.sources)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([source, n]) => `  ${source}: ${n}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
  });
}

/** Commander's parser for --batch-size; the service checks the upper bound. */
function parseBatchSize(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < 1) throw new InvalidArgumentError('give a whole number, 1 or more.');
  return n;
}
