/**
 * Campaigns end to end on every engine, into a real SMTP server: who gets a message and who does
 * not (and why), what a message carries (both DKIM signatures over the List-Unsubscribe pair, the
 * footer with working links and the postal address), a person who opts out mid-campaign, a runner
 * stopped or dead mid-campaign (never a message twice), temporary and permanent SMTP failures, the
 * API's refusals, one-click unsubscribe as a mailbox provider does it, and the policy-change notice.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { simpleParser, type ParsedMail } from 'mailparser';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { deriveReturnTokenKeys, verifyReturnToken } from '../../src/comms/return-tokens.js';
import { fixedClock } from '../../src/platform/clock.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';
import { LIST, openCampaignApp, PUBLIC_URL, testResolver, type CampaignTestApp } from './campaign-app.js';

const TEMPLATE = {
  subject: 'News for {{first_name}}',
  text: 'Hello {{first_name}},\n\nWe have new webinars.',
  html: '<html><body><p>Hello {{first_name}},</p><p>We have new webinars.</p></body></html>',
};

interface CampaignJson {
  id: string;
  status: string;
  counts?: { total: number; byStatus: Record<string, number>; byReason: Record<string, number> };
}

async function api(
  t: CampaignTestApp,
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  key = t.key,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await t.app.http.inject({
    method,
    url,
    headers: { authorization: `Bearer ${key}` },
    ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}),
  });
  return { status: res.statusCode, json: res.json<Record<string, unknown>>() };
}

async function createCampaign(t: CampaignTestApp, subjects: string[], list = LIST): Promise<string> {
  const res = await api(t, 'POST', '/api/v1/campaigns', {
    name: 'Webinars',
    list,
    template: TEMPLATE,
    audience: { subjects },
  });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  return (res.json.campaign as CampaignJson).id;
}

async function startCampaign(t: CampaignTestApp, id: string): Promise<void> {
  const res = await api(t, 'POST', `/api/v1/campaigns/${id}/send`);
  assert.equal(res.status, 202, JSON.stringify(res.json));
}

async function sendsOf(
  t: CampaignTestApp,
  id: string,
  key = t.key,
): Promise<Map<string, { status: string; reason: string | null }>> {
  const res = await api(t, 'GET', `/api/v1/campaigns/${id}/sends?limit=1000`, undefined, key);
  assert.equal(res.status, 200);
  const sends = res.json.sends as Array<{ subjectId: string; status: string; reason: string | null }>;
  return new Map(sends.map((s) => [s.subjectId, { status: s.status, reason: s.reason }]));
}

/** Records that these people unsubscribed from the list by e-mail, as their unsubscribe link does. */
async function unsubscribe(t: CampaignTestApp, people: ReadonlyArray<{ subjectId: string }>): Promise<void> {
  await t.app.consent.record(
    t.ctx,
    people.map((p) => ({
      holder: { subjectId: p.subjectId },
      purpose: LIST,
      channel: 'email',
      state: 'withdrawn' as const,
      method: 'unsubscribe_link' as const,
    })),
  );
}

function header(mail: ParsedMail, name: string): string {
  const lines = mail.headerLines.filter((h) => h.key === name.toLowerCase());
  assert.equal(lines.length, 1, `exactly one ${name} header`);
  return lines[0]!.line
    .slice(lines[0]!.line.indexOf(':') + 1)
    .replace(/\r?\n[ \t]+/g, ' ')
    .trim();
}

