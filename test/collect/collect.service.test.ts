/**
 * The collection service through the TypeScript API, on both engines: arbitrary bodies are refused
 * with a 4xx PledgeError and leave nothing behind, a lost registration race joins the winner, card
 * processors that fail or misbehave never get a card number stored or shown, and IP addresses are
 * kept whole only where a purpose asks for it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { CardProcessor } from '../../src/collect/card-processor.js';
import {
  CollectService,
  type CollectBody,
  type CollectEventsBody,
} from '../../src/collect/collect.service.js';
import { compileSource } from '../../src/collect/collect.plan.js';
import { collectProblemsError } from '../../src/collect/collect.problems.js';
import { validateCollectBody, validateEventsBody } from '../../src/collect/collect.validator.js';
import { truncateIp } from '../../src/platform/ip.js';
import { loadManifestFile } from '../../src/manifest/manifest.loader.js';
import type { Manifest } from '../../src/manifest/manifest.schema.js';
import type { Context } from '../../src/platform/context.js';
import { ConfigError, PledgeError } from '../../src/platform/errors.js';
import { Vault, type NewSubjectInput, type WriteRecordInput } from '../../src/vault/vault.service.js';
import { DIALECTS } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST, openTestVault, randomEmail, type TestVault } from '../helpers/vault.js';
import { vaultDeps } from '../helpers/vault.js';
import { countRows } from './collect-app.js';

const CARD = '4111111111111111';
const FUTURE = `12/${(new Date().getUTCFullYear() + 2) % 100}`;

/** Bodies that reach deep into the validator: declared and undeclared fields, any JSON values. */
function bodies(fieldNames: readonly string[]) {
  const value = fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.constant(`card ${CARD}`));
  return fc.oneof(
    fc.jsonValue({ maxDepth: 4 }),
    fc.record(
      {
        subject: fc.oneof(
          fc.record({ id: fc.uuid() }, { requiredKeys: [] }),
          fc.record({ email: fc.emailAddress() }),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        jurisdiction: fc.oneof(fc.constantFrom('US', 'DE', 'EU', 'xx'), fc.jsonValue({ maxDepth: 1 })),
        data: fc.oneof(
          fc.dictionary(fc.oneof(fc.constantFrom(...fieldNames), fc.string()), value, { maxKeys: 8 }),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        events: fc.array(fc.dictionary(fc.oneof(fc.constantFrom(...fieldNames), fc.string()), value), {
          maxLength: 4,
        }),
      },
      { requiredKeys: [] },
    ),
  );
}

describe('the validator', () => {
  test('never throws, and its problems always make a 422 PledgeError, for any JSON body', async (t) => {
    const manifest = (await loadManifestFile(EXAMPLE_MANIFEST)).manifest as Manifest;
    for (const source of manifest.sources) {
      await t.test(source.key, () => {
        const plan = compileSource(manifest, source);
        fc.assert(
          fc.property(bodies([...Object.keys(source.fields ?? {}), 'email']), (body) => {
            for (const result of [
              validateCollectBody(plan, body, { now: new Date() }),
              validateEventsBody(plan, body, { now: new Date() }),
            ]) {
              if (result.value !== undefined) {
                assert.equal(result.problems.length, 0);
                continue;
              }
              assert.ok(result.problems.length > 0, 'a refusal says why');
              const err = collectProblemsError(source.key, result.problems);
              assert.ok(err instanceof PledgeError);
              assert.equal(err.status, 422);
              assert.ok(!JSON.stringify([err.message, err.details]).includes(CARD), 'no card number echoed');
            }
          }),
          { numRuns: 300 },
        );
      });
    }
  });

  test('a refused card number is reported first, with the pledge that forbids storing it', () => {
    const manifest = {
      pledges: [{ key: 'no-cards', kind: 'never_store', text: 'No cards.', categories: ['user.financial'] }],
      recipients: [],
      purposes: [],
    } as unknown as Manifest;
    const plan = compileSource(manifest, {
      key: 'notes',
      name: 'Notes',
      kind: 'feedback',
      categories: ['user.feedback'],
      purposes: ['x'],
      voluntary: true,
      retention: 'P1Y',
      fields: { note: { category: 'user.feedback', required: true } },
      pass_through: [],
    });
    const { problems } = validateCollectBody(
      plan,
      { data: { oops: 1, note: { deep: [[`x ${CARD}`]] } } },
      { now: new Date() },
    );
    const err = collectProblemsError('notes', problems);
    assert.equal(err.code, 'collect.card_number_refused');
    assert.deepEqual(err.details?.pledge, { key: 'no-cards', text: 'No cards.' });
    assert.equal(err.details?.path, 'data.note.deep[0][0]');
  });
});

describe('IP truncation', () => {
  test('keeps the /24 of IPv4 and the /48 of IPv6, and refuses what is not an address', () => {
    assert.equal(truncateIp('203.0.113.77'), '203.0.113.0');
    assert.equal(truncateIp(' 198.51.100.1 '), '198.51.100.0');
    assert.equal(truncateIp('2001:db8:85a3:8d3:1319:8a2e:370:7348'), '2001:db8:85a3::');
    assert.equal(truncateIp('2001:DB8:0:0:1::1'), '2001:db8::');
    assert.equal(truncateIp('::ffff:203.0.113.77'), '::ffff:203.0.113.0');
    assert.equal(truncateIp('fe80::1%eth0'), 'fe80::');
    assert.equal(truncateIp('::1'), '::');
    for (const bad of ['localhost', '1.2.3', '1.2.3.256', '', '12345::g'])
      assert.equal(truncateIp(bad), undefined, bad);
  });

  test('a truncated address never keeps host bits', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        const t = truncateIp(ip) ?? '';
        assert.ok(t.endsWith('.0'));
        assert.equal(t.split('.').slice(0, 3).join('.'), ip.split('.').slice(0, 3).join('.'));
      }),
    );
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const t = truncateIp(ip);
        assert.ok(t !== undefined, ip);
        assert.ok(t.endsWith('::') || t.startsWith('::ffff:'), `${ip} → ${t}`);
      }),
    );
  });
});

