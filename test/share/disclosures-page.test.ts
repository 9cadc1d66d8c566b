/**
 * "Who got my data", the privacy center's page, over HTTP on every engine: a person with a card
 * handed to the card processor, a disclosure to an affiliate and a legal disclosure whose notice is
 * prohibited sees the first two (recipient, kind, purpose, categories in words, when) and nothing of
 * the third until the prohibition ends (a fake clock; then the authority lifts it, over HTTP). Each
 * proof downloads, belongs to the person's own entry, and verifies with the log's public key (the
 * `pledge audit verify-proof` command and its checker, the merkle and note functions, and the
 * independent examples/log-audit/audit.mjs); another person's leaf is refused, a bad or signed-out
 * link gets the link form, and GETs change nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { leafHash, verifyInclusion } from '../../src/audit/merkle.js';
import { openNote, parseCheckpointBody, parseVerifierKey } from '../../src/audit/note.js';
import { verifyProofFiles } from '../../src/audit/log.proof-verify.js';
import { createLinkToken, deriveLinkTokenKeys } from '../../src/consent/link-tokens.js';
import { fixedClock } from '../../src/platform/clock.js';
import { asLinkHolder, createContext, type Context } from '../../src/platform/context.js';
import { DisclosuresView } from '../../src/share/disclosures.view.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { exampleWithTestSystem, TEST_SYSTEM } from '../helpers/manifests.js';
import { runPledge } from '../helpers/cli.js';
import { forgeSignature } from '../helpers/tokens.js';
import { openLegalApp, requestBody, type LegalTestApp } from './legal-app.js';

const DAY = 86_400_000;
const ROOT = path.resolve(import.meta.dirname, '../..');
const execFileAsync = promisify(execFile);

/** The text of a page without tags, for asserting what a person reads. */
function text(page: string): string {
  return page
    .replace(/<[^>]+>/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/\s+/g, ' ');
}

