/**
 * The beacons' crypto off the main thread: what the worker seals opens with BeaconSeal, bound to its
 * event, and its visitor hashes are the ones BeaconSeal and the inline path make; a batch too small
 * for the hop runs inline, with the same results.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { uuidv7 } from '../../src/platform/ids.js';
import { BeaconCrypto, type BeaconCryptoJob } from '../../src/tracking/beacons.crypto.js';
import { BeaconSeal } from '../../src/tracking/beacons.seal.js';
import { UseKeys } from '../../src/vault/use-keys.js';

const keys = new UseKeys('beacons', [
  { version: 1, secret: randomBytes(32), createdAt: undefined },
  { version: 2, secret: randomBytes(32), createdAt: '2026-12-01T00:00:00.000Z' },
]);
const seal = new BeaconSeal(keys);
const salt = randomBytes(32);

function jobs(count: number): BeaconCryptoJob[] {
  return Array.from({ length: count }, (_, i) => ({
    id: uuidv7(),
    fields: i % 3 === 0 ? {} : { path: `/page/${i}`, referrer: 'news.example.org', event: 'ünïcode_é' },
    visitor:
      i % 2 === 0
        ? { cookie: `vid_${String(i).padStart(20, '0')}` }
        : { salt, material: `203.0.113.0\nUA ${i}\nsite` },
  }));
}

function expectedVisitor(job: BeaconCryptoJob): string {
  return 'cookie' in job.visitor
    ? seal.visitorHash(job.visitor.cookie)
    : createHmac('sha256', job.visitor.salt).update(job.visitor.material, 'utf8').digest('hex');
}

describe('beacon crypto', () => {
  const pooled = new BeaconCrypto(seal);
  after(() => pooled.close());

  test('a batch sealed on the worker opens with BeaconSeal, under the newest key, bound to its event', async () => {
    const batch = jobs(40);
    const results = await Promise.all(batch.map((j) => pooled.submit(j)));
    assert.equal(pooled.threaded, true, 'the batch went to the worker');
    batch.forEach((job, i) => {
      const r = results[i]!;
      assert.match(r.sealed, /^k2:/);
      assert.deepEqual(seal.open(job.id, r.sealed), job.fields);
      assert.throws(() => seal.open(uuidv7(), r.sealed), { code: 'vault.decrypt_failed' });
      assert.equal(r.visitor, expectedVisitor(job));
    });
    // Every seal has its own nonce.
    assert.equal(new Set(results.map((r) => r.sealed.slice(3, 23))).size, results.length);
  });

  test('small batches and a crypto without a worker give the same results inline', async () => {
    const inline = new BeaconCrypto(seal, { worker: false });
    for (const crypto of [pooled, inline]) {
      const [job] = jobs(2);
      const r = await crypto.submit(job!);
      assert.deepEqual(seal.open(job!.id, r.sealed), job!.fields);
      assert.equal(r.visitor, expectedVisitor(job!));
    }
    await inline.close();
  });

  test('after close, the next batch starts a worker again', async () => {
    await pooled.close();
    const batch = jobs(10);
    const results = await Promise.all(batch.map((j) => pooled.submit(j)));
    assert.equal(pooled.threaded, true);
    batch.forEach((job, i) => assert.deepEqual(seal.open(job.id, results[i]!.sealed), job.fields));
  });
});
