/**
 * `pledge keys create|list|revoke`: API keys for the HTTP API. A new key is printed once, alone on
 * stdout (so `KEY=$(pledge keys create ...)` captures just the key); messages go to stderr.
 *
 * `pledge keys status|rotate|rewrap|retire`: the master keys (KEK versions) that wrap every
 * subject's data key. A secret (the new PLEDGE_KEYS value) is likewise printed alone on stdout.
 * Exit codes: 0 done, 1 invalid configuration, unreachable database, bad input or a refused change
 * (a KEK still in use, another `pledge keys` command running).
 */
import os from 'node:os';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ApiKeyRepository, type ApiKeySummary } from '../platform/auth/api-keys.repository.js';
import { ApiKeyService } from '../platform/auth/api-keys.service.js';
import { isDataScope, SCOPE_DESCRIPTIONS, SCOPES } from '../platform/auth/scopes.js';
import { loadConfig } from '../platform/config.js';
import { ValidationError } from '../platform/errors.js';
import { createContext, type Context } from '../platform/context.js';
import type { Database } from '../platform/db/database.js';
import type {
  KeyRotationService,
  KeyStatusResult,
  KeyUseRotateResult,
} from '../vault/key-rotation.service.js';
import { KEY_USES, type KeyUse } from '../vault/use-keys.js';
import { addDataDirOption, runWithDatabase, type DatabaseCommandOptions } from './migrate.command.js';
import { alignColumns } from './cli.shared.js';

type Format = 'text' | 'json';

interface CreateOptions extends DatabaseCommandOptions {
  name: string;
  scope: string[];
  system?: string;
  holder?: string;
  expires?: Date;
  format: Format;
}

interface BindOptions extends DatabaseCommandOptions {
  system: string;
}

interface ListOptions extends DatabaseCommandOptions {
  format: Format;
}

