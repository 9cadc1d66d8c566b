/**
 * Analytics on every engine: the daily roll-up of a known set of beacons (page views, visitors,
 * paths, referrers, events, e-mail opens, per site and for all sites), run again with the same
 * result; GET /api/v1/analytics with a key of a system that serves the purpose and one that does
 * not, and a bad query; the recurring jobs on the queue (each run enqueues the next hour's); the
 * daily salts (a visitor's hash differs from one day to the next, and once a salt is deleted after
 * 48 hours that day's hashes cannot be recomputed); raw events expiring by the manifest's retention.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.js';
import { fixedClock } from '../../src/platform/clock.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext, type Context } from '../../src/platform/context.js';
import { uuidv7 } from '../../src/platform/ids.js';
import { truncateIp } from '../../src/platform/ip.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import { defineBeaconJobs, EXPIRE_JOB, ROLLUP_JOB, SALTS_JOB } from '../../src/tracking/analytics.jobs.js';
import type { AnalyticsView } from '../../src/tracking/analytics.presenter.js';
import { BeaconsRepository } from '../../src/tracking/beacons.repository.js';
import type { WebBeaconInput } from '../../src/tracking/beacons.service.js';
import { beaconRetentions } from '../../src/tracking/expiry.service.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';

const WWW = 'www.example-online.test';
const BLOG = 'blog.example-online.test';
const UA_A = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const UA_B =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15';
const IP_A = '203.0.113.57';
const IP_B = '198.51.100.23';
const CAMPAIGN = '01930000-0000-7000-8000-00000000c001';
const PERSON_1 = '01930000-0000-7000-8000-0000000000a1';
const PERSON_2 = '01930000-0000-7000-8000-0000000000a2';

interface ErrorBody {
  error: { code: string; message: string; details?: { problems?: Array<{ path: string }> } };
}

/** A context of the web system (what the beacon routes act as), at `at`. */
function webContext(at: string): Context & { clock: ReturnType<typeof fixedClock> } {
  const clock = fixedClock(new Date(at));
  return { ...createContext({ kind: 'anonymous' }, { system: 'website', clock }), clock };
}

/** A page's beacon from a US visitor (opt-out: counted without a cookie, under the day's salt). */
function beacon(
  site: string,
  ip: string,
  userAgent: string,
  fields: Partial<WebBeaconInput>,
): WebBeaconInput {
  return {
    purpose: undefined,
    path: undefined,
    referrer: undefined,
    event: undefined,
    receipt: undefined,
    visitor: undefined,
    site,
    jurisdiction: 'US',
    gpc: false,
    userAgent,
    ip,
    ...fields,
  };
}

