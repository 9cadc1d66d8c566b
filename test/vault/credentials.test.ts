/**
 * Credentials on both engines: a password is kept only as an argon2id verifier, no purpose reads
 * it back (not even one that names all of `user`), the verify endpoint says whether a secret
 * matches, a new password replaces the old verifier, and passwords stored before verifiers become
 * verifiers on the next successful verify or all at once (`pledge vault rehash-credentials`).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.js';
import { CREDENTIALS_CATEGORY } from '../../src/manifest/credentials.js';
import { createContext } from '../../src/platform/context.js';
import { uuidv7 } from '../../src/platform/ids.js';
import { Credentials } from '../../src/vault/credentials.service.js';
import { OpenBatch, SealBatch } from '../../src/vault/field-batch.js';
import { RecordsRepository } from '../../src/vault/records.repository.js';
import { SubjectsRepository } from '../../src/vault/subjects.repository.js';
import type { Database } from '../../src/platform/db/database.js';
import { configFor } from '../collect/collect-app.js';
import { runPledge } from '../helpers/cli.js';
import { DIALECTS } from '../helpers/databases.js';
import { captureLogs } from '../helpers/logs.js';
import {
  EXAMPLE_MANIFEST,
  openTestStores,
  openTestVault,
  randomEmail,
  type TestStores,
  type TestVault,
} from '../helpers/vault.js';

const SECRET = 'correct horse battery staple';
const REGISTRATION_PURPOSES = ['provide-service', 'marketing-email'];

function credentialsOf(t: TestVault): Credentials {
  return new Credentials({
    db: t.database.db,
    subjects: new SubjectsRepository(t.database.db),
    records: new RecordsRepository(t.database.db),
    dataKeys: t.dataKeys,
    audit: t.audit,
    write: (ctx, inputs) => t.vault.write(ctx, inputs),
  });
}

/** Registers a subject; without `password`, as one registered before verifiers would hold none yet. */
async function register(t: TestVault, password?: string): Promise<string> {
  const id = randomUUID();
  const email = randomEmail();
  await t.vault.write(
    t.ctx,
    [
      {
        subjectId: id,
        source: 'registration',
        fields: {
          email: { category: 'user.contact.email', value: email },
          first_name: { category: 'user.name.first', value: 'Ada' },
          ...(password === undefined
            ? {}
            : { password: { category: CREDENTIALS_CATEGORY, value: password } }),
        },
      },
    ],
    { id, kind: 'customer', jurisdiction: 'US', identifiers: { email } },
  );
  return id;
}

/** What {@link writeLegacyPassword} writes with: a vault's data keys, database and manifest version. */
type LegacyStores = Pick<TestVault, 'dataKeys' | 'ctx'> & {
  database: Pick<Database, 'db'>;
  active: { version: { id: number } };
};

/** Writes a password as Pledge did before verifiers: the secret itself, sealed like any value. */
async function writeLegacyPassword(t: LegacyStores, subjectId: string, secret: string): Promise<string> {
  const key = await t.dataKeys.forWrite(t.ctx, subjectId, 1);
  const batch = new SealBatch();
  const id = uuidv7();
  batch.addRecord(batch.addKey(key.key), subjectId, id, key.version);
  batch.addField('password', CREDENTIALS_CATEGORY, JSON.stringify(secret));
  const [fieldsJson] = batch.sealHere();
  const now = new Date();
  await new RecordsRepository(t.database.db).insertMany(t.ctx, [
    {
      id,
      subjectId,
      source: 'registration',
      categories: [CREDENTIALS_CATEGORY],
      purposes: REGISTRATION_PURPOSES,
      policyVersionId: t.active.version.id,
      collectedAt: now,
      retainUntil: new Date(now.getTime() + 365 * 86_400_000),
      keyVersion: key.version,
      fieldsJson: fieldsJson ?? '',
    },
  ]);
  return id;
}