/** Registers `pledge keys` and its subcommands. */
export function registerKeysCommand(program: Command): void {
  const keys = program
    .command('keys')
    .description('API keys (create, list, revoke) and the master keys (status, rotate, rewrap, retire)');
  const formatOption = () =>
    new Option('--format <format>', 'output format').choices(['text', 'json']).default('text');

  addDataDirOption(
    keys
      .command('create')
      .description('create an API key; it is printed once and cannot be shown again')
      .requiredOption('--name <name>', 'who or what uses the key, e.g. "billing-service"')
      .requiredOption('--scope <scope...>', 'what the key may do; repeat or list several')
      .option(
        '--system <system>',
        'the system (under systems: in the manifest) the key acts for; without one it is an operator key, which manages Pledge but acts for no person',
      )
      .option('--holder <holder>', 'the person or team responsible for the key')
      .option('--expires <date>', 'when the key stops working (YYYY-MM-DD, or an ISO 8601 time)', parseExpiry)
      .addOption(formatOption())
      .addHelpText(
        'after',
        `\nScopes:\n${SCOPES.map((s) => `  ${s.padEnd(16)}${SCOPE_DESCRIPTIONS[s]}`).join('\n')}\n`,
      ),
  ).action(async (options: CreateOptions) => {
    await withService(options, async (service, ctx) => {
      const created = await service.createKey(ctx, {
        name: options.name,
        scopes: options.scope,
        system: options.system,
        holder: options.holder,
        expiresAt: options.expires,
      });
      if (options.format === 'json')
        process.stdout.write(`${JSON.stringify({ key: created.key, ...presentKey(created) }, null, 2)}\n`);
      else {
        process.stderr.write(
          `created API key "${created.name}" (id ${created.id}) ${created.system === undefined ? 'for no system (an operator key)' : `for system "${created.system}"`} with scopes: ${created.scopes.join(', ')}\n`,
        );
        process.stdout.write(`${created.key}\n`);
      }
      process.stderr.write('warning: this key will not be shown again; store it in a secret manager now.\n');
    });
  });

  addDataDirOption(
    keys.command('list').description('list API keys (never their secrets)').addOption(formatOption()),
  ).action(async (options: ListOptions) => {
    await withService(options, async (service, ctx) => {
      const list = await service.listKeys(ctx);
      if (options.format === 'json')
        process.stdout.write(`${JSON.stringify(list.map(presentKey), null, 2)}\n`);
      else if (list.length === 0) {
        process.stderr.write(
          'no API keys yet; create one with `pledge keys create --name NAME --scope SCOPE`\n',
        );
      } else {
        process.stdout.write(formatTable(list));
        const unbound = list.filter((k) => k.system === undefined && k.revokedAt === undefined);
        if (unbound.some((k) => k.scopes.some((s) => s !== 'admin' && isDataScope(s)))) {
          process.stderr.write(
            'warning: keys marked UNBOUND hold scopes that act for people but no system, so those scopes are refused; ' +
              'bind each with `pledge keys bind ID --system SYSTEM` (README: "Systems and API keys")\n',
          );
        }
      }
    });
  });

  addDataDirOption(
    keys
      .command('bind')
      .description(
        'bind a key made without a system (or before keys had systems) to a system of the manifest',
      )
      .argument('<id>', 'the key id')
      .requiredOption('--system <system>', 'the system (under systems: in the manifest) the key acts for'),
  ).action(async (id: string, options: BindOptions) => {
    await withService(options, async (service, ctx) => {
      const key = await service.bindKey(ctx, id, options.system);
      process.stdout.write(`API key ${key.id} ("${key.name}") now acts for system "${key.system ?? ''}"\n`);
    });
  });

  addDataDirOption(
    keys
      .command('revoke')
      .description('revoke an API key at once, on every server')
      .argument('<id>', 'the key id'),
  ).action(async (id: string, options: DatabaseCommandOptions) => {
    await withService(options, async (service, ctx) => {
      const key = await service.revokeKey(ctx, id);
      process.stdout.write(
        `API key ${key.id} ("${key.name}") is revoked since ${key.revokedAt?.toISOString() ?? ''}\n`,
      );
    });
  });

  addDataDirOption(
    keys
      .command('status')
      .description('show the master key (KEK) versions and how many data keys each wraps')
      .addOption(formatOption()),
  ).action(async (options: ListOptions) => {
    await withRotation(options, async (service, ctx) => {
      const status = await service.status(ctx);
      if (options.format === 'json')
        process.stdout.write(`${JSON.stringify(presentStatus(status), null, 2)}\n`);
      else process.stdout.write(formatStatus(status));
    });
  });

  addDataDirOption(
    keys
      .command('rotate')
      .description(
        'add a key version: of the master key (--use kek, the default), rewrapping every data key under it ' +
          '(records are not touched); or of one use of a secret (links, webhooks, evidence, message_id)',
      )
      .addOption(new Option('--use <use>', 'which key rotates').choices(['kek', ...KEY_USES]).default('kek'))
      .addOption(formatOption()),
  ).action(async (options: ListOptions & { use: 'kek' | KeyUse }) => {
    await withRotation(options, async (service, ctx) => {
      if (options.use !== 'kek') {
        printUseRotation(await service.rotateUse(ctx, options.use), options.format);
        return;
      }
      const result = await service.rotate(ctx);
      // One line, so it pastes into an environment variable; PLEDGE_KEYS accepts base64 of the JSON.
      const keysValue = result.keys === undefined ? undefined : Buffer.from(result.keys).toString('base64');
      if (options.format === 'json') {
        process.stdout.write(
          `${JSON.stringify({ newVersion: result.newVersion, rewrapped: result.rewrapped, ...(keysValue !== undefined ? { keys: keysValue } : {}) }, null, 2)}\n`,
        );
      } else if (keysValue !== undefined) {
        process.stderr.write(
          `KEK version ${result.newVersion} is created; the keys come from PLEDGE_KEYS, so nothing is saved and nothing is rewrapped yet.\n`,
        );
        process.stdout.write(`${keysValue}\n`);
      } else {
        process.stdout.write(
          `KEK version ${result.newVersion} is current; ${plural(result.rewrapped, 'data key')} rewrapped under it (records untouched)\n`,
        );
      }
      if (keysValue !== undefined) {
        process.stderr.write(
          'next: set PLEDGE_KEYS to the value above on every instance and restart them, then run `pledge keys rewrap`.\n' +
            'warning: the value is secret; store it in your secret manager now.\n',
        );
      } else {
        process.stderr.write(
          'next: restart every `pledge serve` instance so it loads the new key file; then `pledge keys rewrap` ' +
            'catches any data key they made meanwhile, and `pledge keys retire VERSION` removes an old version.\n',
        );
      }
    });
  });

  addDataDirOption(
    keys
      .command('rewrap')
      .description('rewrap every data key not yet under the current master key version')
      .addOption(formatOption()),
  ).action(async (options: ListOptions) => {
    await withRotation(options, async (service, ctx) => {
      const result = await service.rewrap(ctx);
      if (options.format === 'json') process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else
        process.stdout.write(
          result.rewrapped === 0
            ? `every data key is already under KEK version ${result.currentVersion}\n`
            : `${plural(result.rewrapped, 'data key')} rewrapped under KEK version ${result.currentVersion}\n`,
        );
    });
  });

  addDataDirOption(
    keys
      .command('retire')
      .description('remove an old master key version once no data key uses it')
      .argument('<version>', 'the KEK version (see `pledge keys status`)', parseVersion)
      .addOption(formatOption()),
  ).action(async (version: number, options: ListOptions) => {
    await withRotation(options, async (service, ctx) => {
      const result = await service.retire(ctx, version);
      const keysValue = result.keys === undefined ? undefined : Buffer.from(result.keys).toString('base64');
      if (options.format === 'json') {
        process.stdout.write(
          `${JSON.stringify({ version: result.version, alreadyRetired: result.alreadyRetired, ...(keysValue !== undefined ? { keys: keysValue } : {}) }, null, 2)}\n`,
        );
      } else if (result.alreadyRetired) {
        process.stdout.write(`KEK version ${version} was already retired; nothing changed\n`);
      } else if (keysValue !== undefined) {
        process.stderr.write(
          `KEK version ${version} is retired; set PLEDGE_KEYS to the value below on every instance (secret).\n`,
        );
        process.stdout.write(`${keysValue}\n`);
      } else {
        process.stdout.write(
          `KEK version ${version} is retired: its key material is gone from the key file\n`,
        );
      }
    });
  });
}

