/**
 * The audit capability's parts, built once: the audit log every capability appends to, the
 * integrator and its jobs, the checkpoint publisher, the readers of the log and its routes.
 */
import type { FastifyInstance } from 'fastify';
import { createContext, type Context } from '../platform/context.js';
import type { Database } from '../platform/db/database.js';
import type { Listener } from '../platform/db/dialects/postgres-listen.js';
import type { Db } from '../platform/db/db.js';
import type { AuthHook } from '../platform/http/auth.js';
import type { JobQueue } from '../platform/jobs/jobs.service.js';
import type { UseKeys } from '../vault/use-keys.js';
import { AuditRepository } from './audit.repository.js';
import { AuditLog } from './audit.service.js';
import { SubjectCommitments } from './log.entry.js';
import { LogIntegrator, type IntegrateResult } from './log.integrator.js';
import { defineLogJobs, Wake, type LogJobsLogger } from './log.jobs.js';
import { CheckpointFile } from './log.publisher.js';
import { LogRepository, type StoredCheckpoint } from './log.repository.js';
import { registerLogRoutes } from './log.routes.js';
import { TransparencyLog } from './log.service.js';

/** The log's settings (from the config). */
export interface LogSettings {
  origin: string;
  checkpointFile: string;
  checkpointWebhook: string | undefined;
  publicTiles: boolean;
  /**
   * PLEDGE_LOG_RATE_LIMIT: the checkpoint's and tiles' own budget, requests per minute per client;
   * absent (tools that serve no HTTP), they count against the server's limit.
   */
  rateLimitPerMinute?: number;
}

/** The notification channel of appends (named per schema by the database). */
const APPENDED_CHANNEL = 'pledge_audit_appended';

/**
 * A NOTIFY after appends commit, coalesced: at most one in flight and one more after it, however
 * many appends commit meanwhile (one wakes an integrator as well as a thousand). It runs outside the
 * appends' transactions, which stay as they were; a lost one leaves the entries to the poll.
 */
function coalescedNotify(repo: LogRepository, channel: string, log: LogJobsLogger): () => void {
  const ctx = createContext({ kind: 'job', id: 'audit.integrate' });
  let inFlight = false;
  let again = false;
  const send = (): void => {
    inFlight = true;
    again = false;
    repo
      .notifyAppended(ctx, channel)
      .catch((err: unknown) =>
        log.warn(
          { channel, error: err instanceof Error ? err.message : String(err) },
          'could not notify other instances of new log entries; their integrators poll for them',
        ),
      )
      .finally(() => {
        inFlight = false;
        if (again) send();
      });
  };
  return () => {
    if (inFlight) again = true;
    else send();
  };
}

/** What {@link createAuditCapability} gives back. */
export interface AuditCapability {
  /** The appender every capability is given. */
  audit: AuditLog;
  /** The log's readers: checkpoints, tiles, proofs, cosignatures. */
  log: TransparencyLog;
  integrator: LogIntegrator;
  /** Integrates everything committed so far (passes until none is left); for tests and tools. */
  integrateNow(ctx: Context): Promise<IntegrateResult>;
  /** Converts rows of earlier versions and enqueues the integrator's slot; call at start. */
  start(ctx: Context): Promise<void>;
  /** Ends the integrator's loop at once (before the queue stops). */
  stop(): void;
  /** Resolves once every checkpoint signed so far in this process is written to the checkpoint file. */
  flush(): Promise<void>;
  /**
   * Adds work to enqueue in each new checkpoint's own transaction (the witnesses' cosigning jobs);
   * call at boot, before the queue starts.
   */
  onCheckpoint(enqueue: (ctx: Context, checkpoint: StoredCheckpoint) => Promise<void>): void;
  registerRoutes(http: FastifyInstance, deps: { auth: AuthHook }): void;
}

