/**
 * What the vault benches share: a bench copy of the example manifest whose registration source has
 * 8 fields, a Pledge app built in this process on it, the records they write, and the bare
 * better-sqlite3 baseline that writes the same rows as plaintext into the same tables.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { isMap, isSeq, parseDocument, type YAMLMap } from 'yaml';
import { createApp, type App } from '../src/app.js';
import { loadConfig } from '../src/platform/config.js';
import { createContext, type Context } from '../src/platform/context.js';
import type { FieldInput, WriteRecordInput } from '../src/vault/vault.service.js';
import { uuidv7 } from '../src/platform/ids.js';
import { fieldAad, open } from '../src/vault/vault.crypto.js';
import { BenchFailure, ROOT } from './lib.js';

/** The manifest the bench copy is made from. */
export const EXAMPLE_MANIFEST = path.join(ROOT, 'examples/example-online/pledge.yaml');

/** The category added to the registration source (and to provide-service) so it has 8 fields. */
export const LANGUAGE_CATEGORY = 'user.demographic.language';
/**
 * The category of the account id that stands in for the example's password: a credential is
 * hashed (argon2id, on purpose slow) and kept apart from what the gate reads, so it has a bench of
 * its own (bench/credentials.bench.ts) and would swamp this one's encrypted writes.
 */
export const ACCOUNT_ID_CATEGORY = 'user.unique_id';

/** The 8 fields of a registration record in the bench manifest, with their categories. */
export const REGISTRATION_FIELDS = {
  email: 'user.contact.email',
  first_name: 'user.name.first',
  last_name: 'user.name.last',
  organization: 'user.contact.organization',
  phone: 'user.contact.phone_number',
  username: 'user.account.username',
  account_id: ACCOUNT_ID_CATEGORY,
  language: LANGUAGE_CATEGORY,
} as const;

/** The purposes a registration record is collected for (the source's, in the example manifest). */
const REGISTRATION_PURPOSES = ['provide-service', 'marketing-email'];

function findByKey(seq: unknown, key: string, what: string): YAMLMap {
  if (!isSeq(seq)) throw new BenchFailure(`${EXAMPLE_MANIFEST}: ${what} is not a list`);
  const item = seq.items.find((i) => isMap(i) && i.get('key') === key);
  if (!isMap(item)) throw new BenchFailure(`${EXAMPLE_MANIFEST}: no ${what} "${key}"`);
  return item;
}

/**
 * Writes the bench manifest to `dir`/pledge.yaml and returns its path: the example manifest with
 * two more registration fields, `language` (user.demographic.language) and `account_id`
 * (user.unique_id), declared by the registration source and used by provide-service; the example's
 * password is not written (see {@link ACCOUNT_ID_CATEGORY}). Edited through yaml's Document API,
 * so the rest (comments included) is the example's text.
 */
export function writeBenchManifest(dir: string): string {
  const doc = parseDocument(readFileSync(EXAMPLE_MANIFEST, 'utf8'));
  const registration = findByKey(doc.get('sources'), 'registration', 'source');
  const fields = registration.get('fields');
  const categories = registration.get('categories');
  const provide = findByKey(doc.get('purposes'), 'provide-service', 'purpose').get('categories');
  if (!isMap(fields) || !isSeq(categories) || !isSeq(provide)) {
    throw new BenchFailure(`${EXAMPLE_MANIFEST}: the registration source or provide-service changed shape`);
  }
  for (const [name, category] of [
    ['language', LANGUAGE_CATEGORY],
    ['account_id', ACCOUNT_ID_CATEGORY],
  ] as const) {
    fields.set(name, doc.createNode({ category }));
    categories.add(category);
    provide.add(category);
  }
  const file = path.join(dir, 'pledge.yaml');
  writeFileSync(file, doc.toString());
  return file;
}

/** A Pledge app built in this process on SQLite in a temporary data directory. */
export interface BenchApp {
  app: App;
  dataDir: string;
  ctx: Context;
  /** Closes the app (queued writes commit first) and deletes the data directory. */
  close(): Promise<void>;
}

/**
 * Builds the app as `pledge serve` does (createApp: migrations, the bench manifest in force, the
 * vault as the server wires it), in a new data directory, without listening. No logs, no retention
 * timer.
 */