/** Every stored password field of a subject, opened as the verify endpoint opens them. */
async function storedPasswords(
  t: TestVault,
  subjectId: string,
): Promise<Array<{ record: string; value: unknown }>> {
  const out: Array<{ record: string; value: unknown }> = [];
  for (const r of await new RecordsRepository(t.database.db).listForUse(t.ctx, [subjectId])) {
    const key = await t.dataKeys.forRead(t.ctx, subjectId, r.keyVersion);
    if (!key) continue;
    const batch = new OpenBatch([CREDENTIALS_CATEGORY], { credentials: true });
    batch.addRecord(batch.addKey(key), subjectId, r.id, r.keyVersion, r.fieldsJson);
    const field = batch.openHere()[0]?.password;
    if (field) out.push({ record: r.id, value: field.value });
  }
  return out;
}

for (const dialect of DIALECTS) {
  describe(`credentials in the vault on ${dialect}`, () => {
    let t: TestVault;
    let credentials: Credentials;
    before(async () => {
      t = await openTestVault(dialect);
      credentials = credentialsOf(t);
    });
    after(async () => {
      await t.cleanup();
    });

    test('a password is stored only as an argon2id verifier, and no purpose reads it, not even one that names all of user', async () => {
      const id = await register(t, SECRET);
      for (const purpose of ['provide-service', 'marketing-email']) {
        const read = await t.vault.read(t.ctx, id, purpose);
        assert.equal(read.records[0]?.fields.first_name?.value, 'Ada');
        assert.ok(!('password' in (read.records[0]?.fields ?? {})), `${purpose} got the password`);
      }
      // The gate's batch for a purpose whose categories are all of `user` opens every field but that.
      const [record] = await new RecordsRepository(t.database.db).listForUse(t.ctx, [id]);
      const key = record && (await t.dataKeys.forRead(t.ctx, id, record.keyVersion));
      assert.ok(record && key);
      const everything = new OpenBatch(['user']);
      everything.addRecord(everything.addKey(key), id, record.id, record.keyVersion, record.fieldsJson);
      assert.deepEqual(Object.keys(everything.openHere()[0] ?? {}).sort(), ['email', 'first_name']);
      const [stored] = await storedPasswords(t, id);
      const verifier = (stored?.value as { verifier?: string } | undefined)?.verifier ?? '';
      assert.match(verifier, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
      assert.ok(!JSON.stringify(stored).includes(SECRET));
    });

    test('verify answers true for the secret, false for another, and false for a subject with no password', async () => {
      const id = await register(t, SECRET);
      assert.deepEqual(await credentials.verify(t.ctx, id, { field: 'password' }, SECRET), { match: true });
      assert.deepEqual(await credentials.verify(t.ctx, id, { category: CREDENTIALS_CATEGORY }, SECRET), {
        match: true,
      });
      assert.deepEqual(await credentials.verify(t.ctx, id, { field: 'password' }, `${SECRET}!`), {
        match: false,
      });
      const none = await t.vault.createSubject(t.ctx, {
        kind: 'customer',
        identifiers: { email: randomEmail() },
      });
      assert.deepEqual(await credentials.verify(t.ctx, none.id, { field: 'password' }, SECRET), {
        match: false,
      });
      await assert.rejects(
        credentials.verify(t.ctx, randomUUID(), { field: 'password' }, SECRET),
        (err: { code?: string }) => err.code === 'vault.subject_not_found',
      );
      const audit = (await t.audit.listBySubject(t.ctx, id)).filter((e) => e.action === 'credentials.verify');
      assert.equal(audit.length, 3);
      assert.ok(
        audit.every((a) => !JSON.stringify(a.details).includes(SECRET)),
        'the audit never holds the secret',
      );
    });

    test('a new password replaces the verifier: the old one no longer matches and is gone from storage', async () => {
      const id = await register(t, SECRET);
      await t.vault.write(t.ctx, [
        {
          subjectId: id,
          source: 'registration',
          fields: { password: { category: CREDENTIALS_CATEGORY, value: 'new secret' } },
        },
      ]);
      assert.deepEqual(await credentials.verify(t.ctx, id, { field: 'password' }, SECRET), { match: false });
      assert.deepEqual(await credentials.verify(t.ctx, id, { field: 'password' }, 'new secret'), {
        match: true,
      });
      assert.equal((await storedPasswords(t, id)).length, 1, 'one verifier left, the newest');
      // The registration's other fields stay where they were.
      const read = await t.vault.read(t.ctx, id, 'provide-service');
      assert.equal(read.records[0]?.fields.first_name?.value, 'Ada');
    });

    test('a password stored before verifiers is replaced by its verifier on the next successful verify', async () => {
      const id = await register(t);
      const legacy = await writeLegacyPassword(t, id, SECRET);
      assert.deepEqual(await credentials.verify(t.ctx, id, { field: 'password' }, 'wrong'), { match: false });
      assert.deepEqual(
        await storedPasswords(t, id),
        [{ record: legacy, value: SECRET }],
        'a miss changes nothing',
      );
      assert.deepEqual(await credentials.verify(t.ctx, id, { field: 'password' }, SECRET), { match: true });
      const after = await storedPasswords(t, id);
      assert.equal(after.length, 1);
      assert.notEqual(after[0]?.record, legacy);
      assert.match((after[0]?.value as { verifier: string }).verifier, /^\$argon2id\$/);
      assert.deepEqual(await credentials.verify(t.ctx, id, { field: 'password' }, SECRET), { match: true });
    });

    test('rehashAll turns every password stored before verifiers into a verifier, and a second run finds none', async () => {
      const ids = [await register(t), await register(t)];
      for (const [i, id] of ids.entries()) await writeLegacyPassword(t, id, `legacy ${i}`);
      const first = await credentials.rehashAll(t.ctx, { batchSize: 1 });
      assert.ok(first.rehashed >= 2, `rehashed ${first.rehashed}`);
      assert.equal(first.failed, 0);
      for (const [i, id] of ids.entries()) {
        const stored = await storedPasswords(t, id);
        assert.equal(stored.length, 1);
        assert.match((stored[0]?.value as { verifier: string }).verifier, /^\$argon2id\$/);
        assert.deepEqual(await credentials.verify(t.ctx, id, { field: 'password' }, `legacy ${i}`), {
          match: true,
        });
      }
      assert.equal((await credentials.rehashAll(t.ctx)).rehashed, 0);
    });
  });

  describe(`POST /api/v1/subjects/:id/credentials/verify on ${dialect}`, () => {
    let stores: TestStores;
    let app: App;
    let key: string;
    let readOnly: string;
    before(async () => {
      stores = await openTestStores(dialect, 'pledge-credentials-');
      const { logStream } = captureLogs();
      app = await createApp(configFor(stores.dataDir), {
        database: stores.database,
        keystore: stores.keystore,
        logStream,
      });
      const ctx = createContext({ kind: 'cli', id: 'test' });
      ({ key } = await app.apiKeys.createKey(ctx, {
        name: 'web-app',
        system: 'web-app',
        scopes: ['collect:write', 'subjects:read', 'credentials:verify'],
      }));
      ({ key: readOnly } = await app.apiKeys.createKey(ctx, {
        name: 'reader',
        system: 'web-app',
        scopes: ['subjects:read'],
      }));
    });
    after(async () => {
      await app.close();
      await stores.cleanup();
    });
    const call = (method: 'GET' | 'POST', url: string, bearer: string, payload?: object) =>
      app.http.inject({
        method,
        url,
        headers: { authorization: `Bearer ${bearer}` },
        ...(payload ? { payload } : {}),
      });
    const registerOverHttp = async () => {
      const res = await call('POST', '/api/v1/collect/registration', key, {
        jurisdiction: 'US',
        data: { email: randomEmail(), first_name: 'Ada', last_name: 'Lovelace', password: SECRET },
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json<{ subject: { id: string } }>().subject.id;
    };

    test('the use gate never returns the password; verify answers whether a secret matches', async () => {
      const id = await registerOverHttp();
      const read = await call('GET', `/api/v1/subjects/${id}/data?purpose=provide-service`, key);
      assert.equal(read.statusCode, 200, read.body);
      assert.ok(!read.body.includes('password'), read.body);
      assert.ok(read.body.includes('Ada'));
      const ok = await call('POST', `/api/v1/subjects/${id}/credentials/verify`, key, {
        field: 'password',
        secret: SECRET,
      });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.deepEqual(ok.json(), { match: true });
      const no = await call('POST', `/api/v1/subjects/${id}/credentials/verify`, key, {
        category: CREDENTIALS_CATEGORY,
        secret: 'guess',
      });
      assert.deepEqual(no.json(), { match: false });
    });

    test('verify needs the credentials:verify scope and a field or a category, not both', async () => {
      const id = await registerOverHttp();
      const url = `/api/v1/subjects/${id}/credentials/verify`;
      const denied = await call('POST', url, readOnly, { field: 'password', secret: SECRET });
      assert.equal(denied.statusCode, 403, denied.body);
      const both = await call('POST', url, key, {
        field: 'password',
        category: CREDENTIALS_CATEGORY,
        secret: SECRET,
      });
      assert.equal(both.statusCode, 400, both.body);
      const notCredential = await call('POST', url, key, { category: 'user.contact.email', secret: 'x' });
      assert.equal(notCredential.statusCode, 422, notCredential.body);
      assert.equal(
        notCredential.json<{ error: { code: string } }>().error.code,
        'credentials.category_invalid',
      );
    });

    test('verify is limited per subject: past 10 attempts in the window a subject is refused, another is not', async () => {
      const id = await registerOverHttp();
      const other = await registerOverHttp();
      const url = (s: string) => `/api/v1/subjects/${s}/credentials/verify`;
      for (let i = 0; i < 10; i++) {
        const res = await call('POST', url(id), key, { field: 'password', secret: `guess ${i}` });
        assert.equal(res.statusCode, 200, res.body);
      }
      const limited = await call('POST', url(id), key, { field: 'password', secret: SECRET });
      assert.equal(limited.statusCode, 429, limited.body);
      assert.equal(limited.json<{ error: { code: string } }>().error.code, 'credentials.rate_limited');
      assert.ok(Number(limited.headers['retry-after']) > 0);
      const fine = await call('POST', url(other), key, { field: 'password', secret: SECRET });
      assert.deepEqual(fine.json(), { match: true });
    });
  });
}

describe('pledge vault rehash-credentials', () => {
  test('turns the passwords stored before verifiers into verifiers, then finds nothing more to do', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-rehash-'));
    try {
      const { logStream } = captureLogs();
      const config = configFor(dataDir);
      let app = await createApp(config, { logStream });
      const ctx = createContext({ kind: 'cli', id: 'test' });
      const subject = await app.vault.createSubject(ctx, {
        kind: 'customer',
        identifiers: { email: randomEmail() },
      });
      await writeLegacyPassword({ ...app, ctx }, subject.id, SECRET);
      await app.close();

      const env = { PLEDGE_DATA_DIR: dataDir, PLEDGE_MANIFEST: EXAMPLE_MANIFEST, DATABASE_URL: '' };
      const first = await runPledge(['vault', 'rehash-credentials', '--format', 'json'], { env });
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(JSON.parse(first.stdout), { scanned: 1, rehashed: 1, failed: 0 });
      const again = await runPledge(['vault', 'rehash-credentials'], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /^nothing to rehash: every stored credential is a verifier/);

      app = await createApp(config, { logStream });
      try {
        const records = await new RecordsRepository(app.database.db).listForUse(ctx, [subject.id]);
        assert.equal(
          records.length,
          1,
          'the verifier, in a record of its own; the old record went with its only field',
        );
        assert.deepEqual(await app.credentials.verify(ctx, subject.id, { field: 'password' }, SECRET), {
          match: true,
        });
      } finally {
        await app.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
