/**
 * Checkpoints the SQLite write-ahead log on a thread of its own.
 *
 * In WAL mode a commit appends pages to the -wal file; a checkpoint copies them back into the
 * database file and fsyncs it. By default the connection that commits runs the checkpoint itself
 * once the log passes 1,000 pages, inside the commit, which in Node is on the event loop: under a
 * stream of writes half the commit time was checkpointing (docs/benchmarks.md). Here a worker thread
 * with its own connection runs PASSIVE checkpoints (they never block the writer or readers), so a
 * commit costs the log append and its fsync only, and a page written by many commits is copied once.
 *
 * The worker runs only while there are writes to keep up with: it starts once the log file passes
 * 1 MiB, and once nothing has been written for a while it truncates the log and stops, so an idle
 * server carries no extra thread (a worker is a JavaScript heap of its own, ~10 MiB). Without a
 * worker SQLite's own checkpoints apply, as before.
 *
 * While the worker runs, the writing connection keeps a much higher automatic threshold as a safety
 * net: if the worker falls behind or fails, the log still cannot grow without bound. Durability is
 * unchanged: both connections use synchronous=FULL, and a checkpoint interrupted by a crash is
 * redone from the log. The worker is inline code (no file to find in dist/ or the CLI bundle) and is
 * unreferenced, so it never keeps a process alive.
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';

/** The automatic checkpoint threshold (pages) of the writing connection while the worker runs. */
export const SAFETY_NET_PAGES = 16_000;
/** SQLite's own default threshold, in force while no worker runs. */
export const SQLITE_DEFAULT_PAGES = 1_000;

/** Tuning, mostly for tests. */
export interface CheckpointerOptions {
  /** Milliseconds between checkpoints while the log keeps growing (default 100). */
  busyIntervalMs?: number;
  /** Milliseconds between checkpoints while nothing is written (default 1,000). */
  idleIntervalMs?: number;
  /** The worker stops itself after this long without a write (default 30,000 ms). */
  idleExitMs?: number;
}

/** What a checkpoint found: frames in the log, and how many of them are now in the database file. */
export interface CheckpointReport {
  log: number;
  checkpointed: number;
}

/** A running checkpoint worker. */
export interface Checkpointer {
  /** Checkpoints on the worker now, after every commit made so far, and resolves with what it found. */
  checkpointNow(): Promise<CheckpointReport>;
  /** Resolves once the worker has stopped, by {@link stop}, on its own when idle, or on failure. */
  readonly stopped: Promise<void>;
  /** Stops the worker after its current checkpoint; the writing connection checkpoints itself again. */
  stop(): Promise<void>;
}

