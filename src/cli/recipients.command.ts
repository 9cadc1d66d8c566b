/**
 * `pledge recipients acknowledge R --version V --by NAME`: records that processor (or affiliate) R
 * acknowledged policy version V, the one in force, as NAME signed it; lifts the pauses that waited
 * for it (docs/sharing.md).
 * `pledge recipients status [R]`: each processor's and affiliate's standing (may it receive data?).
 * `pledge recipients secret R`: the secret R's webhook verifies policy notices with.
 * The manifest in force is the one the server last brought into force (stored in the database).
 * Exit codes: 0 done (status: every recipient in standing), 1 invalid input or configuration, an
 * unreachable database, no manifest in force yet, or (status) a recipient not in standing.
 */
import type { Command } from 'commander';
import type { Database } from '../platform/db/database.js';
import { createContext } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import type { AcknowledgementService } from '../share/acknowledgements.service.js';
import { alignColumns, printList } from './cli.shared.js';
import { cliUser } from './keys.command.js';
import { addDataDirOption, runWithDatabase, type DatabaseCommandOptions } from './migrate.command.js';

interface AcknowledgeOptions extends DatabaseCommandOptions {
  version: string;
  by: string;
  format: 'text' | 'json';
}

interface StatusOptions extends DatabaseCommandOptions {
  format: 'text' | 'json';
}

/** Registers `pledge recipients` and its subcommands. */
export function registerRecipientsCommand(program: Command): void {
  const recipients = program
    .command('recipients')
    .description('processors and affiliates bound to the policy: their acknowledgements and standing');

  addDataDirOption(
    recipients
      .command('acknowledge')
      .description('record that a processor or affiliate acknowledged the policy version in force')
      .argument('<recipient>', 'the recipient key in the manifest')
      .requiredOption('--version <version>', 'the policy version acknowledged (policy.version in force)')
      .requiredOption('--by <name>', 'the person who acknowledged for the recipient')
      .option('--format <format>', 'output format: text or json', 'text'),
  ).action(async (recipient: string, options: AcknowledgeOptions) => {
    await runWithDatabase(options, async (database) => {
      const service = await acknowledgementsInForce(database, options.dataDir);
      const ctx = createContext({ kind: 'cli', id: cliUser() });
      const { acknowledgement, lifted } = await service.acknowledge(ctx, {
        recipient,
        version: options.version,
        by: options.by,
        method: 'cli',
      });
      if (options.format === 'json') {
        const { presentAcknowledgement } = await import('../share/acknowledgements.presenter.js');
        process.stdout.write(
          `${JSON.stringify({ acknowledgement: presentAcknowledgement(acknowledgement), lifted }, null, 2)}\n`,
        );
        return;
      }
      process.stdout.write(
        `${recipient} acknowledged policy version ${acknowledgement.policyVersion} (by ${acknowledgement.acknowledgedBy}, recorded ${acknowledgement.acknowledgedAt.toISOString()}, id ${acknowledgement.id})\n`,
      );
      process.stdout.write(
        lifted.length > 0
          ? `lifted ${lifted.length} pause${lifted.length > 1 ? 's' : ''}: disclosures to ${recipient} resume\n`
          : `no pause was waiting for it\n`,
      );
    });
  });

  addDataDirOption(
    recipients
      .command('status')
      .description("each processor's and affiliate's standing under the policy in force")
      .argument('[recipient]', 'only this recipient')
      .option('--format <format>', 'output format: text or json', 'text'),
  ).action(async (only: string | undefined, options: StatusOptions) => {
    await runWithDatabase(options, async (database) => {
      const service = await acknowledgementsInForce(database, options.dataDir);
      const ctx = createContext({ kind: 'cli', id: cliUser() });
      const keys = only === undefined ? service.boundRecipients() : [only];
      const rows = [];
      for (const key of keys) {
        const record = await service.recordOf(ctx, key);
        rows.push({
          recipient: key,
          ok: record.standing.ok,
          standing: record.standing.ok ? 'ok' : record.standing.code,
          policyVersion: record.standing.ok
            ? record.standing.acknowledgedVersion
            : record.standing.policyVersion,
          acknowledgedBy: record.acknowledgements[0]?.acknowledgedBy ?? null,
          acknowledgedAt: record.acknowledgements[0]?.acknowledgedAt.toISOString() ?? null,
        });
      }
      printList(options.format, rows, 'no processors or affiliates in the manifest in force', (list) =>
        alignColumns([
          ['RECIPIENT', 'STANDING', 'VERSION', 'LAST ACKNOWLEDGED BY', 'AT'],
          ...list.map((r) => [
            r.recipient,
            r.standing,
            r.policyVersion,
            r.acknowledgedBy ?? '-',
            r.acknowledgedAt ?? '-',
          ]),
        ]),
      );
      if (rows.some((r) => !r.ok)) process.exitCode = 1;
    });
  });

  addDataDirOption(
    recipients
      .command('secret')
      .description("print the secret a recipient's webhook verifies policy notices (Pledge-Signature) with")
      .argument('<recipient>', 'the recipient key in the manifest'),
  ).action(async (recipient: string, options: DatabaseCommandOptions) => {
    await runWithDatabase(options, async (database) => {
      const { manifest } = await manifestInForce(database);
      const r = manifest.recipients.find((x) => x.key === recipient);
      if (r?.webhook === undefined) {
        throw new PledgeError(
          'share.recipient_webhook_missing',
          `the manifest in force gives ${r === undefined ? `no recipient "${recipient}"` : `"${recipient}" no webhook`}; notices are POSTed only to a recipient's webhook:`,
        );
      }
      const [{ loadConfig }, { Keyring }, { keyFileDirOf }, { deriveRecipientNoticeSecret }] =
        await Promise.all([
          import('../platform/config.js'),
          import('../vault/keyring.js'),
          import('../vault/keystore.js'),
          import('../share/acknowledgements.notices.js'),
        ]);
      const config = loadConfig(process.env, { dataDir: options.dataDir });
      const keyring = await Keyring.load({ dataDir: keyFileDirOf(config), envKeys: config.keys });
      const current = keyring.use('recipient_notices').current();
      process.stdout.write(`${deriveRecipientNoticeSecret(current.secret, recipient)}\n`);
      process.stderr.write(
        `recipient_notices key version ${current.version}: notices signed with it say k=${current.version} in Pledge-Signature.\n`,
      );
    });
  });
}