/** A processor that fails the way real ones do: by quoting the card in an error, or echoing it. */
class LeakyProcessor implements CardProcessor {
  constructor(private readonly mode: 'throws' | 'echoes') {}
  tokenize(_ctx: Context, card: { number: string }) {
    if (this.mode === 'throws') return Promise.reject(new Error(`card ${card.number} timed out`));
    return Promise.resolve({
      token: `tok_${card.number}`,
      brand: 'visa',
      lastFour: '1111',
      expiry: '12/2099',
    });
  }
}

/** A vault where another registration of the same e-mail always commits just before ours. */
class RacingVault extends Vault {
  raced = 0;
  override async write(ctx: Context, inputs: readonly WriteRecordInput[], newSubject?: NewSubjectInput) {
    if (newSubject && this.raced === 0) {
      this.raced++;
      const winner = randomUUID();
      await super.write(ctx, [], { ...newSubject, id: winner });
    }
    return super.write(ctx, inputs, newSubject);
  }
}

for (const dialect of DIALECTS) {
  describe(`collect service on ${dialect}`, () => {
    let t: TestVault;
    let collect: CollectService;
    before(async () => {
      t = await openTestVault(dialect);
      collect = new CollectService({ vault: t.vault, manifest: t.active.manifest });
    });
    after(async () => {
      await t.cleanup();
    });

    const register = async (service = collect, email = randomEmail()) =>
      service.collect(t.ctx, 'registration', {
        data: { email, first_name: 'Grace', last_name: 'Hopper', password: 'cobol-1959' },
      });

    test('arbitrary bodies are refused with a 4xx PledgeError and store nothing', async () => {
      const subject = (await register()).subject.id;
      const sources = ['registration', 'billing', 'feedback', 'customer-survey', 'product-events'];
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...sources),
          fc.boolean(),
          bodies(['email', 'message', 'answers', 'card_number', 'event', 'ip', 'rating']),
          async (source, withSubject, body) => {
            const input =
              withSubject && typeof body === 'object' && body !== null && !Array.isArray(body)
                ? { ...body, subject: { id: subject } }
                : body;
            const calls = [
              () => collect.collect(t.ctx, source, input as CollectBody),
              () => collect.collectEvents(t.ctx, source, input as CollectEventsBody),
            ];
            for (const call of calls) {
              const records = await countRows(t.database, 'records');
              const subjects = await countRows(t.database, 'subjects');
              try {
                await call();
              } catch (err) {
                assert.ok(err instanceof PledgeError, `a PledgeError, not ${String(err)}`);
                assert.ok(err.status >= 400 && err.status < 500, `a 4xx, not ${err.status} ${err.code}`);
                assert.equal(await countRows(t.database, 'records'), records, 'nothing stored');
                assert.equal(await countRows(t.database, 'subjects'), subjects, 'no subject created');
              }
            }
          },
        ),
        { numRuns: 150 },
      );
    });

    test('a registration that loses the race to the same e-mail is refused as taken and joins nobody', async () => {
      const racing = new RacingVault(
        vaultDeps(t.database, {
          dataKeys: t.dataKeys,
          keyring: t.keyring,
          manifest: { manifest: t.active.manifest, versionId: t.active.version.id },
        }),
      );
      const service = new CollectService({ vault: racing, manifest: t.active.manifest });
      const email = randomEmail();
      await assert.rejects(
        register(service, email),
        (err: unknown) =>
          err instanceof PledgeError && err.code === 'collect.identifier_taken' && err.status === 409,
      );
      assert.equal(racing.raced, 1);
      const winner = await t.vault.findSubjectByIdentifier(t.ctx, 'email', email);
      assert.ok(winner, 'the winner holds the address');
      const read = await t.vault.read(t.ctx, winner.id, 'provide-service');
      assert.equal(read.records.length, 0, "nothing of the loser's joined the winner");
    });

    test('a processor that fails or echoes the card is answered 502, and the card is stored nowhere', async () => {
      for (const mode of ['throws', 'echoes'] as const) {
        const service = new CollectService({
          vault: t.vault,
          manifest: t.active.manifest,
          processors: { 'card-processor': new LeakyProcessor(mode) },
        });
        const subject = (await register(service)).subject.id;
        const records = await countRows(t.database, 'records');
        await assert.rejects(
          service.collect(t.ctx, 'billing', {
            subject: { id: subject },
            data: {
              cardholder_name: 'G',
              billing_address: 'Arlington',
              card_number: CARD,
              card_expiry: FUTURE,
            },
          }),
          (err: unknown) => {
            assert.ok(err instanceof PledgeError);
            assert.equal(err.code, 'collect.processor_unavailable');
            assert.equal(err.status, 502);
            assert.equal(err.cause, undefined, 'the processor error, which quotes the card, is not chained');
            assert.ok(!JSON.stringify([err.message, err.details]).includes(CARD));
            return true;
          },
        );
        assert.equal(await countRows(t.database, 'records'), records);
      }
    });

    test('the test processor declines its decline card, and expired cards are refused before it', async () => {
      const subject = (await register()).subject.id;
      const billing = (card_number: string, card_expiry: string) =>
        collect.collect(t.ctx, 'billing', {
          subject: { id: subject },
          data: { cardholder_name: 'G', billing_address: 'Arlington', card_number, card_expiry },
        });
      await assert.rejects(billing('4000 0000 0000 0002', FUTURE), { code: 'collect.card_declined' });
      await assert.rejects(billing(CARD, '01/20'), { code: 'collect.card_expired' });
      await assert.rejects(billing(CARD, '13/40'), { code: 'collect.card_expiry_invalid' });
      const ok = await billing('3782 822463 10005', FUTURE);
      assert.equal(ok.card?.brand, 'amex');
      assert.equal(ok.card?.lastFour, '0005');
    });

    test('a source whose purposes need the full IP address keeps it whole', async () => {
      const manifest = structuredClone(t.active.manifest);
      for (const p of manifest.purposes) if (p.key === 'improve-products') p.full_ip_address = true;
      const service = new CollectService({ vault: t.vault, manifest });
      const subject = (await register()).subject.id;
      const result = await service.collectEvents(t.ctx, 'product-events', {
        subject: { id: subject },
        events: [{ event: 'login', ip: '203.0.113.77' }],
      });
      assert.equal(result.accepted, 1);
      const read = await t.vault.read(t.ctx, subject, 'provide-service');
      const ip = read.records.find((r) => r.source === 'product-events')?.fields.ip?.value;
      assert.equal(ip, '203.0.113.77');
    });

    test('a card recipient without a processor is a configuration error at start', () => {
      assert.throws(
        () => new CollectService({ vault: t.vault, manifest: t.active.manifest, processors: {} }),
        (err: unknown) => err instanceof ConfigError && /card-processor/.test(err.problems.join('\n')),
      );
    });

    test('the definition of a source is the manifest’s, without a write', () => {
      const d = collect.describeSource(t.ctx, 'feedback');
      assert.equal(d.voluntary, true);
      assert.match(d.notice ?? '', /Feedback is voluntary/);
      assert.deepEqual(
        d.fields.map((f) => [f.name, f.categoryName, f.required]),
        [
          ['email', 'E-mail address', false],
          ['message', 'Feedback', true],
          ['rating', 'Feedback', false],
        ],
      );
      assert.throws(() => collect.describeSource(t.ctx, 'nope'), { code: 'collect.source_unknown' });
    });
  });
}
