/**
 * `pledge legal list|show|receive|approve|narrow|reject|close`: legal requests from authorities, for
 * the legal team at a terminal. A review is refused to whoever recorded the request: the
 * operating-system accounts and the `--by` names must differ (and a request recorded with an API
 * key is refused to a `--by` that names that key's holder). Disclosures go through the server's
 * share gate (`POST /api/v1/legal-requests/:id/disclose`); the CLI discloses nothing.
 * Exit codes: 0 done, 1 invalid configuration, unreachable database, an unknown request, a refused
 * step (its code is printed) or bad input.
 */
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { loadConfig } from '../platform/config.js';
import { createContext, type Context } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import type { LegalRequestView } from '../share/legal.presenter.js';
import type { LegalService } from '../share/legal.service.js';
import { cliUser } from './keys.command.js';
import { alignColumns, printList } from './cli.shared.js';
import { addDataDirOption, runWithDatabase, type DatabaseCommandOptions } from './migrate.command.js';

interface LegalOptions extends DatabaseCommandOptions {
  manifest?: string;
  by?: string;
  format: 'text' | 'json';
}

/** Registers `pledge legal` and its subcommands. */
export function registerLegalCommand(program: Command): void {
  const legal = program
    .command('legal')
    .description('legal requests from authorities: record, review (by someone else), close');

  const command = (name: string, description: string) =>
    addDataDirOption(
      legal
        .command(name)
        .description(description)
        .option('--manifest <file>', 'the manifest (default: $PLEDGE_MANIFEST or the example)')
        .addOption(
          new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'),
        ),
    );
  const byOption = () =>
    new Option('--by <name>', 'who you are (your name as the legal team knows you)').makeOptionMandatory();

  command('list', 'list legal requests, newest first')
    .addOption(new Option('--open', 'only requests not closed'))
    .action(async (options: LegalOptions & { open?: boolean }) => {
      await withLegal(options, async (service, ctx, present) => {
        const list = (
          await service.list(ctx, { open: options.open === true ? true : undefined, limit: 500 })
        ).map(present);
        printList(options.format, list, 'no legal requests', formatList);
      });
    });

  command('show', 'show one legal request, with the people whose data left for it')
    .argument('<id>', 'the request id')
    .action(async (id: string, options: LegalOptions) => {
      await withLegal(options, async (service, ctx, present) => {
        const r = await service.getOrThrow(ctx, id);
        const notices = await service.notices(ctx, r.id);
        const view = present(r);
        if (options.format === 'json') {
          process.stdout.write(
            `${JSON.stringify({ request: view, disclosures: notices.length }, null, 2)}\n`,
          );
        } else {
          process.stdout.write(formatRequest(view));
          process.stdout.write(
            `${'disclosed to:'.padEnd(18)}${notices.length} subject${notices.length === 1 ? '' : 's'}\n`,
          );
        }
      });
    });

  command('receive', 'record a legal request from a JSON file (as POST /api/v1/legal-requests takes it)')
    .requiredOption('--file <file>', 'the request as JSON ("-" reads standard input)')
    .addOption(byOption())
    .action(async (options: LegalOptions & { file: string }) => {
      await withLegal(options, async (service, ctx, present) => {
        const text = options.file === '-' ? await readStdin() : await readFile(options.file, 'utf8');
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw new PledgeError('legal.request_invalid', `${options.file} is not JSON`, { status: 400 });
        }
        print(options, present(await service.receive(ctx, body, { by: options.by })));
      });
    });

  command('approve', 'approve a request as asked (you cannot approve one you recorded)')
    .argument('<id>', 'the request id')
    .addOption(byOption())
    .action(async (id: string, options: LegalOptions) => {
      await withLegal(options, async (service, ctx, present) => {
        print(options, present(await service.approve(ctx, id, { by: options.by })));
      });
    });

  command('narrow', 'approve part of a request: some of its subjects and categories, never more')
    .argument('<id>', 'the request id')
    .requiredOption('--subjects <ids>', 'the subject ids approved, comma-separated')
    .requiredOption('--categories <keys>', 'the categories approved, comma-separated')
    .addOption(byOption())
    .action(async (id: string, options: LegalOptions & { subjects: string; categories: string }) => {
      await withLegal(options, async (service, ctx, present) => {
        const r = await service.narrow(
          ctx,
          id,
          { subjects: splitList(options.subjects), categories: splitList(options.categories) },
          { by: options.by },
        );
        print(options, present(r));
      });
    });

  command('reject', 'reject a request with a reason code')
    .argument('<id>', 'the request id')
    .requiredOption(
      '--reason <code>',
      'why (no_valid_legal_basis, overbroad, wrong_jurisdiction, authority_unverified, data_not_held, defective_request, other)',
    )
    .addOption(byOption())
    .action(async (id: string, options: LegalOptions & { reason: string }) => {
      await withLegal(options, async (service, ctx, present) => {
        print(options, present(await service.reject(ctx, id, options.reason, { by: options.by })));
      });
    });

  command('close', 'close a request: nothing more leaves for it')
    .argument('<id>', 'the request id')
    .addOption(byOption())
    .action(async (id: string, options: LegalOptions) => {
      await withLegal(options, async (service, ctx, present) => {
        print(options, present(await service.close(ctx, id, { by: options.by })));
      });
    });
}

/**
 * Opens the database and a legal service over it that discloses and sends nothing (its notice jobs
 * run in the servers), with the CLI's context; a refused step prints its code.
 */
