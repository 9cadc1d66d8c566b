/**
 * `pledge share export --recipient R --purpose P [--fields a,b] [--out FILE]`: a bulk export for a
 * processor through the share gate, as NDJSON (one line per subject sent, on stdout or in FILE),
 * paging through subjects so memory stays bounded; the export's record (its id, the categories and
 * how many subjects were sent and refused) is printed on stderr and kept in share_exports, and each
 * subject's entry is in the log. Builds the application as `serve` does, without listening.
 * Exit codes: 0 done, 1 refused (the gate's code and message on stderr) or invalid configuration.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Command } from 'commander';
import type { App } from '../app.js';
import { loadConfig } from '../platform/config.js';
import { createContext } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import { presentExport, presentExportLine } from '../share/share.presenter.js';
import { cliUser } from './keys.command.js';

interface ExportCliOptions {
  recipient: string;
  purpose: string;
  fields?: string;
  out?: string;
  system?: string;
  dataDir?: string;
  manifest?: string;
}

/** Registers `pledge share` and its subcommands. */
export function registerShareCommand(program: Command): void {
  const share = program
    .command('share')
    .description('disclose to declared recipients through the share gate');
  share
    .command('export')
    .description(
      'export data for a recipient and purpose as NDJSON, through the share gate, with a record of what was sent',
    )
    .requiredOption('--recipient <key>', 'the recipient (a key under recipients: in the manifest)')
    .requiredOption('--purpose <key>', 'the purpose it receives the data for')
    .option(
      '--fields <names>',
      'comma-separated field names (default: every field it may receive for the purpose)',
    )
    .option('--out <file>', 'write the NDJSON here instead of stdout')
    .option('--system <key>', 'act as this system (held to its purposes and categories)')
    .option(
      '--data-dir <dir>',
      'directory of the SQLite database and keys (default: $PLEDGE_DATA_DIR or ./data)',
    )
    .option('-m, --manifest <file>', 'the manifest in force (default $PLEDGE_MANIFEST)')
    .action(async (options: ExportCliOptions) => {
      let app: App | undefined;
      let out: WriteStream | undefined;
      try {
        const config = loadConfig(process.env, { dataDir: options.dataDir, manifest: options.manifest });
        const { createApp } = await import('../app.js');
        app = await createApp(
          { ...config, inboundSmtpPort: 0, retentionIntervalSeconds: 0 },
          { logStream: process.stderr },
        );
        const ctx = createContext({ kind: 'cli', id: cliUser() }, { system: options.system });
        const fields = options.fields
          ?.split(',')
          .map((f) => f.trim())
          .filter((f) => f !== '');
        out =
          options.out === undefined
            ? undefined
            : createWriteStream(options.out, { flags: 'wx', mode: 0o600 });
        const sink: NodeJS.WritableStream = out ?? process.stdout;
        for await (const line of app.share.exportFor(ctx, {
          recipient: options.recipient,
          purpose: options.purpose,
          fields,
        })) {
          if (line.kind === 'summary') {
            const e = presentExport(line.export);
            process.stderr.write(
              `export ${e.id}: ${e.subjectCount} subject${e.subjectCount === 1 ? '' : 's'} sent to ${e.recipient} for ${e.purpose} ` +
                `(categories: ${e.categories.join(', ') || 'none'}; fields: ${e.fields.join(', ') || 'none'}); ` +
                `${e.refusedCount} refused by their choices\n`,
            );
            continue;
          }
          // Waits when the reader is slower, so a page never piles up in memory.
          if (!sink.write(`${JSON.stringify(presentExportLine(line))}\n`)) await once(sink, 'drain');
        }
      } catch (err) {
        if (!(err instanceof PledgeError && err.expose)) throw err;
        process.stderr.write(`error: ${err.code}: ${err.message}\n`);
        process.exitCode = 1;
      } finally {
        if (out !== undefined) {
          out.end();
          await once(out, 'close').catch(() => undefined);
        }
        await app?.close();
      }
    });
}
