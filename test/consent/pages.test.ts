/**
 * The pages for people, over HTTP on every engine: the preference center shows each purpose and
 * saves only what moved, the unsubscribe link withdraws one list on one channel, the e-mail form
 * answers the same bytes for known and unknown addresses and mails a working link only to a known
 * one, GETs never change the ledger, and forms without their anti-forgery token change nothing.
 */
import { captureLogs } from '../helpers/logs.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { createApp, type App } from '../../src/app.js';
import { createLinkToken, deriveLinkTokenKey, type LinkTokenClaims } from '../../src/consent/link-tokens.js';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import type { Database } from '../../src/platform/db/database.js';
import { DIALECTS, type TestDatabase, type TestDialect, tablesOf } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST, openTestStores, randomEmail } from '../helpers/vault.js';

const ctx = createContext({ kind: 'cli', id: 'test' });
const MARKETING = 'Tell you about products, partners, opportunities and events';
const IMPROVE = 'Improve our products and websites';
const ANALYTICS = 'Measure how our sites are used';

// ---- an app with the example manifest on one engine -----------------------------------------

interface PagesApp {
  app: App;
  database: TestDatabase;
  logs(): string;
  /** Another app on the same databases (closed by cleanup). */
  sibling(overrides: Partial<Config>): Promise<App>;
  cleanup(): Promise<void>;
}

async function openPagesApp(dialect: TestDialect, overrides: Partial<Config> = {}): Promise<PagesApp> {
  const {
    database,
    keystore,
    dataDir,
    cleanup: closeStores,
  } = await openTestStores(dialect, 'pledge-pages-');
  const { logStream, logs } = captureLogs();
  const config = (more: Partial<Config>): Config => ({
    ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'info' }, { manifest: EXAMPLE_MANIFEST }),
    retentionIntervalSeconds: 0,
    ...overrides,
    ...more,
  });
  const app = await createApp(config({}), { database, keystore, logStream });
  const siblings: App[] = [];
  return {
    app,
    database,
    logs,
    async sibling(more) {
      const other = await createApp(config(more), { database, keystore, logStream });
      siblings.push(other);
      return other;
    },
    async cleanup() {
      for (const s of siblings) await s.close();
      await app.close();
      await closeStores();
    },
  };
}

// ---- what a browser would do ----------------------------------------------------------------

function decodeEntities(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** A page's form as a browser would submit it untouched: hidden fields and checked boxes. */
interface Form {
  action: string;
  fields: Array<[string, string]>;
  /** The checkboxes: name, value, checked. */
  boxes: Array<{ name: string; value: string; checked: boolean }>;
}

function formOf(page: string): Form {
  const action = /<form method="post" action="([^"]+)"/.exec(page)?.[1];
  assert.ok(action, 'the page has a form');
  const fields: Array<[string, string]> = [];
  for (const m of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields.push([decodeEntities(m[1] ?? ''), decodeEntities(m[2] ?? '')]);
  }
  const boxes = [
    ...page.matchAll(/<input type="checkbox" id="[^"]+" name="([^"]+)" value="([^"]+)"( checked)?/g),
  ].map((m) => ({
    name: decodeEntities(m[1] ?? ''),
    value: decodeEntities(m[2] ?? ''),
    checked: m[3] !== undefined,
  }));
  return { action: decodeEntities(action), fields, boxes };
}

/** The form body with the boxes set: `set` maps a box value to checked. */
function submission(form: Form, set: Record<string, boolean> = {}): string {
  const params = new URLSearchParams(form.fields);
  for (const box of form.boxes) {
    if (set[box.value] ?? box.checked) params.append(box.name, box.value);
  }
  return params.toString();
}

interface Session {
  cookie: string;
}

/** GET a page, keeping its cookie as a browser would. */
async function open(app: App, url: string, session?: Session, headers: Record<string, string> = {}) {
  const res = await app.http.inject({
    method: 'GET',
    url,
    headers: { ...(session?.cookie ? { cookie: session.cookie } : {}), ...headers },
  });
  const set = res.cookies.find((c) => c.name === 'pledge_csrf');
  const next: Session = { cookie: set ? `${set.name}=${set.value}` : (session?.cookie ?? '') };
  return { res, session: next };
}

