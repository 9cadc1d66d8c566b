/**
 * Requests' deadlines from the manifest, on each engine, with a fake clock: a GDPR request received
 * on 31 January is due on the first working day from 28 February and extendable once, only within
 * the notice window; a CCPA request is confirmed by the code's mail, has 10 business days to confirm
 * across Memorial Day and 45 days to answer, and shows due soon then overdue in the queue; the
 * `request.due` webhook fires once per deadline and state; a request keeps the dates it was given
 * when the manifest's rule changes later; a request nobody confirmed to is due on its confirmation.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { parseDocument } from 'yaml';
import { AuditLog } from '../../src/audit/audit.service.js';
import type { Manifest } from '../../src/manifest/manifest.schema.js';
import { loadManifestFile } from '../../src/manifest/manifest.loader.js';
import { fixedClock } from '../../src/platform/clock.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext, type Context } from '../../src/platform/context.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import { deadlinesForJurisdiction } from '../../src/rights/deadlines.js';
import { presentRequest } from '../../src/rights/requests.presenter.js';
import { createRequests } from '../../src/rights/requests.setup.js';
import { UseKeys, type KeyUse } from '../../src/vault/use-keys.js';
import { DIALECTS, openMigratedTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';
import { openRequestsApp, randomEmail, type RequestsTestApp } from './requests-app.js';

const DAY_MS = 86_400_000;

/** The example manifest plus a webhook for staff that receives `request.due`. */
async function manifestWithDueWebhook(): Promise<string> {
  const doc = parseDocument(await readFile(EXAMPLE_MANIFEST, 'utf8'));
  doc.addIn(
    ['webhooks'],
    doc.createNode({
      key: 'privacy-desk',
      name: 'Privacy desk',
      system: 'privacy-office',
      url: 'https://desk.example-online.test/hooks/pledge',
      events: ['request.due'],
      purposes: 'all',
    }),
  );
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-manifest-'));
  const file = path.join(dir, 'pledge.yaml');
  await writeFile(file, doc.toString());
  return file;
}

async function exampleManifest(): Promise<Manifest> {
  const loaded = await loadManifestFile(EXAMPLE_MANIFEST);
  assert.ok(loaded.manifest);
  return loaded.manifest;
}

const at = (iso: string): Context =>
  createContext({ kind: 'cli', id: 'test' }, { clock: fixedClock(new Date(iso)) });

test('PLEDGE_REQUEST_DUE_SOON is checked at boot: a week by default, a bad value refused', () => {
  assert.equal(loadConfig({ PLEDGE_DATA_DIR: os.tmpdir() }).requestDueSoonSeconds, 7 * 86_400);
  assert.equal(
    loadConfig({ PLEDGE_DATA_DIR: os.tmpdir(), PLEDGE_REQUEST_DUE_SOON: '172800' }).requestDueSoonSeconds,
    172_800,
  );
  assert.throws(
    () => loadConfig({ PLEDGE_DATA_DIR: os.tmpdir(), PLEDGE_REQUEST_DUE_SOON: '7d' }),
    /PLEDGE_REQUEST_DUE_SOON must be a whole number from 3600 to 7776000/,
  );
});