/** Builds the audit capability and defines its jobs on the queue. */
export function createAuditCapability(deps: {
  db: Db;
  queue: JobQueue;
  subjectKeys: UseKeys;
  checkpointKeys: UseKeys;
  settings: LogSettings;
  log: LogJobsLogger;
  /**
   * The database's notifications (PostgreSQL): appends in any instance wake the integrator at once,
   * where without them entries of other instances wait for its poll.
   */
  notifications?: Pick<Database, 'channel' | 'listen'>;
  /** The integrate job's slot, poll and linger (defaults in log.jobs.ts); tests change them. */
  slotMs?: number;
  pollMs?: number;
  lingerMs?: number;
}): AuditCapability {
  const commitments = new SubjectCommitments(deps.subjectKeys);
  const wake = new Wake();
  const repo = new LogRepository(deps.db);
  const listen = deps.notifications?.listen;
  const channel = deps.notifications?.channel(APPENDED_CHANNEL);
  const notifier =
    listen !== undefined && channel !== undefined ? coalescedNotify(repo, channel, deps.log) : undefined;
  const audit = new AuditLog({
    db: deps.db,
    repo: new AuditRepository(deps.db),
    commitments,
    onCommitted: () => {
      wake.wake();
      notifier?.();
    },
  });
  const file = new CheckpointFile(deps.settings.checkpointFile);
  const stopping = new AbortController();
  // The checkpoint file's writes, one after another (each function catches its own errors).
  let fileWrites: Promise<void> = Promise.resolve();
  const inFile = (write: () => Promise<void>): Promise<void> => (fileWrites = fileWrites.then(write));
  // The jobs are defined after the integrator they run; the integrator reaches them through this.
  const later: { webhook?: (ctx: Context, size: number) => Promise<void> } = {};
  const hooks: Array<(ctx: Context, checkpoint: StoredCheckpoint) => Promise<void>> = [];
  const integrator = new LogIntegrator({
    db: deps.db,
    repo,
    commitments,
    origin: deps.settings.origin,
    checkpointKeys: deps.checkpointKeys,
    enqueue: async (ctx, c) => {
      await later.webhook?.(ctx, c.size);
      for (const hook of hooks) await hook(ctx, c);
    },
    // The line is written after the pass, off its path: its fsync took as long as the rest of a pass
    // of 1,000 entries, and the next pass (the next entries' lag) waited for it. Lines are written in
    // order, one at a time; a crash before one is written is what start() makes up for.
    published: (_ctx, c) => {
      void inFile(async () => {
        try {
          await file.append(c);
        } catch (err) {
          // The checkpoint is stored and signed; the next one is published too, and covers this one.
          deps.log.warn(
            { file: file.file, size: c.size, error: err instanceof Error ? err.message : String(err) },
            'the checkpoint could not be written to the checkpoint file',
          );
        }
      });
      return Promise.resolve();
    },
  });
  const jobs = defineLogJobs(deps.queue, {
    integrator,
    repo,
    wake,
    stopped: stopping.signal,
    webhookUrl: deps.settings.checkpointWebhook,
    log: deps.log,
    ...(deps.slotMs !== undefined ? { slotMs: deps.slotMs } : {}),
    ...(deps.pollMs !== undefined ? { pollMs: deps.pollMs } : {}),
    ...(deps.lingerMs !== undefined ? { lingerMs: deps.lingerMs } : {}),
  });
  later.webhook = (ctx, size) => jobs.enqueueWebhook(ctx, size);
  const log = new TransparencyLog({ repo, integrator });
  let stopSeeding: (() => void) | undefined;
  let listener: Listener | undefined;
  return {
    audit,
    log,
    integrator,
    async integrateNow(ctx) {
      let total = 0;
      for (;;) {
        const r = await integrator.integrateOnce(ctx);
        total += r.integrated;
        if (!r.more) {
          await fileWrites;
          return { ...r, integrated: total };
        }
      }
    },
    async start(ctx) {
      await integrator.convertLegacy(ctx);
      // Checkpoints signed while the file could not be written (or by a crash between the commit
      // and the line) are published now, so the file misses none this instance signed or saw.
      await inFile(async () => {
        try {
          let last = await file.lastSize();
          for (;;) {
            const missing = await repo.checkpointsAfter(ctx, last, 500);
            for (const c of missing) await file.append(c);
            if (missing.length < 500) break;
            last = missing.at(-1)?.size ?? last;
          }
        } catch (err) {
          deps.log.warn(
            { file: file.file, error: err instanceof Error ? err.message : String(err) },
            'the checkpoint file could not be brought up to date',
          );
        }
      });
      if (listen !== undefined && channel !== undefined && listener === undefined) {
        // A lost connection may have missed notifications: a pass finds whatever they named.
        listener = listen(channel, {
          onMessage: () => wake.wake(),
          onListening: () => wake.wake(),
          onLost: () => undefined,
        });
        await listener.ready;
      }
      await jobs.schedule(ctx);
      stopSeeding?.();
      stopSeeding = jobs.keepScheduled(ctx);
    },
    stop() {
      stopSeeding?.();
      stopping.abort();
      // Closed with the database too; a failure here leaves nothing to do.
      void listener?.close().catch(() => undefined);
      listener = undefined;
    },
    flush() {
      return fileWrites;
    },
    onCheckpoint(enqueue) {
      hooks.push(enqueue);
    },
    registerRoutes(http, { auth }) {
      registerLogRoutes(http, {
        log,
        auth,
        publicTiles: deps.settings.publicTiles,
        ...(deps.settings.rateLimitPerMinute !== undefined
          ? { rateLimitPerMinute: deps.settings.rateLimitPerMinute }
          : {}),
      });
    },
  };
}