/** The manifest the server last brought into force, and its stored version's id. */
async function manifestInForce(database: Database) {
  const [{ ManifestVersionRepository }, { parseManifest }] = await Promise.all([
    import('../manifest/manifest.repository.js'),
    import('../manifest/manifest.loader.js'),
  ]);
  const ctx = createContext({ kind: 'cli', id: cliUser() });
  const [current] = await new ManifestVersionRepository(database.db).list(ctx);
  if (current === undefined) {
    throw new PledgeError(
      'share.no_manifest_in_force',
      'no manifest has come into force in this database yet: start `pledge serve` with it first',
    );
  }
  const manifest = parseManifest(current.source, `manifest version ${current.id}`).manifest;
  if (manifest === undefined) {
    throw new PledgeError(
      'manifest.invalid',
      `the manifest in force (version ${current.id}) no longer parses with this version of Pledge`,
    );
  }
  return { manifest, versionId: current.id };
}

async function acknowledgementsInForce(
  database: Database,
  dataDir: string | undefined,
): Promise<AcknowledgementService> {
  const [
    inForce,
    { AcknowledgementService },
    { AcknowledgementsRepository },
    { AuditLog },
    { loadConfig },
    { Keyring },
    { keyFileDirOf },
    { ColumnSeal },
  ] = await Promise.all([
    manifestInForce(database),
    import('../share/acknowledgements.service.js'),
    import('../share/acknowledgements.repository.js'),
    import('../audit/audit.service.js'),
    import('../platform/config.js'),
    import('../vault/keyring.js'),
    import('../vault/keystore.js'),
    import('../share/sealed-columns.js'),
  ]);
  // The log commits subjects under its own key, as the server does.
  const config = loadConfig(process.env, { dataDir });
  const keyring = await Keyring.load({ dataDir: keyFileDirOf(config), envKeys: config.keys });
  const service = new AcknowledgementService({
    db: database.db,
    repo: new AcknowledgementsRepository(database.db, new ColumnSeal(keyring.use('share_signatories'))),
    audit: AuditLog.over(database.db, keyring.use('log_subjects')),
    // Serving instances hear the acknowledgement (PostgreSQL) and drop what they cached.
    notifications: database,
    manifest: inForce,
  });
  // What an earlier version left in plaintext is sealed before anything is read, as at start.
  await service.sealStored(createContext({ kind: 'cli', id: cliUser() }));
  return service;
}