/** The rows of the disclosures table, each as its cells' text. */
function rowsOf(page: string): string[][] {
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(page)?.[1] ?? '';
  return [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((r) =>
    [...(r[1] ?? '').matchAll(/<t[hd][^>]*>([\s\S]*?)<\/t[hd]>/g)].map((c) => text(c[1] ?? '').trim()),
  );
}

/** The proof links of a page, as leaf numbers. */
function proofLeaves(page: string): number[] {
  return [...page.matchAll(/\/preferences\/disclosures\/proof\?t=[A-Za-z0-9_.-]+&amp;leaf=(\d+)/g)].map((m) =>
    Number(m[1]),
  );
}

interface ProofJson {
  index: number;
  size: number;
  entry: string;
  proof: string[];
  checkpoint: string;
}

for (const dialect of DIALECTS) {
  describe(`who got my data, on ${dialect}`, () => {
    let t: LegalTestApp;
    const cli = createContext({ kind: 'cli', id: 'test' });
    const system = createContext({ kind: 'system', id: TEST_SYSTEM, key: 'test' });
    // The integrator signs a checkpoint when ten seconds have passed since the last one: on this
    // clock, ahead of the wall clock, the test signs when it needs to and the app's own integrator
    // (on the wall clock) signs none in between.
    const signing = fixedClock(new Date(Date.now() + 60_000));
    let ada: { subjectId: string; address: string };
    let bob: { subjectId: string; address: string };
    let legalId: string;
    let until: Date;

    const signCheckpoint = async () => {
      signing.advance(11_000);
      await t.app.log.integrateNow(createContext({ kind: 'cli', id: 'test' }, { clock: signing }));
    };
    const tokenOf = async (subjectId: string) =>
      createLinkToken(
        deriveLinkTokenKeys(t.app.keyring.use('links')),
        { scope: 'preferences', subjectId },
        { now: new Date(), generation: await t.app.consent.linkGenerationOf(cli, subjectId) },
      );
    const get = (url: string) => t.app.http.inject({ method: 'GET', url });
    const page = async (subjectId: string) => {
      const res = await get(`/preferences/disclosures?t=${await tokenOf(subjectId)}`);
      assert.equal(res.statusCode, 200, res.body);
      return res.body;
    };
    const affiliateDisclosure = async (subjectId: string) => {
      const out = await t.app.share.disclose(system, {
        recipient: 'group-companies',
        purpose: 'marketing-email',
        subjects: [subjectId],
        fields: ['email', 'first_name'],
      });
      assert.equal(out.subjects[0]?.disclosed, true, JSON.stringify(out.subjects[0]));
    };

    before(async () => {
      t = await openLegalApp(dialect, { manifestPath: exampleWithTestSystem() });
      ada = await t.register();
      bob = await t.register();
      await signCheckpoint();

      // The card at checkout, handed to the card processor (as the collection point records it).
      const grant = await t.app.share.authorizePassThrough(system, {
        recipient: 'card-processor',
        purpose: 'provide-service',
        fields: [{ name: 'card_number', category: 'user.financial.payment_card.number' }],
      });
      await t.app.share.recordPassThrough(system, [grant.entryFor(ada.subjectId, { source: 'checkout' })]);
      await affiliateDisclosure(ada.subjectId);
      await affiliateDisclosure(bob.subjectId);

      // A court order whose notice is prohibited for thirty days.
      until = new Date(Date.now() + 30 * DAY);
      const r = await t.app.legal.receive(
        t.as(t.alice),
        requestBody([ada.subjectId], { notice: { prohibited: true, until: until.toISOString() } }),
      );
      await t.app.legal.approve(t.as(t.bob), r.id);
      const out = await t.app.legal.disclose(t.as(t.alice), r.id, { fields: ['email'] });
      assert.deepEqual(out.disclosedSubjects, [ada.subjectId]);
      legalId = r.id;
      await signCheckpoint();
    });
    after(() => t.cleanup());

    test('the card pass-through and the affiliate are listed, newest first; the legal disclosure is not', async () => {
      const body = await page(ada.subjectId);
      assert.match(body, /<h1>Your privacy center<\/h1>/);
      const rows = rowsOf(body);
      assert.equal(rows.length, 2, JSON.stringify(rows));
      const [affiliate, card] = rows;
      assert.match(affiliate?.[1] ?? '', /^Companies of the Example Systems group A company of our group$/);
      assert.match(affiliate?.[3] ?? '', /e-mail address/);
      assert.match(affiliate?.[3] ?? '', /first name/);
      assert.match(card?.[1] ?? '', /^Card processor A service provider working for us$/);
      assert.match(card?.[3] ?? '', /card number/i);
      assert.ok(card?.[2], 'a purpose name');
      // Dates as <time> with the machine-readable instant, newest first.
      const times = [...body.matchAll(/<time datetime="([^"]+)">/g)].map((m) => Date.parse(m[1] ?? ''));
      assert.equal(times.length, 2);
      assert.ok(times[0]! >= times[1]!, 'newest first');
      assert.ok(Math.abs(Date.now() - times[0]!) < 5 * 60_000);
      // Held back without a trace: no row, no authority, no legal words, no extra proof.
      assert.doesNotMatch(text(body), /authorit|court|legal|law required/i);
      assert.equal(proofLeaves(body).length, 2);
      // How to check, with the public key and checkpoint, and the way back to the choices.
      assert.ok(body.includes(t.app.log.verifierKey));
      assert.match(body, /<a href="\/log\/checkpoint">/);
      assert.match(body, /<a href="\/preferences\?t=[^"]+">Your privacy choices<\/a>/);
      assert.match(body, /aria-current="page">Who got your data</);
    });

    test('nothing personal on the page beyond the link the person holds', async () => {
      const body = await page(ada.subjectId);
      for (const secret of [ada.address, ada.subjectId, 'Ada', 'Lovelace', bob.subjectId])
        assert.ok(!body.includes(secret), `the page does not show ${secret}`);
    });

    test('each proof downloads, is the person’s own entry, and verifies with the public key', async () => {
      const token = await tokenOf(ada.subjectId);
      const leaves = proofLeaves(await page(ada.subjectId));
      const own = (await t.app.audit.listBySubject(cli, ada.subjectId)).filter((e) =>
        ['share.disclose', 'share.pass_through'].includes(e.action),
      );
      const dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-proof-'));
      try {
        for (const leaf of leaves) {
          const res = await get(`/preferences/disclosures/proof?t=${token}&leaf=${leaf}`);
          assert.equal(res.statusCode, 200, res.body);
          assert.match(
            String(res.headers['content-disposition']),
            /^attachment; filename="pledge-proof-\d+\.json"$/,
          );
          assert.equal(res.headers['cache-control'], 'no-store');
          const proof = res.json<ProofJson>();
          assert.equal(proof.index, leaf);
          const entry = JSON.parse(proof.entry) as { action: string; details: { recipient: string } };
          const event = own.find((e) => e.leafIndex === leaf);
          assert.ok(event, 'the leaf is one of the person’s own entries');
          assert.equal(entry.action, event.action);
          assert.ok(!proof.entry.includes(ada.subjectId), 'the entry names the person by commitment only');

          // What `pledge audit verify-proof` runs: the proof and its checkpoint, the public key.
          const checked = verifyProofFiles({
            proof: res.body,
            checkpoints: [proof.checkpoint],
            key: t.app.log.verifierKey,
          });
          assert.equal(checked.ok, true, checked.message);
          // The merkle and note functions by hand: the checkpoint is of the proof's size.
          const signed = parseCheckpointBody(
            openNote(proof.checkpoint, [parseVerifierKey(t.app.log.verifierKey)]).body,
          );
          assert.equal(signed.size, proof.size);
          const hashes = proof.proof.map((h) => Buffer.from(h, 'base64'));
          assert.ok(
            verifyInclusion(
              leafHash(Buffer.from(proof.entry, 'utf8')),
              leaf,
              proof.size,
              hashes,
              signed.root,
            ),
          );
          // A changed entry does not verify.
          const forged = verifyProofFiles({
            proof: JSON.stringify({ ...proof, entry: proof.entry.replace('share.', 'shore.') }),
            checkpoints: [proof.checkpoint],
            key: t.app.log.verifierKey,
          });
          assert.equal(forged.ok, false);

          // The independent checker, as an outsider runs it (no database, no Pledge code).
          const file = path.join(dir, `proof-${leaf}.json`);
          await writeFile(file, res.body);
          const run = await execFileAsync(process.execPath, [
            path.join(ROOT, 'examples/log-audit/audit.mjs'),
            '--proof',
            file,
            '--key',
            t.app.log.verifierKey,
          ]);
          assert.ok(run.stdout.length > 0);

          // `pledge audit verify-proof`, as the page tells the person to run it (once is enough).
          if (leaf === leaves[0]) {
            const checkpointFile = path.join(dir, `checkpoint-${leaf}.txt`);
            await writeFile(checkpointFile, proof.checkpoint);
            const cliRun = await runPledge([
              'audit',
              'verify-proof',
              '--proof',
              file,
              '--checkpoint',
              checkpointFile,
              '--key',
              t.app.log.verifierKey,
            ]);
            assert.equal(cliRun.code, 0, cliRun.stderr);
            assert.match(cliRun.stdout, new RegExp(`^OK: entry ${leaf} is in the log of size ${proof.size}`));
          }
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    test('another person’s leaf, a held leaf, or no leaf is refused, whatever `leaf` says', async () => {
      const token = await tokenOf(ada.subjectId);
      const entriesOf = async (subjectId: string) =>
        (await t.app.audit.listBySubject(cli, subjectId)).filter((e) => e.leafIndex !== undefined);
      const bobs = (await entriesOf(bob.subjectId)).find((e) => e.action === 'share.disclose');
      const held = (await entriesOf(ada.subjectId)).find(
        (e) => e.action === 'share.disclose' && e.details?.legalRequest === legalId,
      );
      assert.ok(bobs?.leafIndex !== undefined && held?.leafIndex !== undefined);
      for (const leaf of [bobs.leafIndex, held.leafIndex, 999_999]) {
        const res = await get(`/preferences/disclosures/proof?t=${token}&leaf=${leaf}`);
        assert.equal(res.statusCode, 404, `leaf ${leaf}`);
        assert.match(res.headers['content-type'] as string, /^text\/html/);
        assert.ok(!res.body.includes('"proof"'));
        assert.match(text(res.body), /There is no proof to download here/);
      }
      for (const leaf of ['-1', 'x', '1e3', '']) {
        const res = await get(`/preferences/disclosures/proof?t=${token}&leaf=${leaf}`);
        assert.equal(res.statusCode, 400, `leaf ${JSON.stringify(leaf)}`);
      }
    });

    test('a disclosure not yet in a checkpoint is being recorded, without a proof', async () => {
      const carol = await t.register();
      await affiliateDisclosure(carol.subjectId);
      const body = await page(carol.subjectId);
      const rows = rowsOf(body);
      assert.equal(rows.length, 1);
      assert.match(rows[0]?.[4] ?? '', /Being recorded, check again in a minute\./);
      assert.deepEqual(proofLeaves(body), []);
      await t.app.log.integrateNow(cli);
      const [event] = (await t.app.audit.listBySubject(cli, carol.subjectId)).filter(
        (e) => e.action === 'share.disclose',
      );
      assert.ok(event?.leafIndex !== undefined);
      const early = await get(
        `/preferences/disclosures/proof?t=${await tokenOf(carol.subjectId)}&leaf=${event.leafIndex}`,
      );
      assert.equal(early.statusCode, 404, 'no proof before a checkpoint covers it');
      await signCheckpoint();
      assert.deepEqual(proofLeaves(await page(carol.subjectId)), [event.leafIndex]);
    });

    test('a bad or signed-out link gets the link form, as /preferences does', async () => {
      const token = await tokenOf(bob.subjectId);
      for (const url of ['/preferences/disclosures', '/preferences/disclosures/proof?leaf=0']) {
        const res = await get(url);
        assert.match(res.body, /action="\/unsubscribe\/email"/, url);
      }
      const forged = await get(`/preferences/disclosures?t=${forgeSignature(token)}`);
      assert.equal(forged.statusCode, 403);
      assert.match(forged.body, /This link does not work/);
      await t.app.consent.signOutEveryLink(
        asLinkHolder(createContext({ kind: 'anonymous' }), bob.subjectId, 'preferences'),
        bob.subjectId,
      );
      for (const url of [
        `/preferences/disclosures?t=${token}`,
        `/preferences/disclosures/proof?t=${token}&leaf=0`,
      ]) {
        const res = await get(url);
        assert.equal(res.statusCode, 403, url);
        assert.match(res.body, /every link to your privacy choices was signed out/);
        assert.ok(!res.body.includes('Companies of the Example Systems group'));
      }
    });

    test('GETs change nothing', async () => {
      const count = async () =>
        Number(
          (
            await tablesOf(t.database)
              .selectFrom('audit_events')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      const before = await count();
      const token = await tokenOf(ada.subjectId);
      await page(ada.subjectId);
      for (const leaf of proofLeaves(await page(ada.subjectId)))
        await get(`/preferences/disclosures/proof?t=${token}&leaf=${leaf}`);
      await get(`/preferences?t=${token}`);
      assert.equal(await count(), before);
    });

    test('the legal disclosure is shown once the prohibition ends (fake clock), then once it is lifted', async () => {
      const view = new DisclosuresView({
        audit: t.app.audit,
        log: t.app.log,
        legal: t.app.legal,
        manifest: { manifest: t.app.active.manifest },
      });
      const at = (ms: number): Context =>
        createContext({ kind: 'anonymous' }, { clock: fixedClock(new Date(ms)) });
      const names = async (ctx: Context) =>
        (await view.disclosuresOf(ctx, ada.subjectId)).items.map((i) => i.recipientName);
      const authority = 'Courts and public authorities';
      assert.ok(!(await names(at(until.getTime() - 1000))).includes(authority), 'held the day before');
      const ended = at(until.getTime() + 1000);
      const shown = (await view.disclosuresOf(ended, ada.subjectId)).items;
      const legal = shown.find((i) => i.recipientName === authority);
      assert.ok(legal, 'shown once the prohibition has ended');
      assert.equal(legal.recipientKind, 'authority');
      // What the entry recorded (the address, collected to provide the service and answered as the
      // law required), in words.
      const [entry] = (await t.app.audit.listBySubject(cli, ada.subjectId)).filter(
        (e) => e.details?.legalRequest === legalId,
      );
      assert.deepEqual(entry?.details?.categories, ['user.contact.email']);
      assert.deepEqual(legal.categories, ['e-mail address']);
      assert.equal(legal.proof, 'ready');
      assert.ok(legal.leaf !== undefined && (await view.proofOf(ended, ada.subjectId, legal.leaf)));
      assert.equal(await view.proofOf(at(until.getTime() - 1000), ada.subjectId, legal.leaf), undefined);

      // Over HTTP (the wall clock): still held, until the authority lifts the prohibition.
      assert.equal(rowsOf(await page(ada.subjectId)).length, 2);
      await t.app.legal.setNoticeTerms(t.as(t.alice), legalId, { prohibited: false });
      const body = await page(ada.subjectId);
      const rows = rowsOf(body);
      assert.equal(rows.length, 3);
      assert.match(
        rows[0]?.[1] ?? '',
        /^Courts and public authorities A court or public authority, as the law required$/,
      );
      assert.match(
        rows[0]?.[3] ?? '',
        legal.categories.length > 0 ? /e-mail address/ : /None of your information/,
      );
      const token = await tokenOf(ada.subjectId);
      const res = await get(`/preferences/disclosures/proof?t=${token}&leaf=${legal.leaf}`);
      assert.equal(res.statusCode, 200);
      const checked = verifyProofFiles({
        proof: res.body,
        checkpoints: [res.json<ProofJson>().checkpoint],
        key: t.app.log.verifierKey,
      });
      assert.equal(checked.ok, true, checked.message);
    });
  });
}