// The worker: a connection of its own to the same file, PASSIVE checkpoints on a timer that backs
// off while nothing is written, and one at once when asked (`check`), answered with what it found:
// `log` is the frames in the log, `checkpointed` those now in the database file. Once the log has
// neither grown nor had anything left to copy for idleExitMs, it truncates the log file (so that a
// later write does not find it large and start a worker at once), says so (`idle`) and is stopped.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 1000');
let timer;
let last = -1;
let quietSince = Date.now();
const checkpoint = () => {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    return r;
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message) });
    return undefined;
  }
};
const tick = () => {
  const r = checkpoint();
  if (!r) return;
  const quiet = r.log === last && r.checkpointed === r.log;
  last = r.log;
  if (!quiet) quietSince = Date.now();
  else if (Date.now() - quietSince >= workerData.idleExitMs) {
    try {
      // Without waiting: a TRUNCATE that waits holds new writers back meanwhile.
      db.pragma('busy_timeout = 0');
      db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // A writer came back meanwhile: the log stays as it is, and so does the worker's job.
    }
    parentPort.postMessage({ idle: true });
    return;
  }
  timer = setTimeout(tick, quiet ? workerData.idleIntervalMs : workerData.busyIntervalMs);
};
parentPort.on('message', (msg) => {
  if (msg === 'stop') {
    clearTimeout(timer);
    db.close();
    parentPort.close();
    return;
  }
  const r = checkpoint();
  if (r) parentPort.postMessage({ check: msg.check, log: r.log, checkpointed: r.checkpointed });
});
tick();
`;

/**
 * Starts a checkpoint worker for `file` and raises `database`'s own threshold to the safety net
 * while it runs. Returns `undefined` (and leaves SQLite's default in place) when a worker cannot start.
 */
export function startCheckpointer(
  database: BetterSqlite3.Database,
  file: string,
  options: CheckpointerOptions = {},
): Checkpointer | undefined {
  let worker: Worker;
  try {
    worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        file,
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        busyIntervalMs: options.busyIntervalMs ?? 100,
        idleIntervalMs: options.idleIntervalMs ?? 1_000,
        idleExitMs: options.idleExitMs ?? 30_000,
      },
    });
  } catch {
    return undefined;
  }
  worker.unref();
  database.pragma(`wal_autocheckpoint = ${SAFETY_NET_PAGES}`);
  let stopping: Promise<void> | undefined;
  const stopped = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const fallBack = () => {
    if (database.open) database.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_PAGES}`);
  };
  const waiting = new Map<
    number,
    { resolve: (report: CheckpointReport) => void; reject: (err: Error) => void }
  >();
  let checks = 0;
  const stop = () =>
    (stopping ??= (async () => {
      // Referenced while it winds down: otherwise a process with nothing else to do would exit
      // before the worker has closed its connection.
      worker.ref();
      worker.postMessage('stop');
      await stopped;
    })());
  worker.on(
    'message',
    (msg: { error?: string; idle?: true; check?: number; log?: number; checkpointed?: number }) => {
      // A checkpoint that fails (the disk is full, say) is not an error of any request: the writing
      // connection takes the job back, and the commit that then checkpoints reports what is wrong.
      if (msg.error !== undefined) {
        fallBack();
        void worker.terminate();
        return;
      }
      if (msg.idle) {
        void stop();
        return;
      }
      const w = msg.check === undefined ? undefined : waiting.get(msg.check);
      if (!w || msg.check === undefined || msg.log === undefined || msg.checkpointed === undefined) return;
      waiting.delete(msg.check);
      w.resolve({ log: msg.log, checkpointed: msg.checkpointed });
    },
  );
  worker.on('error', fallBack);
  void stopped.then(() => {
    fallBack();
    for (const w of waiting.values()) w.reject(new Error('the checkpointer stopped'));
    waiting.clear();
  });
  return {
    checkpointNow: () =>
      new Promise<CheckpointReport>((resolve, reject) => {
        if (stopping) {
          reject(new Error('the checkpointer stopped'));
          return;
        }
        const check = ++checks;
        waiting.set(check, { resolve, reject });
        worker.ref();
        worker.postMessage({ check });
      }).finally(() => {
        if (waiting.size === 0 && !stopping) worker.unref();
      }),
    stopped,
    stop,
  };
}

/** Tuning of {@link BackgroundCheckpoints}, mostly for tests. */
export interface BackgroundCheckpointsOptions extends CheckpointerOptions {
  /** A worker starts at the first commit that finds the log file larger than this (default 1 MiB). */
  startAtLogBytes?: number;
}

/** Starts and stops a checkpoint worker with the writes of one connection. */
export class BackgroundCheckpoints {
  readonly #database: BetterSqlite3.Database;
  readonly #file: string;
  readonly #options: BackgroundCheckpointsOptions;
  readonly #log: string;
  readonly #startAt: number;
  #running: Checkpointer | undefined;
  #closed = false;
  /** Set when a worker failed to start: SQLite's own checkpoints from then on. */
  #unavailable = false;

  constructor(database: BetterSqlite3.Database, file: string, options: BackgroundCheckpointsOptions = {}) {
    this.#database = database;
    this.#file = file;
    this.#options = options;
    this.#log = `${file}-wal`;
    this.#startAt = options.startAtLogBytes ?? 1024 * 1024;
  }

  /** The running worker, if one runs now. */
  get running(): Checkpointer | undefined {
    return this.#running;
  }

  /**
   * To be called after each commit of the writing connection: starts a worker once the log is large.
   * Without a worker that costs one stat of the log file; with one, nothing.
   */
  committed(): void {
    if (this.#running || this.#closed || this.#unavailable) return;
    let size: number;
    try {
      size = statSync(this.#log).size;
    } catch {
      return;
    }
    if (size < this.#startAt) return;
    const started = startCheckpointer(this.#database, this.#file, this.#options);
    if (!started) {
      this.#unavailable = true;
      return;
    }
    this.#running = started;
    void started.stopped.then(() => {
      if (this.#running === started) this.#running = undefined;
    });
  }

  /** Stops the worker, if one runs, and starts no other (before the connection closes). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#running?.stop();
  }
}