async function post(
  app: App,
  url: string,
  body: string,
  session?: Session,
  headers: Record<string, string> = {},
) {
  return app.http.inject({
    method: 'POST',
    url,
    payload: body,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'user-agent': 'PagesTest/1.0',
      ...(session?.cookie ? { cookie: session.cookie } : {}),
      ...headers,
    },
  });
}

/** Everything a page could have changed. */
async function ledger(database: Database) {
  const count = async (table: 'consent_events' | 'consent_state' | 'audit_events') =>
    Number(
      (
        await tablesOf(database)
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return {
    events: await count('consent_events'),
    state: await count('consent_state'),
    audit: await count('audit_events'),
  };
}

/** Who acted in each consent change audited for a subject, oldest first. */
async function actorsOf(app: App, subjectId: string): Promise<unknown[]> {
  const events = await app.audit.listBySubject(createContext({ kind: 'cli', id: 'test' }), subjectId);
  return events.filter((e) => e.action.startsWith('consent.')).map((e) => e.actor as unknown);
}

function tokenFor(app: App, claims: LinkTokenClaims, now = new Date(), ttlSeconds?: number): string {
  return createLinkToken(deriveLinkTokenKey(app.keyring.indexKey), claims, {
    now,
    ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
  });
}

/** The text of a page without tags, for asserting what a person reads. */
function text(page: string): string {
  return decodeEntities(page.replace(/<[^>]+>/g, ' '))
    .replace(/\s+/g, ' ')
    .replace(/ ([.,:;])/g, '$1')
    .trim();
}

for (const dialect of DIALECTS) {
  describe(`pages for people on ${dialect}`, () => {
    let t: PagesApp;
    let app: App;

    before(async () => {
      t = await openPagesApp(dialect);
      app = t.app;
    });
    after(async () => {
      await t.cleanup();
    });

    const newSubject = async (jurisdiction = 'US', email = randomEmail()) =>
      (await app.vault.createSubject(ctx, { kind: 'customer', jurisdiction, identifiers: { email } })).id;

    test('the preference center lists each purpose with its state, and which ones are not optional', async () => {
      const subjectId = await newSubject('US');
      const { res } = await open(app, `/preferences?t=${tokenFor(app, { scope: 'preferences', subjectId })}`);
      assert.equal(res.statusCode, 200);
      assert.match(res.headers['content-type'] as string, /^text\/html; charset=utf-8/);
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.match(res.body, /^<!DOCTYPE html>\n<html lang="en">/);
      assert.match(res.body, /<link rel="stylesheet" href="\/assets\/policy.css">/);
      assert.doesNotMatch(res.body, /<script|style=/);
      const form = formOf(res.body);
      assert.equal(form.action, '/preferences');
      // In the US marketing e-mail, product improvement and site analytics are opt-out: all on.
      assert.deepEqual(
        form.boxes.map((b) => [b.value, b.checked]),
        [
          ['marketing-email', true],
          ['improve-products', true],
          ['site-analytics', true],
          ['1', false],
        ],
      );
      for (const box of form.boxes) {
        const id = new RegExp(`id="([^"]+)" name="${box.name}" value="${box.value}"`).exec(res.body)?.[1];
        assert.ok(id && res.body.includes(`<label for="${id}">`), `${box.value} has a label`);
      }
      const words = text(res.body);
      assert.ok(words.includes(`${MARKETING} Send you news about our other products`));
      assert.ok(words.includes('Opt out of everything optional'));
      assert.ok(words.includes('What you cannot switch off'));
      assert.ok(
        words.includes(
          'Provide the services you request Run your account, your meetings and your support sessions, and bill you for them. Not optional: we need this to provide the service you asked for.',
        ),
      );
      assert.ok(
        words.includes(
          'Comply with the law Answer lawful requests and judicial proceedings, and protect our rights. Not optional: the law requires it.',
        ),
      );
      const csrf = res.cookies.find((c) => c.name === 'pledge_csrf');
      assert.ok(csrf, 'the page sets its anti-forgery cookie');
      assert.equal(csrf.httpOnly, true);
      assert.equal(csrf.sameSite, 'Strict');
      assert.equal(csrf.secure, undefined, 'not Secure on an http:// public URL');
    });

    test("the defaults of the person's jurisdiction show: opt-in purposes are off in the EU", async () => {
      const subjectId = await newSubject('DE');
      const { res } = await open(app, `/preferences?t=${tokenFor(app, { scope: 'preferences', subjectId })}`);
      assert.deepEqual(
        formOf(res.body).boxes.map((b) => [b.value, b.checked]),
        [
          ['marketing-email', false],
          ['improve-products', true],
          ['site-analytics', false],
          ['1', false],
        ],
      );
    });

    test('saving records only the switch that moved, and says what changed', async () => {
      const subjectId = await newSubject('US');
      const url = `/preferences?t=${tokenFor(app, { scope: 'preferences', subjectId })}`;
      const { res, session } = await open(app, url);
      const before = await ledger(t.database);

      const saved = await post(
        app,
        '/preferences',
        submission(formOf(res.body), { 'marketing-email': false }),
        session,
      );
      assert.equal(saved.statusCode, 200);
      assert.ok(text(saved.body).includes(`This is what changed: ${MARKETING}: now off`), text(saved.body));
      assert.ok(!text(saved.body).includes(IMPROVE), 'only what changed is listed');
      const afterSave = await ledger(t.database);
      assert.equal(afterSave.events, before.events + 1);

      const history = await app.consent.history(ctx, { subjectId });
      assert.equal(history.length, 1);
      assert.equal(history[0]?.purpose, 'marketing-email');
      assert.equal(history[0]?.state, 'withdrawn');
      assert.equal(history[0]?.method, 'preference_center');
      assert.equal(history[0]?.evidence?.userAgent, 'PagesTest/1.0');
      assert.equal(history[0]?.evidence?.ip, '127.0.0.0', 'the address is kept truncated');
      assert.deepEqual(
        await actorsOf(app, subjectId),
        [{ kind: 'subject_link', id: subjectId, scope: 'preferences' }],
        'the audit names whose link made the change, not "anonymous"',
      );
      assert.deepEqual(await app.consent.decide(ctx, subjectId, 'marketing-email', 'email'), {
        allowed: false,
        reason: 'withdrawn',
      });

      // The page now shows the switch off; saving it unchanged records nothing.
      const again = await open(app, url, session);
      const form = formOf(again.res.body);
      assert.equal(form.boxes.find((b) => b.value === 'marketing-email')?.checked, false);
      const unchanged = await post(app, '/preferences', submission(form), again.session);
      assert.ok(text(unchanged.body).includes('Nothing changed'));
      assert.deepEqual(await ledger(t.database), afterSave);

      // Turning it back on.
      const on = await post(
        app,
        '/preferences',
        submission(form, { 'marketing-email': true }),
        again.session,
      );
      assert.ok(text(on.body).includes(`${MARKETING}: now on`));
      assert.deepEqual(await app.consent.decide(ctx, subjectId, 'marketing-email', 'email'), {
        allowed: true,
        reason: 'opt_in_granted',
      });
    });

    test('the global opt-out stops everything optional and is listed as a change', async () => {
      const subjectId = await newSubject('US');
      const url = `/preferences?t=${tokenFor(app, { scope: 'preferences', subjectId })}`;
      const { res, session } = await open(app, url);
      const saved = await post(app, '/preferences', submission(formOf(res.body), { '1': true }), session);
      assert.ok(text(saved.body).includes('This is what changed: Opt out of everything optional: now on'));
      assert.equal((await app.consent.decide(ctx, subjectId, 'improve-products')).reason, 'global_opt_out');
      const history = await app.consent.history(ctx, { subjectId });
      assert.deepEqual(
        history.map((e) => [e.purpose, e.state, e.method]),
        [['*', 'withdrawn', 'preference_center']],
      );
      const again = await open(app, url, session);
      assert.ok(
        text(again.res.body).includes(
          'Saved setting: on, but paused while you are opted out of everything optional.',
        ),
      );
    });

    test('an unsubscribe link withdraws one list on one channel after one button', async () => {
      const subjectId = await newSubject('US');
      const token = tokenFor(app, {
        scope: 'unsubscribe',
        subjectId,
        purpose: 'marketing-email',
        channel: 'email',
      });
      const before = await ledger(t.database);
      const { res, session } = await open(app, `/unsubscribe?t=${token}`);
      assert.equal(res.statusCode, 200);
      assert.ok(text(res.body).includes(`Select the button to stop: ${MARKETING} by e-mail.`));
      assert.equal([...res.body.matchAll(/<button/g)].length, 1, 'one button');
      assert.deepEqual(await ledger(t.database), before, 'opening the link changes nothing');

      const done = await post(app, '/unsubscribe', submission(formOf(res.body)), session);
      assert.equal(done.statusCode, 200);
      assert.ok(
        text(done.body).includes(`You are unsubscribed. We no longer do this: ${MARKETING} by e-mail.`),
      );
      const history = await app.consent.history(ctx, { subjectId });
      assert.deepEqual(
        history.map((e) => [e.purpose, e.channel, e.state, e.method]),
        [['marketing-email', 'email', 'withdrawn', 'unsubscribe_link']],
      );
      assert.deepEqual(await actorsOf(app, subjectId), [
        { kind: 'subject_link', id: subjectId, scope: 'unsubscribe' },
      ]);
      assert.deepEqual(await app.consent.decide(ctx, subjectId, 'marketing-email', 'email'), {
        allowed: false,
        reason: 'withdrawn',
      });

      // A second click records nothing new.
      const twice = await post(app, '/unsubscribe', submission(formOf(res.body)), session);
      assert.equal(twice.statusCode, 200);
      assert.equal((await app.consent.history(ctx, { subjectId })).length, 1);

      // The link to the preference center works and shows marketing off.
      const href = /<a href="(\/preferences\?t=[A-Za-z0-9_-]+)">your privacy choices<\/a>/.exec(
        done.body,
      )?.[1];
      assert.ok(href, 'the result links to the preference center');
      const prefs = await open(app, href, session);
      assert.equal(prefs.res.statusCode, 200);
      assert.equal(formOf(prefs.res.body).boxes.find((b) => b.value === 'marketing-email')?.checked, false);

      // Turning marketing back on there also lifts the e-mail unsubscribe.
      const on = await post(
        app,
        '/preferences',
        submission(formOf(prefs.res.body), { 'marketing-email': true }),
        prefs.session,
      );
      assert.ok(text(on.body).includes(`${MARKETING}: now on`));
      assert.deepEqual(await app.consent.decide(ctx, subjectId, 'marketing-email', 'email'), {
        allowed: true,
        reason: 'opt_in_granted',
      });
    });

    test('without a link, or with a bad or expired one, a page explains how to get a new link and nothing changes', async () => {
      const subjectId = await newSubject('US');
      const good = tokenFor(app, { scope: 'preferences', subjectId });
      const flipped = `${good.slice(0, 10)}${good[10] === 'A' ? 'B' : 'A'}${good.slice(11)}`;
      const expired = tokenFor(
        app,
        { scope: 'preferences', subjectId },
        new Date(Date.now() - 2 * 86_400_000),
      );
      const unsubscribe = tokenFor(app, { scope: 'unsubscribe', subjectId, purpose: 'marketing-email' });
      const otherKey = createLinkToken(
        deriveLinkTokenKey(randomBytes(32)),
        { scope: 'preferences', subjectId },
        { now: new Date() },
      );
      const unknownSubject = tokenFor(app, {
        scope: 'preferences',
        subjectId: '00000000-0000-4000-8000-000000000000',
      });
      const before = await ledger(t.database);

      // The published policy links to /preferences: without a link it offers to e-mail one.
      const missing = await open(app, '/preferences');
      assert.equal(missing.res.statusCode, 200);
      assert.ok(
        text(missing.res.body).includes(
          'we will send you a link to unsubscribe and to manage your privacy choices',
        ),
      );
      assert.equal(formOf(missing.res.body).action, '/unsubscribe/email');

      for (const bad of [flipped, expired, unsubscribe, otherKey, unknownSubject, 'x', good.slice(0, -2)]) {
        const page = await open(app, `/preferences?t=${encodeURIComponent(bad)}`);
        assert.equal(page.res.statusCode, 403, bad);
        assert.ok(text(page.res.body).includes('This link does not work'));
        assert.equal(formOf(page.res.body).action, '/unsubscribe/email');
      }
      const badUnsubscribe = await open(app, `/unsubscribe?t=${good}`);
      assert.equal(badUnsubscribe.res.statusCode, 403);

      // A POST with a valid form but a bad link changes nothing either.
      const { res, session } = await open(app, `/preferences?t=${good}`);
      const body = new URLSearchParams(submission(formOf(res.body), { 'marketing-email': false }));
      body.set('t', expired);
      const refused = await post(app, '/preferences', body.toString(), session);
      assert.equal(refused.statusCode, 403);
      const unsubscribeRefused = await post(app, '/unsubscribe', body.toString(), session);
      assert.equal(unsubscribeRefused.statusCode, 403);
      assert.deepEqual(await ledger(t.database), before);
    });

    test('a form without its anti-forgery token, or with a wrong one, gets 403 and changes nothing', async () => {
      const subjectId = await newSubject('US');
      const pref = await open(app, `/preferences?t=${tokenFor(app, { scope: 'preferences', subjectId })}`);
      const unsub = await open(
        app,
        `/unsubscribe?t=${tokenFor(app, { scope: 'unsubscribe', subjectId, purpose: 'marketing-email', channel: 'email' })}`,
      );
      const before = await ledger(t.database);
      const cases: Array<[string, Form, Session]> = [
        ['/preferences', formOf(pref.res.body), pref.session],
        ['/unsubscribe', formOf(unsub.res.body), unsub.session],
      ];
      for (const [url, form, session] of cases) {
        const body = new URLSearchParams(submission(form, { 'marketing-email': false, '1': true }));
        const withoutToken = new URLSearchParams(body);
        withoutToken.delete('_csrf');
        const wrongToken = new URLSearchParams(body);
        wrongToken.set('_csrf', 'forged-token');
        for (const [what, payload, s] of [
          ['no token', withoutToken.toString(), session],
          ['wrong token', wrongToken.toString(), session],
          ['no cookie', body.toString(), undefined],
          ["another session's cookie", body.toString(), { cookie: 'pledge_csrf=someone-else' }],
        ] as const) {
          const res = await post(app, url, payload, s);
          assert.equal(res.statusCode, 403, `${url}: ${what}`);
          assert.ok(
            text(res.body).includes(
              'This form has expired or did not come from our site, so nothing was changed.',
            ),
          );
        }
      }
      const email = await post(
        app,
        '/unsubscribe/email',
        new URLSearchParams({ email: randomEmail() }).toString(),
      );
      assert.equal(email.statusCode, 403);
      assert.deepEqual(await ledger(t.database), before);
      assert.equal((await app.consent.history(ctx, { subjectId })).length, 0);
    });

    test('GET never changes the ledger, on any page, with any link', async () => {
      const subjectId = await newSubject('US');
      const prefs = tokenFor(app, { scope: 'preferences', subjectId });
      const unsub = tokenFor(app, {
        scope: 'unsubscribe',
        subjectId,
        purpose: 'marketing-email',
        channel: 'email',
      });
      const before = await ledger(t.database);
      const historyBefore = await app.consent.history(ctx, { subjectId });
      for (const url of [
        `/preferences?t=${prefs}`,
        `/preferences?t=${unsub}`,
        '/preferences',
        `/unsubscribe?t=${unsub}`,
        `/unsubscribe?t=${prefs}`,
        '/unsubscribe',
        '/unsubscribe/email',
        '/assets/pages.css',
      ]) {
        // A link scanner, with and without the GPC signal, with and without a cookie.
        const first = await open(app, url, undefined, { 'sec-gpc': '1' });
        await open(app, url, first.session);
      }
      assert.deepEqual(await ledger(t.database), before);
      assert.deepEqual(await app.consent.history(ctx, { subjectId }), historyBefore);
    });

    test('the e-mail form: same answer for a known and an unknown address; only the known one gets a link', async () => {
      const mailbox = new EventEmitter();
      const received: Array<{ to: string[]; data: string }> = [];
      let releaseFirst: (() => void) | undefined;
      const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
      const smtp = new SMTPServer({
        authOptional: true,
        disabledCommands: ['STARTTLS', 'AUTH'],
        logger: false,
        onData(stream, session, callback) {
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            // The first message is accepted only once the test has had its HTTP answer: had the
            // handler waited for the mail, the answer would never come.
            void (received.length === 0 ? firstHeld : Promise.resolve()).then(() => {
              const message = {
                to: session.envelope.rcptTo.map((r) => r.address),
                data: Buffer.concat(chunks).toString('utf8'),
              };
              received.push(message);
              callback();
              mailbox.emit('message', message);
            });
          });
        },
      });
      await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
      const port = (smtp.server.address() as AddressInfo).port;
      const publicUrl = 'https://privacy.example-online.test';
      const mailer = await t.sibling({
        smtpUrl: `smtp://127.0.0.1:${port}`,
        publicUrl,
        mailFrom: 'privacy@example-online.test',
      });
      try {
        const known = randomEmail();
        const subjectId = await newSubject('US', known);
        const unknown = randomEmail();

        // On https the cookie is Secure and host-only.
        const form = await mailer.http.inject({ method: 'GET', url: '/unsubscribe' });
        assert.equal(form.statusCode, 200);
        const cookie = form.cookies.find((c) => c.name === '__Host-pledge_csrf');
        assert.ok(cookie);
        assert.equal(cookie.secure, true);
        assert.equal(cookie.httpOnly, true);
        assert.equal(cookie.sameSite, 'Strict');
        const session = { cookie: `${cookie.name}=${cookie.value}` };
        const csrf = formOf(form.body).fields.find(([n]) => n === '_csrf')?.[1] ?? '';
        const ask = (email: string) =>
          post(mailer, '/unsubscribe/email', new URLSearchParams({ _csrf: csrf, email }).toString(), session);

        const before = await ledger(t.database);
        const forUnknown = await ask(unknown);
        const forKnown = await ask(`  ${known.toUpperCase()} `);
        assert.equal(forKnown.statusCode, 200);
        assert.equal(forUnknown.statusCode, forKnown.statusCode);
        assert.ok(
          Buffer.from(forKnown.rawPayload).equals(Buffer.from(forUnknown.rawPayload)),
          'identical bytes',
        );
        const headers = (h: Record<string, unknown>) => {
          // The date, the request id and the client's remaining rate limit differ from request to request.
          const { date: _d, 'x-request-id': _r, 'x-ratelimit-remaining': _l, ...rest } = h;
          return rest;
        };
        assert.deepEqual(headers(forKnown.headers), headers(forUnknown.headers));
        assert.equal(forKnown.headers['set-cookie'], undefined);
        assert.ok(text(forKnown.body).includes('If this address is one we know, we have sent it a link.'));

        releaseFirst?.();
        const [message] = (await once(mailbox, 'message')) as [{ to: string[]; data: string }];
        // To the address as typed (the mail server may lower-case the domain).
        assert.deepEqual(
          message.to.map((a) => a.toLowerCase()),
          [known],
        );
        const body = decodeQuotedPrintable(message.data);
        assert.match(body, /^Subject: Your link to your privacy choices at Example Online/m);
        assert.match(body, /^From: Example Online <privacy@example-online\.test>/m);
        const link = new RegExp(`${publicUrl.replace(/\./g, '\\.')}(/preferences\\?t=[A-Za-z0-9_-]+)`).exec(
          body,
        )?.[1];
        assert.ok(link, 'the mail holds a preference-center link under the public URL');

        // The link opens the person's preference center.
        const opened = await open(mailer, link);
        assert.equal(opened.res.statusCode, 200);
        assert.ok(text(opened.res.body).includes('Your privacy center'));
        const { audit: _a, ...choices } = await ledger(t.database);
        assert.deepEqual(
          choices,
          { events: before.events, state: before.state },
          'asking for a link changes no choice',
        );

        // Closing the app waits for every lookup it started: still only the one message.
        await mailer.close();
        assert.equal(received.length, 1);
        // Its one log entry, committed by now: the link handed to the e-mail delivery provider.
        assert.equal((await ledger(t.database)).audit, before.audit + 1);
        assert.ok(
          !t.logs().includes(known) && !t.logs().includes(known.toUpperCase()) && !t.logs().includes(unknown),
          'no address in the logs',
        );
        assert.ok((await app.consent.history(ctx, { subjectId })).length === 0);
      } finally {
        await mailer.close();
        await new Promise<void>((resolve) => smtp.close(resolve));
      }
    });

    test('the e-mail form asks again for something that is not an e-mail address', async () => {
      const form = await open(app, '/unsubscribe');
      const csrf = formOf(form.res.body).fields.find(([n]) => n === '_csrf')?.[1] ?? '';
      const res = await post(
        app,
        '/unsubscribe/email',
        new URLSearchParams({ _csrf: csrf, email: 'not an address' }).toString(),
        form.session,
      );
      assert.equal(res.statusCode, 400);
      assert.ok(text(res.body).includes('That does not look like an e-mail address.'));
      assert.match(res.body, /aria-invalid="true"/);
    });

    test('the e-mail form refuses an address with a line break, a control character, brackets or quotes', async () => {
      const form = await open(app, '/unsubscribe');
      const csrf = formOf(form.res.body).fields.find(([n]) => n === '_csrf')?.[1] ?? '';
      for (const email of [
        'ada@example.com\r\nBcc: everyone@example.com',
        'a\u0000da@example.com',
        'Ada <ada@example.com>',
        'ada@example.com>',
        '"ada"@example.com',
        'ada@[192.0.2.1]',
      ]) {
        const res = await post(
          app,
          '/unsubscribe/email',
          new URLSearchParams({ _csrf: csrf, email }).toString(),
          form.session,
        );
        assert.equal(res.statusCode, 400, JSON.stringify(email));
        assert.ok(text(res.body).includes('That does not look like an e-mail address.'));
      }
    });

    test('without PLEDGE_SMTP_URL a known address gets no mail and a warning is logged, without the address', async () => {
      const known = randomEmail();
      await newSubject('US', known);
      const form = await open(app, '/unsubscribe');
      const csrf = formOf(form.res.body).fields.find(([n]) => n === '_csrf')?.[1] ?? '';
      const quiet = await t.sibling({});
      const res = await post(
        quiet,
        '/unsubscribe/email',
        new URLSearchParams({ _csrf: csrf, email: known }).toString(),
        form.session,
      );
      assert.equal(res.statusCode, 200);
      await quiet.close();
      assert.match(t.logs(), /mail not sent: PLEDGE_SMTP_URL is not set/);
      assert.ok(!t.logs().includes(known));
    });
  });
}

