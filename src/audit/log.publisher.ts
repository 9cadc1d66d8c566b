/**
 * Publishes checkpoints outside the database, so that a rewrite of the database cannot rewrite
 * history unseen: each signed checkpoint is appended to a file (and POSTed to a webhook, as a job:
 * log.jobs.ts). `pledge audit verify` reads the file back.
 *
 * The file's format (also in docs/transparency-log.md):
 * - JSON Lines, UTF-8: one checkpoint per line, in the order they were signed, each line ended by
 *   "\n" and fsync'd before the next; sizes never decrease (the same size may appear twice when two
 *   instances publish it);
 * - each line is `{"size": N, "root": "<base64 of the 32-byte root>", "created_at": "<ISO-8601>",
 *   "note": "<the whole signed note: body, blank line, signature lines, ending in \n>"}`;
 * - a last line that is not complete JSON is a write cut short by a crash: readers ignore it and
 *   say so. The next append starts on a new line, so such a fragment stays a line of its own (not
 *   JSON: skipped, and counted, by readers).
 */
import { mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';
import type { StoredCheckpoint } from './log.repository.js';

/** One line of the checkpoint file, as JSON. */
export interface CheckpointFileLine {
  size: number;
  root: string;
  created_at: string;
  note: string;
}

/** The line a checkpoint is written as (with its "\n"). */
export function checkpointFileLine(c: StoredCheckpoint): string {
  const line: CheckpointFileLine = {
    size: c.size,
    root: c.root.toString('base64'),
    created_at: c.createdAt.toISOString(),
    note: c.note,
  };
  return `${JSON.stringify(line)}\n`;
}

/**
 * Reads a checkpoint file's text: its complete lines, whether a last line was cut short, and how
 * many earlier lines are not checkpoints (fragments of writes a crash cut short).
 */
export function parseCheckpointFile(text: string): {
  lines: CheckpointFileLine[];
  truncated: boolean;
  skipped: number;
} {
  const parts = text.split('\n');
  const tail = parts.pop() ?? '';
  const lines: CheckpointFileLine[] = [];
  let skipped = 0;
  for (const part of parts) {
    if (part.trim() === '') continue;
    const line = parseLine(part);
    if (line === undefined) skipped++;
    else lines.push(line);
  }
  return { lines, truncated: tail.trim() !== '', skipped };
}

function parseLine(text: string): CheckpointFileLine | undefined {
  try {
    const v = JSON.parse(text) as Partial<CheckpointFileLine> | null;
    if (v === null || typeof v.size !== 'number' || typeof v.note !== 'string' || typeof v.root !== 'string')
      return undefined;
    return v as CheckpointFileLine;
  } catch {
    return undefined;
  }
}

/** Appends checkpoints to one file, one at a time, each durable before the next. */
export class CheckpointFile {
  readonly file: string;
  #tail: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.file = file;
  }

  /** Appends `c` and fsyncs the file; resolves once it is on disk. */
  append(c: StoredCheckpoint): Promise<void> {
    const run = this.#tail.then(() => this.#write(checkpointFileLine(c)));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /**
   * The size of the last complete checkpoint in the file (reading only its end), or -1 when the
   * file is missing or holds none: what start-up catches up from after a crash between a
   * checkpoint's commit and its line.
   */
  async lastSize(): Promise<number> {
    let length: number;
    try {
      length = (await stat(this.file)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return -1;
      throw err;
    }
    const handle = await open(this.file, 'r');
    try {
      const span = Math.min(length, 64 * 1024);
      const buffer = Buffer.alloc(span);
      await handle.read(buffer, 0, span, length - span);
      const lines = buffer.toString('utf8').split('\n');
      lines.pop();
      // From the end: a line cut by the window's start, or cut short by a crash, is not one.
      for (let i = lines.length - 1; i >= 0; i--) {
        const line = parseLine(lines[i] ?? '');
        if (line !== undefined) return line.size;
      }
      return -1;
    } finally {
      await handle.close();
    }
  }

  async #write(line: string): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const handle = await open(this.file, 'a+', 0o600);
    try {
      // After a write a crash cut short, start on a new line: the fragment stays a line of its own.
      const { size } = await handle.stat();
      let prefix = '';
      if (size > 0) {
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) prefix = '\n';
      }
      await handle.write(prefix + line);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
