/**
 * The executors that make a data-subject request run end to end (docs/requests.md, "Running a
 * request"): they connect the workflow's steps (src/rights/steps.engine.ts) to Pledge's own
 * services (export, erasure with legal holds, the consent ledger) and to the connectors of the
 * manifest's connected datasets.
 *
 * Design choices:
 * - Connector rows are not kept between collect and assemble: the collect step counts what it finds
 *   (and so proves the database answers), and assemble reads the rows again straight into the
 *   sealed export. Nothing of a person's rows rests anywhere but in the sealed zip, and a crash
 *   between the two steps leaves nothing to clean up.
 * - Mail to the requester goes through a job keyed by the step (`request-mail:<step id>`): a step
 *   re-run after a crash queues the same key again, so the person gets one message. The job holds
 *   ids only; it opens the request's seal for the address and recomputes the export's link.
 * - Only the identifiers the requester verified are used (the verify step's result says which).
 */
import type { ConsentService } from '../consent/consent.service.js';
import type { Dataset } from '../manifest/dataset.schema.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import { jobDone } from '../platform/jobs/jobs.definition.js';
import type { JobQueue, JobType } from '../platform/jobs/jobs.service.js';
import type { MailMessage, SendMailResult } from '../platform/mail/mail.transport.js';
import type { Connector, Identities } from './connectors/connector.js';
import type { ConnectorSetting } from './connectors/connectors.config.js';
import { openConnector } from './connectors/connectors.js';
import type { ErasureResult, HeldResult } from './erasure.service.js';
import { EXPORT_PATH } from './export.delivery.js';
import type { ConnectorRow } from './export.service.js';
import type { PledgeRights } from './pledge-rights.setup.js';
import { RequestsRepository, type RequestRecord } from './requests.repository.js';
import type { RequestSeal } from './requests.seal.js';
import type { StepExecutor, StepRegistry, StepResult } from './steps.engine.js';
import { StepsRepository, type StepRecord } from './steps.repository.js';

/** The job that mails the requester what a step produced (the link, the confirmation). */
export const REQUEST_MAIL_JOB = 'requests.mail';
/** Pledge's own store. */
export const PLEDGE_STORE = 'pledge';

/** The stores a request reaches: Pledge, then each connected dataset with a URL. */
export function requestStores(settings: readonly ConnectorSetting[]): string[] {
  return [PLEDGE_STORE, ...settings.map((s) => s.dataset)];
}

/** What {@link registerRequestExecutors} uses. */
export interface RequestExecutorsDeps {
  db: Db;
  registry: StepRegistry;
  jobs: Pick<JobQueue, 'define'>;
  mail: { send(ctx: Context, message: MailMessage): Promise<SendMailResult> };
  /** The requests' seal (the `requests` and `request_links` uses), to open a request's identifiers. */
  seal: RequestSeal;
  pledgeRights: Pick<PledgeRights, 'deliverExport' | 'deliveries' | 'erasure' | 'holds'>;
  consent: Pick<ConsentService, 'record'>;
  manifest: Manifest;
  /** The connected datasets' settings (loadConnectorSettings). */
  connectors: readonly ConnectorSetting[];
  /** The declared system the steps act as (it must serve `legal-compliance`). */
  system: string;
  organization: string;
  publicUrl: string;
}

type MailKind = 'export' | 'erased' | 'applied' | 'nothing';

interface MailPayload {
  requestId: string;
  kind: MailKind;
  deliveryId?: string;
  expiresAt?: string;
  [key: string]: string | undefined;
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 500);

