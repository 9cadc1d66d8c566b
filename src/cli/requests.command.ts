/**
 * `pledge requests list|show|approve|extend|reject|retry|complete` and `pledge requests agents add|list|revoke`: the staff queue of data-subject
 * requests at a terminal. `list --due 7d` shows open requests due within a week (overdue ones
 * first). An extension mails the requester its reason when mail is configured (PLEDGE_SMTP_URL).
 * Steps run in the servers (the job queue); the CLI only records decisions and queues work.
 * Exit codes: 0 done, 1 invalid configuration, unreachable database, an unknown request, a refused
 * step (its code is printed) or bad input.
 */
import { Option, type Command } from 'commander';
import { loadConfig } from '../platform/config.js';
import { createContext, type Context } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import { presentEvent, presentRequest, presentStep } from '../rights/requests.presenter.js';
import type { AgentRecord, AgentsService } from '../rights/agents.service.js';
import type { RequestsService, RequestView } from '../rights/requests.service.js';
import { cliUser } from './keys.command.js';
import { alignColumns, printList } from './cli.shared.js';
import { addDataDirOption, runWithDatabase, type DatabaseCommandOptions } from './migrate.command.js';

interface RequestsOptions extends DatabaseCommandOptions {
  manifest?: string;
  format: 'text' | 'json';
}

