/**
 * Legal requests' parts, built from what the app gives: the service (which also answers the share
 * gate's question of what a request may let leave), its notice jobs and its routes. The share gate
 * is given as a getter: the gate needs this service's answers and this service discloses through
 * the gate, so whichever is built second is found when a disclosure is made.
 */
import type { FastifyInstance } from 'fastify';
import type { AuditAppender } from '../audit/audit.service.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import { coversCategory } from '../manifest/taxonomy.js';
import type { ApiKeyService } from '../platform/auth/api-keys.service.js';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import { ForbiddenError } from '../platform/errors.js';
import type { AuthHook } from '../platform/http/auth.js';
import type { JobQueue } from '../platform/jobs/jobs.service.js';
import type { MailTransport } from '../platform/mail/mail.transport.js';
import type { ReadResult } from '../vault/vault.types.js';
import type { UseKeys } from '../vault/use-keys.js';
import { LegalRepository } from './legal.repository.js';
import { registerLegalRoutes } from './legal.routes.js';
import { LEGAL_NOTICE_JOB, LEGAL_PURPOSE, LegalService, type LegalShareGate } from './legal.service.js';
import { ColumnSeal } from './sealed-columns.js';
import type { DiscloseOptions } from './share.types.js';

/** The share gate as legal requests call it (ShareService.disclose). */
export interface ShareGateForLegal {
  disclose(
    ctx: Context,
    options: DiscloseOptions,
  ): Promise<{ subjects: ReadonlyArray<{ subjectId: string; disclosed: boolean }> }>;
}

/** What {@link createLegal} is given. */
export interface LegalSetupDeps {
  db: Db;
  queue: Pick<JobQueue, 'define'>;
  audit: AuditAppender;
  manifest: { readonly manifest: Manifest };
  apiKeys: Pick<ApiKeyService, 'listKeys'>;
  subjects: { get(ctx: Context, id: string): Promise<{ erasedAt?: Date | undefined } | undefined> };
  vault: {
    readMany(ctx: Context, ids: readonly string[], purpose: string): Promise<Array<ReadResult | undefined>>;
  };
  mail: Pick<MailTransport, 'send'>;
  /** The share gate, once built. */
  share: () => ShareGateForLegal | undefined;
  /** `keyring.use('legal_requests')`: seals the requests' free text. */
  sealKeys: UseKeys;
}

/** The built legal requests capability. */
export interface Legal {
  service: LegalService;
  /** Seals what an earlier version left in plaintext; run at start before anything is served. */
  start(ctx: Context): Promise<void>;
  registerRoutes(http: FastifyInstance, options: { auth: AuthHook }): void;
}

const EMAIL = 'user.contact.email';

/** Builds legal requests. */
export function createLegal(deps: LegalSetupDeps): Legal {
  const gate: LegalShareGate = {
    async disclose(ctx, options) {
      const share = deps.share();
      if (share === undefined) throw new Error('the share gate is not built');
      const result = await share.disclose(ctx, options);
      return {
        disclosedSubjects: result.subjects.filter((s) => s.disclosed).map((s) => s.subjectId),
        result,
      };
    },
  };
  const service = new LegalService({
    db: deps.db,
    repo: new LegalRepository(deps.db, new ColumnSeal(deps.sealKeys)),
    audit: deps.audit,
    manifest: deps.manifest,
    jobs: deps.queue,
    subjectExists: async (ctx, id) => {
      const s = await deps.subjects.get(ctx, id);
      return s !== undefined && s.erasedAt === undefined;
    },
    holderOf: async (ctx, keyId) => (await deps.apiKeys.listKeys(ctx)).find((k) => k.id === keyId)?.holder,
    share: gate,
    mail: {
      addressOf: (ctx, subjectId) => addressOf(ctx, deps, subjectId),
      send: (ctx, message) => deps.mail.send(ctx, message),
    },
  });
  return {
    service,
    start: async (ctx) => {
      await service.sealStored(ctx);
    },
    registerRoutes: (http, { auth }) =>
      registerLegalRoutes(http, { legal: service, auth, manifest: deps.manifest }),
  };
}

/**
 * A person's e-mail address, read through the vault's use gate when the notice is sent (never kept
 * here): under the legal purpose first, then under each service purpose that uses addresses (a
 * registration's address is collected for the service). The read is Pledge's own (the notice the
 * law owes the person), not the legal team's system, which serves the legal purpose only.
 */
async function addressOf(ctx: Context, deps: LegalSetupDeps, subjectId: string): Promise<string | undefined> {
  const own: Context = { ...ctx, actor: { kind: 'job', id: LEGAL_NOTICE_JOB }, system: undefined };
  const purposes = [
    LEGAL_PURPOSE,
    ...deps.manifest.manifest.purposes
      .filter(
        (p) =>
          p.key !== LEGAL_PURPOSE &&
          p.use === 'service' &&
          p.categories.some((c) => coversCategory(c, EMAIL)),
      )
      .map((p) => p.key),
  ];
  for (const purpose of purposes) {
    let read: ReadResult | undefined;
    try {
      [read] = await deps.vault.readMany(own, [subjectId], purpose);
    } catch (err) {
      if (err instanceof ForbiddenError) continue;
      throw err;
    }
    // Newest record first: the address a person gave last is the one to write to.
    for (const record of [...(read?.records ?? [])].reverse()) {
      for (const field of Object.values(record.fields)) {
        if (typeof field.value === 'string' && coversCategory(EMAIL, field.category)) return field.value;
      }
    }
  }
  return undefined;
}
