/**
 * `pledge serve`: the HTTP server. Configuration is checked before anything starts; every problem
 * is printed at once and the process exits 1. SIGINT and SIGTERM close the server gracefully, so
 * requests in flight are answered before the database closes.
 */
import type { Command } from 'commander';
import { loadConfig } from '../platform/config.js';
import { ConfigError, PledgeError } from '../platform/errors.js';

/** Registers `pledge serve`. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the HTTP server: /privacy, /healthz, /api/v1 (migrations run on start)')
    .option('-p, --port <port>', 'port to listen on (default $PORT or 8080; 0 picks a free one)')
    .option('--host <host>', 'address to listen on (default $HOST or 0.0.0.0)')
    .option(
      '-m, --manifest <file>',
      'the manifest (default $PLEDGE_MANIFEST or examples/example-online/pledge.yaml)',
    )
    .option(
      '--data-dir <dir>',
      'where the SQLite database and keys live (default $PLEDGE_DATA_DIR or ./data)',
    )
    .option(
      '--example-site',
      "also serve the test site of examples/site/ under /example-site/, embedding this server's /pledge.js",
    )
    .action(
      async (opts: {
        port?: string;
        host?: string;
        manifest?: string;
        dataDir?: string;
        exampleSite?: boolean;
      }) => {
        let config;
        try {
          config = loadConfig(process.env, opts);
        } catch (err) {
          if (err instanceof ConfigError) {
            process.stderr.write(`pledge serve: the configuration has ${err.problems.length} problem(s):\n`);
            for (const p of err.problems) process.stderr.write(`  - ${p}\n`);
            process.exitCode = 1;
            return;
          }
          throw err;
        }
        // Loaded here, not at the top: `pledge check` should not pay for the HTTP stack's start-up.
        const { createApp } = await import('../app.js');
        let app;
        try {
          const publicUrl = config.publicUrl;
          app = await createApp(
            config,
            opts.exampleSite === true
              ? {
                  extraRoutes: async (http) => {
                    const { registerExampleSite } = await import('./example-site.js');
                    await registerExampleSite(http, { pledgeOrigin: publicUrl });
                  },
                }
              : {},
          );
        } catch (err) {
          if (err instanceof ConfigError) {
            process.stderr.write(`pledge serve: the configuration has ${err.problems.length} problem(s):\n`);
            for (const p of err.problems) process.stderr.write(`  - ${p}\n`);
            process.exitCode = 1;
            return;
          }
          if (err instanceof PledgeError && err.expose) {
            process.stderr.write(`pledge serve: ${err.message}\n`);
            process.exitCode = 1;
            return;
          }
          throw err;
        }
        const address = await app.http.listen({ port: config.port, host: config.host });
        app.http.log.info(
          { url: address, policyVersion: app.active.manifest.policy.version, database: app.database.dialect },
          'pledge is serving',
        );
        const stop = (signal: string) => {
          app.http.log.info({ signal }, 'shutting down');
          app.close().then(
            () => process.exit(0),
            (err: unknown) => {
              app.http.log.error({ err }, 'shutdown failed');
              process.exit(1);
            },
          );
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      },
    );
}
