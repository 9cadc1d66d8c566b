/**
 * The share gate's cache of recipients' standing stays correct on every instance: on SQLite and
 * PostgreSQL an acknowledgement or a pause made by this service or another one on the same database
 * takes effect at once, without a restart; on PostgreSQL a pause made by another instance reaches
 * the first through LISTEN/NOTIFY, and an instance whose notification connection is lost answers
 * nothing from its cache (it reads the database, so a change it did not hear is obeyed anyway).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { parseDocument, type Document } from 'yaml';
import { AuditLog } from '../../src/audit/audit.service.js';
import { ManifestVersionRepository } from '../../src/manifest/manifest.repository.js';
import { activateManifest } from '../../src/manifest/manifest.service.js';
import { createContext, type Context } from '../../src/platform/context.js';
import { openDatabase, type Database, type ListenHandlers } from '../../src/platform/db/database.js';
import { AcknowledgementsRepository } from '../../src/share/acknowledgements.repository.js';
import { AcknowledgementService } from '../../src/share/acknowledgements.service.js';
import { ColumnSeal } from '../../src/share/sealed-columns.js';
import { UseKeys } from '../../src/vault/use-keys.js';
import {
  DIALECTS,
  getTestDatabaseUrlOrThrow,
  openMigratedTestDatabase,
  type TestDatabase,
} from '../helpers/databases.js';
import { ROOT } from '../helpers/cli.js';
import { waitFor } from '../helpers/faults.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const exampleText = await readFile(EXAMPLE, 'utf8');
const NOTIFIED_WITHIN_MS = 5_000;

/**
 * The example under a new policy version with recipients moved to other countries (each a material
 * change to that recipient, against a manifest where it was elsewhere).
 */
function moved(countries: Record<string, string>, version: string): string {
  const doc = parseDocument(exampleText);
  doc.setIn(['policy', 'version'], version);
  for (const [recipient, country] of Object.entries(countries)) {
    doc.setIn(['recipients', indexOf(doc, recipient), 'country'], country);
  }
  return doc.toString({ lineWidth: 0 });
}

function indexOf(doc: Document, key: string): number {
  const list = (doc.toJS() as { recipients: Array<{ key: string }> }).recipients;
  const i = list.findIndex((r) => r.key === key);
  assert.ok(i >= 0, `test setup: recipient ${key}`);
  return i;
}

const logKeys = new UseKeys('log_subjects', [{ version: 1, secret: randomBytes(32), createdAt: undefined }]);
const ctx: Context = createContext({ kind: 'job', id: 'startup' });
// Who acknowledged is sealed under a key of the test's own.
const signatories = new ColumnSeal(
  new UseKeys('share_signatories', [{ version: 1, secret: randomBytes(32), createdAt: undefined }]),
);

