/**
 * The transparency log on a test database, wired as the app wires it (createAuditCapability), with
 * fresh keys and its checkpoint file in a temporary directory; and the verifier run on it as
 * `pledge audit verify` runs it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AuditEntry } from '../../src/audit/audit.service.js';
import { parseCheckpointFile } from '../../src/audit/log.publisher.js';
import { LogVerifyRepository } from '../../src/audit/log.verify.repository.js';
import { createAuditCapability, type AuditCapability } from '../../src/audit/log.setup.js';
import { storedLogSource, verifyLog, type VerifyLogResult } from '../../src/audit/log.verify.js';
import { parseVerifierKey } from '../../src/audit/note.js';
import { createContext, type Context } from '../../src/platform/context.js';
import type { Database } from '../../src/platform/db/database.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import { UseKeys, type KeyUse } from '../../src/vault/use-keys.js';

/** The log's origin in tests. */
export const TEST_LOG_ORIGIN = 'pledge.test/log';

/** A log on a database. */
export interface TestLog extends AuditCapability {
  queue: JobQueue;
  ctx: Context;
  /** The checkpoint file (kept outside the database). */
  checkpointFile: string;
  /** The log's verifier key. */
  vkey: string;
  /** Appends `count` distinct entries (entry `offset + k` each), `batch` per transaction, and integrates them. */
  appendAndIntegrate(count: number, options?: { offset?: number; batch?: number }): Promise<void>;
  /** The external checkpoints' notes, from the file. */
  externalCheckpoints(): Promise<string[]>;
  /** Removes the checkpoint file's directory. */
  cleanup(): Promise<void>;
}

/** A distinct entry: no two in a log hash alike. */
export function distinctEntry(n: number): AuditEntry {
  return {
    action: n % 3 === 0 ? 'vault.read' : n % 3 === 1 ? 'share.disclose' : 'consent.change',
    subjectId: `subject-${n % 97}`,
    purpose: 'provide-service',
    details: { n, fields: ['email', 'name'] },
  };
}

/** Keys of one use: a fixed secret, so two logs built from the same `secrets` sign alike. */
function keysOf(use: KeyUse, secret: Buffer): UseKeys {
  return new UseKeys(use, [{ version: 1, secret, createdAt: undefined }]);
}

/** Wires the log on `database`, its checkpoint file in a new temporary directory (or `checkpointFile`). */
export async function openTestLog(
  database: Database,
  options: { checkpointFile?: string; secrets?: { subjects: Buffer; checkpoints: Buffer } } = {},
): Promise<TestLog> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-log-'));
  const checkpointFile = options.checkpointFile ?? path.join(dir, 'log-checkpoints.jsonl');
  const secrets = options.secrets ?? { subjects: randomBytes(32), checkpoints: randomBytes(32) };
  const queue = new JobQueue({ db: database.db });
  const capability = createAuditCapability({
    db: database.db,
    queue,
    subjectKeys: keysOf('log_subjects', secrets.subjects),
    checkpointKeys: keysOf('log_checkpoints', secrets.checkpoints),
    settings: { origin: TEST_LOG_ORIGIN, checkpointFile, checkpointWebhook: undefined, publicTiles: false },
    log: { info: () => undefined, warn: () => undefined },
  });
  const ctx = createContext({ kind: 'job', id: 'test' });
  return {
    ...capability,
    queue,
    ctx,
    checkpointFile,
    vkey: capability.log.verifierKey,
    async appendAndIntegrate(count, { offset = 0, batch = 250 } = {}) {
      for (let i = 0; i < count; i += batch) {
        const entries = Array.from({ length: Math.min(batch, count - i) }, (_, k) =>
          distinctEntry(offset + i + k),
        );
        await database.db.transaction(ctx, (trx) => capability.audit.append(trx, entries));
      }
      await capability.integrateNow(ctx);
    },
    async externalCheckpoints() {
      await capability.flush();
      const text = await readFile(checkpointFile, 'utf8').catch(() => '');
      return parseCheckpointFile(text).lines.map((l) => l.note);
    },
    async cleanup() {
      await capability.flush();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs the verifier over `database` as `pledge audit verify` does, with these external checkpoints. */
export async function verifyDatabase(
  database: Pick<Database, 'db'>,
  vkey: string,
  externalCheckpoints: readonly string[],
  ctx: Context = createContext({ kind: 'cli', id: 'test' }),
): Promise<VerifyLogResult> {
  return verifyLog(
    await storedLogSource(ctx, new LogVerifyRepository(database.db), {
      origin: TEST_LOG_ORIGIN,
      verifiers: [parseVerifierKey(vkey)],
      externalCheckpoints,
    }),
  );
}