/**
 * Opens the key store beside the database and runs `work` with the rotation service. The vault's
 * modules load only here, so API-key commands do not pay for them.
 */
function withRotation(
  options: DatabaseCommandOptions,
  work: (service: KeyRotationService, ctx: Context) => Promise<void>,
): Promise<void> {
  return runWithDatabase(options, async (database: Database) => {
    const config = loadConfig(process.env, { dataDir: options.dataDir });
    const [
      { openKeystore, keyFileDirOf },
      { Keyring },
      { DataKeys },
      { DataKeysRepository },
      { KeyRotationService },
      { AuditLog },
    ] = await Promise.all([
      import('../vault/keystore.js'),
      import('../vault/keyring.js'),
      import('../vault/data-keys.service.js'),
      import('../vault/data-keys.repository.js'),
      import('../vault/key-rotation.service.js'),
      import('../audit/audit.service.js'),
    ]);
    const keystore = await openKeystore({
      databaseUrl: config.databaseUrl,
      keystoreUrl: config.keystoreUrl,
      dataDir: config.dataDir,
      timeouts: config.databaseTimeouts,
    });
    try {
      const keys = { dataDir: keyFileDirOf(config), envKeys: config.keys };
      const keyring = await Keyring.load(keys);
      const dataKeys = new DataKeys(new DataKeysRepository(keystore.db), keyring);
      await work(
        new KeyRotationService({
          audit: AuditLog.over(database.db, keyring.use('log_subjects')),
          dataKeys,
          keys,
        }),
        createContext({ kind: 'cli', id: cliUser() }),
      );
    } finally {
      await keystore.close();
    }
  });
}

function printUseRotation(result: KeyUseRotateResult, format: Format): void {
  const keysValue = result.keys === undefined ? undefined : Buffer.from(result.keys).toString('base64');
  if (format === 'json') {
    process.stdout.write(
      `${JSON.stringify({ use: result.use, newVersion: result.newVersion, ...(keysValue !== undefined ? { keys: keysValue } : {}) }, null, 2)}\n`,
    );
  } else if (keysValue !== undefined) {
    process.stderr.write(
      `${result.use} key version ${result.newVersion} is created; the keys come from PLEDGE_KEYS, so nothing is saved.\n`,
    );
    process.stdout.write(`${keysValue}\n`);
  } else {
    process.stdout.write(
      `${result.use} key version ${result.newVersion} is the newest; what older versions signed still works until it expires\n`,
    );
  }
  process.stderr.write(
    keysValue !== undefined
      ? 'next: set PLEDGE_KEYS to the value above on every instance and restart them (the value is secret).\n'
      : 'next: restart every `pledge serve` instance so it signs with the new version and accepts it.\n',
  );
  if (result.use === 'webhooks') {
    process.stderr.write(
      'then give each receiver its new secret (`pledge webhooks secret KEY`): deliveries are signed with the new version only.\n',
    );
  }
}