for (const dialect of DIALECTS) {
  describe(`recipients' standing stays correct across services on ${dialect}`, () => {
    let database: TestDatabase;
    let dir: string;
    let n = 0;
    const services: AcknowledgementService[] = [];

    // Each test starts from an empty database, so the manifests it brings in are weighed from its first.
    beforeEach(async () => {
      database = await openMigratedTestDatabase(dialect);
      dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-standing-'));
    });
    afterEach(async () => {
      for (const s of services.splice(0)) await s.stop();
      await database.cleanup();
      await rm(dir, { recursive: true, force: true });
    });

    /**
     * An instance started with `text` on `on` (another connection to the same database, or the
     * test's own): its manifest comes into force and is weighed, as `pledge serve` does at start.
     */
    async function instance(
      text: string,
      on: Pick<Database, 'db'> = database,
      notifications: Pick<Database, 'dialect' | 'channel' | 'listen'> = database,
    ) {
      const file = path.join(dir, `pledge-${++n}.yaml`);
      await writeFile(file, text);
      const versions = new ManifestVersionRepository(on.db);
      const active = await activateManifest(ctx, { file, versions });
      const service = new AcknowledgementService({
        db: on.db,
        repo: new AcknowledgementsRepository(on.db, signatories),
        audit: AuditLog.over(on.db, logKeys),
        notifications,
        manifest: { manifest: active.manifest, versionId: active.version.id },
        versions,
      });
      services.push(service);
      await service.start();
      const weighed = await service.activate(ctx, active.version);
      return { service, weighed, version: active.manifest.policy.version };
    }

    test('an acknowledgement recorded by another service (as `pledge recipients acknowledge` does) lifts a refusal at once', async () => {
      const doc = parseDocument(exampleText);
      const uk = indexOf(doc, 'group-companies-uk');
      doc.setIn(['recipients', uk, 'key'], 'group-companies-ie');
      doc.deleteIn(['recipients', uk, 'agreement']);
      const pledges = (doc.toJS() as { pledges: Array<{ kind: string }> }).pledges;
      doc.deleteIn(['pledges', pledges.findIndex((p) => p.kind === 'processor_agreement')]);
      const text = doc.toString({ lineWidth: 0 });
      const first = await instance(text);
      for (let i = 0; i < 2; i++) {
        const s = await first.service.standingOf(ctx, 'group-companies-ie');
        assert.ok(!s.ok && s.code === 'share.acknowledgement_required');
      }
      const cli = await instance(text);
      await cli.service.acknowledge(ctx, {
        recipient: 'group-companies-ie',
        version: cli.version,
        by: 'Grace',
      });
      assert.deepEqual(await first.service.standingOf(ctx, 'group-companies-ie'), {
        ok: true,
        acknowledgedVersion: cli.version,
      });
    });

    test('the service that makes a pause obeys it at once', async () => {
      const { service } = await instance(moved({ 'card-processor': 'IE' }, '2026-07-01'));
      assert.equal((await service.standingOf(ctx, 'email-delivery')).ok, true);
      const later = await instance(moved({ 'card-processor': 'IE', 'email-delivery': 'CA' }, '2026-08-01'));
      assert.deepEqual(later.weighed.paused, ['email-delivery']);
      const s = await later.service.standingOf(ctx, 'email-delivery');
      assert.ok(!s.ok && s.code === 'share.recipient_paused');
      await later.service.acknowledge(ctx, { recipient: 'email-delivery', version: '2026-08-01', by: 'Ada' });
      assert.equal((await later.service.standingOf(ctx, 'email-delivery')).ok, true);
    });

    // SQLite is one process's database: one instance, so nothing to hear from another.
    if (dialect === 'postgres')
      test("a pause and an acknowledgement made by another instance take effect on the first's next disclosure", async () => {
        const first = await instance(exampleText);
        // Asked twice: the second answer comes from the cache.
        for (let i = 0; i < 2; i++)
          assert.equal((await first.service.standingOf(ctx, 'card-processor')).ok, true);

        // Another instance (its own connection pool and listener) brings in a version
        // that moves the card processor, which pauses it.
        const other = await openSecond(database);
        const second = await instance(moved({ 'card-processor': 'IE' }, '2026-07-01'), other, other);
        assert.deepEqual(second.weighed.paused, ['card-processor']);
        const paused = await waitFor('the first service obeys the pause', NOTIFIED_WITHIN_MS, async () => {
          const s = await first.service.standingOf(ctx, 'card-processor');
          return s.ok ? undefined : s;
        });
        assert.equal(paused.code, 'share.recipient_paused');
        assert.equal(paused.policyVersion, '2026-07-01');

        // The other service records the acknowledgement: the first lets data leave again at once.
        await second.service.acknowledge(ctx, {
          recipient: 'card-processor',
          version: '2026-07-01',
          by: 'Ada',
        });
        assert.deepEqual(await first.service.standingOf(ctx, 'card-processor'), {
          ok: true,
          acknowledgedVersion: '2026-07-01',
        });
        await other.close();
      });

    if (dialect === 'postgres') {
      test('an instance whose notification connection is lost answers nothing from its cache', async () => {
        const target = new URL(getTestDatabaseUrlOrThrow());
        const proxy: TcpProxy = await startTcpProxy({
          host: target.hostname,
          port: Number(target.port || 5432),
        });
        // The first instance queries directly and listens through the proxy, whose cut drops only
        // its notification connection; the listener's reports are passed through unchanged and
        // also resolve the test's waits.
        const listenVia = await openDatabase({
          databaseUrl: proxy.urlFor(target.href),
          dataDir: os.tmpdir(),
          schema: database.schema,
        });
        let onLost!: () => void;
        let onListening!: () => void;
        let lost = new Promise<void>((r) => (onLost = r));
        let listening = new Promise<void>((r) => (onListening = r));
        const listen = listenVia.listen;
        assert.ok(listen);
        const spied: Pick<Database, 'dialect' | 'channel' | 'listen'> = {
          dialect: listenVia.dialect,
          channel: listenVia.channel,
          listen: (channel: string, handlers: ListenHandlers) =>
            listen(channel, {
              ...handlers,
              onLost: () => {
                handlers.onLost();
                onLost();
              },
              onListening: () => {
                handlers.onListening();
                onListening();
              },
            }),
        };
        try {
          const first = await instance(
            moved({ 'card-processor': 'IE', 'email-delivery': 'CA' }, '2026-08-01'),
            database,
            spied,
          );
          await listening;
          assert.equal((await first.service.standingOf(ctx, 'group-companies')).ok, true, 'cached');

          listening = new Promise<void>((r) => (onListening = r));
          proxy.cut();
          await lost;
          // Another instance pauses the group companies; the first cannot hear it, and obeys it.
          const other = await openSecond(database);
          const second = await instance(
            moved({ 'card-processor': 'IE', 'email-delivery': 'CA', 'group-companies': 'CH' }, '2026-09-01'),
            other,
            other,
          );
          assert.ok(second.weighed.paused.includes('group-companies'), JSON.stringify(second.weighed));
          const s = await first.service.standingOf(ctx, 'group-companies');
          assert.ok(!s.ok && s.code === 'share.recipient_paused', JSON.stringify(s));

          // Listening again, it starts from an empty cache and hears the acknowledgement.
          proxy.restore();
          await listening;
          lost = new Promise<void>((r) => (onLost = r));
          await second.service.acknowledge(ctx, {
            recipient: 'group-companies',
            version: '2026-09-01',
            by: 'Ada',
          });
          assert.equal((await first.service.standingOf(ctx, 'group-companies')).ok, true);
          await other.close();
        } finally {
          await listenVia.close();
          await proxy.close();
        }
      });
    }
  });
}

/** A second connection pool (with its own listener) to the PostgreSQL schema of `database`. */
async function openSecond(database: TestDatabase): Promise<Database> {
  return openDatabase({
    databaseUrl: getTestDatabaseUrlOrThrow(),
    dataDir: os.tmpdir(),
    schema: database.schema,
  });
}
