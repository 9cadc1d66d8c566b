/**
 * Data-subject requests end to end on each engine: the form and the API answer the same whether or
 * not the person is known; codes are HMACs at rest (no address, number or code in any row), expire
 * after 10 minutes, allow 3 attempts and are rate-limited; the status link is signed and expires;
 * staff approve, extend (the requester is told why), reject and complete tasks through the API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext } from '../../src/platform/context.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { openRequestsApp, randomEmail, type RequestsTestApp } from './requests-app.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

for (const dialect of DIALECTS) {
  describe(`data-subject requests (${dialect})`, () => {
    let t: RequestsTestApp;
    before(async () => {
      t = await openRequestsApp(dialect);
    });
    after(async () => {
      await t.cleanup();
    });

    // Each call from its own client address: the form's budget (10 a minute per client) is tested apart.
    let client = 0;
    const nextIp = () => `203.0.113.${(client++ % 250) + 1}`;
    const submitForm = (fields: Record<string, string>, ip = nextIp()) =>
      t.app.http.inject({
        method: 'POST',
        url: '/requests',
        headers: FORM,
        remoteAddress: ip,
        payload: new URLSearchParams(fields).toString(),
      });
    const tokenOf = (location: string | undefined) =>
      new URL(location ?? '', 'http://x').searchParams.get('t') ?? '';
    const verifyForm = (token: string, fields: Record<string, string>) =>
      t.app.http.inject({
        method: 'POST',
        url: '/requests/verify',
        headers: FORM,
        remoteAddress: nextIp(),
        payload: new URLSearchParams({ t: token, ...fields }).toString(),
      });

    test('the form works without JavaScript and is linked from /privacy and the privacy center', async () => {
      const page = await t.app.http.inject({ method: 'GET', url: '/requests' });
      assert.equal(page.statusCode, 200);
      assert.match(page.body, /<form method="post" action="\/requests">/);
      assert.doesNotMatch(page.body, /<script/);
      for (const type of [
        'access',
        'export',
        'erasure',
        'rectification',
        'restriction',
        'objection',
        'inquiry',
      ])
        assert.match(page.body, new RegExp(`value="${type}"`));
      const policy = await t.app.http.inject({ method: 'GET', url: '/privacy' });
      assert.match(policy.body, /href="\/requests"/);
      const center = await t.app.http.inject({ method: 'GET', url: '/preferences' });
      assert.match(center.body, /href="\/requests"/);
    });

    test('intake answers the same whether or not the person is known, and mails the same way', async () => {
      const known = await t.register();
      const unknown = randomEmail();
      const answers = [];
      for (const email of [known.address, unknown]) answers.push(await submitForm({ type: 'access', email }));
      const [a, b] = answers;
      assert.ok(a && b);
      assert.equal(a.statusCode, 303);
      assert.equal(b.statusCode, a.statusCode);
      assert.match(a.headers.location ?? '', /^\/requests\/verify\?t=/);
      assert.equal(a.body, b.body);
      const pageA = await t.app.http.inject({ method: 'GET', url: a.headers.location ?? '' });
      const pageB = await t.app.http.inject({ method: 'GET', url: b.headers.location ?? '' });
      assert.equal(
        pageA.body.replace(/name="t" value="[^"]+"/, ''),
        pageB.body.replace(/name="t" value="[^"]+"/, ''),
      );
      const mailA = t.mailTo(known.address);
      const mailB = t.mailTo(unknown);
      assert.equal(mailA.length, 1);
      assert.equal(mailB.length, 1);
      assert.match(mailA[0] ?? '', /verification code is \d{6}/);
      assert.match(mailB[0] ?? '', /verification code is \d{6}/);

      // The API: the same status and body, whoever it names.
      const apiA = await t.call('POST', '/api/v1/requests', { type: 'erasure', email: known.address });
      const apiB = await t.call('POST', '/api/v1/requests', { type: 'erasure', email: unknown });
      assert.equal(apiA.status, 202);
      assert.equal(apiB.status, 202);
      assert.deepEqual(Object.keys(apiA.body.request as object), Object.keys(apiB.body.request as object));
      assert.equal((apiA.body.request as { status: string }).status, 'verifying');
      assert.equal((apiB.body.request as { status: string }).status, 'verifying');
    });

    test('bad input is a clear error with its path, never a 500', async () => {
      const page = await submitForm({ type: 'everything', email: 'not-an-address' });
      assert.equal(page.statusCode, 400);
      assert.match(page.body, /type: must be one of/);
      assert.match(page.body, /email: is not an e-mail address/);
      const api = await t.call('POST', '/api/v1/requests', { type: 'access' });
      assert.equal(api.status, 400);
      const error = api.body.error as { code: string; details: { problems: Array<{ path: string }> } };
      assert.equal(error.code, 'requests.request_invalid');
      assert.equal(error.details.problems[0]?.path, 'email');
    });

    test('a right code verifies the request, matches the known person and opens a signed status page', async () => {
      const known = await t.register();
      const res = await submitForm({ type: 'access', email: known.address });
      const token = tokenOf(res.headers.location);
      const verified = await verifyForm(token, { email_code: t.lastCode(known.address) });
      assert.equal(verified.statusCode, 303);
      assert.match(verified.headers.location ?? '', /^\/requests\/status\?t=/);
      const status = await t.app.http.inject({ method: 'GET', url: verified.headers.location ?? '' });
      assert.equal(status.statusCode, 200);
      assert.match(status.body, /Your identity is verified/);
      assert.match(status.body, /Confirm it is you: done/);
      assert.match(status.body, /We will answer by \d{4}-\d{2}-\d{2}/);
      const id = t.app.requests.requestOfLink(t.ctx, tokenOf(verified.headers.location), 'status');
      assert.ok(id);
      const r = await t.app.requests.getOrThrow(t.ctx, id);
      assert.equal(r.subjectId, known.subjectId);
      assert.equal(r.status, 'verified');

      // A changed link, or one past its time, opens nothing.
      const statusToken = tokenOf(verified.headers.location);
      const tampered = statusToken.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
      const bad = await t.app.http.inject({
        method: 'GET',
        url: `/requests/status?t=${encodeURIComponent(tampered)}`,
      });
      assert.equal(bad.statusCode, 400);
      const later = createContext(
        { kind: 'anonymous' },
        { clock: fixedClock(new Date(Date.now() + 200 * 86_400_000)) },
      );
      assert.equal(t.app.requests.requestOfLink(later, statusToken, 'status'), undefined);
      // A verification link is not a status link.
      assert.equal(t.app.requests.requestOfLink(t.ctx, token, 'status'), undefined);
    });

    test('the status link goes only with the answer that verified, and by mail to the verified address', async () => {
      const address = randomEmail();
      const res = await submitForm({ type: 'access', email: address });
      const token = tokenOf(res.headers.location);
      const first = await verifyForm(token, { email_code: t.lastCode(address) });
      assert.match(first.headers.location ?? '', /^\/requests\/status\?t=/);
      const mailed = t.mailTo(address).at(-1) ?? '';
      assert.match(mailed, /your access request is verified/);
      assert.match(mailed, /\/requests\/status\?t=/);
      // Whoever else holds the verification link (who typed the address in the form) gets no status link.
      const again = await verifyForm(token, { email_code: '000000' });
      assert.equal(again.statusCode, 200);
      assert.equal(again.headers.location, undefined);
      assert.match(again.body, /verified already/);
    });

    test('identifiers of two different people: the request acts on neither person', async () => {
      const one = await t.register();
      const phone = `+4479${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
      const other = await t.app.vault.createSubject(t.ctx, { kind: 'customer', identifiers: { phone } });
      const res = await submitForm({ type: 'export', email: one.address, phone });
      const token = tokenOf(res.headers.location);
      const code = /(\d{6})/.exec(t.sms.messages.filter((m) => m.to === phone).at(-1)?.text ?? '')?.[1] ?? '';
      const done = await verifyForm(token, { email_code: t.lastCode(one.address), phone_code: code });
      assert.equal(done.statusCode, 303);
      const id = t.app.requests.requestOfLink(t.ctx, token, 'verify') ?? '';
      const view = await t.app.requests.view(t.ctx, id);
      assert.notEqual(other.id, one.subjectId);
      assert.equal(view.request.subjectId, undefined, 'matched to nobody');
      assert.ok(view.events.some((e) => e.kind === 'identifiers_conflict'));
      assert.equal(view.steps[0]?.result?.conflict, true);
    });

    test('three wrong codes spend the code and the request acts on nothing', async () => {
      const address = randomEmail();
      const res = await submitForm({ type: 'erasure', email: address });
      const token = tokenOf(res.headers.location);
      const right = t.lastCode(address);
      const wrong = right === '000000' ? '111111' : '000000';
      const first = await verifyForm(token, { email_code: wrong });
      assert.match(first.body, /That code is not right/);
      assert.match(first.body, /2 tries left/);
      await verifyForm(token, { email_code: wrong });
      const third = await verifyForm(token, { email_code: wrong });
      assert.match(third.body, /We could not verify your request/);
      // The right code is refused now.
      const late = await verifyForm(token, { email_code: right });
      assert.doesNotMatch(late.headers.location ?? '', /status/);
      const id = t.app.requests.requestOfLink(t.ctx, token, 'verify') ?? '';
      const r = await t.app.requests.getOrThrow(t.ctx, id);
      assert.equal(r.status, 'rejected');
      assert.equal(r.reason, 'unverified');
    });

    test('a code expires after 10 minutes (fake clock)', async () => {
      const address = randomEmail();
      const clock = fixedClock(new Date());
      const ctx = createContext({ kind: 'anonymous' }, { clock });
      const out = await t.app.requests.receive(
        ctx,
        { type: 'access', email: address },
        { agent: 'person', ip: '198.51.100.1' },
      );
      const code = t.lastCode(address);
      clock.advance(9 * 60_000);
      assert.equal((await t.app.requests.verificationOf(ctx, out.requestId))[0]?.status, 'pending');
      clock.advance(60_000);
      const result = await t.app.requests.verify(ctx, out.requestId, { email: code });
      assert.equal(result.check.statuses[0]?.status, 'expired');
      assert.equal(result.statusToken, undefined);
      assert.equal((await t.app.requests.getOrThrow(ctx, out.requestId)).status, 'rejected');
    });

    test('a phone number gets its code by SMS; one left unverified is not acted on, and the request says so', async () => {
      const known = await t.register();
      const phone = `+4420794${String(Math.floor(Math.random() * 100_000)).padStart(5, '0')}`;
      const res = await submitForm({ type: 'access', email: known.address, phone });
      const token = tokenOf(res.headers.location);
      const sms = t.sms.messages.filter((m) => m.to === phone);
      assert.equal(sms.length, 1);
      assert.match(sms[0]?.text ?? '', /verification code is \d{6}/);
      const wrong = /(\d{6})/.exec(sms[0]?.text ?? '')?.[1] === '000000' ? '111111' : '000000';
      await verifyForm(token, { email_code: t.lastCode(known.address), phone_code: wrong });
      await verifyForm(token, { phone_code: wrong });
      const done = await verifyForm(token, { phone_code: wrong });
      assert.equal(done.statusCode, 303, 'verified by e-mail once the phone is settled');
      const id = t.app.requests.requestOfLink(t.ctx, token, 'verify') ?? '';
      const view = await t.app.requests.view(t.ctx, id);
      const verify = view.steps.find((s) => s.name === 'verify');
      assert.deepEqual(verify?.result, { verified: ['email'], unverified: ['phone'], matched: true });
      assert.ok(
        view.events.some(
          (e) => e.kind === 'verified' && JSON.stringify(e.details).includes('"unverified":["phone"]'),
        ),
      );
    });

    test('no address, phone number or code rests in plaintext in any row', async () => {
      const address = randomEmail();
      const phone = '+14155550123';
      const res = await submitForm({
        type: 'inquiry',
        email: address,
        phone,
        details: 'what do you keep on me',
      });
      assert.equal(res.statusCode, 303);
      const code = t.lastCode(address);
      const q = tablesOf(t.database);
      const rows = JSON.stringify([
        await q.selectFrom('dsr_requests').selectAll().execute(),
        await q.selectFrom('dsr_verifications').selectAll().execute(),
        await q.selectFrom('dsr_steps').selectAll().execute(),
        await q.selectFrom('dsr_events').selectAll().execute(),
        await q.selectFrom('jobs').selectAll().execute(),
      ]);
      assert.ok(!rows.includes(address), 'no address at rest');
      assert.ok(!rows.includes(phone) && !rows.includes(phone.slice(1)), 'no phone number at rest');
      assert.ok(!rows.includes('what do you keep'), 'no free text at rest');
      const verifications = await q.selectFrom('dsr_verifications').selectAll().execute();
      for (const v of verifications) assert.ok(v.code_hmac === null || !v.code_hmac.includes(code));
      assert.ok(verifications.some((v) => v.code_hmac !== null && /^[0-9a-f]{64}$/.test(v.code_hmac)));
    });

    test('codes are limited per address and per client address', async () => {
      const address = randomEmail();
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++)
        statuses.push((await submitForm({ type: 'access', email: address }, `192.0.2.${i + 1}`)).statusCode);
      assert.deepEqual(statuses, [303, 303, 303, 303, 303, 429]);
      assert.equal(t.mailTo(address).length, 5, 'no sixth code was sent');
      // The form itself: 10 posts a minute per client address.
      const burst: number[] = [];
      for (let i = 0; i < 11; i++)
        burst.push((await submitForm({ type: 'access', email: randomEmail() }, '192.0.2.200')).statusCode);
      assert.deepEqual(burst, [...Array<number>(10).fill(303), 429]);
      // One network asking for many addresses is stopped too.
      const ctx = createContext({ kind: 'anonymous' });
      let refused: unknown;
      for (let i = 0; i < 31 && refused === undefined; i++) {
        try {
          await t.app.requests.receive(
            ctx,
            { type: 'access', email: randomEmail() },
            { agent: 'person', ip: '198.51.100.99' },
          );
        } catch (err) {
          refused = err;
        }
      }
      assert.equal((refused as { code?: string } | undefined)?.code, 'requests.rate_limited');
    });

    test('staff queue: list by due window, approve, the manual tasks, extend with a notice, reject', async () => {
      const known = await t.register();
      const res = await submitForm({ type: 'rectification', email: known.address });
      const token = tokenOf(res.headers.location);
      await verifyForm(token, { email_code: t.lastCode(known.address) });
      const id = t.app.requests.requestOfLink(t.ctx, token, 'verify') ?? '';

      const soon = await t.call('GET', '/api/v1/requests?due=40d&limit=500');
      assert.ok((soon.body.requests as Array<{ id: string }>).some((r) => r.id === id));
      const notYet = await t.call('GET', '/api/v1/requests?due=7d&limit=500');
      assert.ok(!(notYet.body.requests as Array<{ id: string }>).some((r) => r.id === id));
      const badWindow = await t.call('GET', '/api/v1/requests?due=soon');
      assert.equal((badWindow.body.error as { code: string }).code, 'requests.due_window_invalid');

      const shown = await t.call('GET', `/api/v1/requests/${id}`);
      assert.equal(shown.status, 200);
      assert.ok(!JSON.stringify(shown.body).includes(known.address), 'staff never see the address');
      assert.deepEqual(
        (shown.body.steps as Array<{ name: string }>).map((s) => s.name),
        ['verify', 'apply', 'confirm'],
      );

      const approved = await t.call('POST', `/api/v1/requests/${id}/approve`, {});
      assert.equal(approved.status, 200);
      assert.equal((approved.body.request as { status: string }).status, 'running');
      // A rectification's apply step is a manual task for staff (requests.executors.ts).
      await t.settle(async () => (await t.app.requests.getOrThrow(t.ctx, id)).status === 'waiting');
      let view = await t.app.requests.view(t.ctx, id);
      assert.equal(view.steps[1]?.status, 'waiting');
      assert.ok(view.steps[1]?.dueAt);

      const extended = await t.call('POST', `/api/v1/requests/${id}/extend`, { reason: 'complexity' });
      assert.equal(extended.status, 200);
      const r = extended.body.request as { dueAt: string; extendedAt: string | null };
      assert.ok(r.extendedAt);
      assert.ok(new Date(r.dueAt).getTime() > Date.now() + 60 * 86_400_000);
      const notice = t.mailTo(known.address).at(-1) ?? '';
      assert.match(notice, /We need more time to answer it: the request is complex/);
      assert.match(notice, /\/requests\/status\?t=/);
      const again = await t.call('POST', `/api/v1/requests/${id}/extend`, { reason: 'volume' });
      assert.equal((again.body.error as { code: string }).code, 'requests.extension_refused');

      const completed = await t.call('POST', `/api/v1/requests/${id}/complete`, {});
      assert.equal(completed.status, 200, JSON.stringify(completed.body));
      await t.settle(async () => {
        const s = (await t.app.requests.getOrThrow(t.ctx, id)).status;
        return s === 'waiting' || s === 'done';
      });
      view = await t.app.requests.view(t.ctx, id);
      assert.equal(view.request.status, 'done');
      assert.deepEqual(
        view.steps.map((s) => s.status),
        ['done', 'done', 'done'],
      );
      const entries = await t.app.log.listBySubject(t.ctx, known.subjectId);
      assert.ok(
        entries.filter((e) => e.action === 'requests.step').length >= 3,
        'every step change is in the log',
      );

      const other = await t.call('POST', '/api/v1/requests', { type: 'objection', email: randomEmail() });
      const otherId = (other.body.request as { id: string }).id;
      const rejected = await t.call('POST', `/api/v1/requests/${otherId}/reject`, { reason: 'duplicate' });
      assert.equal((rejected.body.request as { status: string }).status, 'rejected');
      const page = await t.app.http.inject({
        method: 'GET',
        url: `/requests/status?t=${encodeURIComponent(t.app.requests.statusToken(await t.app.requests.getOrThrow(t.ctx, otherId)))}`,
      });
      assert.match(
        page.body,
        /We could not act on this request\.<\/strong> The reason: the same request is already being answered\./,
      );
      const badReason = await t.call('POST', `/api/v1/requests/${otherId}/reject`, { reason: 'because' });
      assert.equal(badReason.status, 400);
      const unknownId = await t.call('GET', '/api/v1/requests/00000000-0000-4000-8000-000000000000');
      assert.equal(unknownId.status, 404);
    });
  });
}
