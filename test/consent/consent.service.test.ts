/**
 * The consent ledger and decisions, on every engine: choices are appended and projected, the
 * projection rebuilds to the same state, decisions give the reason a person would expect, the
 * ledger refuses edits, a browser's choices follow the person who signs up on it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { sql } from 'kysely';
import type { ConsentService } from '../../src/consent/consent.service.js';
import { type RecordChoiceInput } from '../../src/consent/consent.service.js';
import { createContext } from '../../src/platform/context.js';
import { fixedClock } from '../../src/platform/clock.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { newConsentService } from '../helpers/consent.js';
import { openTestVault, type TestVault } from '../helpers/vault.js';

for (const dialect of DIALECTS) {
  describe(`consent ledger on ${dialect}`, () => {
    let t: TestVault;
    let consent: ConsentService;

    before(async () => {
      t = await openTestVault(dialect);
      consent = newService(t);
      await consent.start();
    });
    after(async () => {
      await consent.stop();
      await t.cleanup();
    });

    const subject = async (jurisdiction: string | undefined) =>
      (await t.vault.createSubject(t.ctx, { kind: 'customer', ...(jurisdiction ? { jurisdiction } : {}) }))
        .id;

    test('defaults come from the manifest: opt-in in the EU, opt-out in the US, strictest when unknown', async () => {
      const eu = await subject('DE');
      const us = await subject('US');
      const nowhere = await subject(undefined);
      assert.deepEqual(await consent.decide(t.ctx, eu, 'marketing-email', 'email'), {
        allowed: false,
        reason: 'opt_in_missing',
      });
      assert.deepEqual(await consent.decide(t.ctx, us, 'marketing-email', 'email'), {
        allowed: true,
        reason: 'opt_out_default',
      });
      assert.deepEqual(await consent.decide(t.ctx, nowhere, 'marketing-email'), {
        allowed: false,
        reason: 'opt_in_missing',
      });
      assert.deepEqual(await consent.decide(t.ctx, eu, 'provide-service'), {
        allowed: true,
        reason: 'required',
      });
    });

    test('giving, withdrawing and the channel a choice names', async () => {
      const eu = await subject('FR');
      await consent.record(t.ctx, [
        choice(eu, 'marketing-email', 'granted', { method: 'preference_center' }),
      ]);
      assert.equal((await consent.decide(t.ctx, eu, 'marketing-email', 'email')).reason, 'opt_in_granted');
      const [change] = await consent.record(t.ctx, [
        choice(eu, 'marketing-email', 'withdrawn', { channel: 'email', method: 'unsubscribe_link' }),
      ]);
      assert.equal(change?.previous, 'none', 'nothing was chosen for the e-mail channel before');
      assert.deepEqual(await consent.decide(t.ctx, eu, 'marketing-email', 'email'), {
        allowed: false,
        reason: 'withdrawn',
      });
      // Granting the purpose again in general does not undo "no marketing e-mail".
      await consent.record(t.ctx, [choice(eu, 'marketing-email', 'granted')]);
      assert.equal((await consent.decide(t.ctx, eu, 'marketing-email', 'email')).reason, 'withdrawn');
      // Without a channel the purpose is allowed only where every channel allows it: not here.
      assert.deepEqual(await consent.decide(t.ctx, eu, 'marketing-email'), {
        allowed: false,
        reason: 'withdrawn',
        withdrawnChannels: ['email'],
      });
      assert.deepEqual(await consent.decide(t.ctx, eu, 'marketing-email', 'sms'), {
        allowed: false,
        reason: 'channel_not_declared',
      });
    });

    test('the global opt-out denies everything optional and nothing required', async () => {
      const us = await subject('US');
      await consent.record(t.ctx, [choice(us, '*', 'withdrawn', { method: 'preference_center' })]);
      for (const purpose of ['marketing-email', 'improve-products', 'site-analytics']) {
        assert.deepEqual(await consent.decide(t.ctx, us, purpose), {
          allowed: false,
          reason: 'global_opt_out',
        });
      }
      assert.deepEqual(await consent.decide(t.ctx, us, 'provide-service'), {
        allowed: true,
        reason: 'required',
      });
      assert.deepEqual(await consent.decide(t.ctx, us, 'legal-compliance'), {
        allowed: true,
        reason: 'required',
      });
      assert.equal(await consent.globalOptOut(t.ctx, { subjectId: us }), true);
      await consent.record(t.ctx, [choice(us, '*', 'granted', { method: 'preference_center' })]);
      assert.equal((await consent.decide(t.ctx, us, 'improve-products')).reason, 'opt_out_default');
    });

    test('bad choices are refused all at once and nothing is written', async () => {
      const us = await subject('US');
      const before = await consent.history(t.ctx, { subjectId: us });
      await assert.rejects(
        consent.record(t.ctx, [
          choice(us, 'marketing-email', 'granted'),
          choice(us, 'marketing-mail', 'granted'),
          choice(us, 'marketing-email', 'granted', { channel: 'sms' }),
          { ...choice(us, 'site-analytics', 'granted'), jurisdiction: 'Germany' },
        ]),
        (err: Error & { code?: string; details?: { problems?: unknown[] } }) => {
          assert.equal(err.code, 'consent.choice_invalid');
          assert.equal(err.details?.problems?.length, 3);
          assert.match(err.message, /\[1\]\.purpose: "marketing-mail" is not a purpose/);
          assert.match(err.message, /\[2\]\.channel: purpose "marketing-email" is not used on channel "sms"/);
          assert.match(err.message, /\[3\]\.jurisdiction/);
          return true;
        },
      );
      await assert.rejects(
        consent.record(t.ctx, [choice('00000000-0000-4000-8000-000000000000', 'marketing-email', 'granted')]),
        { code: 'consent.subject_not_found' },
      );
      await assert.rejects(consent.decide(t.ctx, us, 'selling'), { code: 'consent.purpose_unknown' });
      assert.deepEqual(await consent.history(t.ctx, { subjectId: us }), before);
    });

    test('the projection rebuilt from the ledger is the state, whatever the sequence of choices', async () => {
      const subjects = [await subject('US'), await subject('DE'), await subject(undefined)];
      const clock = fixedClock(new Date('2026-06-01T00:00:00Z'));
      const ctx = createContext({ kind: 'cli', id: 'test' }, { clock });
      const arbitraryChoice = fc.record({
        who: fc.integer({ min: 0, max: subjects.length - 1 }),
        purpose: fc.constantFrom('marketing-email', 'site-analytics', 'improve-products', '*'),
        email: fc.boolean(),
        state: fc.constantFrom('granted', 'denied', 'withdrawn' as const),
        advance: fc.integer({ min: 0, max: 2 }),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(arbitraryChoice, { minLength: 1, maxLength: 12 }), async (steps) => {
          for (const s of steps) {
            clock.advance(s.advance);
            await consent.record(ctx, [
              choice(subjects[s.who]!, s.purpose, s.state, {
                channel: s.email && s.purpose === 'marketing-email' ? 'email' : undefined,
              }),
            ]);
          }
          const decisions = async () =>
            Promise.all(
              subjects.flatMap((id) =>
                ['marketing-email', 'site-analytics', 'improve-products'].map(async (p) => [
                  (await consent.decide(ctx, id, p, p === 'marketing-email' ? 'email' : undefined)).reason,
                  (await consent.purposeChoices(ctx, { subjectId: id })).map(
                    (v) => v.choice?.state ?? 'none',
                  ),
                ]),
              ),
            );
          const live = await decisions();
          const projected = await stateRows(t);
          await consent.rebuildProjection(ctx);
          assert.deepEqual(await stateRows(t), projected, 'the rebuilt projection equals the live one');
          assert.deepEqual(await decisions(), live, 'decisions after the rebuild equal those before');
        }),
        { numRuns: dialect === 'postgres' ? 10 : 25 },
      );
    });

    test('the ledger refuses updates and deletes, except the erasure of its subject', async () => {
      const us = await subject('US');
      await consent.record(t.ctx, [choice(us, 'marketing-email', 'withdrawn')]);
      await assert.rejects(
        sql`update consent_events set state = 'granted' where subject_id = ${us}`.execute(t.database.kysely),
        /append-only/,
      );
      await assert.rejects(
        sql`delete from consent_events where subject_id = ${us}`.execute(t.database.kysely),
        /append-only/,
      );
      await t.vault.erase(t.ctx, us);
      const removed = await consent.eraseSubject(t.ctx, us);
      assert.equal(removed, 1);
      await assert.rejects(consent.decide(t.ctx, us, 'marketing-email'), {
        code: 'consent.subject_not_found',
      });
    });

    test('evidence rests sealed, with the IP address truncated, and opens for proof of consent', async () => {
      const eu = await subject('IT');
      const userAgent = 'Mozilla/5.0 (X11; Linux x86_64) Evidence-Test/1.0';
      await consent.record(t.ctx, [
        {
          ...choice(eu, 'marketing-email', 'granted', { method: 'preference_center' }),
          noticeVersion: 'signup-2026-11',
          evidence: { userAgent, ip: '203.0.113.77' },
        },
      ]);
      const raw = await tablesOf(t.database)
        .selectFrom('consent_events')
        .select('evidence')
        .where('subject_id', '=', eu)
        .executeTakeFirstOrThrow();
      assert.ok(raw.evidence !== null);
      assert.ok(!raw.evidence.includes('Evidence-Test') && !raw.evidence.includes('203.0.113'));
      const [event] = await consent.history(t.ctx, { subjectId: eu });
      assert.deepEqual(event?.evidence, { userAgent, ip: '203.0.113.0' });
      assert.equal(event?.noticeVersion, 'signup-2026-11');
      assert.equal(event?.policyVersionId, t.active.version.id);
      assert.equal(event?.method, 'preference_center');
    });

    test("a browser's choices follow the person who signs up on it; the person's own newer choices win", async () => {
      const browserId = `browser-${Math.random().toString(36).slice(2)}-abcdef`;
      await consent.record(t.ctx, [
        { holder: { browserId }, purpose: 'site-analytics', state: 'granted', method: 'banner' },
        { holder: { browserId }, purpose: 'improve-products', state: 'denied', method: 'banner' },
      ]);
      const eu = await subject('DE');
      await consent.record(t.ctx, [
        choice(eu, 'improve-products', 'granted', { method: 'preference_center' }),
      ]);
      const merged = await consent.mergeBrowser(t.ctx, browserId, eu);
      assert.deepEqual(
        merged.map((c) => [c.purpose, c.state]),
        [['site-analytics', 'granted']],
      );
      assert.equal((await consent.decide(t.ctx, eu, 'site-analytics')).reason, 'opt_in_granted');
      assert.equal((await consent.decide(t.ctx, eu, 'improve-products')).reason, 'opt_in_granted');
      const history = await consent.history(t.ctx, { subjectId: eu });
      assert.ok(history.some((e) => e.purpose === 'site-analytics' && e.mergedFrom !== undefined));
    });

    test('batch decisions answer in order and deny unknown subjects', async () => {
      const us = await subject('US');
      const eu = await subject('ES');
      const unknown = '00000000-0000-4000-8000-000000000001';
      const decisions = await consent.decideMany(t.ctx, [us, unknown, eu, us], 'marketing-email', 'email');
      assert.deepEqual(
        decisions.map((d) => d.reason),
        ['opt_out_default', 'unknown_subject', 'opt_in_missing', 'opt_out_default'],
      );
      await assert.rejects(consent.decideMany(t.ctx, new Array<string>(10_001).fill(us), 'marketing-email'), {
        code: 'consent.batch_too_large',
      });
      // A channel the purpose does not use is denied for every known subject, cached or not.
      const sms = await consent.decideMany(t.ctx, [us, unknown], 'marketing-email', 'sms');
      assert.deepEqual(
        sms.map((d) => d.reason),
        ['channel_not_declared', 'unknown_subject'],
      );
    });

    test('property: decisions kept in the cache are those read afresh from the ledger', async () => {
      const people = [await subject('US'), await subject('DE'), await subject(undefined)];
      const asks: Array<[string, string | undefined]> = [
        ['marketing-email', 'email'],
        ['marketing-email', undefined],
        ['marketing-email', 'sms'],
        ['site-analytics', 'web'],
        ['improve-products', 'in_product'],
        ['provide-service', undefined],
      ];
      const change = fc.record({
        who: fc.nat({ max: people.length - 1 }),
        what: fc.constantFrom<[string, string | undefined]>(
          ['marketing-email', 'email'],
          ['marketing-email', undefined],
          ['site-analytics', undefined],
          ['improve-products', 'web'],
          ['*', undefined],
        ),
        state: fc.constantFrom<'granted' | 'denied' | 'withdrawn'>('granted', 'denied', 'withdrawn'),
        method: fc.constantFrom<RecordChoiceInput['method']>('api', 'gpc', 'banner'),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(change, { minLength: 1, maxLength: 4 }), async (changes) => {
          for (const c of changes) {
            await consent.record(t.ctx, [
              choice(people[c.who]!, c.what[0], c.state, { channel: c.what[1], method: c.method }),
            ]);
          }
          // A service with nothing cached reads every decision from the ledger's projection.
          const fresh = newService(t);
          for (const [purpose, channel] of asks) {
            const batch = await consent.decideMany(t.ctx, people, purpose, channel);
            for (const [i, person] of people.entries()) {
              const expected = await fresh.decide(t.ctx, person, purpose, channel);
              assert.deepEqual(await consent.decide(t.ctx, person, purpose, channel), expected);
              assert.deepEqual(batch[i], expected);
            }
          }
        }),
        { numRuns: 15 },
      );
    });

    test('every change is audited with the subject, purpose and previous state', async () => {
      const us = await subject('US');
      await consent.record(t.ctx, [choice(us, 'site-analytics', 'withdrawn', { method: 'banner' })]);
      const rows = (await t.audit.listBySubject(t.ctx, us)).filter((e) => e.action === 'consent.change');
      assert.equal(rows.length, 1);
      const details = rows[0]!.details as { changes: Array<Record<string, unknown>> };
      assert.deepEqual(
        details.changes.map(({ purpose, state, previous, method }) => ({ purpose, state, previous, method })),
        [{ purpose: 'site-analytics', state: 'withdrawn', previous: 'none', method: 'banner' }],
      );
    });
  });
}

function newService(t: TestVault): ConsentService {
  return newConsentService(t);
}

function choice(
  subjectId: string,
  purpose: string,
  state: 'granted' | 'denied' | 'withdrawn',
  options: { channel?: string | undefined; method?: RecordChoiceInput['method'] } = {},
): RecordChoiceInput {
  return {
    holder: { subjectId },
    purpose,
    state,
    method: options.method ?? 'api',
    ...(options.channel !== undefined ? { channel: options.channel } : {}),
  };
}

async function stateRows(t: TestVault): Promise<unknown[]> {
  return tablesOf(t.database)
    .selectFrom('consent_state')
    .select(['holder', 'purpose', 'channel', 'state', 'method', 'event_id'])
    .orderBy('holder')
    .orderBy('purpose')
    .orderBy('channel')
    .execute();
}
