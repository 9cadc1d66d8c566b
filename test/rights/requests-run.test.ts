/**
 * Requests end to end through the HTTP intake, on each engine for Pledge and a real PostgreSQL shop
 * database behind a connector: submit, read the code from the SMTP sink, verify, staff approve, run
 * the queue until idle, then check what the person and staff notice: the export downloaded through
 * the mailed link holds the person's records, consent history and shop rows and nothing of another
 * person; erasure removed the shop rows in foreign-key order and the vault data, mailed the
 * confirmation and logged the steps; an objection withdrew marketing consent; a step whose database
 * is unreachable fails with its error kept and `retry` finishes it without repeating finished steps.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { parseDocument } from 'yaml';
import { createContext } from '../../src/platform/context.js';
import { RECIPIENT_ERASED_JOB } from '../../src/rights/erasure.service.js';
import { REQUEST_MAIL_JOB } from '../../src/rights/requests.executors.js';
import { createEngineDatabase, type EngineDatabase } from '../helpers/connector-databases.js';
import { DIALECTS } from '../helpers/databases.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { exampleWithTestSystem, TEST_SYSTEM } from '../helpers/manifests.js';
import { createShop, dropShop, SHOP_DATASET_YAML } from './connectors.fixture.js';
import { openRequestsApp, type RequestsTestApp } from './requests-app.js';
import { unzip } from './unzip.js';

const RECIPIENT = 'group-companies';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const indent = (yaml: string) =>
  yaml
    .split('\n')
    .map((l, i) => (l === '' ? l : i === 0 ? `  - ${l}` : `    ${l}`))
    .join('\n');

for (const dialect of DIALECTS) {
  describe(`requests run end to end (${dialect})`, () => {
    let t: RequestsTestApp;
    let shop: EngineDatabase;
    let proxy: TcpProxy;
    let nextId = 10;
    before(async () => {
      shop = await createEngineDatabase('postgresql', 'requests_run');
      await createShop(shop);
      const target = new URL(shop.url);
      proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
      process.env.PLEDGE_CONNECTOR_SHOP_URL = proxy.urlFor(shop.url);
      // The example with a test system (to disclose as), a recipient with a webhook, and the shop.
      const doc = parseDocument(await readFile(exampleWithTestSystem(), 'utf8'));
      const list = (doc.toJS() as { recipients: Array<{ key: string }> }).recipients;
      doc.setIn(
        ['recipients', list.findIndex((r) => r.key === RECIPIENT), 'webhook'],
        'http://127.0.0.1:9/hook',
      );
      const text = `${doc.toString({ lineWidth: 0 })}\ndatasets:\n${indent(SHOP_DATASET_YAML)}\n`;
      const manifest = path.join(await mkdtemp(path.join(tmpdir(), 'pledge-requests-run-')), 'pledge.yaml');
      await writeFile(manifest, text, 'utf8');
      t = await openRequestsApp(dialect, {}, manifest);
    });
    after(async () => {
      await t.cleanup();
      delete process.env.PLEDGE_CONNECTOR_SHOP_URL;
      await proxy.close();
      await dropShop(shop);
      await shop.drop();
    });

    /** A registered person with a customer, an address, an order and an item in the shop. */
    const person = async () => {
      const p = await t.register();
      const n = nextId++;
      await shop.exec(
        `insert into addresses values (${n * 10}, '${n} Person Street')`,
        `insert into customers values (${n * 10}, '${p.address}', null, 'Person ${n}', ${n * 10})`,
        `insert into orders values (${n * 100}, ${n * 10}, 'note of ${n}')`,
        `insert into order_items values (${n * 1000}, ${n * 100}, 'gift of ${n}')`,
      );
      return { ...p, customerId: n * 10 };
    };

    let client = 0;
    const ip = () => `198.51.100.${(client++ % 250) + 1}`;

    /** Submits through the form, verifies with the mailed code, approves; answers the request id. */
    const submitAndApprove = async (fields: Record<string, string>) => {
      const posted = await t.app.http.inject({
        method: 'POST',
        url: '/requests',
        headers: FORM,
        remoteAddress: ip(),
        payload: new URLSearchParams(fields).toString(),
      });
      assert.equal(posted.statusCode, 303);
      const token = new URL(posted.headers.location ?? '', 'http://x').searchParams.get('t') ?? '';
      const verified = await t.app.http.inject({
        method: 'POST',
        url: '/requests/verify',
        headers: FORM,
        remoteAddress: ip(),
        payload: new URLSearchParams({ t: token, email_code: t.lastCode(fields.email ?? '') }).toString(),
      });
      assert.equal(verified.statusCode, 303);
      const id = t.app.requests.requestOfLink(t.ctx, token, 'verify') ?? '';
      const approved = await t.call('POST', `/api/v1/requests/${id}/approve`, {});
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      return id;
    };
    const statusOf = async (id: string) => (await t.app.requests.getOrThrow(t.ctx, id)).status;
    const run = (id: string) =>
      t.settle(async () => ['done', 'failed', 'waiting'].includes(await statusOf(id)));
    const stepsOf = async (id: string) =>
      (await t.call('GET', `/api/v1/requests/${id}`)).body.steps as Array<{
        name: string;
        store: string;
        status: string;
        error?: string;
        attempts: number;
      }>;

    test('export: the mailed link downloads a zip with the person’s records, consent and shop rows only', async () => {
      const a = await person();
      const b = await person();
      await t.app.consent.record(t.ctx, [
        { holder: { subjectId: a.subjectId }, purpose: 'improve-products', state: 'granted', method: 'api' },
      ]);
      const id = await submitAndApprove({ type: 'export', email: a.address, jurisdiction: 'US' });
      await run(id);
      assert.equal(await statusOf(id), 'done', JSON.stringify(await stepsOf(id)));
      const steps = await stepsOf(id);
      assert.deepEqual(
        steps.map((s) => `${s.name}${s.store ? `:${s.store}` : ''}:${s.status}`),
        ['verify:done', 'collect:pledge:done', 'collect:shop:done', 'assemble:done', 'deliver:done'],
      );
      const mail = t.mailTo(a.address).find((m) => m.includes('your copy of your data is ready'));
      assert.ok(mail, 'the link was mailed');
      const link = /(https?:\/\/\S+\/requests\/export\/[A-Za-z0-9._-]+)/.exec(mail)?.[1] ?? '';
      const url = new URL(link).pathname;
      const page = await t.app.http.inject({ method: 'GET', url });
      assert.equal(page.statusCode, 200);
      assert.match(page.body, /<form method="post"/);
      const download = await t.app.http.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: '',
      });
      assert.equal(download.statusCode, 200);
      const files = await unzip(download.rawPayload);
      const records = files.get('records.json')?.toString('utf8') ?? '';
      assert.ok(records.includes(a.address), 'the vault records');
      assert.ok(!records.includes(b.address));
      assert.match(
        files.get('consent.json')?.toString('utf8') ?? '',
        /improve-products/,
        'the consent history',
      );
      const rows = files.get('connectors.json')?.toString('utf8') ?? '';
      for (const v of [a.address, `note of ${a.customerId / 10}`, `gift of ${a.customerId / 10}`])
        assert.ok(rows.includes(v), `the shop's ${v}`);
      for (const v of [b.address, 'bob@example.com', `note of ${b.customerId / 10}`])
        assert.ok(!rows.includes(v), `nothing of another person (${v})`);
    });

    test('erasure: shop rows erased in foreign-key order, vault gone, confirmation mailed, steps logged', async () => {
      const a = await person();
      const b = await person();
      const shared = await t.app.share.disclose(
        createContext({ kind: 'system', id: TEST_SYSTEM, key: 'test' }),
        {
          recipient: RECIPIENT,
          purpose: 'provide-service',
          subjects: [a.subjectId],
          fields: ['email', 'last_name'],
        },
      );
      assert.equal(shared.subjects[0]?.disclosed, true);
      const id = await submitAndApprove({ type: 'erasure', email: a.address, jurisdiction: 'US' });
      await run(id);
      assert.equal(await statusOf(id), 'done', JSON.stringify(await stepsOf(id)));
      const view = await t.app.requests.view(t.ctx, id);
      const shopStep = view.steps.find((s) => s.name === 'erase' && s.store === 'shop');
      const order = (shopStep?.result?.collections as Array<{ collection: string }>).map((c) => c.collection);
      assert.ok(order.indexOf('order_items') < order.indexOf('orders'), 'children before parents');
      assert.ok(order.indexOf('orders') < order.indexOf('customers'));
      const left = await shop.query(`select email, name from customers where id = ${a.customerId}`);
      assert.ok(
        left.every((r) => r.email !== a.address),
        'the e-mail is masked or the row gone',
      );
      assert.deepEqual(await shop.query(`select id from orders where customer_id = ${a.customerId}`), []);
      assert.equal((await shop.query(`select id from customers where id = ${b.customerId}`)).length, 1);
      const pledge = view.steps.find((s) => s.name === 'erase' && s.store === 'pledge');
      assert.equal(pledge?.result?.keyDestroyed, true, 'the data key was destroyed');
      assert.equal(await t.app.vault.matchSubject(t.ctx, { email: a.address }), undefined);
      assert.ok(await t.app.vault.matchSubject(t.ctx, { email: b.address }));
      const told = await t.app.jobs.list(t.ctx, { type: RECIPIENT_ERASED_JOB });
      assert.equal(told.filter((j) => j.key === `subject-erased:${a.subjectId}:${RECIPIENT}`).length, 1);
      const notified = view.steps.find((s) => s.name === 'notify');
      assert.deepEqual(notified?.result?.queued, [RECIPIENT], JSON.stringify(notified?.result));
      const mails = t.mailTo(a.address);
      assert.ok(mails.some((m) => m.includes('your data was erased') && m.includes('Nothing was kept.')));
      // The confirm step run again (as after a crash before its completion was recorded) mails nothing more.
      const confirm = view.steps.find((s) => s.name === 'confirm');
      assert.ok(confirm);
      const record = await t.app.requests.getOrThrow(t.ctx, id);
      const stepRow = { ...confirm, store: '', result: undefined } as unknown as Parameters<
        ReturnType<typeof t.app.requestSteps.registry.find>['run']
      >[2];
      await t.app.requestSteps.registry
        .find('confirm', '')
        .run({ ctx: t.ctx, signal: new AbortController().signal }, record, stepRow);
      await t.app.jobs.runDue({ types: [REQUEST_MAIL_JOB] });
      // So does Pledge's erase step run again: the person is already gone, and that is not a failure.
      const pledgeRow = { ...pledge, result: undefined } as unknown as typeof stepRow;
      const again = await t.app.requestSteps.registry
        .find('erase', 'pledge')
        .run({ ctx: t.ctx, signal: new AbortController().signal }, record, pledgeRow);
      assert.equal(again.outcome, 'done', JSON.stringify(again));
      const vaultAgain = (again as { summary?: { steps?: { vault?: { keysDestroyed?: number } } } }).summary;
      assert.equal(vaultAgain?.steps?.vault?.keysDestroyed, 0, 'nothing left to destroy');
      const toldAgain = await t.app.jobs.list(t.ctx, { type: RECIPIENT_ERASED_JOB });
      assert.equal(toldAgain.filter((j) => j.key === `subject-erased:${a.subjectId}:${RECIPIENT}`).length, 1);
      assert.equal(t.mailTo(a.address).filter((m) => m.includes('your data was erased')).length, 1);
      const logged = await sql<{
        n: number;
      }>`select count(*) as n from audit_events where action = 'requests.step'`.execute(t.database.tables);
      assert.ok(Number(logged.rows[0]?.n) >= 5, 'each step is in the log');
    });

    test('objection: marketing consent is withdrawn in the ledger', async () => {
      const a = await person();
      const id = await submitAndApprove({ type: 'objection', email: a.address, jurisdiction: 'US' });
      await run(id);
      assert.equal(await statusOf(id), 'done', JSON.stringify(await stepsOf(id)));
      const decision = await t.app.consent.decide(t.ctx, a.subjectId, 'marketing-email');
      assert.equal(decision.allowed, false);
      assert.ok(t.mailTo(a.address).some((m) => m.includes('carried out your objection request')));
    });

    test('an unreachable shop database fails its step with the error kept; retry finishes the rest once', async () => {
      const a = await person();
      const id = await submitAndApprove({ type: 'erasure', email: a.address, jurisdiction: 'US' });
      proxy.cut();
      // Each attempt's backoff is made due at once, until the job policy's last attempt.
      for (let i = 0; i < 40 && (await statusOf(id)) !== 'failed'; i++) {
        await sql`update jobs set run_at = ${new Date(0).toISOString()} where type = 'requests.step' and state = 'pending'`.execute(
          t.database.tables,
        );
        // Only the steps: the company's own webhooks (unreachable hosts in the example) are not at issue.
        // The app's own worker may have taken the job: then wait for what is in flight.
        if ((await t.app.jobs.runDue({ types: ['requests.step'] })).claimed === 0) await t.app.jobs.idle();
      }
      assert.equal(await statusOf(id), 'failed');
      const failed = (await stepsOf(id)).find((s) => s.status === 'failed');
      assert.equal(failed?.store, 'shop');
      assert.ok((failed?.error ?? '').length > 0, 'the error is kept');
      const pledgeBefore = (await stepsOf(id)).find((s) => s.name === 'erase' && s.store === 'pledge');
      proxy.restore();
      assert.equal((await t.call('POST', `/api/v1/requests/${id}/retry`, {})).status, 200);
      await run(id);
      assert.equal(await statusOf(id), 'done', JSON.stringify(await stepsOf(id)));
      const pledgeAfter = (await stepsOf(id)).find((s) => s.name === 'erase' && s.store === 'pledge');
      assert.equal(pledgeAfter?.attempts, pledgeBefore?.attempts, 'the finished step was not run again');
      assert.deepEqual(await shop.query(`select id from orders where customer_id = ${a.customerId}`), []);
      assert.equal(t.mailTo(a.address).filter((m) => m.includes('your data was erased')).length, 1);
    });
  });
}
