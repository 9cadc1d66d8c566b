/**
 * `pledge connectors test` and `pledge connectors scan URL`: the connected datasets against their
 * live schemas, and a proposed dataset block from a live schema.
 *
 * `test` exits 0 when every connected dataset matches its database, 1 when a table, column or
 * primary key is missing (each named at its manifest position, file:line:column) or a database
 * cannot be reached, 2 when the manifest or the connector settings are unusable. `scan` prints
 * YAML on stdout (exit 0), exits 1 when the database has no tables, or 2 when the URL is unusable or unreachable. Neither prints a
 * URL with its password, nor any value from the databases.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { loadManifestFile } from '../manifest/manifest.loader.js';
import { checkManifest } from '../manifest/manifest.checker.js';
import { formatLocation } from '../manifest/problems.js';
import { openConnector } from '../rights/connectors/connectors.js';
import {
  connectorSettingsOrProblems,
  engineOfUrl,
  redactUrl,
} from '../rights/connectors/connectors.config.js';
import { mysqlAdapter } from '../rights/connectors/mysql.connector.js';
import { postgresAdapter } from '../rights/connectors/postgres.connector.js';
import { proposeDataset } from '../rights/connectors/scan.js';
import { defaultManifestPath } from './cli.shared.js';
import { formatManifestProblems } from './render.command.js';

/** The driver's reason without anything after its first line (never a value from the database). */
const reasonOf = (err: unknown) => ((err as Error).message ?? String(err)).split('\n')[0] ?? '';

/** Registers `pledge connectors test|scan`. */
export function registerConnectorsCommand(program: Command): void {
  const connectors = program
    .command('connectors')
    .description('the connectors of data-subject requests to the company’s databases');

  connectors
    .command('test')
    .description('check each connected dataset against its live database schema')
    .argument('[file]', 'the manifest (default: $PLEDGE_MANIFEST or the example)')
    .action(async (file: string | undefined) => {
      const manifestFile = file ?? defaultManifestPath();
      const loaded = await loadManifestFile(manifestFile);
      const problems = loaded.manifest
        ? checkManifest(loaded.manifest, loaded.locator).problems
        : loaded.problems;
      if (!loaded.manifest || problems.length > 0) {
        process.stderr.write(formatManifestProblems(problems));
        process.stderr.write(`\npledge connectors test: ${manifestFile} must pass \`pledge check\` first\n`);
        process.exitCode = 2;
        return;
      }
      const manifest = loaded.manifest;
      const settingProblems: string[] = [];
      const settings = connectorSettingsOrProblems(manifest.datasets, process.env, settingProblems);
      if (settingProblems.length > 0) {
        for (const p of settingProblems) process.stderr.write(`error connectors.config: ${p}\n`);
        process.exitCode = 2;
        return;
      }
      if (settings.length === 0) {
        process.stderr.write('pledge connectors test: no dataset has connected: true\n');
        process.exitCode = 0;
        return;
      }
      let failed = 0;
      for (const s of settings) {
        const index = manifest.datasets.findIndex((d) => d.key === s.dataset);
        const dataset = manifest.datasets[index];
        if (dataset === undefined) continue;
        const connector = openConnector(dataset, index, s);
        try {
          const found = await connector.checkSchema();
          for (const p of found) {
            const loc = loaded.locator.locate(p.path);
            process.stdout.write(`${formatLocation(loc)}: error ${p.code}: ${p.message}\n`);
          }
          failed += found.length;
          if (found.length === 0)
            process.stdout.write(
              `ok ${s.dataset}: ${dataset.collections.length} collections match the live schema\n`,
            );
        } catch (err) {
          failed += 1;
          const loc = loaded.locator.locate(['datasets', index, 'key']);
          process.stdout.write(
            `${formatLocation(loc)}: error connectors.unreachable: dataset ${s.dataset}: cannot read the schema at ${redactUrl(s.url)} (${s.variable}): ${reasonOf(err)}\n`,
          );
        } finally {
          await connector.close();
        }
      }
      process.exitCode = failed > 0 ? 1 : 0;
    });

  connectors
    .command('scan')
    .description('print a proposed dataset block (YAML) from a live database schema, to edit by hand')
    .argument(
      '<url>',
      'postgres://… or mysql://… (read from $PLEDGE_CONNECTOR_<KEY>_URL in scripts, not a shell history)',
    )
    .action(async (url: string) => {
      const engine = engineOfUrl(url);
      if (engine === undefined) {
        process.stderr.write(
          'pledge connectors scan: the URL must start with postgres://, postgresql://, mysql:// or mariadb://\n',
        );
        process.exitCode = 2;
        return;
      }
      const adapter = engine === 'postgresql' ? postgresAdapter(url) : mysqlAdapter(url);
      try {
        const tables = await adapter.liveTables();
        if (tables.size === 0) {
          process.stderr.write(
            `pledge connectors scan: no tables at ${redactUrl(url)} (a PostgreSQL URL scans its search_path's first schema)\n`,
          );
          process.exitCode = 1;
          return;
        }
        const database = decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'database';
        const proposal = proposeDataset(database, engine, tables);
        process.stdout.write(
          `# Proposed by \`pledge connectors scan\` from ${redactUrl(url)}: ${tables.size} tables. Review it, then add it under datasets:.\n${stringify({ datasets: [proposal] }, { lineWidth: 0 })}`,
        );
        process.exitCode = 0;
      } catch (err) {
        process.stderr.write(
          `pledge connectors scan: cannot read the schema at ${redactUrl(url)}: ${reasonOf(err)}\n`,
        );
        process.exitCode = 2;
      } finally {
        await adapter.db.destroy();
      }
    });
}
