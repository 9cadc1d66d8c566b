/**
 * `pledge keys create|list|revoke`: API keys for the HTTP API. A new key is printed once, alone on
 * stdout (so `KEY=$(pledge keys create ...)` captures just the key); messages go to stderr.
 * Exit codes: 0 done, 1 invalid configuration, unreachable database or bad input.
 */
import os from 'node:os';
import { Option, type Command } from 'commander';
import { ApiKeyRepository, type ApiKeySummary } from '../platform/auth/api-keys.repository.js';
import { ApiKeyService } from '../platform/auth/api-keys.service.js';
import { SCOPE_DESCRIPTIONS, SCOPES } from '../platform/auth/scopes.js';
import { createContext, type Context } from '../platform/context.js';
import type { Database } from '../platform/db/database.js';
import { addDataDirOption, runWithDatabase, type DatabaseCommandOptions } from './migrate.command.js';

type Format = 'text' | 'json';

interface CreateOptions extends DatabaseCommandOptions {
  name: string;
  scope: string[];
  format: Format;
}

interface ListOptions extends DatabaseCommandOptions {
  format: Format;
}

/** Registers `pledge keys` and its subcommands. */
export function registerKeysCommand(program: Command): void {
  const keys = program.command('keys').description('create, list and revoke API keys');
  const formatOption = () =>
    new Option('--format <format>', 'output format').choices(['text', 'json']).default('text');

  addDataDirOption(
    keys
      .command('create')
      .description('create an API key; it is printed once and cannot be shown again')
      .requiredOption('--name <name>', 'who or what uses the key, e.g. "billing-service"')
      .requiredOption('--scope <scope...>', 'what the key may do; repeat or list several')
      .addOption(formatOption())
      .addHelpText(
        'after',
        `\nScopes:\n${SCOPES.map((s) => `  ${s.padEnd(16)}${SCOPE_DESCRIPTIONS[s]}`).join('\n')}\n`,
      ),
  ).action(async (options: CreateOptions) => {
    await withService(options, async (service, ctx) => {
      const created = await service.createKey(ctx, { name: options.name, scopes: options.scope });
      if (options.format === 'json')
        process.stdout.write(
          `${JSON.stringify({ id: created.id, key: created.key, name: created.name, scopes: created.scopes }, null, 2)}\n`,
        );
      else {
        process.stderr.write(
          `created API key "${created.name}" (id ${created.id}) with scopes: ${created.scopes.join(', ')}\n`,
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
      } else process.stdout.write(formatTable(list));
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
}

function withService(
  options: DatabaseCommandOptions,
  work: (service: ApiKeyService, ctx: Context) => Promise<void>,
): Promise<void> {
  return runWithDatabase(options, (database: Database) =>
    work(
      new ApiKeyService({ keys: new ApiKeyRepository(database.db) }),
      createContext({ kind: 'cli', user: cliUser() }),
    ),
  );
}

function cliUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    // Containers may run as a uid with no passwd entry.
    return process.env.USER ?? 'unknown';
  }
}

/** The fields of a key that the CLI shows. */
function presentKey(key: ApiKeySummary) {
  return {
    id: key.id,
    name: key.name,
    scopes: key.scopes,
    createdAt: key.createdAt.toISOString(),
    lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
    revokedAt: key.revokedAt?.toISOString() ?? null,
  };
}

function formatTable(list: ApiKeySummary[]): string {
  const header = ['ID', 'NAME', 'SCOPES', 'CREATED', 'LAST USED', 'STATUS'];
  const rows = list.map((k) => [
    k.id,
    k.name,
    k.scopes.join(','),
    k.createdAt.toISOString(),
    k.lastUsedAt?.toISOString() ?? 'never',
    k.revokedAt === undefined ? 'active' : `revoked ${k.revokedAt.toISOString()}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  return [header, ...rows]
    .map(
      (r) =>
        `${r
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}