for (const dialect of DIALECTS) {
  describe(`analytics on ${dialect}`, () => {
    let database: TestDatabase;
    let dataDir: string;
    let app: App;
    let repo: BeaconsRepository;
    let analyticsKey: string;
    let otherSystemKey: string;
    const cli = createContext({ kind: 'cli', id: 'test' });

    before(async () => {
      database = await openTestDatabase(dialect);
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-analytics-'));
      app = await createApp(
        {
          ...loadConfig(
            {
              PLEDGE_DATA_DIR: dataDir,
              PLEDGE_LOG_LEVEL: 'silent',
              PLEDGE_SITE_ORIGINS: `https://${WWW},https://${BLOG}`,
            },
            { manifest: EXAMPLE_MANIFEST },
          ),
          retentionIntervalSeconds: 0,
          rateLimitPerMinute: 100_000,
        },
        { database },
      );
      // The app's own worker would race this file's queue for the jobs; the tests run them.
      await app.jobs.stop();
      repo = new BeaconsRepository(database.db);
      analyticsKey = (
        await app.apiKeys.createKey(cli, {
          name: 'analytics',
          system: 'product-analytics',
          scopes: ['analytics:read'],
        })
      ).key;
      otherSystemKey = (
        await app.apiKeys.createKey(cli, {
          name: 'support',
          system: 'support-desk',
          scopes: ['analytics:read'],
        })
      ).key;
    });
    after(async () => {
      await app.close();
      await database.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    });

    async function get(url: string, key = analyticsKey): Promise<{ status: number; body: string }> {
      const res = await app.http.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });
      return { status: res.statusCode, body: res.body };
    }

    async function report(query: string): Promise<AnalyticsView> {
      const res = await get(`/api/v1/analytics?${query}`);
      assert.equal(res.status, 200, res.body);
      return JSON.parse(res.body) as AnalyticsView;
    }

    test('the roll-up counts a known set of beacons, per site and for all sites, and again the same', async () => {
      const day = '2026-11-02';
      const ctx = webContext(`${day}T09:00:00.000Z`);
      const web = (site: string, ip: string, ua: string, fields: Partial<WebBeaconInput>) =>
        app.beacons.recordWeb(ctx, beacon(site, ip, ua, fields));
      // Visitor A on www: two pages (one from a referrer) and an event; visitor B on www: one page;
      // visitor A on the blog (another site: another cookieless visitor).
      for (const r of [
        await web(WWW, IP_A, UA_A, { path: '/pricing', referrer: 'news.example' }),
        await web(WWW, IP_A, UA_A, { path: '/docs' }),
        await web(WWW, IP_A, UA_A, { path: '/pricing', event: 'signup' }),
        await web(WWW, IP_B, UA_B, { path: '/pricing' }),
        await web(BLOG, IP_A, UA_A, { path: '/post/1' }),
      ]) {
        assert.equal(r.counted, true, JSON.stringify(r));
      }
      // Two people open a campaign's message, one of them twice.
      for (const subjectId of [PERSON_1, PERSON_1, PERSON_2]) {
        const r = await app.beacons.recordMailOpen(ctx, {
          purpose: 'site-analytics',
          campaignId: CAMPAIGN,
          subjectId,
          userAgent: UA_B,
        });
        assert.equal(r.counted, true);
      }
      // The next day: visitor A once more.
      ctx.clock.advance(86_400_000);
      await web(WWW, IP_A, UA_A, { path: '/pricing' });

      const rolled = await app.analytics.service.rollUpDay(ctx, day);
      assert.equal(rolled.events, 8);

      const www = await report(`from=${day}&to=2026-11-03&purpose=site-analytics&site=${WWW}`);
      assert.equal(www.days.length, 2);
      assert.deepEqual(www.days[0], {
        day,
        views: 3,
        visitors: 2,
        paths: [
          { value: '/pricing', views: 2, visitors: 2 },
          { value: '/docs', views: 1, visitors: 1 },
        ],
        referrers: [{ value: 'news.example', views: 1, visitors: 1 }],
        events: [{ value: 'signup', views: 1, visitors: 1 }],
        campaigns: [],
      });
      // Not rolled up yet: the next day counts nothing.
      assert.deepEqual(www.days[1], {
        day: '2026-11-03',
        views: 0,
        visitors: 0,
        paths: [],
        referrers: [],
        events: [],
        campaigns: [],
      });
      assert.deepEqual(www.totals, { views: 3 });

      const all = await report(`from=${day}&to=${day}&purpose=site-analytics`);
      assert.equal(all.site, '*');
      assert.equal(all.days[0]?.views, 4);
      assert.equal(all.days[0]?.visitors, 3);
      assert.deepEqual(all.days[0]?.campaigns, [{ value: CAMPAIGN, views: 3, visitors: 2 }]);
      assert.deepEqual(
        all.days[0]?.paths.map((p) => p.value),
        ['/pricing', '/docs', '/post/1'],
      );
      const top1 = await report(`from=${day}&to=${day}&purpose=site-analytics&top=1`);
      assert.deepEqual(top1.days[0]?.paths, [{ value: '/pricing', views: 2, visitors: 2 }]);

      // Nothing that leaves names a visitor: no hash of the day's events is in any answer.
      const hashes = (await repo.eventsOfDay(ctx, day, { limit: 100 })).map((e) => e.visitor);
      assert.equal(hashes.length, 8);
      for (const h of hashes) assert.ok(!JSON.stringify(all).includes(h));

      // Idempotent: rolled up again (twice), the same answer and the same rows.
      const rows = async () =>
        (await database.tables.selectFrom('beacon_daily').selectAll().where('day', '=', day).execute())
          .length;
      const before = await rows();
      await app.analytics.service.rollUpDay(ctx, day);
      await app.analytics.service.rollUpDay(ctx, day);
      assert.equal(await rows(), before);
      assert.deepEqual(await report(`from=${day}&to=${day}&purpose=site-analytics`), all);

      await app.analytics.service.rollUpDay(ctx, '2026-11-03');
      const next = await report(`from=2026-11-03&to=2026-11-03&purpose=site-analytics&site=${WWW}`);
      assert.equal(next.days[0]?.views, 1);
      assert.equal(next.days[0]?.visitors, 1);
    });

    test('the API: the key of a system that does not serve the purpose is refused; a bad query is a 400 listing every problem', async () => {
      const refused = await get(
        '/api/v1/analytics?from=2026-11-02&to=2026-11-02&purpose=site-analytics',
        otherSystemKey,
      );
      assert.equal(refused.status, 403, refused.body);
      assert.equal((JSON.parse(refused.body) as ErrorBody).error.code, 'auth.purpose_not_allowed');
      // No key, a key without the scope, an operator key (bound to no system): refused before the query is read.
      const none = await app.http.inject({ method: 'GET', url: '/api/v1/analytics' });
      assert.equal(none.statusCode, 401);
      const narrow = await app.apiKeys.createKey(cli, {
        name: 'narrow',
        system: 'product-analytics',
        scopes: ['consent:read'],
      });
      const unscoped = await get('/api/v1/analytics', narrow.key);
      assert.equal(unscoped.status, 403);
      assert.equal((JSON.parse(unscoped.body) as ErrorBody).error.code, 'auth.scope_missing');
      const operator = await app.apiKeys.createKey(cli, { name: 'operator', scopes: ['admin'] });
      const unbound = await get('/api/v1/analytics', operator.key);
      assert.equal(unbound.status, 403);
      assert.equal((JSON.parse(unbound.body) as ErrorBody).error.code, 'auth.system_required');
      // improve-products has aggregates too, and product-analytics serves it.
      const improve = await report('from=2026-11-02&to=2026-11-02&purpose=improve-products');
      assert.equal(improve.days[0]?.views, 0);

      const bad = await get(
        '/api/v1/analytics?from=2026-02-30&to=yesterday&purpose=marketing-email&site=a b&top=0',
      );
      assert.equal(bad.status, 400, bad.body);
      const body = JSON.parse(bad.body) as ErrorBody;
      assert.equal(body.error.code, 'analytics.query_invalid');
      assert.deepEqual(
        body.error.details?.problems?.map((p) => p.path),
        ['from', 'to', 'purpose', 'site', 'top'],
      );
      const missing = await get('/api/v1/analytics');
      assert.equal(missing.status, 400);
      assert.match((JSON.parse(missing.body) as ErrorBody).error.message, /give from/);
      const reversed = await get('/api/v1/analytics?from=2026-11-03&to=2026-11-02&purpose=site-analytics');
      assert.equal(reversed.status, 400);
      const tooLong = await get('/api/v1/analytics?from=2024-01-01&to=2026-01-01&purpose=site-analytics');
      assert.equal(tooLong.status, 400);
      assert.match((JSON.parse(tooLong.body) as ErrorBody).error.message, /at most 366 days/);
    });

    test('the hourly roll-up completes the day before in its first run after midnight', async () => {
      const late = webContext('2026-11-20T23:59:00.000Z');
      assert.ok((await app.beacons.recordWeb(late, beacon(WWW, IP_B, UA_B, { path: '/late' }))).counted);
      const after = webContext('2026-11-21T00:05:00.000Z');
      const days = (await app.analytics.service.rollUpRecent(after)).map((d) => d.day);
      assert.ok(days.includes('2026-11-20') && days.at(-1) === '2026-11-21', days.join(' '));
      const r = await report(`from=2026-11-20&to=2026-11-20&purpose=site-analytics&site=${WWW}`);
      assert.deepEqual(r.days[0]?.paths, [{ value: '/late', views: 1, visitors: 1 }]);
      // Later in the day, only today is read again.
      const noon = webContext('2026-11-21T12:00:00.000Z');
      assert.deepEqual(
        (await app.analytics.service.rollUpRecent(noon)).map((d) => d.day),
        ['2026-11-21'],
      );
    });

    test('salts: a visitor hashes differently each day, and 48 hours after a salt was made it is gone for good', async () => {
      const day1 = '2026-11-10';
      const day2 = '2026-11-11';
      const ctx = webContext(`${day1}T10:00:00.000Z`);
      const input = beacon(WWW, IP_A, UA_A, { path: '/' });
      const first = await app.beacons.recordWeb(ctx, input);
      ctx.clock.advance(86_400_000);
      const second = await app.beacons.recordWeb(ctx, input);
      assert.ok(first.counted && first.cookieless && second.counted && second.cookieless);
      const visitorOf = async (day: string) => (await repo.eventsOfDay(ctx, day, { limit: 10 }))[0]?.visitor;
      const hash1 = await visitorOf(day1);
      const hash2 = await visitorOf(day2);
      assert.ok(hash1 !== undefined && hash2 !== undefined);
      assert.notEqual(hash1, hash2, 'the same visitor is another hash the next day');
      // While the salt is kept, whoever holds it can recompute the hash from an IP and a user agent.
      const recompute = (salt: string) =>
        createHmac('sha256', Buffer.from(salt, 'base64'))
          .update(`${truncateIp(IP_A) ?? ''}\n${UA_A}\n${WWW}`, 'utf8')
          .digest('hex');
      const salt1 = await repo.getSalt(ctx, day1);
      assert.ok(salt1 !== undefined);
      assert.equal(recompute(salt1), hash1);

      // The job on the queue, at the last run of day 2 (23:00): tomorrow's salt is made ahead of midnight.
      const clock = fixedClock(new Date(`${day2}T23:00:00.000Z`));
      const queue = new JobQueue({ db: database.db, clock });
      defineBeaconJobs(queue, {
        analytics: app.analytics.service,
        salts: app.analytics.salts,
        expiry: app.analytics.expiry,
        log: { info: () => undefined },
      });
      const jobCtx = createContext({ kind: 'job', id: 'test' }, { clock });
      await queue.enqueue(
        jobCtx,
        SALTS_JOB,
        { slot: clock.now().toISOString() },
        { key: clock.now().toISOString() },
      );
      assert.equal((await queue.runDue({ types: [SALTS_JOB] })).done, 1);
      assert.ok(
        (await repo.getSalt(jobCtx, '2026-11-12')) !== undefined,
        "the next day's salt exists before it begins",
      );
      assert.ok((await repo.getSalt(jobCtx, day1)) !== undefined, 'day 1 is not 48 hours old yet');

      // The run just after 10:00 on day 3: day 1's salt (made at 10:00 on day 1) is 48 hours old and deleted.
      clock.advance(11 * 3_600_000 + 60_000);
      assert.equal(
        (await queue.runDue({ types: [SALTS_JOB] })).done,
        1,
        'the next slot was queued by the last run',
      );
      assert.equal(
        await repo.getSalt(jobCtx, day1),
        undefined,
        'no salt of day 1: its hashes cannot be recomputed',
      );
      const salts = await database.tables.selectFrom('beacon_salts').select('day').orderBy('day').execute();
      assert.ok(!salts.some((s) => s.day === day1));
      assert.ok(salts.some((s) => s.day === day2));
      // The events and their counts stay.
      assert.equal(await visitorOf(day1), hash1);
      await queue.stop();
    });

    test('raw events expire by the manifest retention (source, purpose and rules: the shortest); the jobs chain hour after hour', async () => {
      const now = new Date('2026-12-20T12:00:00.000Z');
      // web-beacons keeps P13M, site-analytics P13M, cookie ids at most P13M: 13 months.
      assert.deepEqual(beaconRetentions(app.active.manifest), [
        { source: 'web-beacons', purpose: 'site-analytics', keep: 'P13M' },
      ]);
      // A purpose that keeps less than its source: the purpose wins.
      const manifest = structuredClone(app.active.manifest);
      manifest.purposes.find((p) => p.key === 'site-analytics')!.retention = 'P30D';
      assert.deepEqual(beaconRetentions(manifest), [
        { source: 'web-beacons', purpose: 'site-analytics', keep: 'P30D' },
      ]);

      const at = (iso: string) => webContext(iso);
      // 13 months and a day before, 13 months less a day before: one goes, one stays.
      const old = await app.beacons.recordWeb(
        at('2025-11-19T12:00:00.000Z'),
        beacon(WWW, IP_B, UA_B, { path: '/old' }),
      );
      const kept = await app.beacons.recordWeb(
        at('2025-11-21T12:00:00.000Z'),
        beacon(WWW, IP_B, UA_B, { path: '/kept' }),
      );
      assert.ok(old.counted && kept.counted);
      // An event of a source the manifest no longer declares: kept no longer than the declared ones.
      const orphan = (iso: string) => ({
        id: uuidv7(),
        at: new Date(iso),
        day: iso.slice(0, 10),
        purpose: 'site-analytics',
        channel: 'web' as const,
        source: 'retired-beacons',
        site: WWW,
        kind: 'pageview' as const,
        sealed: 'k1:AAAA',
        visitor: 'cd'.repeat(32),
        cookieless: true,
        campaignId: null,
      });
      const orphanOld = orphan('2025-11-01T00:00:00.000Z');
      const orphanRecent = orphan('2026-12-01T00:00:00.000Z');
      await repo.insertEvents(cli, [orphanOld, orphanRecent]);

      const clock = fixedClock(now);
      const queue = new JobQueue({ db: database.db, clock });
      const jobs = defineBeaconJobs(queue, {
        analytics: app.analytics.service,
        salts: app.analytics.salts,
        expiry: app.analytics.expiry,
        log: { info: () => undefined },
      });
      const jobCtx = createContext({ kind: 'job', id: 'test' }, { clock });
      await jobs.schedule(jobCtx);
      await jobs.schedule(jobCtx); // every instance schedules at start: once per slot all the same
      // A pass claims one job per type; jobs other tests left due (and the app's own at its start)
      // run too, each chain ending in the same next slot.
      let done = 0;
      for (;;) {
        const result = await queue.runDue({ types: [EXPIRE_JOB, ROLLUP_JOB, SALTS_JOB] });
        assert.equal(result.done, result.claimed, JSON.stringify(result));
        if (result.claimed === 0) break;
        done += result.done;
      }
      assert.ok(done >= 3, `the three types ran (${done} jobs)`);

      const ids = new Set(
        (await database.tables.selectFrom('beacon_events').select('id').execute()).map((r) => r.id),
      );
      assert.ok(!ids.has(old.counted ? old.id : ''), 'the event older than 13 months is deleted');
      assert.ok(ids.has(kept.counted ? kept.id : ''), 'the younger one is kept');
      assert.ok(!ids.has(orphanOld.id), "an undeclared source's old event is deleted");
      assert.ok(ids.has(orphanRecent.id));

      // Each job queued the next hour's, in the transaction that finished it.
      const pending = await queue.list(jobCtx, { state: 'pending' });
      const next = '2026-12-20T13:00:00.000Z';
      for (const type of [ROLLUP_JOB, SALTS_JOB, EXPIRE_JOB]) {
        const jobs = pending.filter((j) => j.type === type);
        assert.deepEqual(
          jobs.map((j) => [j.key, j.runAt.toISOString()]),
          [[next, next]],
          `${type} runs again at the next hour, once`,
        );
      }
      // Nothing is due before then; at 13:00 the chain goes on.
      assert.equal((await queue.runDue()).claimed, 0);
      clock.advance(3_600_000);
      assert.equal((await queue.runDue()).done, 3);
      // The roll-up of that run covered today: the kept event's day is long past, today has none.
      const today = await report('from=2026-12-20&to=2026-12-20&purpose=site-analytics');
      assert.equal(today.days[0]?.views, 0);
      await queue.stop();
    });
  });
}