function parseVersion(raw: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new InvalidArgumentError('give a KEK version number, e.g. 1.');
  return Number(raw);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The fields of the key status that the CLI shows (dates and counts; never key material). */
function presentStatus(status: KeyStatusResult) {
  return {
    source: status.source,
    file: status.file ?? null,
    currentVersion: status.currentVersion,
    versions: status.versions.map((v) => ({
      version: v.version,
      status: kekState(v),
      createdAt: v.createdAt ?? null,
      retiredAt: v.retiredAt ?? null,
      dataKeys: v.dataKeys,
    })),
  };
}

function kekState(v: KeyStatusResult['versions'][number]): 'current' | 'active' | 'retired' | 'missing' {
  if (v.missing) return 'missing';
  if (v.current) return 'current';
  return v.retiredAt === undefined ? 'active' : 'retired';
}

function formatStatus(status: KeyStatusResult): string {
  const where = status.source === 'env' ? 'PLEDGE_KEYS' : `key file ${status.file ?? ''}`;
  const rows = status.versions.map((v) => [
    String(v.version),
    kekState(v),
    v.createdAt ?? '-',
    v.retiredAt ?? '-',
    String(v.dataKeys),
  ]);
  const problems = status.versions
    .filter((v) => v.dataKeys > 0 && (v.missing || v.retiredAt !== undefined))
    .map(
      (v) =>
        `warning: ${plural(v.dataKeys, 'data key')} under KEK version ${v.version}, which the keyring ${v.missing ? 'does not have' : 'has retired'}: they cannot be opened; restore the key file from your backup\n`,
    );
  return `keys from ${where}\n${alignColumns([['VERSION', 'STATUS', 'CREATED', 'RETIRED', 'DATA KEYS'], ...rows])}${problems.join('')}`;
}

function withService(
  options: DatabaseCommandOptions,
  work: (service: ApiKeyService, ctx: Context) => Promise<void>,
): Promise<void> {
  return runWithDatabase(options, async (database: Database) => {
    const systems = await manifestSystems();
    await work(
      new ApiKeyService({ keys: new ApiKeyRepository(database.db), systems: () => systems }),
      createContext({ kind: 'cli', id: cliUser() }),
    );
  });
}

/**
 * The systems of the manifest the server runs (PLEDGE_MANIFEST), which a key's system must be one
 * of. A manifest that does not load stops the command with its problems.
 */
async function manifestSystems(): Promise<string[]> {
  const { loadManifestFile } = await import('../manifest/manifest.loader.js');
  const { formatLocation } = await import('../manifest/problems.js');
  const config = loadConfig(process.env);
  const loaded = await loadManifestFile(config.manifestPath);
  if (loaded.manifest === undefined) {
    throw new ValidationError(
      'manifest.invalid',
      `the manifest ${config.manifestPath} (PLEDGE_MANIFEST) does not load, so the systems keys are made for are unknown:\n` +
        loaded.problems.map((p) => `${formatLocation(p.location)}: ${p.message}`).join('\n'),
    );
  }
  return loaded.manifest.systems.map((s) => s.key);
}

/** The user running the CLI, for the audit's actor. */
export function cliUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    // Containers may run as a uid with no passwd entry.
    return process.env.USER ?? 'unknown';
  }
}

/** The fields of a key that the CLI shows. */
function presentKey(
  key: Omit<ApiKeySummary, 'createdAt' | 'lastUsedAt' | 'revokedAt'> & Partial<ApiKeySummary>,
) {
  return {
    id: key.id,
    name: key.name,
    scopes: key.scopes,
    system: key.system ?? null,
    holder: key.holder ?? null,
    expiresAt: key.expiresAt?.toISOString() ?? null,
    createdAt: key.createdAt?.toISOString() ?? null,
    lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
    revokedAt: key.revokedAt?.toISOString() ?? null,
  };
}

function formatTable(list: ApiKeySummary[]): string {
  const header = ['ID', 'NAME', 'SYSTEM', 'HOLDER', 'SCOPES', 'CREATED', 'EXPIRES', 'LAST USED', 'STATUS'];
  const now = Date.now();
  return alignColumns([
    header,
    ...list.map((k) => [
      k.id,
      k.name,
      k.system ?? (k.scopes.some((s) => s !== 'admin' && isDataScope(s)) ? 'UNBOUND' : '-'),
      k.holder ?? '-',
      k.scopes.join(','),
      k.createdAt.toISOString(),
      k.expiresAt?.toISOString() ?? 'never',
      k.lastUsedAt?.toISOString() ?? 'never',
      k.revokedAt !== undefined
        ? `revoked ${k.revokedAt.toISOString()}`
        : k.expiresAt !== undefined && k.expiresAt.getTime() <= now
          ? 'expired'
          : 'active',
    ]),
  ]);
}

function parseExpiry(raw: string): Date {
  const value = raw.trim();
  const date = /^\d{4}-\d{2}-\d{2}$/.test(value) ? new Date(`${value}T00:00:00Z`) : new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(date.getTime())) {
    throw new InvalidArgumentError('give a date (YYYY-MM-DD) or an ISO 8601 time, e.g. 2027-06-30.');
  }
  return date;
}
