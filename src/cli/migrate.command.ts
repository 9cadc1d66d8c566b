/**
 * `pledge migrate`: brings the database's tables up to date. Also the shared set-up of every command
 * that needs the database (configuration, connection, migrations, error reporting).
 * Exit codes: 0 done, 1 invalid configuration, unreachable database or failed migration.
 */
import type { Command } from 'commander';
import { loadConfig } from '../platform/config.js';
import type { Database } from '../platform/db/database.js';
import type { MigrateResult } from '../platform/db/migrations.js';
import { PledgeError } from '../platform/errors.js';

/** The option every database command takes. */
export interface DatabaseCommandOptions {
  dataDir?: string;
}

/**
 * Reads the configuration, opens the database, applies pending migrations, then runs `work` and
 * closes the database. A PledgeError (invalid configuration, unreachable database, bad input) is
 * printed on stderr with exit code 1; anything else is a bug and propagates with its stack.
 */
export async function runWithDatabase(
  options: DatabaseCommandOptions,
  work: (database: Database, migrated: MigrateResult) => Promise<void>,
): Promise<void> {
  let database: Database | undefined;
  try {
    const config = loadConfig(process.env, { dataDir: options.dataDir });
    // The database stack (Kysely, drivers) loads only for commands that use it.
    const [{ openDatabase }, { migrateToLatest }, { MIGRATIONS }] = await Promise.all([
      import('../platform/db/database.js'),
      import('../platform/db/migrations.js'),
      import('../capabilities.js'),
    ]);
    database = await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      timeouts: config.databaseTimeouts,
    });
    const migrated = await migrateToLatest(database, MIGRATIONS);
    await work(database, migrated);
  } catch (err) {
    if (!(err instanceof PledgeError)) throw err;
    // ConfigError's message already lists every problem, one per line.
    process.stderr.write(`error: ${err.message}\n`);
    process.exitCode = 1;
  } finally {
    await database?.close();
  }
}

/** Adds `--data-dir` to a command that opens the database. */
export function addDataDirOption(command: Command): Command {
  return command.option(
    '--data-dir <dir>',
    'directory of the SQLite database (default: $PLEDGE_DATA_DIR or ./data)',
  );
}

/** Registers `pledge migrate`. */
export function registerMigrateCommand(program: Command): void {
  addDataDirOption(
    program
      .command('migrate')
      .description(
        'create or update the database tables (SQLite in the data directory, or PostgreSQL at $DATABASE_URL)',
      ),
  ).action(async (options: DatabaseCommandOptions) => {
    await runWithDatabase(options, (database, { applied }) => {
      const out = [`database: ${database.dialect} ${database.location}`];
      if (applied.length === 0) out.push('nothing to apply: the database is up to date');
      else
        out.push(
          `applied ${applied.length} migration${applied.length > 1 ? 's' : ''}:`,
          ...applied.map((n) => `  ${n}`),
        );
      process.stdout.write(`${out.join('\n')}\n`);
      return Promise.resolve();
    });
  });
}