for (const dialect of DIALECTS) {
  describe(`campaigns on ${dialect}`, () => {
    let t: CampaignTestApp;

    before(async () => {
      t = await openCampaignApp(dialect, { keepRunner: true });
    });
    after(async () => t.cleanup());

    test('the people who may be mailed get one signed message with its footer; the others get nothing, and their sends say why', async () => {
      const us = await t.register('US', 'Grace');
      const optedOut = await t.register('US');
      const suppressed = await t.register('US');
      const euNoOptIn = await t.register('EU');
      const euOptedIn = await t.register('EU', 'Émilie');
      const erased = await t.register('US');
      const noAddress = await t.app.vault.createSubject(t.ctx, { kind: 'prospect', jurisdiction: 'US' });
      await t.app.consent.record(t.ctx, [
        {
          holder: { subjectId: optedOut.subjectId },
          purpose: LIST,
          channel: 'email',
          state: 'withdrawn',
          method: 'preference_center',
        },
        {
          holder: { subjectId: euOptedIn.subjectId },
          purpose: LIST,
          channel: 'email',
          state: 'granted',
          method: 'preference_center',
        },
      ]);
      await t.app.suppression.suppress(t.ctx, { address: suppressed.address, reason: 'complaint' });
      await t.app.vault.erase(t.ctx, erased.subjectId);

      const everyone = [us, optedOut, suppressed, euNoOptIn, euOptedIn, erased].map((p) => p.subjectId);
      const id = await createCampaign(t, [...everyone, noAddress.id]);
      const before = t.sink.accepted();
      await startCampaign(t, id);
      // The runner inside the app sends; the sink tells when both messages are in.
      await t.sink.waitForAccepted(before + 2);
      await t.app.campaigns.runner.idle();
      // The other tests drive runners of their own.
      await t.app.campaigns.runner.stop();

      const status = await api(t, 'GET', `/api/v1/campaigns/${id}`);
      const campaign = status.json.campaign as CampaignJson;
      assert.equal(campaign.status, 'done');
      assert.equal(campaign.counts?.byStatus.sent, 2);
      assert.equal(campaign.counts?.byStatus.skipped, 5);
      const sends = await sendsOf(t, id);
      assert.deepEqual(sends.get(us.subjectId), { status: 'sent', reason: null });
      assert.deepEqual(sends.get(euOptedIn.subjectId), { status: 'sent', reason: null });
      assert.deepEqual(sends.get(optedOut.subjectId), { status: 'skipped', reason: 'withdrawn' });
      assert.deepEqual(sends.get(suppressed.subjectId), { status: 'skipped', reason: 'suppressed' });
      assert.deepEqual(sends.get(euNoOptIn.subjectId), { status: 'skipped', reason: 'opt_in_missing' });
      assert.deepEqual(sends.get(erased.subjectId), { status: 'skipped', reason: 'unknown_subject' });
      assert.deepEqual(sends.get(noAddress.id), { status: 'skipped', reason: 'no_address' });
      for (const p of [optedOut, suppressed, euNoOptIn, erased]) assert.equal(t.sink.countFor(p.address), 0);

      for (const person of [us, euOptedIn]) {
        const messages = t.sink.messages.filter((m) => m.to === person.address.toLowerCase());
        assert.equal(messages.length, 1);
        const raw = messages[0]!.raw;
        // The VERP return path carries the message's return token, signed for this person and list.
        const verp = /^bounces\+([a-z2-7]{55})@mail\.example-online\.test$/.exec(messages[0]!.from);
        assert.ok(verp, `MAIL FROM: ${messages[0]!.from}`);
        assert.ok(messages[0]!.from.split('@')[0]!.length <= 64, 'the local part fits RFC 5321');
        const returned = verifyReturnToken(deriveReturnTokenKeys(t.app.keyring.indexKey), verp[1]!, {
          now: new Date(),
          lists: [LIST],
        });
        assert.ok(
          returned.ok && returned.token.subjectId === person.subjectId && returned.token.list === LIST,
        );

        // Both signatures verify against the published keys and cover the List-Unsubscribe pair.
        const verified = await dkimVerify(raw, { resolver: testResolver() });
        assert.deepEqual(
          verified.results
            .map((r) => [r.status.result, (r.status as { header?: { a?: string } }).header?.a])
            .sort(),
          [
            ['pass', 'ed25519-sha256'],
            ['pass', 'rsa-sha256'],
          ],
        );
        const parsed = await simpleParser(raw);
        const signatures = parsed.headerLines.filter((h) => h.key === 'dkim-signature');
        assert.equal(signatures.length, 2);
        for (const signature of signatures) {
          const tags = signature.line.replace(/\r?\n[ \t]+/g, ' ');
          const h = (/\bh=([^;]+)/.exec(tags)?.[1] ?? '').toLowerCase().split(/\s*:\s*/);
          for (const name of [
            'from',
            'subject',
            'date',
            'message-id',
            'to',
            'list-unsubscribe',
            'list-unsubscribe-post',
            'list-id',
          ]) {
            assert.ok(h.includes(name), `h= covers ${name}: ${tags}`);
          }
          for (const name of ['from', 'subject', 'list-unsubscribe', 'list-unsubscribe-post']) {
            assert.equal(h.filter((n) => n === name).length, 2, `${name} is over-signed: ${tags}`);
          }
        }

        const mail = await simpleParser(raw);
        const first = person === us ? 'Grace' : 'Émilie';
        assert.equal(mail.subject, `News for ${first}`);
        const listUnsubscribe = header(mail, 'List-Unsubscribe');
        const m =
          /^<(https:\/\/[^>]+\/unsubscribe\/one-click\/([A-Za-z0-9_-]+))>, <mailto:(unsubscribe\+[a-z2-7]+)@mail\.example-online\.test>$/.exec(
            listUnsubscribe,
          );
        assert.ok(m, `List-Unsubscribe: ${listUnsubscribe}`);
        assert.ok((m[3] ?? '').length <= 64, `the mailto local part fits RFC 5321: ${m[3]}`);
        assert.equal(header(mail, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
        assert.match(header(mail, 'List-Id'), /^".+" <marketing-email\.mail\.example-online\.test>$/);
        assert.match(
          mail.messageId ?? '',
          new RegExp(`^<${id}\\.${verp[1]!}@mail\\.example-online\\.test>$`),
          'the Message-ID carries the same return token',
        );

        // The footer, in text and HTML: why, the choice, the links, the postal address.
        const text = mail.text ?? '';
        const html = typeof mail.html === 'string' ? mail.html : '';
        for (const body of [text, html]) {
          assert.match(body, new RegExp(`Hello ${first}`));
          assert.match(body, /Tell you about products, partners, opportunities and events/);
          assert.match(body, /7414 Hollister Avenue, Goleta, CA 93117, US/);
        }
        assert.match(text, person === us ? /you have not opted out/ : /you agreed to receive them/);
        const unsubscribe = /Unsubscribe from these e-mails: (\S+)/.exec(text)?.[1] ?? '';
        const preferences = /Choose what we send you: (\S+)/.exec(text)?.[1] ?? '';
        assert.ok(unsubscribe.startsWith(`${PUBLIC_URL}/unsubscribe?t=`));
        assert.ok(preferences.startsWith(`${PUBLIC_URL}/preferences?t=`));
        assert.ok(html.includes(unsubscribe.replaceAll('&', '&amp;')));
        for (const link of [unsubscribe, preferences]) {
          const page = await t.app.http.inject({ method: 'GET', url: link.slice(PUBLIC_URL.length) });
          assert.equal(page.statusCode, 200, link);
        }
      }

      // Nothing personal at rest in the campaign tables.
      const rows = JSON.stringify([
        await tablesOf(t.database).selectFrom('campaigns').selectAll().execute(),
        await tablesOf(t.database).selectFrom('campaign_sends').selectAll().execute(),
      ]);
      for (const p of [us, euOptedIn, optedOut]) assert.ok(!rows.includes(p.address.split('@')[0]!));
      assert.ok(!rows.includes('Grace'));
    });

    test('a person who opts out mid-campaign gets nothing more', async () => {
      const people = await Promise.all([1, 2, 3, 4].map(() => t.register('US')));
      const id = await createCampaign(
        t,
        people.map((p) => p.subjectId),
      );
      await startCampaign(t, id);
      const runner = t.app.campaigns.createRunner({ concurrency: 1 });
      const others = new Set(people.map((p) => p.address.toLowerCase()));
      let first: string | undefined;
      // While the first message is at the server, everyone else opts out.
      t.sink.hold = async (message) => {
        if (first !== undefined) return;
        first = message.to;
        others.delete(message.to);
        await unsubscribe(
          t,
          people.filter((p) => others.has(p.address.toLowerCase())),
        );
      };
      try {
        await t.drain(runner);
      } finally {
        t.sink.hold = undefined;
      }
      assert.ok(first !== undefined);
      assert.equal(t.sink.countFor(first), 1);
      for (const address of others) assert.equal(t.sink.countFor(address), 0);
      const sends = await sendsOf(t, id);
      assert.deepEqual([...sends.values()].map((s) => `${s.status}:${s.reason ?? ''}`).sort(), [
        'sent:',
        'skipped:withdrawn',
        'skipped:withdrawn',
        'skipped:withdrawn',
      ]);
    });

    test('a runner stopped mid-campaign leaves the rest to another, and nobody gets a message twice', async () => {
      const people = await Promise.all(Array.from({ length: 6 }, () => t.register('US')));
      const id = await createCampaign(
        t,
        people.map((p) => p.subjectId),
      );
      const first = t.app.campaigns.createRunner({ concurrency: 1 });
      let seen = 0;
      let stopping: Promise<void> | undefined;
      t.sink.hold = (message) => {
        if (people.some((p) => p.address.toLowerCase() === message.to) && ++seen === 2)
          stopping = first.stop();
        return Promise.resolve();
      };
      first.start();
      await startCampaign(t, id);
      first.wake();
      try {
        while (stopping === undefined)
          await new Promise<void>((r) => t.sink.events.once('message', () => r()));
        await stopping;
      } finally {
        t.sink.hold = undefined;
      }
      const afterStop = people.filter((p) => t.sink.countFor(p.address) > 0).length;
      assert.equal(afterStop, 2, 'the stopped runner finished the message in flight and started no other');
      await t.drain(t.app.campaigns.createRunner());
      for (const p of people) assert.equal(t.sink.countFor(p.address), 1, 'one message each');
      const status = (await api(t, 'GET', `/api/v1/campaigns/${id}`)).json.campaign as CampaignJson;
      assert.equal(status.status, 'done');
      assert.equal(status.counts?.byStatus.sent, 6);
    });

    test('a runner that dies mid-send leaves that send uncertain, never sent again; the rest is sent once', async () => {
      const people = await Promise.all(Array.from({ length: 4 }, () => t.register('US')));
      const id = await createCampaign(
        t,
        people.map((p) => p.subjectId),
      );
      await startCampaign(t, id);
      const doomed = t.app.campaigns.createRunner({ concurrency: 1 });
      let release: ((err: Error) => void) | undefined;
      let heldFor: string | undefined;
      const held = new Promise<void>((resolve) => {
        t.sink.hold = (message) => {
          if (heldFor !== undefined || !people.some((p) => p.address.toLowerCase() === message.to)) {
            return Promise.resolve();
          }
          heldFor = message.to;
          resolve();
          // The message never completes while its runner "dies" (it is refused at clean-up).
          return new Promise<void>((_resolve, reject) => (release = reject));
        };
      });
      const dying = doomed.runOnce();
      await held;
      // Another instance, later than the dead runner's leases.
      const clock = fixedClock(new Date(Date.now() + 11 * 60_000));
      const survivor = t.app.campaigns.createRunner({ clock });
      const round = await survivor.runOnce();
      assert.equal(round.expired, 1, 'the send in flight is found past its lease');
      await t.drain(survivor);
      release?.(Object.assign(new Error('gone'), { responseCode: 451 }));
      await dying;
      t.sink.hold = undefined;

      assert.ok(heldFor !== undefined);
      assert.equal(t.sink.countFor(heldFor), 0);
      for (const p of people.filter((x) => x.address.toLowerCase() !== heldFor)) {
        assert.equal(t.sink.countFor(p.address), 1);
      }
      const status = (await api(t, 'GET', `/api/v1/campaigns/${id}`)).json.campaign as CampaignJson;
      assert.equal(status.counts?.byStatus.sent, 3);
      assert.equal(status.counts?.byStatus.uncertain, 1);
      assert.equal(status.counts?.byReason.interrupted, 1);
    });

    test('an opt-out while a wave is in flight stops every later message, though they were prepared before it', async () => {
      const people = await Promise.all(Array.from({ length: 6 }, () => t.register('US')));
      const id = await createCampaign(
        t,
        people.map((p) => p.subjectId),
      );
      await startCampaign(t, id);
      // Waves of two: all six messages are prepared (decided, read, signed) before the first is sent.
      const runner = t.app.campaigns.createRunner({ concurrency: 2 });
      let first: string | undefined;
      t.sink.hold = async (message) => {
        if (first !== undefined) return;
        first = message.to;
        await unsubscribe(
          t,
          people.filter((p) => p.address.toLowerCase() !== first),
        );
      };
      try {
        await t.drain(runner);
      } finally {
        t.sink.hold = undefined;
      }
      assert.ok(first !== undefined);
      const delivered = people.filter((p) => t.sink.countFor(p.address) > 0);
      // At most the other message of the wave in flight when the choice was recorded goes out.
      assert.ok(delivered.length <= 2, `${delivered.length} people got a message`);
      for (const p of delivered) assert.equal(t.sink.countFor(p.address), 1);
      const sends = await sendsOf(t, id);
      const statuses = [...sends.values()].map((s) => `${s.status}:${s.reason ?? ''}`);
      assert.equal(statuses.filter((s) => s === 'sent:').length, delivered.length);
      assert.equal(statuses.filter((s) => s === 'skipped:withdrawn').length, 6 - delivered.length);
    });

    test('a runner that dies mid-wave leaves the whole wave uncertain, never sent again; the rest is sent once', async () => {
      const people = await Promise.all(Array.from({ length: 6 }, () => t.register('US')));
      const ours = new Set(people.map((p) => p.address.toLowerCase()));
      const id = await createCampaign(
        t,
        people.map((p) => p.subjectId),
      );
      await startCampaign(t, id);
      const doomed = t.app.campaigns.createRunner({ concurrency: 3 });
      let release: ((err: Error) => void) | undefined;
      let heldFor: string | undefined;
      let waveDelivered = 0;
      // The first message of the wave never completes while its runner "dies"; the other two are
      // accepted, but their runner records them only with the next wave, which never comes.
      const wave = new Promise<void>((resolve) => {
        t.sink.hold = (message) => {
          if (!ours.has(message.to)) return Promise.resolve();
          if (heldFor === undefined) {
            heldFor = message.to;
            return new Promise<void>((_resolve, reject) => (release = reject));
          }
          if (++waveDelivered === 2) resolve();
          return Promise.resolve();
        };
      });
      const dying = doomed.runOnce();
      await wave;
      // Another instance, later than the dead runner's leases.
      const clock = fixedClock(new Date(Date.now() + 11 * 60_000));
      const survivor = t.app.campaigns.createRunner({ clock });
      const round = await survivor.runOnce();
      assert.equal(round.expired, 3, 'the three sends of the wave are found past their lease');
      await t.drain(survivor);
      release?.(Object.assign(new Error('gone'), { responseCode: 451 }));
      await dying;
      t.sink.hold = undefined;

      assert.ok(heldFor !== undefined);
      assert.equal(t.sink.countFor(heldFor), 0);
      for (const p of people) assert.ok(t.sink.countFor(p.address) <= 1, 'nobody gets a message twice');
      assert.equal(people.filter((p) => t.sink.countFor(p.address) === 1).length, 5);
      const status = (await api(t, 'GET', `/api/v1/campaigns/${id}`)).json.campaign as CampaignJson;
      assert.equal(status.counts?.byStatus.sent, 3);
      assert.equal(status.counts?.byStatus.uncertain, 3);
      assert.equal(status.counts?.byReason.interrupted, 3);
    });

    test('a temporary SMTP refusal is retried; a permanent one fails and suppresses the address', async () => {
      const deferred = await t.register('US');
      const bouncing = await t.register('US');
      const fine = await t.register('US');
      const id = await createCampaign(
        t,
        [deferred, bouncing, fine].map((p) => p.subjectId),
      );
      await startCampaign(t, id);
      let refusals = 0;
      t.sink.onRcpt = (address) => {
        if (address === deferred.address.toLowerCase() && refusals++ === 0) {
          return { code: 451, message: 'Try again later' };
        }
        if (address === bouncing.address.toLowerCase()) return { code: 550, message: 'No such user' };
        return undefined;
      };
      const clock = fixedClock(new Date());
      const runner = t.app.campaigns.createRunner({ clock });
      try {
        await runner.runOnce();
        let sends = await sendsOf(t, id);
        assert.deepEqual(sends.get(deferred.subjectId), { status: 'pending', reason: 'smtp_451' });
        assert.deepEqual(sends.get(bouncing.subjectId), { status: 'failed', reason: 'hard_bounce' });
        assert.deepEqual(sends.get(fine.subjectId), { status: 'sent', reason: null });
        assert.equal((await runner.runOnce()).claimed, 0, 'not before its backoff');
        clock.advance(runner.retryDelayMs(1));
        await t.drain(runner);
        sends = await sendsOf(t, id);
        assert.deepEqual(sends.get(deferred.subjectId), { status: 'sent', reason: null });
      } finally {
        t.sink.onRcpt = undefined;
      }
      assert.equal(refusals, 2);
      assert.equal(t.sink.countFor(deferred.address), 1);
      assert.equal(t.sink.countFor(bouncing.address), 0);
      assert.equal(await t.app.suppression.isSuppressed(t.ctx, bouncing.address, LIST), true);
    });

    test('bad campaigns are refused with comms.* codes and leave nothing behind', async () => {
      const count = async () =>
        Number(
          (
            await tablesOf(t.database)
              .selectFrom('campaigns')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      const n = await count();
      const base = {
        name: 'x',
        list: LIST,
        template: TEMPLATE,
        audience: { segment: { jurisdiction: 'US' } },
      };
      const cases: Array<[unknown, number, string]> = [
        [{ ...base, list: 'provide-service' }, 422, 'comms.list_not_marketing'],
        [{ ...base, list: 'site-analytics' }, 422, 'comms.list_not_marketing'],
        [{ ...base, list: 'newsletter' }, 422, 'comms.list_unknown'],
        [{ ...base, template: { ...TEMPLATE, html: '<p>{{#if}}</p>' } }, 422, 'comms.template_invalid'],
        [{ ...base, template: { ...TEMPLATE, text: 'Hi {{> partial}}' } }, 422, 'comms.template_invalid'],
        // Purpose limitation: marketing may not use a phone number or a password, and a typo is no field.
        [
          { ...base, template: { ...TEMPLATE, text: 'Call {{phone}}' } },
          422,
          'comms.template_field_unusable',
        ],
        [
          { ...base, template: { ...TEMPLATE, html: '<p>{{#if organization}}{{password}}{{/if}}</p>' } },
          422,
          'comms.template_field_unusable',
        ],
        [
          { ...base, template: { ...TEMPLATE, subject: 'Hi {{frist_name}}' } },
          422,
          'comms.template_field_unusable',
        ],
        [{ ...base, audience: { subjects: ['not-a-uuid'] } }, 400, 'comms.campaign_invalid'],
        [{ ...base, audience: {} }, 400, 'comms.campaign_invalid'],
        [{ ...base, skipFooter: true }, 400, 'comms.campaign_invalid'],
        [{ name: 'x' }, 400, 'comms.campaign_invalid'],
      ];
      for (const [body, status, code] of cases) {
        const res = await api(t, 'POST', '/api/v1/campaigns', body);
        assert.equal(res.status, status, JSON.stringify(body));
        assert.equal((res.json.error as { code: string }).code, code);
      }
      assert.equal(await count(), n, 'nothing written');
      const phone = await api(t, 'POST', '/api/v1/campaigns', {
        ...base,
        template: {
          ...TEMPLATE,
          text: 'Hello {{first_name}} {{last_name}} of {{organization}}, call {{phone}}',
        },
      });
      const error = phone.json.error as { message: string; details: Record<string, unknown> };
      assert.equal(
        error.message,
        'the text template uses {{phone}}, but "marketing-email" may not use it (it is user.contact.phone_number, ' +
          'and the purpose covers user.name, user.contact.email, user.contact.organization); fields this list may ' +
          'use: email, first_name, last_name, organization',
      );
      assert.deepEqual(error.details, {
        path: 'template.text',
        field: 'phone',
        list: LIST,
        usable: ['email', 'first_name', 'last_name', 'organization'],
      });
      // Fields the list may use, helpers and the data of #each are all fine.
      const fine = await api(t, 'POST', '/api/v1/campaigns', {
        ...base,
        template: {
          subject: '{{#if first_name}}News for {{first_name}}{{else}}News{{/if}}',
          text: 'Hello {{first_name}} {{last_name}}{{#if organization}} of {{organization}}{{/if}}.',
          html: '<p>{{#with organization}}{{this}}{{/with}} {{email}}</p>',
        },
      });
      assert.equal(fine.status, 201, JSON.stringify(fine.json));

      const missing = await api(t, 'GET', '/api/v1/campaigns/0190b2a0-0000-7000-8000-000000000000');
      assert.equal(missing.status, 404);
      assert.equal((missing.json.error as { code: string }).code, 'comms.campaign_not_found');
      const id = await createCampaign(t, [(await t.register('US')).subjectId]);
      await startCampaign(t, id);
      const again = await api(t, 'POST', `/api/v1/campaigns/${id}/send`);
      assert.equal(again.status, 409);
      assert.equal((again.json.error as { code: string }).code, 'comms.campaign_started');
      const { key: other } = await t.app.apiKeys.createKey(t.ctx, {
        name: 'reader',
        system: 'marketing-automation',
        scopes: ['consent:read'],
      });
      assert.equal((await api(t, 'GET', `/api/v1/campaigns/${id}`, undefined, other)).status, 403);
      // A system that does not serve the campaign's list does not see it, whatever its scopes.
      const { key: analytics } = await t.app.apiKeys.createKey(t.ctx, {
        name: 'analytics',
        system: 'product-analytics',
        scopes: ['mail:send'],
      });
      const hidden = await api(t, 'GET', `/api/v1/campaigns/${id}`, undefined, analytics);
      assert.equal(hidden.status, 403);
      assert.equal((hidden.json.error as { code: string }).code, 'auth.purpose_not_allowed');
      await t.drain(t.app.campaigns.createRunner());
    });

    test('a one-click unsubscribe posted to the List-Unsubscribe URL keeps the person out of the next campaign', async () => {
      const person = await t.register('US');
      const first = await createCampaign(t, [person.subjectId]);
      await startCampaign(t, first);
      await t.drain(t.app.campaigns.createRunner());
      const message = t.sink.messages.find((m) => m.to === person.address.toLowerCase());
      assert.ok(message);
      const url =
        /<(https:[^>]+)>/.exec(header(await simpleParser(message.raw), 'List-Unsubscribe'))?.[1] ?? '';
      // As a mailbox provider does it: a POST with the one field, no cookie, no page first.
      const posted = await t.app.http.inject({
        method: 'POST',
        url: url.slice(PUBLIC_URL.length),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'List-Unsubscribe=One-Click',
      });
      assert.equal(posted.statusCode, 200);
      const second = await createCampaign(t, [person.subjectId]);
      await startCampaign(t, second);
      await t.drain(t.app.campaigns.createRunner());
      assert.equal(t.sink.countFor(person.address), 1);
      const sends = await sendsOf(t, second);
      assert.equal(sends.get(person.subjectId)?.status, 'skipped');
      assert.equal(sends.get(person.subjectId)?.reason, 'withdrawn');
    });

    test('a material policy change is announced once to the people it affects, with the changes and the policy link', async () => {
      const people = await Promise.all([1, 2].map(() => t.register('US')));
      const erased = await t.register('US');
      await t.app.vault.erase(t.ctx, erased.subjectId);
      const source = await readFile(EXAMPLE_MANIFEST, 'utf8');
      const changed = source
        .replace(
          'consent: { default: opt_in, US: opt_out }\n    channels: [email]',
          'consent: opt_out\n    channels: [email]',
        )
        .replace('version: "2012-09-07"', 'version: "2026-12-01"')
        .replace('effective: "2012-09-07"', 'effective: "2026-12-01"');
      assert.notEqual(changed, source);
      const file = path.join(os.tmpdir(), `pledge-changed-${dialect}-${process.pid}.yaml`);
      await writeFile(file, changed);
      const later = await t.sibling({ manifestPath: file });
      await later.campaigns.runner.stop();
      const again = await t.sibling({ manifestPath: file });
      await again.campaigns.runner.stop();
      const notices = await tablesOf(t.database)
        .selectFrom('campaigns')
        .selectAll()
        .where('policy_version_id', 'is not', null)
        .execute();
      assert.equal(notices.length, 1, 'one notice, however many servers start with the new version');
      const notice = notices[0]!;
      assert.equal(notice.kind, 'service');
      await t.drain(later.campaigns.createRunner());
      for (const p of people) {
        const messages = t.sink.messages.filter((m) => m.to === p.address.toLowerCase());
        assert.equal(messages.length, 1);
        const mail = await simpleParser(messages[0]!.raw);
        assert.match(mail.subject ?? '', /Changes to our privacy policy/);
        assert.match(mail.text ?? '', /opt-in|opt out|consent|ask/i);
        assert.ok((mail.text ?? '').includes(`${PUBLIC_URL}/privacy`));
        assert.equal(
          mail.headers.get('list-unsubscribe'),
          undefined,
          'a service message has no List-Unsubscribe',
        );
        const verified = await dkimVerify(messages[0]!.raw, { resolver: testResolver() });
        assert.ok(verified.results.every((r) => r.status.result === 'pass'));
      }
      assert.equal(t.sink.countFor(erased.address), 0);
      // A notice is service mail, sent for provide-service: a system of that purpose reads its sends.
      const { key: service } = await t.app.apiKeys.createKey(t.ctx, {
        name: 'web',
        system: 'web-app',
        scopes: ['mail:send'],
      });
      const sends = await sendsOf(t, notice.id, service);
      assert.equal(sends.has(erased.subjectId), false, 'never to an erased subject');
      assert.ok(people.every((p) => sends.get(p.subjectId)?.status === 'sent'));
    });
  });
}