export async function openBenchApp(): Promise<BenchApp> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-vault-'));
  try {
    const manifest = writeBenchManifest(dataDir);
    const config = loadConfig({
      PLEDGE_DATA_DIR: dataDir,
      PLEDGE_MANIFEST: manifest,
      PLEDGE_LOG_LEVEL: 'silent',
      PLEDGE_RETENTION_INTERVAL: '0',
    });
    const app = await createApp(config);
    return {
      app,
      dataDir,
      ctx: createContext({ kind: 'job', id: 'bench' }),
      async close() {
        await app.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

/** Creates `count` subjects (customers in the US), `inFlight` at a time; returns their ids. */
export async function createSubjects(bench: BenchApp, count: number, inFlight = 100): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += inFlight) {
    const made = await Promise.all(
      Array.from({ length: Math.min(inFlight, count - i) }, () =>
        bench.app.vault.createSubject(bench.ctx, { kind: 'customer', jurisdiction: 'US' }),
      ),
    );
    ids.push(...made.map((s) => s.id));
  }
  return ids;
}

/** The 8 plaintext values of registration record `i`: realistic sizes, distinct per record. */
export function registrationValues(i: number): Record<keyof typeof REGISTRATION_FIELDS, string> {
  const n = String(i).padStart(7, '0');
  return {
    email: `person-${n}@example-customer.test`,
    first_name: 'Ada',
    last_name: `Lovelace-${n}`,
    organization: 'Example Customer Systems, Inc.',
    phone: `+1 805 555 ${n.slice(-4)}`,
    username: `ada.lovelace.${n}`,
    // About the length of the password hash this field replaced, so records keep their size.
    account_id: `acct_${n}_4f1c9a0e-7b2d-4c55-9e0a-3d8b6f2a1c7e_9d3e5b7a1f0c2e4d6b8a0c2e4f6a8b0d2e4f6a8b0c`,
    language: 'en-US',
  };
}

/** Registration record `i` for `subjectId`, as Vault.write takes it. */
export function registrationRecord(subjectId: string, i: number): WriteRecordInput {
  const values = registrationValues(i);
  const fields: Record<string, FieldInput> = {};
  for (const [name, category] of Object.entries(REGISTRATION_FIELDS))
    fields[name] = { category, value: values[name as keyof typeof values] };
  return { subjectId, source: 'registration', fields };
}

/**
 * Writes `total` registration records through Vault.write, record i for subject i mod
 * subjects.length, in calls of `batch` records with up to `inFlight` calls at a time. Calls
 * `onProgress` after each call resolves, with how many records are committed so far.
 */
export async function writeRegistrations(
  bench: BenchApp,
  subjects: readonly string[],
  options: { total: number; batch: number; inFlight: number; offset?: number },
  onProgress?: (committed: number) => void,
): Promise<void> {
  const offset = options.offset ?? 0;
  let next = 0;
  let committed = 0;
  const worker = async () => {
    while (next < options.total) {
      const start = next;
      const end = Math.min(options.total, start + options.batch);
      next = end;
      const inputs: WriteRecordInput[] = [];
      for (let i = start; i < end; i++)
        inputs.push(registrationRecord(subjects[(offset + i) % subjects.length]!, offset + i));
      await bench.app.vault.write(bench.ctx, inputs);
      committed += end - start;
      onProgress?.(committed);
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, worker));
}

/**
 * The baseline: bare better-sqlite3 on a database migrated by Pledge itself (same tables, indexes
 * and foreign keys), with the settings Pledge uses (WAL, synchronous=FULL, foreign keys on), writing
 * the rows Vault.write would write but with the fields column holding the plaintext JSON of the
 * values: no encryption, no data keys, no audit, no Kysely.
 */
export interface BareSqlite {
  db: BetterSqlite3.Database;
  subjects: string[];
  /** Inserts registration rows `offset`..`offset + total - 1` in transactions of `batch`. */
  insertRegistrations(
    total: number,
    batch: number,
    offset?: number,
    onProgress?: (committed: number) => void,
  ): void;
  close(): void;
}

/**
 * A new data directory migrated by createApp (which also records the manifest version the rows
 * name), closed again, then opened with bare better-sqlite3 (WAL, synchronous=FULL, foreign keys;
 * Pledge's 32 MiB page cache when `pledgeCache`), with `subjectCount` US customers inserted.
 */
async function openBaselineDatabase(
  subjectCount: number,
  pledgeCache: boolean,
): Promise<{ dataDir: string; db: BetterSqlite3.Database; versionRow: { id: number }; subjects: string[] }> {
  const bench = await openBenchApp();
  await bench.app.close();
  const dataDir = bench.dataDir;
  const db = new BetterSqlite3(path.join(dataDir, 'pledge.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  if (pledgeCache) db.pragma('cache_size = -32768');
  const versionRow = db.prepare('select max(id) as id from manifest_versions').get() as { id: number };
  const now = new Date().toISOString();
  const subjects = Array.from({ length: subjectCount }, () => randomUUID());
  const insertSubject = db.prepare(
    'insert into subjects (id, kind, jurisdiction, created_at) values (?, ?, ?, ?)',
  );
  db.transaction(() => {
    for (const id of subjects) insertSubject.run(id, 'customer', 'US', now);
  })();
  return { dataDir, db, versionRow, subjects };
}

/** Opens the baseline: a new data directory migrated by createApp, `subjectCount` subjects. */
export async function openBareSqlite(subjectCount: number): Promise<BareSqlite> {
  const { dataDir, db, versionRow, subjects } = await openBaselineDatabase(subjectCount, false);

  const insert = db.prepare(
    'insert into records (id, subject_id, source, categories, purposes, policy_version_id, collected_at, retain_until, key_version, fields) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const categories = JSON.stringify([...new Set(Object.values(REGISTRATION_FIELDS))].sort());
  const purposes = JSON.stringify(REGISTRATION_PURPOSES);
  const retain = new Date(Date.now() + 7 * 365 * 86_400_000).toISOString();
  const insertBatch = db.transaction((from: number, to: number) => {
    const collectedAt = new Date().toISOString();
    for (let i = from; i < to; i++) {
      insert.run(
        // Ids as Pledge makes them (UUIDv7, in write order): random v4 ids would scatter the
        // primary-key index and slow the baseline down.
        uuidv7(),
        subjects[i % subjects.length],
        'registration',
        categories,
        purposes,
        versionRow.id,
        collectedAt,
        retain,
        1,
        JSON.stringify(registrationValues(i)),
      );
    }
  });
  return {
    db,
    subjects,
    insertRegistrations(total, batch, offset = 0, onProgress) {
      for (let i = 0; i < total; i += batch) {
        insertBatch(offset + i, offset + Math.min(total, i + batch));
        onProgress?.(Math.min(total, i + batch));
      }
    },
    close() {
      db.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// ---- the naive baseline: the same work as Vault.write and the use gate, on one thread ----------

/** The actor of the bench's context, as the audit rows name it. */
const NAIVE_ACTOR = JSON.stringify({ kind: 'job', id: 'bench' });

/**
 * The AAD of a field value as Pledge binds it (src/vault/vault.crypto.ts: length-prefixed parts
 * `pledge.field.v1`, subject, record, field, key version), written out here so the baseline owes
 * nothing to Pledge's code; {@link openNaiveVault} checks that Pledge opens what it seals.
 */
export function naiveFieldAad(
  subjectId: string,
  recordId: string,
  field: string,
  keyVersion: number,
): Buffer {
  const parts = ['pledge.field.v1', subjectId, recordId, field, String(keyVersion)].map((p) =>
    Buffer.from(p, 'utf8'),
  );
  const out = Buffer.alloc(parts.reduce((s, p) => s + 4 + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.writeUInt32BE(p.length, at);
    p.copy(out, at + 4);
    at += 4 + p.length;
  }
  return out;
}

/** Seals one value in Pledge's envelope: format 1 | 12-byte nonce | ciphertext | 16-byte tag. */
export function naiveSeal(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([1]), nonce, body, cipher.getAuthTag()]);
}

/** Opens a value sealed by {@link naiveSeal} (or by Pledge); throws when it does not authenticate. */
export function naiveOpen(key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 13), { authTagLength: 16 });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(13, sealed.length - 16)), decipher.final()]);
}

/**
 * The naive baseline of Vault.write: bare better-sqlite3 on a database migrated by Pledge, the same
 * rows as Vault.write stores, each of the 8 values sealed inline (one `createCipheriv` each) under
 * its subject's key with Pledge's envelope and AAD, the audit rows Pledge writes (one per subject and
 * call, listing the call's records of that subject), one transaction per call, WAL,
 * synchronous=FULL, the page size and cache Pledge gives its file; all on one thread.
 */
export interface NaiveVault {
  subjects: string[];
  /**
   * Throws unless Pledge's own `open` and `fieldAad` open the first value the baseline wrote: the
   * baseline seals exactly what Pledge would store.
   */
  checkEnvelope(): void;
  /** Writes registration records `offset`..`offset + total - 1`, one transaction per `batch`. */
  writeRegistrations(total: number, batch: number, offset?: number): void;
  /** {@link naiveRead} of one of its subjects. */
  read(subjectId: string): { rows: number; values: number };
  close(): void;
}

/** Opens the naive baseline: a new data directory migrated by createApp, `subjectCount` subjects. */
export async function openNaiveVault(subjectCount: number): Promise<NaiveVault> {
  const { dataDir, db, versionRow, subjects } = await openBaselineDatabase(subjectCount, true);
  // One key per subject, as Pledge's data keys (made before timing, as Pledge's are by the first
  // write of each subject, which the bench times apart).
  const keys = new Map<string, Buffer>(subjects.map((s) => [s, randomBytes(32)]));
  const insertRecord = db.prepare(
    'insert into records (id, subject_id, source, categories, purposes, policy_version_id, collected_at, retain_until, key_version, fields) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertAudit = db.prepare(
    'insert into audit_events (at, actor, action, subject_id, purpose, request_id, details) values (?, ?, ?, ?, ?, ?, ?)',
  );
  const fieldNames = Object.keys(REGISTRATION_FIELDS).sort();
  const categoryList = [...new Set(Object.values(REGISTRATION_FIELDS))].sort();
  const retain = new Date(Date.now() + 7 * 365 * 86_400_000).toISOString();
  const writeCall = db.transaction((from: number, to: number) => {
    const at = new Date().toISOString();
    const bySubject = new Map<string, string[]>();
    for (let i = from; i < to; i++) {
      const subjectId = subjects[i % subjects.length]!;
      const key = keys.get(subjectId)!;
      const id = uuidv7();
      const values = registrationValues(i);
      const fields: Record<string, { c: string; v: string }> = {};
      for (const [name, category] of Object.entries(REGISTRATION_FIELDS)) {
        const plaintext = Buffer.from(JSON.stringify(values[name as keyof typeof values]), 'utf8');
        const sealed = naiveSeal(key, plaintext, naiveFieldAad(subjectId, id, name, 1));
        fields[name] = { c: category, v: sealed.toString('base64') };
      }
      insertRecord.run(
        id,
        subjectId,
        'registration',
        JSON.stringify(categoryList),
        JSON.stringify(REGISTRATION_PURPOSES),
        versionRow.id,
        at,
        retain,
        1,
        JSON.stringify(fields),
      );
      const ids = bySubject.get(subjectId);
      if (ids) ids.push(id);
      else bySubject.set(subjectId, [id]);
    }
    for (const [subjectId, ids] of bySubject) {
      const details = {
        records: ids,
        sources: ['registration'],
        fields: fieldNames,
        categories: categoryList,
        purposes: REGISTRATION_PURPOSES,
      };
      insertAudit.run(at, NAIVE_ACTOR, 'vault.write', subjectId, null, null, JSON.stringify(details));
    }
  });
  let select: BetterSqlite3.Statement | undefined;
  return {
    subjects,
    checkEnvelope() {
      const row = db.prepare('select id, subject_id, fields from records order by id limit 1').get() as
        { id: string; subject_id: string; fields: string } | undefined;
      const stored = row && (JSON.parse(row.fields) as Record<string, { v: string }>);
      const email = stored?.email;
      const binding = row && { subjectId: row.subject_id, recordId: row.id, field: 'email', keyVersion: 1 };
      const opened =
        row &&
        email &&
        binding &&
        open(keys.get(row.subject_id)!, Buffer.from(email.v, 'base64'), fieldAad(binding)).toString('utf8');
      if (opened === undefined || !opened.startsWith('"person-')) {
        throw new BenchFailure(
          "the naive baseline's envelope is not Pledge's: Pledge cannot open its values",
        );
      }
    },
    writeRegistrations(total, batch, offset = 0) {
      for (let i = 0; i < total; i += batch) writeCall(offset + i, offset + Math.min(total, i + batch));
    },
    read(subjectId) {
      select ??= db.prepare(USE_GATE_SELECT);
      return naiveRead(select, subjectId, keys.get(subjectId)!);
    },
    close() {
      db.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The use gate's own query (its columns, its order), as the naive reader and the SELECT alone run it. */
export const USE_GATE_SELECT =
  'select id, source, purposes, policy_version_id, collected_at, key_version, fields from records where subject_id = ? order by id';

/**
 * The naive baseline of a use-gate read: the gate's own SELECT with bare better-sqlite3 and every
 * stored value of each row opened inline (one `createDecipheriv` each), each row's fields JSON
 * parsed and each plaintext parsed; no decision, no audit. Returns how many values it opened.
 */
export function naiveRead(
  select: BetterSqlite3.Statement,
  subjectId: string,
  key: Buffer,
): { rows: number; values: number } {
  const rows = select.all(subjectId) as Array<{ id: string; key_version: number; fields: string }>;
  let values = 0;
  const out: Array<Record<string, { category: string; value: unknown }>> = [];
  for (const row of rows) {
    const stored = JSON.parse(row.fields) as Record<string, { c: string; v: string }>;
    const fields: Record<string, { category: string; value: unknown }> = {};
    for (const [name, f] of Object.entries(stored)) {
      const aad = naiveFieldAad(subjectId, row.id, name, row.key_version);
      const plaintext = naiveOpen(key, Buffer.from(f.v, 'base64'), aad);
      fields[name] = { category: f.c, value: JSON.parse(plaintext.toString('utf8')) };
      values++;
    }
    out.push(fields);
  }
  return { rows: out.length, values };
}