async function withLegal(
  options: LegalOptions,
  work: (
    service: LegalService,
    ctx: Context,
    present: (r: Awaited<ReturnType<LegalService['getOrThrow']>>) => LegalRequestView,
  ) => Promise<void>,
): Promise<void> {
  await runWithDatabase(options, async (database) => {
    const config = loadConfig(process.env, { dataDir: options.dataDir, manifest: options.manifest });
    const [
      { loadManifestFile },
      { LegalService },
      { LegalRepository },
      { presentLegalRequest },
      { AuditLog },
      { Keyring },
      { keyFileDirOf },
      { JobQueue },
      { ApiKeyService },
      { ApiKeyRepository },
      { SubjectsRepository },
      { ColumnSeal },
    ] = await Promise.all([
      import('../manifest/manifest.loader.js'),
      import('../share/legal.service.js'),
      import('../share/legal.repository.js'),
      import('../share/legal.presenter.js'),
      import('../audit/audit.service.js'),
      import('../vault/keyring.js'),
      import('../vault/keystore.js'),
      import('../platform/jobs/jobs.service.js'),
      import('../platform/auth/api-keys.service.js'),
      import('../platform/auth/api-keys.repository.js'),
      import('../vault/subjects.repository.js'),
      import('../share/sealed-columns.js'),
    ]);
    const loaded = await loadManifestFile(config.manifestPath);
    const manifest = loaded.manifest;
    if (!manifest) {
      throw new PledgeError(
        'manifest.invalid',
        `${config.manifestPath} has problems; run \`pledge check ${config.manifestPath}\``,
      );
    }
    const db = database.db;
    // The log commits subjects under its own key, as the server does.
    const keyring = await Keyring.load({ dataDir: keyFileDirOf(config), envKeys: config.keys });
    const apiKeys = new ApiKeyService({ keys: new ApiKeyRepository(db) });
    const subjects = new SubjectsRepository(db);
    const service = new LegalService({
      db,
      repo: new LegalRepository(db, new ColumnSeal(keyring.use('legal_requests'))),
      audit: AuditLog.over(db, keyring.use('log_subjects')),
      manifest: { manifest },
      jobs: new JobQueue({ db }),
      subjectExists: async (c, id) => {
        const s = await subjects.get(c, id);
        return s !== undefined && s.erasedAt === undefined;
      },
      holderOf: async (c, keyId) => (await apiKeys.listKeys(c)).find((k) => k.id === keyId)?.holder,
    });
    const ctx = createContext({ kind: 'cli', id: cliUser() });
    try {
      // What an earlier version left in plaintext is sealed before anything is read, as at start.
      await service.sealStored(ctx);
      await work(service, ctx, (r) => presentLegalRequest(r, ctx.clock.now()));
    } catch (err) {
      if (!(err instanceof PledgeError)) throw err;
      const problems = (err.details?.problems as Array<{ path: string; message: string }> | undefined) ?? [];
      process.stderr.write(
        `error (${err.code}): ${problems.length > 1 ? problems.map((p) => `\n  ${p.path}: ${p.message}`).join('') : err.message}\n`,
      );
      process.exitCode = 1;
    }
  });
}

function print(options: LegalOptions, view: LegalRequestView): void {
  if (options.format === 'json') process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
  else process.stdout.write(formatRequest(view));
}

function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function formatList(list: readonly LegalRequestView[]): string {
  return alignColumns([
    ['ID', 'STATUS', 'RECEIVED', 'AUTHORITY', 'BASIS', 'SUBJECTS', 'DEADLINE'],
    ...list.map((r) => [
      r.id,
      r.status,
      r.receivedAt.slice(0, 10),
      `${r.authority.type}: ${r.authority.name}`,
      r.legalBasis,
      String(r.scope.subjects.length),
      r.deadline,
    ]),
  ]);
}

function who(a: LegalRequestView['intakeBy'] | undefined): string | null {
  if (a === undefined) return null;
  return [a.holder, a.key && `key ${a.key}`, a.account && `account ${a.account}`].filter(Boolean).join(', ');
}

function formatRequest(r: LegalRequestView): string {
  const lines: Array<[string, string | null]> = [
    ['id', r.id],
    ['status', r.status],
    ['received', r.receivedAt],
    ['authority', `${r.authority.name} (${r.authority.type})`],
    ['legal basis', `${r.legalBasis}${r.citation === undefined ? '' : ` (${r.citation})`}`],
    ['reference', r.reference],
    ['deadline', r.deadline],
    ['asked', `${r.scope.subjects.length} subject(s); ${r.scope.categories.join(', ')}`],
    ['asked subjects', r.scope.subjects.join(',')],
    [
      'notice',
      r.notice.prohibited
        ? `prohibited${r.notice.until === undefined ? ' until further order' : ` until ${r.notice.until}`}`
        : 'allowed',
    ],
    ['recorded by', who(r.intakeBy)],
    ['decision', r.decision ?? null],
    [
      'approved',
      r.approved ? `${r.approved.subjects.length} subject(s); ${r.approved.categories.join(', ')}` : null,
    ],
    ['reject reason', r.rejectReason ?? null],
    ['reviewed by', who(r.reviewedBy)],
    ['reviewed', r.reviewedAt ?? null],
    ['disclosed', r.disclosedAt ?? null],
    ['closed', r.closedAt ?? null],
    ['closed by', who(r.closedBy)],
  ];
  return `${lines
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${`${k}:`.padEnd(18)}${v ?? ''}`)
    .join('\n')}\n`;
}
