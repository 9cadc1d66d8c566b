/**
 * `pledge webhooks secret KEY`: prints the signing secret of a webhook of the manifest, alone on
 * stdout, for configuring its receiver (every instance of a deployment derives the same one).
 * `pledge webhooks deliveries`: the delivery log, newest first.
 * `pledge webhooks retry ID...`: puts failed deliveries back in the queue (after fixing the receiver).
 * Exit codes: 0 done, 1 invalid configuration, unreachable database, a manifest with problems, an
 * unknown webhook or bad input.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { loadConfig } from '../platform/config.js';
import { createContext } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import {
  DELIVERY_STATUSES,
  MAX_DELIVERIES_PAGE,
  type DeliveryStatus,
} from '../consent/webhooks.constants.js';
import { presentDelivery, type DeliveryView } from '../consent/webhooks.presenter.js';
import { cliUser } from './keys.command.js';
import { alignColumns, printList } from './cli.shared.js';
import { addDataDirOption, runWithDatabase, type DatabaseCommandOptions } from './migrate.command.js';

interface SecretOptions {
  dataDir?: string;
  manifest?: string;
}

interface DeliveriesOptions extends DatabaseCommandOptions {
  status?: DeliveryStatus;
  webhook?: string;
  limit: number;
  format: 'text' | 'json';
}

/** Registers `pledge webhooks` and its subcommands. */
export function registerWebhooksCommand(program: Command): void {
  const webhooks = program
    .command('webhooks')
    .description('the systems told about changes of choices: signing secrets and the delivery log');

  addDataDirOption(
    webhooks
      .command('secret')
      .description("print a webhook's signing secret, for its receiver to verify Pledge-Signature")
      .argument('<key>', 'the webhook key in the manifest')
      .option('--manifest <file>', 'the manifest (default: $PLEDGE_MANIFEST or the example)')
      .option(
        '--key-version <n>',
        'the webhooks key version (default: the newest, which deliveries are signed with)',
      ),
  ).action(async (key: string, options: SecretOptions & { keyVersion?: string }) => {
    try {
      const config = loadConfig(process.env, { dataDir: options.dataDir, manifest: options.manifest });
      const [{ loadManifestFile }, { Keyring }, { deriveWebhookSecret }, { keyFileDirOf }] =
        await Promise.all([
          import('../manifest/manifest.loader.js'),
          import('../vault/keyring.js'),
          import('../consent/webhooks.signature.js'),
          import('../vault/keystore.js'),
        ]);
      const loaded = await loadManifestFile(config.manifestPath);
      if (!loaded.manifest) {
        throw new PledgeError(
          'manifest.invalid',
          `${config.manifestPath} has problems; run \`pledge check ${config.manifestPath}\``,
        );
      }
      const known = loaded.manifest.webhooks.map((w) => w.key);
      if (!known.includes(key)) {
        throw new PledgeError(
          'webhooks.webhook_not_found',
          `${config.manifestPath} declares no webhook "${key}"; ${known.length > 0 ? `its webhooks are ${known.join(', ')}` : 'it declares none (add one under webhooks:)'}`,
        );
      }
      const keyring = await Keyring.load({ dataDir: keyFileDirOf(config), envKeys: config.keys });
      const keys = keyring.use('webhooks');
      const version = options.keyVersion === undefined ? keys.current().version : Number(options.keyVersion);
      const material = keys.secret(version);
      if (material === undefined) {
        throw new PledgeError(
          'webhooks.key_version_unknown',
          `the keyring holds no webhooks key version ${options.keyVersion ?? ''}; it holds ${keys
            .versions()
            .map((v) => v.version)
            .join(', ')}`,
        );
      }
      process.stdout.write(`${deriveWebhookSecret(material, key)}\n`);
      process.stderr.write(
        `webhooks key version ${version}: deliveries signed with it say k=${version} in Pledge-Signature.\n`,
      );
      process.stderr.write(
        'warning: the secret lets its holder forge deliveries to this receiver; store it in a secret manager.\n',
      );
    } catch (err) {
      if (!(err instanceof PledgeError)) throw err;
      process.stderr.write(`error: ${err.message}\n`);
      process.exitCode = 1;
    }
  });

  addDataDirOption(
    webhooks
      .command('deliveries')
      .description('list webhook deliveries, newest first (never their payloads)')
      .addOption(
        new Option('--status <status>', 'only deliveries in this state').choices([...DELIVERY_STATUSES]),
      )
      .option('--webhook <key>', 'only deliveries to this webhook')
      .option('--limit <n>', `at most this many (1 to ${MAX_DELIVERIES_PAGE})`, parseLimit, 50)
      .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text')),
  ).action(async (options: DeliveriesOptions) => {
    await runWithDatabase(options, async (database) => {
      const { WebhookDeliveriesRepository } = await import('../consent/webhooks.repository.js');
      const ctx = createContext({ kind: 'cli', id: cliUser() });
      const list = (
        await new WebhookDeliveriesRepository(database.db).list(ctx, {
          status: options.status,
          webhook: options.webhook,
          limit: options.limit,
        })
      ).map(presentDelivery);
      printList(options.format, list, 'no webhook deliveries', formatTable);
    });
  });

  addDataDirOption(
    webhooks
      .command('retry')
      .description('queue failed deliveries again, with a fresh set of attempts')
      .argument('<id...>', 'delivery ids (from `pledge webhooks deliveries --status failed`)'),
  ).action(async (ids: string[], options: DatabaseCommandOptions) => {
    await runWithDatabase(options, async (database) => {
      const [{ WebhookDeliveriesRepository }, { redeliverFailed }, { JobQueue }] = await Promise.all([
        import('../consent/webhooks.repository.js'),
        import('../consent/webhooks.service.js'),
        import('../platform/jobs/jobs.service.js'),
      ]);
      const ctx = createContext({ kind: 'cli', id: cliUser() });
      const n = await redeliverFailed(
        ctx,
        {
          db: database.db,
          repo: new WebhookDeliveriesRepository(database.db),
          jobs: new JobQueue({ db: database.db }),
        },
        ids,
      );
      process.stdout.write(
        `${n} of ${ids.length} deliver${ids.length === 1 ? 'y' : 'ies'} queued again${n > 0 ? '; running servers send them within a second' : ''}\n`,
      );
      if (n < ids.length) {
        process.stderr.write(
          'the others were not found or had not failed (only failed deliveries are retried)\n',
        );
        process.exitCode = 1;
      }
    });
  });
}

function parseLimit(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < 1 || n > MAX_DELIVERIES_PAGE)
    throw new InvalidArgumentError(`give a whole number from 1 to ${MAX_DELIVERIES_PAGE}.`);
  return n;
}

function formatTable(list: readonly DeliveryView[]): string {
  const rows = [
    ['ID', 'WEBHOOK', 'EVENT', 'STATUS', 'ATTEMPTS', 'LAST', 'CREATED', 'NEXT / DELIVERED'],
    ...list.map((d) => [
      d.id,
      d.webhook,
      d.eventType,
      d.status,
      String(d.attempts),
      d.lastStatus ?? '-',
      d.createdAt,
      d.nextAttemptAt ?? d.deliveredAt ?? '-',
    ]),
  ];
  return alignColumns(rows);
}
