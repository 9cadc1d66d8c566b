/**
 * Requests through the webhook outbox, on each engine: a system whose webhook receives
 * `request.task` gets its step of each request as a signed delivery and completes it by its
 * callback; a stalled request reaches the webhooks that receive `request.stalled`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseDocument } from 'yaml';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext } from '../../src/platform/context.js';
import { DIALECTS } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';
import { openRequestsApp, randomEmail, type RequestsTestApp } from './requests-app.js';

/** The example manifest plus a webhook of the support desk for requests' tasks and stalls. */
async function manifestWithTaskWebhook(): Promise<string> {
  const doc = parseDocument(await readFile(EXAMPLE_MANIFEST, 'utf8'));
  doc.addIn(
    ['webhooks'],
    doc.createNode({
      key: 'support-desk-requests',
      name: 'Support desk (requests)',
      system: 'support-desk',
      url: 'https://support.example-online.test/hooks/pledge',
      events: ['request.task', 'request.stalled'],
      purposes: 'all',
    }),
  );
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-manifest-'));
  const file = path.join(dir, 'pledge.yaml');
  await writeFile(file, doc.toString());
  return file;
}

for (const dialect of DIALECTS) {
  describe(`requests through webhooks (${dialect})`, () => {
    let t: RequestsTestApp;
    before(async () => {
      t = await openRequestsApp(dialect, {}, await manifestWithTaskWebhook());
    });
    after(async () => {
      await t.cleanup();
    });

    const deliveries = async (type: string) =>
      (await t.app.webhooks.listDeliveries(t.ctx, { webhook: 'support-desk-requests', limit: 500 })).filter(
        (d) => d.eventType === type,
      );

    test('the support desk gets its step as a request.task and completes it by its callback', async () => {
      const known = await t.register();
      const ctx = createContext({ kind: 'anonymous' });
      const { requestId } = await t.app.requests.receive(
        ctx,
        { type: 'erasure', email: known.address },
        { agent: 'person', ip: '192.0.2.50' },
      );
      await t.app.requests.verify(ctx, requestId, { email: t.lastCode(known.address) });
      await t.call('POST', `/api/v1/requests/${requestId}/approve`, {});
      const storeStep = async () =>
        (await t.app.requests.view(t.ctx, requestId)).steps.find((s) => s.store === 'support-desk');
      // The erase step in Pledge's own store runs (requests.executors.ts); the desk's is a task.
      await t.settle(async () => (await storeStep())?.status === 'waiting');
      const step = await storeStep();
      assert.equal(step?.name, 'erase');
      assert.equal(step?.status, 'waiting');
      const tasks = await deliveries('request.task');
      assert.equal(tasks.length, 1);
      const payload = JSON.parse(tasks[0]?.payload ?? '{}') as { id: string; data: Record<string, unknown> };
      assert.equal(payload.id, step?.id);
      assert.deepEqual(Object.keys(payload.data).sort(), [
        'dueAt',
        'requestId',
        'step',
        'stepId',
        'subjectId',
        'type',
      ]);
      assert.equal(payload.data.subjectId, known.subjectId);
      assert.ok(!(tasks[0]?.payload ?? '').includes(known.address), 'ids only');

      const callback = await t.call('POST', `/api/v1/requests/${requestId}/complete`, { step: step?.id });
      assert.equal(callback.status, 200);
      const steps = callback.body.steps as Array<{ store: string | null; status: string }>;
      assert.equal(steps.find((s) => s.store === 'support-desk')?.status, 'done');
    });

    test('a stalled request reaches the webhooks that receive request.stalled', async () => {
      const address = randomEmail();
      const ctx = createContext({ kind: 'anonymous' });
      const { requestId } = await t.app.requests.receive(
        ctx,
        { type: 'inquiry', email: address },
        { agent: 'person', ip: '192.0.2.51' },
      );
      await t.app.requests.verify(ctx, requestId, { email: t.lastCode(address) });
      const later = createContext(
        { kind: 'job', id: 'test' },
        { clock: fixedClock(new Date(Date.now() + 2 * 86_400_000)) },
      );
      assert.ok((await t.app.requests.flagStalled(later)) >= 1);
      const stalled = await deliveries('request.stalled');
      assert.ok(
        stalled.some(
          (d) => (JSON.parse(d.payload) as { data: { requestId: string } }).data.requestId === requestId,
        ),
      );
      assert.equal((await t.app.requests.getOrThrow(t.ctx, requestId)).stalled, true);
    });
  });
}