/** Registers `pledge requests` and its subcommands. */
export function registerRequestsCommand(program: Command): void {
  const requests = program
    .command('requests')
    .description('data-subject requests: the staff queue (approve, extend, reject, retry, complete a task)');

  const command = (name: string, description: string) =>
    addDataDirOption(
      requests
        .command(name)
        .description(description)
        .option('--manifest <file>', 'the manifest (default: $PLEDGE_MANIFEST or the example)')
        .addOption(
          new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'),
        ),
    );

  command('list', 'list open requests, soonest due first')
    .option('--due <window>', 'only those due within this window (7d, 12h, 2w), overdue included')
    .option('--stalled', 'only requests flagged stalled')
    .option('--all', 'closed requests too')
    .action(async (options: RequestsOptions & { due?: string; stalled?: boolean; all?: boolean }) => {
      await withRequests(options, async (service, ctx) => {
        const now = ctx.clock.now();
        const list = (
          await service.list(ctx, {
            due: options.due,
            stalled: options.stalled === true ? true : undefined,
            all: options.all,
            limit: 500,
          })
        ).map((r) => presentRequest(r, now, service.dueWindowMs(options.due)));
        printList(options.format, list, 'no requests', (rows) =>
          alignColumns([
            ['ID', 'TYPE', 'STATUS', 'RECEIVED', 'DUE', 'DAYS LEFT', 'DUE STATUS', 'FLAGS'],
            ...rows.map((r) => [
              String(r.id),
              String(r.type),
              String(r.status),
              String(r.receivedAt).slice(0, 10),
              String(r.dueAt).slice(0, 10),
              String(r.daysLeft),
              dueOf(r.due),
              flagsOf(r.flags),
            ]),
          ]),
        );
      });
    });

  const act = (
    name: string,
    description: string,
    run: (
      service: RequestsService,
      ctx: Context,
      id: string,
      options: RequestsOptions & Record<string, string>,
    ) => Promise<RequestView>,
    extra?: (c: Command) => Command,
  ) => {
    const c = command(name, description).argument('<id>', 'the request id');
    (extra ? extra(c) : c).action(async (id: string, options: RequestsOptions & Record<string, string>) => {
      await withRequests(options, async (service, ctx) =>
        print(options, await run(service, ctx, id, options), ctx.clock.now()),
      );
    });
  };

  act('show', 'show one request with its steps and events', (s, ctx, id) => s.view(ctx, id));
  act('approve', "start a verified request's steps", (s, ctx, id) => s.approve(ctx, id));
  act(
    'extend',
    'extend the due date, with a reason the requester is told',
    (s, ctx, id, o) => s.extend(ctx, id, o.reason),
    (c) => c.requiredOption('--reason <code>', 'why: complexity, volume or stores'),
  );
  act(
    'reject',
    'reject a request with a reason code',
    (s, ctx, id, o) => s.reject(ctx, id, o.reason),
    (c) =>
      c.requiredOption(
        '--reason <code>',
        'why: unverified, manifestly_unfounded, excessive, duplicate, not_applicable',
      ),
  );
  act('retry', 'queue the failed step again', (s, ctx, id) => s.retry(ctx, id));
  act(
    'complete',
    'confirm a task done by hand (the first waiting one, or --step)',
    (s, ctx, id, o) => s.completeTask(ctx, id, o.step),
    (c) => c.option('--step <id>', 'the step id (see `pledge requests show`)'),
  );

  // Authorized agents (Data Rights Protocol 1.0): staff register the key each agent signs with.
  const agents = requests
    .command('agents')
    .description('authorized agents (Data Rights Protocol 1.0): register, list and revoke their keys');
  const agentCommand = (name: string, description: string) =>
    addDataDirOption(
      agents
        .command(name)
        .description(description)
        .option('--manifest <file>', 'the manifest (default: $PLEDGE_MANIFEST or the example)')
        .addOption(
          new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'),
        ),
    );
  const printAgents = (options: RequestsOptions, list: AgentRecord[]) =>
    printList(
      options.format,
      list.map((a) => ({
        id: a.id,
        name: a.name,
        publicKey: a.publicKey,
        status: a.status,
        registeredBy: a.registeredBy,
        registeredAt: a.registeredAt.toISOString(),
        revokedAt: a.revokedAt?.toISOString() ?? null,
      })),
      'no agents',
      (rows) =>
        alignColumns([
          ['ID', 'NAME', 'STATUS', 'REGISTERED', 'BY', 'PUBLIC KEY'],
          ...rows.map((r) => [
            String(r.id),
            String(r.name),
            String(r.status),
            String(r.registeredAt).slice(0, 10),
            String(r.registeredBy),
            String(r.publicKey),
          ]),
        ]),
    );
  agentCommand('add', "register an agent's Ed25519 key (raw 32 bytes, base64)")
    .argument('<id>', "the agent's DRP agent-id")
    .requiredOption('--name <name>', "the agent's name")
    .requiredOption('--public-key <base64>', "the agent's raw Ed25519 public key, base64")
    .action(async (id: string, options: RequestsOptions & { name: string; publicKey: string }) => {
      await withRequests(options, async (_s, ctx, service) => {
        printAgents(options, [
          await service.register(ctx, { id, name: options.name, public_key: options.publicKey }),
        ]);
      });
    });
  agentCommand('list', 'list the registered agents').action(async (options: RequestsOptions) => {
    await withRequests(options, async (_s, ctx, service) => printAgents(options, await service.list(ctx)));
  });
  agentCommand('revoke', 'revoke an agent: its signed requests are refused from now on')
    .argument('<id>', "the agent's id")
    .action(async (id: string, options: RequestsOptions) => {
      await withRequests(options, async (_s, ctx, service) =>
        printAgents(options, [await service.revoke(ctx, id)]),
      );
    });
}

function flagsOf(flags: unknown): string {
  const f = flags as { stalled?: boolean; requeued?: boolean };
  return [f.stalled ? 'stalled' : '', f.requeued ? 'requeued' : ''].filter(Boolean).join(',') || '-';
}

function dueOf(due: unknown): string {
  const d = due as { status: string; deadline: string; at: string } | null;
  return d === null ? '-' : `${d.status} (${d.deadline} ${d.at.slice(0, 10)})`;
}