for (const dialect of DIALECTS) {
  describe(`requests' deadlines (${dialect})`, () => {
    let t: RequestsTestApp;
    before(async () => {
      t = await openRequestsApp(dialect, {}, await manifestWithDueWebhook());
    });
    after(async () => {
      await t.cleanup();
    });

    const receive = async (ctx: Context, body: Record<string, unknown>) => {
      const email = randomEmail();
      const { requestId } = await t.app.requests.receive(
        ctx,
        { email, ...body },
        { agent: 'person', ip: '192.0.2.80' },
      );
      return { id: requestId, email };
    };
    const extend = (ctx: Context, id: string, reason: string) =>
      t.app.requests.extend(ctx, id, reason).then(
        () => undefined,
        (err: unknown) => err as { code: string; status: number; message: string },
      );

    test('GDPR, received 31 January: due 1 March (28 February is a Sunday), extendable once within the notice window', async () => {
      const received = '2027-01-31T10:00:00Z';
      const { id, email } = await receive(at(received), { type: 'access', jurisdiction: 'FR' });
      // Verified: the extension's notice goes only to a verified address.
      await t.app.requests.verify(at('2027-01-31T10:01:00Z'), id, { email: t.lastCode(email) });
      const r = await t.app.requests.getOrThrow(t.ctx, id);
      const expected = deadlinesForJurisdiction(
        (await exampleManifest()).requests,
        'FR',
        new Date(received),
      )?.deadlines;
      assert.equal(r.deadlineRule, 'gdpr');
      // End of Monday 1 March in Brussels (UTC+1).
      assert.equal(r.answerBy.toISOString(), '2027-03-01T22:59:59.999Z');
      assert.equal(r.dueAt.toISOString(), r.answerBy.toISOString());
      assert.equal(r.extendedDueAt.toISOString(), expected?.extendedAnswerBy?.toISOString());
      // 28 February + two months = 28 April (a Wednesday), end of day in Brussels (UTC+2).
      assert.equal(r.extendedDueAt.toISOString(), '2027-04-28T21:59:59.999Z');
      assert.equal(r.extensionNoticeBy?.toISOString(), expected?.extensionNoticeBy?.toISOString());
      assert.equal(r.confirmBy, undefined, 'the GDPR asks for no separate confirmation');

      // After the notice window: refused, with the date it closed.
      const late = await extend(at('2027-03-02T08:00:00Z'), id, 'complexity');
      assert.equal(late?.code, 'requests.extension_window_closed');
      assert.equal(late?.status, 409);
      assert.match(late?.message ?? '', /notice window closed on 2027-03-01T22:59:59\.999Z/);

      // Within it: the answer moves to the extended date and the reasoned notice is mailed and recorded.
      assert.equal(await extend(at('2027-02-20T09:00:00Z'), id, 'volume'), undefined);
      const view = await t.app.requests.view(t.ctx, id);
      assert.equal(view.request.dueAt.toISOString(), '2027-04-28T21:59:59.999Z');
      assert.equal(view.request.answerBy.toISOString(), '2027-03-01T22:59:59.999Z', 'the first date is kept');
      const event = view.events.find((e) => e.kind === 'extended');
      assert.equal(event?.details.reason, 'volume');
      assert.match(t.mailTo(email).at(-1) ?? '', /we need more time.*many requests/is);
      assert.match(t.mailTo(email).at(-1) ?? '', /We will answer by 2027-04-28/);

      const again = await extend(at('2027-02-21T09:00:00Z'), id, 'complexity');
      assert.equal(again?.code, 'requests.extension_refused');
      assert.equal(again?.status, 409);
    });

    test('CCPA: confirmed by the code mail, 10 business days across Memorial Day, 45 days to answer, due soon then overdue', async () => {
      const { id } = await receive(at('2027-05-20T17:00:00Z'), { type: 'erasure', jurisdiction: 'US-CA' });
      const r = await t.app.requests.getOrThrow(t.ctx, id);
      assert.equal(r.deadlineRule, 'ccpa');
      // 21, 24–28 May, (31 May is Memorial Day), 1–4 June: the 10th business day is Friday 4 June,
      // whose end in Los Angeles (UTC-7) is 06:59:59.999 UTC the next day.
      assert.equal(r.confirmBy?.toISOString(), '2027-06-05T06:59:59.999Z');
      // 20 May + 45 days = Sunday 4 July; Monday 5 July is Independence Day observed: Tuesday 6 July.
      assert.equal(r.answerBy.toISOString(), '2027-07-07T06:59:59.999Z');
      assert.equal(r.extendedDueAt.toISOString(), '2027-08-19T06:59:59.999Z');
      assert.ok(r.confirmedAt !== undefined, 'the code mail confirmed receipt');
      assert.equal(
        (await t.app.requests.view(t.ctx, id)).events.filter((e) => e.kind === 'confirmed').length,
        1,
      );

      const queue = async (ctx: Context, window: string) => {
        const list = await t.app.requests.list(ctx, { due: window, limit: 500 });
        const mine = list.find((x) => x.id === id);
        if (mine === undefined) return undefined;
        return presentRequest(mine, ctx.clock.now(), t.app.requests.dueWindowMs(window)).due as {
          status: string;
          deadline: string;
          at: string;
        } | null;
      };
      // Confirmed, so the confirmation does not count; the answer is six weeks away.
      assert.equal(await queue(at('2027-06-01T12:00:00Z'), '7d'), undefined);
      assert.deepEqual(await queue(at('2027-07-01T12:00:00Z'), '7d'), {
        status: 'due_soon',
        deadline: 'answer',
        at: '2027-07-07T06:59:59.999Z',
      });
      assert.deepEqual(await queue(at('2027-07-07T07:00:00Z'), '7d'), {
        status: 'overdue',
        deadline: 'answer',
        at: '2027-07-07T06:59:59.999Z',
      });

      // The API lists the same with its deadlines (with the wall clock: a 60-week window holds 2027).
      const api = await t.call('GET', '/api/v1/requests?due=60w&limit=500');
      assert.equal(api.status, 200);
      const shown = (api.body.requests as Array<Record<string, unknown>>).find((x) => x.id === id);
      assert.deepEqual(shown?.deadlines, {
        rule: 'ccpa',
        confirmBy: '2027-06-05T06:59:59.999Z',
        confirmedAt: r.confirmedAt?.toISOString(),
        answerBy: '2027-07-07T06:59:59.999Z',
        extensionNoticeBy: '2027-07-07T06:59:59.999Z',
        extendedAnswerBy: '2027-08-19T06:59:59.999Z',
      });
      const bad = await t.call('GET', '/api/v1/requests?due=1M');
      assert.equal(bad.status, 400);
      assert.equal((bad.body.error as { code: string }).code, 'requests.due_window_invalid');
    });

    test('request.due is sent once when due soon and once when overdue', async () => {
      const { id } = await receive(at('2027-09-01T16:00:00Z'), { type: 'inquiry', jurisdiction: 'US' });
      const mine = async () =>
        (await t.app.webhooks.listDeliveries(t.ctx, { webhook: 'privacy-desk', limit: 500 }))
          .filter((d) => d.eventType === 'request.due')
          .map((d) => JSON.parse(d.payload) as { data: Record<string, string> })
          .filter((p) => p.data.requestId === id)
          .map((p) => `${p.data.deadline}:${p.data.status}`)
          .sort();
      const r = await t.app.requests.getOrThrow(t.ctx, id);
      await t.app.requests.flagDue(at('2027-09-20T12:00:00Z'));
      assert.deepEqual(await mine(), [], 'six weeks before: nothing');
      const soon = new Date(r.answerBy.getTime() - 3 * DAY_MS).toISOString();
      await t.app.requests.flagDue(at(soon));
      await t.app.requests.flagDue(at(new Date(Date.parse(soon) + 3_600_000).toISOString()));
      assert.deepEqual(await mine(), ['answer:due_soon']);
      const late = new Date(r.answerBy.getTime() + 1).toISOString();
      await t.app.requests.flagDue(at(late));
      await t.app.requests.flagDue(at(new Date(Date.parse(late) + DAY_MS).toISOString()));
      assert.deepEqual(await mine(), ['answer:due_soon', 'answer:overdue']);
      const payload = (await t.app.webhooks.listDeliveries(t.ctx, { webhook: 'privacy-desk', limit: 500 }))
        .map((d) => JSON.parse(d.payload) as { data: Record<string, string> })
        .find((p) => p.data.requestId === id);
      assert.deepEqual(Object.keys(payload?.data ?? {}).sort(), ['deadline', 'due', 'requestId', 'status']);
      const events = (await t.app.requests.view(t.ctx, id)).events.filter((e) => e.kind === 'due');
      assert.deepEqual(
        events.map((e) => e.details.status),
        ['due_soon', 'overdue'],
      );
    });
  });

  describe(`requests' deadlines under a changing manifest (${dialect})`, () => {
    let database: TestDatabase;
    const clock = fixedClock(new Date('2027-05-20T17:00:00Z'));
    const key = (use: KeyUse) =>
      new UseKeys(use, [{ version: 1, secret: randomBytes(32), createdAt: undefined }]);
    let mailOn = true;
    beforeEach(async () => {
      database = await openMigratedTestDatabase(dialect);
      mailOn = true;
    });
    afterEach(async () => {
      await database.cleanup();
    });

    const build = (inForce: { manifest: Manifest }) =>
      createRequests({
        db: database.db,
        queue: new JobQueue({ db: database.db, clock, random: () => 0.5 }),
        audit: AuditLog.over(database.db, key('log_subjects')),
        keys: { requests: key('requests'), codes: key('request_codes'), links: key('request_links') },
        mail: {
          send: () =>
            Promise.resolve(
              mailOn ? { sent: true, messageId: 'test' } : { sent: false, reason: 'mail_disabled' },
            ),
        },
        matchSubject: () => Promise.resolve(undefined),
        site: { name: 'Example', website: 'https://example.test', privacyContact: 'privacy@example.test' },
        jurisdictions: ['US', 'EU'],
        publicUrl: 'https://example.test',
        stallAfterMs: 30 * DAY_MS,
        manifest: inForce,
      }).service;

    test('a request keeps the dates it was given when the rule changes; a new one gets the new rule', async () => {
      const original = await exampleManifest();
      const inForce = { manifest: original };
      const service = build(inForce);
      const ctx = createContext({ kind: 'cli', id: 'test' }, { clock });
      const first = await service.receive(
        ctx,
        { type: 'access', email: randomEmail(), jurisdiction: 'US' },
        { agent: 'person', ip: '192.0.2.90' },
      );
      const before = await service.getOrThrow(ctx, first.requestId);
      // The manifest in force changes: CCPA's answer becomes 30 days, with no extension.
      const requests = original.requests;
      assert.ok(requests);
      inForce.manifest = {
        ...original,
        requests: {
          ...requests,
          deadlines: requests.deadlines.map((r) =>
            r.key === 'ccpa'
              ? { key: 'ccpa', jurisdictions: r.jurisdictions, calendar: r.calendar, answer: 'P30D' }
              : r,
          ),
        },
      };
      const after = await service.getOrThrow(ctx, first.requestId);
      assert.deepEqual(
        [after.answerBy, after.extendedDueAt, after.extensionNoticeBy, after.confirmBy, after.deadlineRule],
        [before.answerBy, before.extendedDueAt, before.extensionNoticeBy, before.confirmBy, 'ccpa'],
      );
      // Its extension still follows the rule it was received under.
      await service.extend(ctx, first.requestId, 'stores');
      assert.equal(
        (await service.getOrThrow(ctx, first.requestId)).dueAt.toISOString(),
        '2027-08-19T06:59:59.999Z',
      );
      const second = await service.receive(
        ctx,
        { type: 'access', email: randomEmail(), jurisdiction: 'US' },
        { agent: 'person', ip: '192.0.2.91' },
      );
      const later = await service.getOrThrow(ctx, second.requestId);
      // 20 May + 30 days = Saturday 19 June: Monday 21 June (Juneteenth observed on Friday 18 June).
      assert.equal(later.answerBy.toISOString(), '2027-06-22T06:59:59.999Z');
      assert.equal(later.extensionNoticeBy, undefined);
      const refused = await service.extend(ctx, second.requestId, 'stores').then(
        () => undefined,
        (err: unknown) => err as { code: string },
      );
      assert.equal(refused?.code, 'requests.extension_not_allowed');
    });

    test('a requester no message reached is unconfirmed: the queue shows the confirmation due, then overdue', async () => {
      mailOn = false;
      const service = build({ manifest: await exampleManifest() });
      const ctx = createContext({ kind: 'cli', id: 'test' }, { clock });
      const { requestId } = await service.receive(
        ctx,
        { type: 'access', email: randomEmail(), jurisdiction: 'US' },
        { agent: 'person', ip: '192.0.2.92' },
      );
      const r = await service.getOrThrow(ctx, requestId);
      assert.equal(r.confirmedAt, undefined);
      const dueAt = async (iso: string) => {
        const c = createContext({ kind: 'cli', id: 'test' }, { clock: fixedClock(new Date(iso)) });
        const [found] = await service.list(c, { due: '7d' });
        return found === undefined
          ? undefined
          : (presentRequest(found, c.clock.now()).due as Record<string, string>);
      };
      assert.equal(await dueAt('2027-05-21T12:00:00Z'), undefined);
      assert.equal((await dueAt('2027-06-01T12:00:00Z'))?.status, 'due_soon');
      assert.equal((await dueAt('2027-06-01T12:00:00Z'))?.deadline, 'confirm');
      assert.equal((await dueAt('2027-06-05T07:00:00Z'))?.status, 'overdue');
      // A request naming no jurisdiction gets the manifest's default rule (the strictest), not the
      // deadlines of the manifest's first jurisdiction.
      const unknown = await service.receive(
        ctx,
        { type: 'access', email: randomEmail() },
        { agent: 'person', ip: '192.0.2.93' },
      );
      const u = await service.getOrThrow(ctx, unknown.requestId);
      assert.equal(u.jurisdiction, 'US');
      assert.equal(u.deadlineRule, 'gdpr');
    });
  });
}
