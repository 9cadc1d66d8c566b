/**
 * An erasure whose step fails still runs the others and says which failed and why: the vault's
 * erasure throws (a database outage), yet the tombstone is kept, the recipient is still queued, and
 * every step — the failed one too — has its log entry. No database: the service's narrow interfaces
 * are given fakes, which is what they are for.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AuditEntry } from '../../src/audit/audit.service.js';
import type { Manifest } from '../../src/manifest/manifest.schema.js';
import { createContext } from '../../src/platform/context.js';
import { PledgeError } from '../../src/platform/errors.js';
import { ErasureService } from '../../src/rights/erasure.service.js';
import { UseKeys } from '../../src/vault/use-keys.js';

describe('erasure steps', () => {
  test('a failed step is reported with its error and the next steps still run', async () => {
    const ctx = createContext({ kind: 'cli', id: 'test' });
    const logged: AuditEntry[] = [];
    const queued: Array<{ type: string; key: string | undefined }> = [];
    const kept: unknown[] = [];
    const service = new ErasureService({
      db: {
        dialect: 'sqlite',
        transaction: (c, work) => work(c),
        afterCommit: () => undefined,
        inTransaction: () => false,
      },
      vault: {
        identifierHashesOf: () => Promise.resolve([{ kind: 'email', hash: 'abc' }]),
        erase: () =>
          Promise.reject(new PledgeError('db.unavailable', 'the database did not answer', { status: 503 })),
        eraseExcept: () => Promise.reject(new Error('not called without holds')),
      },
      log: {
        listBySubject: () =>
          Promise.resolve([
            {
              id: 1,
              at: new Date('2026-12-01T00:00:00Z'),
              actor: { kind: 'cli', id: 'x' },
              requestId: undefined,
              leafIndex: undefined,
              action: 'share.disclose',
              subjectId: 's1',
              details: { recipient: 'group-companies', categories: ['user.contact.email'] },
            },
          ]),
      },
      audit: {
        append: (_c: unknown, entries: readonly AuditEntry[]) => {
          logged.push(...entries);
          return Promise.resolve();
        },
        appendEach: () => Promise.resolve([]),
      } as never,
      tombstones: {
        keep: (_c, hashes) => {
          kept.push(...hashes);
          return Promise.resolve(hashes.length);
        },
      },
      holds: { holdsOn: () => Promise.resolve([]) },
      manifest: {
        manifest: {
          recipients: [{ key: 'group-companies', webhook: 'https://hooks.example/pledge' }],
        } as unknown as Manifest,
      },
      jobs: {
        define: (d: { type: string }) => ({
          type: d.type,
          enqueue: (_c: unknown, _p: unknown, o?: { key?: string }) => {
            queued.push({ type: d.type, key: o?.key });
            return Promise.resolve({ id: 'j', created: true });
          },
          enqueueMany: () => Promise.resolve({ ids: [], created: 0 }),
        }),
      } as never,
      signingKeys: new UseKeys('recipient_notices', [
        { version: 1, secret: Buffer.alloc(32, 1), createdAt: undefined },
      ]),
    });

    const result = await service.erasePledgeData(ctx, 's1', []);
    assert.equal(result.ok, false);
    assert.equal(result.keyDestroyed, false, 'the key is not claimed destroyed when the vault failed');
    assert.deepEqual(
      result.steps.map((s) => [s.step, s.ok, s.error?.code]),
      [
        ['recipients', true, undefined],
        ['tombstone', true, undefined],
        ['vault', false, 'db.unavailable'],
        ['notify', true, undefined],
      ],
    );
    assert.equal(kept.length, 1);
    assert.deepEqual(queued, [{ type: 'rights.recipient_erased', key: 'subject-erased:s1:group-companies' }]);
    assert.deepEqual(
      logged.map((e) => [e.action, e.details?.step, e.details?.ok]),
      [
        ['rights.erasure_step', 'recipients', true],
        ['rights.erasure_step', 'tombstone', true],
        ['rights.erasure_step', 'vault', false],
        ['rights.erasure_step', 'notify', true],
      ],
    );
    assert.equal(logged[2]?.details?.error, 'db.unavailable');
  });
});