/** Registers the executors of collect, assemble, deliver, erase, notify, apply and confirm. */
export function registerRequestExecutors(deps: RequestExecutorsDeps): void {
  const requests = new RequestsRepository(deps.db);
  const steps = new StepsRepository(deps.db);
  const datasets = new Map<string, { dataset: Dataset; index: number; setting: ConnectorSetting }>();
  for (const setting of deps.connectors) {
    const index = deps.manifest.datasets.findIndex((d) => d.key === setting.dataset);
    const dataset = deps.manifest.datasets[index];
    if (dataset !== undefined) datasets.set(setting.dataset, { dataset, index, setting });
  }
  // The steps act as the privacy office, whatever worker runs them.
  const asOffice = (ctx: Context): Context => ({ ...ctx, system: deps.system });

  /** The request's verified identifiers, by the connectors' identity names. */
  const identitiesOf = async (ctx: Context, request: RequestRecord): Promise<Identities> => {
    const verify = (await steps.ofRequest(ctx, request.id)).find((s) => s.name === 'verify');
    const verified = Array.isArray(verify?.result?.verified) ? (verify.result.verified as string[]) : [];
    const values = deps.seal.open(request.id, request.sealed);
    const out: Record<string, string[]> = {};
    if (verified.includes('email') && values.email !== undefined) out.email = [values.email];
    if (verified.includes('phone') && values.phone !== undefined) out.phone = [values.phone];
    // Matched from those identifiers: a dataset may name the person by Pledge's subject id.
    if (request.subjectId !== undefined) out.subject_id = [request.subjectId];
    return out;
  };

  /** Runs `work` on a fresh connector of `store`, closed after. */
  const withConnector = async <T>(store: string, work: (c: Connector) => Promise<T>): Promise<T> => {
    const d = datasets.get(store);
    if (d === undefined) throw new Error(`dataset ${store} is not connected`);
    const connector = openConnector(d.dataset, d.index, d.setting);
    try {
      return await work(connector);
    } finally {
      await connector.close().catch(() => undefined);
    }
  };

  const mailJob: JobType<MailPayload> = deps.jobs.define<MailPayload>({
    type: REQUEST_MAIL_JOB,
    handle: async (ctx, job) => {
      await sendMail(ctx, job.payload);
      return jobDone();
    },
  });
  const queueMail = (ctx: Context, step: StepRecord, payload: MailPayload) =>
    mailJob.enqueue(ctx, payload, { key: `request-mail:${step.id}` });

  const sendMail = async (ctx: Context, p: MailPayload): Promise<void> => {
    const request = await requests.get(ctx, p.requestId);
    if (request === undefined) return;
    const to = (await identitiesOf(ctx, request)).email?.[0];
    // Only a verified address is written to; a request verified by phone alone gets no mail.
    if (to === undefined) return;
    const org = deps.organization;
    if (p.kind === 'export' && p.deliveryId !== undefined && p.expiresAt !== undefined) {
      const expiresAt = new Date(p.expiresAt);
      const link = `${deps.publicUrl}${EXPORT_PATH}/${deps.pledgeRights.deliveries.tokenOf(p.deliveryId, expiresAt)}`;
      await deps.mail.send(ctx, {
        to,
        subject: `${org}: your copy of your data is ready`,
        text: `The copy of the personal data ${org} holds on you, which you asked for, is ready.\n\nOpen this link and press the download button: ${link}\n\nThe link works until ${expiresAt.toUTCString()} and for a limited number of downloads. Keep it to yourself: anyone with it can download the copy.\n`,
      });
      return;
    }
    if (p.kind === 'erased') {
      const held: HeldResult[] = [];
      for (const s of await steps.ofRequest(ctx, request.id))
        if (s.name === 'erase' && Array.isArray(s.result?.held))
          held.push(...(s.result.held as HeldResult[]));
      const kept =
        held.length === 0
          ? 'Nothing was kept.'
          : `Some data was kept, as the law requires:\n${held
              .map((h) => `- ${h.categories.join(', ')} (${h.recordsKept} records): ${h.why}`)
              .join('\n')}`;
      await deps.mail.send(ctx, {
        to,
        subject: `${org}: your data was erased`,
        text: `${org} erased the personal data it held on you, as you asked, in its own systems and its databases, and told those it had shared it with.\n\n${kept}\n`,
      });
      return;
    }
    if (p.kind === 'nothing') {
      await deps.mail.send(ctx, {
        to,
        subject: `${org}: your request`,
        text: `${org} looked for personal data held on the address you verified and found none in its records.\n`,
      });
      return;
    }
    await deps.mail.send(ctx, {
      to,
      subject: `${org}: your request was carried out`,
      text: `${org} carried out your ${request.type} request.\n`,
    });
  };

  // ---- access and export ---------------------------------------------------------------------

  const collect: StepExecutor = {
    async run({ ctx }, request, step) {
      // Pledge's own data is read at assembly, page by page, straight into the zip.
      if (step.store === PLEDGE_STORE) return { outcome: 'done', summary: { store: PLEDGE_STORE } };
      try {
        const identities = await identitiesOf(ctx, request);
        const rows = await withConnector(step.store, async (c) => {
          const counts: Record<string, number> = {};
          for await (const row of c.collect(identities))
            counts[row.collection] = (counts[row.collection] ?? 0) + 1;
          return counts;
        });
        return { outcome: 'done', summary: { rows } };
      } catch (err) {
        return { outcome: 'failed', error: errorText(err) };
      }
    },
  };

  async function* connectorRows(identities: Identities): AsyncIterable<ConnectorRow> {
    for (const store of datasets.keys()) {
      const d = datasets.get(store);
      if (d === undefined) continue;
      const connector = openConnector(d.dataset, d.index, d.setting);
      try {
        for await (const r of connector.collect(identities)) {
          const row: Record<string, unknown> = {};
          const categories: Record<string, string> = {};
          for (const f of r.fields) {
            row[f.name] = f.value;
            if (f.categories.length > 0) categories[f.name] = f.categories.join(' ');
          }
          yield { dataset: store, collection: r.collection, row, categories };
        }
      } finally {
        await connector.close().catch(() => undefined);
      }
    }
  }

  const assemble: StepExecutor = {
    async run({ ctx }, request) {
      if (request.subjectId === undefined) return { outcome: 'done', summary: { matched: false } };
      try {
        const identities = await identitiesOf(ctx, request);
        // A re-run after a crash stores a second sealed copy; the first is never linked and expires.
        const stored = await deps.pledgeRights.deliverExport(asOffice(ctx), request.subjectId, {
          connectorRows: connectorRows(identities),
        });
        return {
          outcome: 'done',
          summary: { deliveryId: stored.deliveryId, expiresAt: stored.expiresAt.toISOString() },
        };
      } catch (err) {
        return { outcome: 'failed', error: errorText(err) };
      }
    },
  };

  const deliver: StepExecutor = {
    async run({ ctx }, request, step) {
      const assembled = (await steps.ofRequest(ctx, request.id)).find((s) => s.name === 'assemble');
      const deliveryId = assembled?.result?.deliveryId;
      const expiresAt = assembled?.result?.expiresAt;
      if (typeof deliveryId !== 'string' || typeof expiresAt !== 'string') {
        // Nobody is known by the verified identifiers: the answer says so, which is an answer too.
        await queueMail(ctx, step, { requestId: request.id, kind: 'nothing' });
        return { outcome: 'done', summary: { delivered: false, matched: false } };
      }
      await queueMail(ctx, step, { requestId: request.id, kind: 'export', deliveryId, expiresAt });
      return { outcome: 'done', summary: { delivered: true, deliveryId } };
    },
  };

  // ---- erasure -------------------------------------------------------------------------------

  const erase: StepExecutor = {
    async run({ ctx }, request, step): Promise<StepResult> {
      try {
        if (step.store === PLEDGE_STORE) {
          if (request.subjectId === undefined) return { outcome: 'done', summary: { matched: false } };
          const c = asOffice(ctx);
          const holds = await deps.pledgeRights.holds.holdsOn(c, request.subjectId);
          const result: ErasureResult = await deps.pledgeRights.erasure.erasePledgeData(
            c,
            request.subjectId,
            holds,
          );
          // Run again after a crash, it finds nothing left, and the recipients' jobs are keyed per
          // person and recipient: nothing is done or sent twice.
          const failed = result.steps.filter((s) => !s.ok);
          if (failed.length > 0)
            return {
              outcome: 'failed',
              error: failed.map((s) => `${s.step}: ${s.error?.code ?? 'failed'}`).join('; '),
            };
          return {
            outcome: 'done',
            summary: {
              keyDestroyed: result.keyDestroyed,
              steps: Object.fromEntries(result.steps.map((s) => [s.step, s.details])),
              held: result.held.map((h) => ({
                categories: h.categories,
                recordsKept: h.recordsKept,
                why: h.why,
              })),
            },
          };
        }
        const identities = await identitiesOf(ctx, request);
        const result = await withConnector(step.store, (c) => c.erase(identities));
        if (!result.ok) {
          const where = result.collections.find((c) => c.status === 'failed');
          return {
            outcome: 'failed',
            error: `dataset ${step.store}: ${where?.collection ?? '?'}: ${where?.error?.code ?? 'failed'}${where?.error?.sqlState ? ` (SQLSTATE ${where.error.sqlState})` : ''}`,
          };
        }
        return {
          outcome: 'done',
          summary: {
            nothingFound: result.nothingFound,
            collections: result.collections.map((c) => ({
              collection: c.collection,
              action: c.action,
              rows: c.rows,
            })),
          },
        };
      } catch (err) {
        return { outcome: 'failed', error: errorText(err) };
      }
    },
  };

  // erasePledgeData already queued one subject.erased job per recipient; this step reports them.
  const notify: StepExecutor = {
    async run({ ctx }, request) {
      const pledge = (await steps.ofRequest(ctx, request.id)).find(
        (s) => s.name === 'erase' && s.store === PLEDGE_STORE,
      );
      const details = (pledge?.result?.steps as Record<string, Record<string, unknown>> | undefined)?.notify;
      return { outcome: 'done', summary: { ...(details ?? {}) } };
    },
  };

  // ---- objection -----------------------------------------------------------------------------

  /** The purposes an objection is about: those its words name, else every marketing purpose. */
  const objectedPurposes = (details: string | undefined): string[] => {
    const words = (details ?? '').toLowerCase();
    const named = deps.manifest.purposes.filter((p) => words.includes(p.key.toLowerCase()));
    if (named.length > 0) return named.map((p) => p.key);
    return deps.manifest.purposes.filter((p) => p.use === 'marketing').map((p) => p.key);
  };

  const applyObjection: StepExecutor = {
    async run({ ctx }, request) {
      if (request.subjectId === undefined) return { outcome: 'done', summary: { matched: false } };
      try {
        const purposes = objectedPurposes(deps.seal.open(request.id, request.sealed).details);
        // Recording a withdrawal that is already in force changes nothing: a re-run is harmless.
        const changes = await deps.consent.record(
          asOffice(ctx),
          purposes.map((purpose) => ({
            holder: { subjectId: request.subjectId as string },
            purpose,
            state: 'withdrawn' as const,
            method: 'api' as const,
          })),
        );
        return { outcome: 'done', summary: { withdrawn: purposes, changes: changes.length } };
      } catch (err) {
        return { outcome: 'failed', error: errorText(err) };
      }
    },
  };

  const manualTask = (ctx: Context): Promise<StepResult> =>
    Promise.resolve({
      outcome: 'waiting',
      dueAt: new Date(ctx.clock.now().getTime() + 7 * 86_400_000),
      summary: { task: 'manual' },
    });

  // The apply step: objection runs; rectification and restriction stay tasks for staff (the intake
  // carries the correction only as the person's own words, not as fields Pledge could apply).
  // A connector's database keeps no consent: an objection is applied in Pledge's ledger, which the
  // company's systems ask (and are told of by consent.changed webhooks).
  const apply: StepExecutor = {
    run: (run, request, step) => {
      if (request.type !== 'objection') return manualTask(run.ctx);
      if (step.store !== PLEDGE_STORE)
        return Promise.resolve({ outcome: 'done', summary: { appliedIn: PLEDGE_STORE } });
      return applyObjection.run(run, request, step);
    },
  };

  const confirm: StepExecutor = {
    async run({ ctx }, request, step) {
      if (request.type === 'erasure' || request.type === 'objection') {
        await queueMail(ctx, step, {
          requestId: request.id,
          kind: request.type === 'erasure' ? 'erased' : 'applied',
        });
        return { outcome: 'done', summary: { mailed: true } };
      }
      return { outcome: 'done' };
    },
  };

  deps.registry.register('collect', collect, PLEDGE_STORE);
  deps.registry.register('erase', erase, PLEDGE_STORE);
  deps.registry.register('apply', apply, PLEDGE_STORE);
  for (const store of datasets.keys()) {
    deps.registry.register('collect', collect, store);
    deps.registry.register('erase', erase, store);
    deps.registry.register('apply', apply, store);
  }
  deps.registry.register('assemble', assemble);
  deps.registry.register('deliver', deliver);
  deps.registry.register('notify', notify);
  deps.registry.register('confirm', confirm);
}