describe('pages and Global Privacy Control', () => {
  let t: PagesApp;
  let dir: string;

  before(async () => {
    // The example manifest with site analytics covered by GPC.
    dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-pages-gpc-'));
    const source = (await readFile(EXAMPLE_MANIFEST, 'utf8')).replace(
      '    channels: [web, email]\n    retention: P13M\n',
      '    channels: [web, email]\n    retention: P13M\n    gpc: true\n',
    );
    assert.match(source, /gpc: true/);
    const manifestPath = path.join(dir, 'pledge.yaml');
    await writeFile(manifestPath, source);
    t = await openPagesApp('sqlite', { manifestPath });
  });
  after(async () => {
    await t.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  test('a save with Sec-GPC: 1 records the signal and says so; the GET before it changes nothing', async () => {
    const app = t.app;
    const subjectId = (await app.vault.createSubject(ctx, { kind: 'customer', jurisdiction: 'US' })).id;
    const { res, session } = await open(
      app,
      `/preferences?t=${tokenFor(app, { scope: 'preferences', subjectId })}`,
      undefined,
      { 'sec-gpc': '1' },
    );
    assert.ok(
      text(res.body).includes(
        `Your browser sends a Global Privacy Control signal. When you save, we record it as an opt-out of: ${ANALYTICS}.`,
      ),
    );
    assert.equal((await app.consent.history(ctx, { subjectId })).length, 0);

    const saved = await post(
      app,
      '/preferences',
      submission(formOf(res.body), { 'marketing-email': false }),
      session,
      {
        'sec-gpc': '1',
      },
    );
    const words = text(saved.body);
    assert.ok(words.includes(`${MARKETING}: now off`));
    assert.ok(
      words.includes(`${ANALYTICS}: now off (because your browser sent a Global Privacy Control signal)`),
    );
    assert.deepEqual(
      (await app.consent.history(ctx, { subjectId })).map((e) => [e.purpose, e.state, e.method]),
      [
        ['site-analytics', 'denied', 'gpc'],
        ['marketing-email', 'withdrawn', 'preference_center'],
      ],
    );
    assert.equal((await app.consent.decide(ctx, subjectId, 'site-analytics')).reason, 'gpc');
  });
});

/** The text of a MIME message with quoted-printable parts decoded (enough to find a link). */
function decodeQuotedPrintable(data: string): string {
  return data
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
