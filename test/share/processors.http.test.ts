/**
 * Processors over HTTP, as a customer and an operator see them: /privacy/processors (server-rendered,
 * no script: it works without JavaScript) shows what the manifest says of each processor and
 * sub-processor, /privacy links to it, /privacy/processors.atom is well-formed Atom with the
 * required elements and one entry per version that changed the list (ids stable across versions),
 * and the acknowledgement routes record and list acknowledgements; a server started with a material
 * change has paused the processor it touches until an operator records its acknowledgement.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { parseDocument, type Document } from 'yaml';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { ROOT } from '../helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const exampleText = await readFile(EXAMPLE, 'utf8');

function mutate(change: (doc: Document) => void): string {
  const doc = parseDocument(exampleText);
  change(doc);
  return doc.toString({ lineWidth: 0 });
}

function recipientIndex(doc: Document, key: string): number {
  return (doc.toJS() as { recipients: Array<{ key: string }> }).recipients.findIndex((r) => r.key === key);
}

/** No notice leaves the machine: the card processor's webhook is dropped from both versions. */
const V1 = mutate((d) => d.deleteIn(['recipients', recipientIndex(d, 'card-processor'), 'webhook']));
const V2 = mutate((d) => {
  const card = recipientIndex(d, 'card-processor');
  d.deleteIn(['recipients', card, 'webhook']);
  d.setIn(['policy', 'version'], '2026-03-01');
  d.setIn(['policy', 'effective'], '2026-03-01');
  d.setIn(['recipients', card, 'country'], 'IE');
  (d.getIn(['recipients', card, 'sub_processors']) as { add(v: unknown): void }).add(
    d.createNode({
      name: 'Chargeback handling service',
      country: 'US',
      purpose: 'provide-service',
      since: '2026-03-01',
    }),
  );
});

interface AtomFeed {
  feed: {
    id: string;
    title: string;
    updated: string;
    author: { name: string };
    link: Array<{ '@_rel': string; '@_href': string }>;
    entry?: AtomEntry | AtomEntry[];
  };
}
interface AtomEntry {
  id: string;
  title: string;
  updated: string;
  content: { '#text': string; '@_type': string };
}

/** Parses an Atom document after checking it is well-formed XML, and checks RFC 4287's required elements. */
function parseAtom(xml: string): { feed: AtomFeed['feed']; entries: AtomEntry[] } {
  assert.equal(XMLValidator.validate(xml), true, 'the feed is well-formed XML');
  const parsed = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === 'link' }).parse(
    xml,
  ) as AtomFeed & { feed: { '@_xmlns': string } };
  const feed = parsed.feed;
  assert.equal(feed['@_xmlns' as never], 'http://www.w3.org/2005/Atom');
  for (const element of ['id', 'title', 'updated'] as const)
    assert.ok(typeof feed[element] === 'string' && feed[element].length > 0, `feed has ${element}`);
  assert.ok(feed.author.name, 'feed has an author (which its entries inherit)');
  assert.ok(
    feed.link.some((l) => l['@_rel'] === 'self' && l['@_href'].endsWith('/privacy/processors.atom')),
    'feed links to itself',
  );
  assert.ok(!Number.isNaN(Date.parse(feed.updated)));
  const entries = feed.entry === undefined ? [] : Array.isArray(feed.entry) ? feed.entry : [feed.entry];
  for (const e of entries) {
    // A rollback's entry also carries its activation's id.
    assert.match(
      e.id,
      /^tag:www\.example-online\.test,\d{4}-\d{2}-\d{2}:pledge\/processors\/[0-9a-f]{16}(-\d+)?$/,
    );
    assert.ok(e.title.length > 0);
    assert.equal(e.content['@_type'], 'html');
    assert.match(e.updated, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  }
  return { feed, entries };
}