/** Opens the database and a requests service over it, with the CLI's context; a refused step prints its code. */
async function withRequests(
  options: RequestsOptions,
  work: (service: RequestsService, ctx: Context, agents: AgentsService) => Promise<void>,
): Promise<void> {
  await runWithDatabase(options, async (database) => {
    const config = loadConfig(process.env, { dataDir: options.dataDir, manifest: options.manifest });
    const [
      { loadManifestFile },
      { createRequests },
      { AuditLog },
      { Keyring },
      { keyFileDirOf },
      { JobQueue },
      { MailTransport },
      { mailSettingsOf },
      { siteOf },
    ] = await Promise.all([
      import('../manifest/manifest.loader.js'),
      import('../rights/requests.setup.js'),
      import('../audit/audit.service.js'),
      import('../vault/keyring.js'),
      import('../vault/keystore.js'),
      import('../platform/jobs/jobs.service.js'),
      import('../platform/mail/mail.transport.js'),
      import('../comms/mail.settings.js'),
      import('../consent/pages.views.js'),
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
    const keyring = await Keyring.load({ dataDir: keyFileDirOf(config), envKeys: config.keys });
    const mailSettings = mailSettingsOf(config, manifest);
    const quiet = { warn: () => undefined, info: () => undefined };
    const transport = new MailTransport({ smtpUrl: config.smtpUrl, from: mailSettings.from, log: quiet });
    const built = createRequests({
      db,
      queue: new JobQueue({ db }),
      audit: AuditLog.over(db, keyring.use('log_subjects')),
      keys: {
        requests: keyring.use('requests'),
        codes: keyring.use('request_codes'),
        links: keyring.use('request_links'),
      },
      mail: transport,
      // The CLI matches nobody: verification happens on the server's pages.
      matchSubject: () => Promise.resolve(undefined),
      site: siteOf(manifest),
      jurisdictions: manifest.jurisdictions,
      publicUrl: mailSettings.publicUrl,
      stallAfterMs: config.requestStallAfterSeconds * 1000,
      manifest: { manifest },
      dueSoonMs: config.requestDueSoonSeconds * 1000,
    });
    const ctx = createContext({ kind: 'cli', id: cliUser() });
    try {
      await work(built.service, ctx, built.agents);
    } catch (err) {
      if (!(err instanceof PledgeError)) throw err;
      const problems = (err.details?.problems as Array<{ path: string; message: string }> | undefined) ?? [];
      process.stderr.write(
        `error (${err.code}): ${problems.length > 1 ? problems.map((p) => `\n  ${p.path}: ${p.message}`).join('') : err.message}\n`,
      );
      process.exitCode = 1;
    } finally {
      transport.close();
    }
  });
}

function print(options: RequestsOptions, view: RequestView, now: Date): void {
  {
    const out = {
      request: presentRequest(view.request, now),
      steps: view.steps.map(presentStep),
      events: view.events.map(presentEvent),
    };
    if (options.format === 'json') {
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      const r = out.request;
      const lines: Array<[string, string | number | boolean | null]> = [
        ['id', view.request.id],
        ['type', view.request.type],
        ['status', view.request.status],
        ['jurisdiction', view.request.jurisdiction],
        ['received', view.request.receivedAt.toISOString()],
        ['rule', view.request.deadlineRule ?? null],
        ['confirm by', view.request.confirmBy?.toISOString() ?? null],
        ['confirmed', view.request.confirmedAt?.toISOString() ?? null],
        ['answer by', view.request.answerBy.toISOString()],
        ['notice by', view.request.extensionNoticeBy?.toISOString() ?? null],
        [
          'extended to',
          view.request.extensionNoticeBy === undefined ? null : view.request.extendedDueAt.toISOString(),
        ],
        ['due', view.request.dueAt.toISOString()],
        ['due status', dueOf(r.due)],
        ['extended', view.request.extendedAt?.toISOString() ?? null],
        ['flags', flagsOf(r.flags)],
        ['reason', view.request.reason ?? null],
      ];
      process.stdout.write(
        lines.map(([k, v]) => `${`${k}:`.padEnd(14)}${v === null ? '-' : String(v)}\n`).join(''),
      );
      process.stdout.write('steps:\n');
      process.stdout.write(
        `${alignColumns(
          view.steps.map((s) => [
            `  ${s.position}`,
            s.name,
            s.store === '' ? '-' : s.store,
            s.status,
            `attempts ${s.attempts}`,
            s.dueAt === undefined ? '' : `due ${s.dueAt.toISOString().slice(0, 10)}`,
            s.error ?? '',
          ]),
        )}`,
      );
    }
  }
}
