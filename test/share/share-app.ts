/**
 * An application for share-gate tests on either engine: the collection tests' app (the example
 * manifest with a system serving every purpose), a key of that system with share:write, and
 * helpers that register people and read the log.
 */
import type { AuditEvent } from '../../src/audit/audit.service.js';
import type { Manifest } from '../../src/manifest/manifest.schema.js';
import { createContext, type Context } from '../../src/platform/context.js';
import { ShareRepository } from '../../src/share/share.repository.js';
import { ShareService } from '../../src/share/share.service.js';
import { AgreementStanding, NO_LEGAL_APPROVALS } from '../../src/share/share.standing.js';
import type { LegalApprovals, RecipientStanding } from '../../src/share/share.types.js';
import { SystemGate } from '../../src/manifest/systems.gate.js';
import { TEST_SYSTEM } from '../helpers/manifests.js';
import type { TestDialect } from '../helpers/databases.js';
import { randomEmail } from '../helpers/vault.js';
import { openCollectApp, type CollectTestApp } from '../collect/collect-app.js';

/** A running app for share tests. */
export interface ShareTestApp extends CollectTestApp {
  /** Bearer key of the test system with share:write (and collect:write). */
  shareKey: string;
  /** A context of the test system (as its API key would act). */
  ctx: Context;
  /** Registers a person (e-mail, names, phone, password) and returns their subject id. */
  register(options?: { jurisdiction?: string }): Promise<{ id: string; email: string }>;
  /** The log entries of a subject with this action, oldest first. */
  entries(subjectId: string, action: string): Promise<AuditEvent[]>;
  /** A share gate over this app's parts with another manifest, standing or legal approvals. */
  gateWith(options: {
    manifest?: Manifest;
    standing?: RecipientStanding;
    legal?: LegalApprovals;
  }): ShareService;
}

/** Opens a share test app on `dialect`. */
export async function openShareApp(dialect: TestDialect): Promise<ShareTestApp> {
  const t = await openCollectApp(dialect);
  const ctx = createContext({ kind: 'system', id: TEST_SYSTEM, key: 'test' });
  const { key: shareKey } = await t.app.apiKeys.createKey(createContext({ kind: 'cli', id: 'test' }), {
    name: 'sharer',
    system: TEST_SYSTEM,
    scopes: ['share:write', 'collect:write', 'consent:write'],
  });
  return {
    ...t,
    shareKey,
    ctx,
    async register(options = {}) {
      const email = randomEmail();
      const res = await t.app.collect.collect(ctx, 'registration', {
        ...(options.jurisdiction ? { jurisdiction: options.jurisdiction } : {}),
        data: {
          email,
          first_name: 'Ada',
          last_name: 'Lovelace',
          phone: '+44 20 7946 0000',
          password: 'correct horse battery staple',
        },
      });
      return { id: res.subject.id, email };
    },
    async entries(subjectId, action) {
      return (await t.app.audit.listBySubject(ctx, subjectId)).filter((e) => e.action === action);
    },
    gateWith(options) {
      const manifest = { manifest: options.manifest ?? t.app.active.manifest };
      return new ShareService({
        db: t.app.database.db,
        repo: new ShareRepository(t.app.database.db),
        audit: t.app.audit,
        manifest,
        systems: new SystemGate(manifest),
        vault: t.app.vault,
        consent: t.app.consent,
        subjects: t.app.subjects,
        standing: options.standing ?? new AgreementStanding(manifest),
        legal: options.legal ?? NO_LEGAL_APPROVALS,
      });
    },
  };
}