for (const dialect of DIALECTS) {
  describe(`processors over HTTP on ${dialect}`, () => {
    let database: TestDatabase;
    let dataDir: string;
    let app: App | undefined;
    let key: string;
    let firstEntryId: string;

    async function serve(text: string): Promise<App> {
      await app?.close();
      const file = path.join(dataDir, `pledge-${Date.now()}-${Math.random()}.yaml`);
      await writeFile(file, text);
      app = await createApp(
        {
          ...loadConfig(
            {
              PLEDGE_DATA_DIR: dataDir,
              PLEDGE_LOG_LEVEL: 'silent',
              PLEDGE_PUBLIC_URL: 'https://www.example-online.test',
            },
            { manifest: file },
          ),
          retentionIntervalSeconds: 0,
          rateLimitPerMinute: 100_000,
        },
        { database },
      );
      key = (
        await app.apiKeys.createKey(createContext({ kind: 'cli', id: 'test' }), {
          name: `operator-${Date.now()}`,
          scopes: ['recipients:admin'],
        })
      ).key;
      return app;
    }
    const auth = () => ({ authorization: `Bearer ${key}` });

    before(async () => {
      database = await openTestDatabase(dialect);
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-processors-'));
    });
    after(async () => {
      await app?.close();
      await database.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    });

    test('the page shows each processor and sub-processor as the manifest says, without script, linked from /privacy', async () => {
      const a = await serve(V1);
      const res = await a.http.inject({ method: 'GET', url: '/privacy/processors' });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
      const page = res.body;
      assert.doesNotMatch(page, /<script/i, 'no script: the page works without JavaScript');
      assert.doesNotMatch(page, /style="/, 'no inline style');
      assert.match(page, /<link rel="stylesheet" href="\/assets\/policy.css">/);
      const row = (name: string) => {
        const m = new RegExp(`<tr[^>]*>(?:(?!</tr>).)*${name}(?:(?!</tr>).)*</tr>`).exec(page);
        assert.ok(m, `a row for ${name}`);
        return m[0];
      };
      const card = row('Card processor</th>');
      assert.match(card, /data-manifest-path="recipients\[0\]"/);
      assert.match(card, /<td>Provide the services you request<\/td>/);
      assert.match(card, /payment card/i);
      assert.match(card, /<td>the United States<\/td>/);
      assert.match(card, /<td>none declared<\/td>/);
      assert.match(card, /<time datetime="2012-03-01">March 1, 2012<\/time>/);
      const fraud = row('Fraud screening service');
      assert.match(fraud, /sub-processor of Card processor/);
      assert.match(fraud, /<time datetime="2014-06-01">June 1, 2014<\/time>/);
      const uk = row('Example Systems UK Ltd\\.');
      assert.match(uk, /company of our group/);
      assert.match(uk, /<td>the United Kingdom<\/td>/);
      assert.match(uk, /<td>Standard Contractual Clauses<\/td>/);
      assert.match(
        row('Deliverability monitoring service'),
        /<td>Tell you about products, partners, opportunities and events<\/td><td>e-mail address and name<\/td>/,
      );
      assert.match(
        row('E-mail delivery provider</th>'),
        /<td>Provide the services you request; Tell you about products, partners, opportunities and events; Comply with the law<\/td>/,
      );
      assert.doesNotMatch(page, /Courts and public authorities/, 'authorities are not processors');
      assert.match(page, /href="\/privacy\/processors.atom"/);

      const policy = await a.http.inject({ method: 'GET', url: '/privacy' });
      assert.match(policy.body, /<a href="\/privacy\/processors">list of processors and sub-processors<\/a>/);

      const etag = String(res.headers.etag);
      const again = await a.http.inject({
        method: 'GET',
        url: '/privacy/processors',
        headers: { 'if-none-match': etag },
      });
      assert.equal(again.statusCode, 304);
    });

    test('the feed has one entry for the first version, and the acknowledgements by agreement are listed', async () => {
      const a = app!;
      const res = await a.http.inject({ method: 'GET', url: '/privacy/processors.atom' });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^application\/atom\+xml/);
      const { entries } = parseAtom(res.body);
      assert.equal(entries.length, 1);
      assert.match(
        entries[0]!.content['#text'],
        /The list begins with Card processor, E-mail delivery provider, Companies of the Example Systems group, Example Systems UK Ltd\. and Text message delivery provider\.</,
      );
      firstEntryId = entries[0]!.id;
      assert.match(entries[0]!.title, /: the list of processors is published$/);

      const listed = await a.http.inject({
        method: 'GET',
        url: '/api/v1/recipients/card-processor/acknowledgements',
        headers: auth(),
      });
      assert.equal(listed.statusCode, 200, listed.body);
      const body = listed.json<{
        standing: { ok: boolean };
        acknowledgements: Array<{ method: string; acknowledgedBy: string }>;
      }>();
      assert.equal(body.standing.ok, true);
      assert.equal(body.acknowledgements[0]?.method, 'agreement');
      assert.match(body.acknowledgements[0]?.acknowledgedBy ?? '', /DPA-2012-004/);

      const unknown = await a.http.inject({
        method: 'GET',
        url: '/api/v1/recipients/data-broker/acknowledgements',
        headers: auth(),
      });
      assert.equal(unknown.statusCode, 404);
      assert.equal(unknown.json<{ error: { code: string } }>().error.code, 'share.recipient_undeclared');
    });

    test('a material change: the processor is paused until acknowledged over the API, and the feed and page follow', async () => {
      const a = await serve(V2);
      const paused = await a.http.inject({
        method: 'GET',
        url: '/api/v1/recipients/card-processor/acknowledgements',
        headers: auth(),
      });
      const before = paused.json<{
        standing: { ok: boolean; code: string; policyVersion: string };
        pauses: Array<{ changes: Array<{ kind: string }>; liftedAt: string | null }>;
        notices: Array<{ channel: string }>;
      }>();
      assert.equal(before.standing.ok, false);
      assert.equal(before.standing.code, 'share.recipient_paused');
      assert.equal(before.standing.policyVersion, '2026-03-01');
      assert.deepEqual(
        before.pauses[0]?.changes.map((c) => c.kind),
        ['recipient.country_changed'],
      );
      assert.deepEqual(
        before.notices.map((n) => n.channel),
        ['email'],
      );
      assert.equal(
        (await a.acknowledgements.standingOf(createContext({ kind: 'anonymous' }), 'email-delivery')).ok,
        true,
      );

      const wrong = await a.http.inject({
        method: 'POST',
        url: '/api/v1/recipients/card-processor/acknowledgements',
        headers: auth(),
        payload: { version: '2012-09-07', by: 'Ada Lovelace' },
      });
      assert.equal(wrong.statusCode, 400);
      assert.equal(wrong.json<{ error: { code: string } }>().error.code, 'share.acknowledgement_version');
      const missing = await a.http.inject({
        method: 'POST',
        url: '/api/v1/recipients/card-processor/acknowledgements',
        headers: auth(),
        payload: { version: '2026-03-01' },
      });
      assert.equal(missing.statusCode, 400);

      const ack = await a.http.inject({
        method: 'POST',
        url: '/api/v1/recipients/card-processor/acknowledgements',
        headers: auth(),
        payload: { version: '2026-03-01', by: 'Ada Lovelace' },
      });
      assert.equal(ack.statusCode, 201, ack.body);
      const made = ack.json<{
        acknowledgement: { actor: { kind: string }; acknowledgedBy: string };
        lifted: string[];
      }>();
      assert.equal(made.lifted.length, 1);
      assert.equal(made.acknowledgement.actor.kind, 'api_key');
      assert.equal(made.acknowledgement.acknowledgedBy, 'Ada Lovelace');
      const now = await a.http.inject({
        method: 'GET',
        url: '/api/v1/recipients/card-processor/acknowledgements',
        headers: auth(),
      });
      assert.deepEqual(now.json<{ standing: unknown }>().standing, {
        ok: true,
        acknowledgedVersion: '2026-03-01',
      });

      const feed = parseAtom((await a.http.inject({ method: 'GET', url: '/privacy/processors.atom' })).body);
      assert.equal(feed.entries.length, 2, 'one entry per version that changed the list');
      assert.match(
        feed.entries[0]!.title,
        /Policy version 2026-03-01 \(effective 2026-03-01\): the list of processors changes/,
      );
      assert.match(feed.entries[0]!.content['#text'], /Ireland/);
      assert.match(feed.entries[0]!.content['#text'], /Chargeback handling service/);
      assert.equal(feed.entries[1]!.id, firstEntryId, 'an entry keeps its id');
      assert.equal(feed.feed.updated, feed.entries[0]!.updated);

      const page = (await a.http.inject({ method: 'GET', url: '/privacy/processors' })).body;
      assert.match(
        page,
        /Chargeback handling service <span class="row-note">\(sub-processor of Card processor\)/,
      );
      assert.match(page, /<td>Ireland<\/td>/);
    });

    test('a rollback to the first version has its own entry, like any activation; a restart adds none', async () => {
      const before = parseAtom(
        (await app!.http.inject({ method: 'GET', url: '/privacy/processors.atom' })).body,
      );
      assert.equal(before.entries.length, 2);
      const a = await serve(V1);
      const feed = parseAtom((await a.http.inject({ method: 'GET', url: '/privacy/processors.atom' })).body);
      assert.equal(feed.entries.length, 3, 'the rollback changed the list: it has an entry');
      const [back, change, first] = feed.entries;
      assert.match(
        back!.title,
        /Policy version 2012-09-07 \(effective 2012-09-07\): the list of processors changes back/,
      );
      assert.match(back!.content['#text'], /is in force again/);
      assert.match(back!.content['#text'], /Chargeback handling service/);
      assert.ok(Date.parse(back!.updated) > Date.parse(change!.updated), 'the newest entry first');
      assert.equal(feed.feed.updated, back!.updated);
      assert.deepEqual(
        [change!.id, first!.id],
        before.entries.map((e) => e.id),
        'earlier entries keep their ids',
      );
      assert.equal(first!.id, firstEntryId);
      assert.equal(new Set(feed.entries.map((e) => e.id)).size, 3);
      const page = (await a.http.inject({ method: 'GET', url: '/privacy/processors' })).body;
      assert.doesNotMatch(page, /Chargeback handling service/);

      // Starting again with the manifest in force is no activation: the same feed, entry for entry.
      const again = await serve(V1);
      const same = parseAtom(
        (await again.http.inject({ method: 'GET', url: '/privacy/processors.atom' })).body,
      );
      assert.deepEqual(
        same.entries.map((e) => [e.id, e.updated]),
        feed.entries.map((e) => [e.id, e.updated]),
      );
    });
  });
}
