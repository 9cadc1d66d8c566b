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
 *   say so.
 */
import { mkdir, open } from 'node:fs/promises';
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

/** Reads a checkpoint file's text: its complete lines, and whether a last line was cut short. */
export function parseCheckpointFile(text: string): { lines: CheckpointFileLine[]; truncated: boolean } {
  const parts = text.split('\n');
  const tail = parts.pop() ?? '';
  const lines: CheckpointFileLine[] = [];
  for (const part of parts) if (part.trim() !== '') lines.push(JSON.parse(part) as CheckpointFileLine);
  return { lines, truncated: tail.trim() !== '' };
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

  async #write(line: string): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const handle = await open(this.file, 'a', 0o600);
    try {
      await handle.write(line);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
