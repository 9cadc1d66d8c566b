/**
 * The modes of Pledge's data files: the SQLite databases (and their WAL and shared-memory files) and
 * the key file hold personal data or key material, so they are 0600 and their folder 0700, whether
 * the folder existed before or Pledge made it (a folder made by `mkdir -p` or a container image is
 * typically 0755, which would let every local user list it and read a file left 0644).
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';

/** Files: read and write for the owner only. */
export const DATA_FILE_MODE = 0o600;
/** Folders: the owner only. */
export const DATA_DIR_MODE = 0o700;

/** Creates `dir` when missing and sets it to 0700 either way. */
export async function secureDataDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DATA_DIR_MODE });
  await chmod(dir, DATA_DIR_MODE);
}

/**
 * Before SQLite opens `file`: its folder made and set to 0700, the file created empty with 0600 (or
 * set to it), and any WAL and shared-memory files set to 0600. SQLite creates the WAL and
 * shared-memory files with the mode of the database file, so new ones are 0600 too.
 */
export function secureSqliteFileSync(file: string, dir: string): void {
  mkdirSync(dir, { recursive: true, mode: DATA_DIR_MODE });
  chmodSync(dir, DATA_DIR_MODE);
  // 'a' creates the file when missing and never truncates one that exists.
  closeSync(openSync(file, 'a', DATA_FILE_MODE));
  chmodSync(file, DATA_FILE_MODE);
  for (const suffix of ['-wal', '-shm']) {
    try {
      chmodSync(`${file}${suffix}`, DATA_FILE_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
