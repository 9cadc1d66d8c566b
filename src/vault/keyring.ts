/**
 * The deployment's master keys: versioned key-encryption keys (KEKs) that wrap every subject's data
 * key, and the index key of the blind index (keyed hashes of identifiers).
 *
 * They come from `PLEDGE_KEYS` (the key file's JSON, for deployments whose instances share no disk)
 * or from `$PLEDGE_DATA_DIR/pledge-keys.json`, created on first start with mode 0600. Rotation adds
 * a KEK version; old versions stay until `retire` once no data key uses them.
 *
 * Each use of a secret other than wrapping (use-keys.ts) has its own versions: version 1 is the index
 * key (each use derives its key from it under its own label), later versions are stored under
 * `use_keys`. The blind index's stays at version 1: see docs/vault.md for why it cannot be rehashed.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { PledgeError } from '../platform/errors.js';
import { secureDataDir } from '../platform/db/data-files.js';
import { KEY_USES, UseKeys, type KeyUse } from './use-keys.js';

/** The key file's name inside the data directory. */
export const KEY_FILE_NAME = 'pledge-keys.json';

/** One KEK version as stored. */
interface StoredKek {
  version: number;
  key: string;
  created_at: string;
  retired_at?: string;
}

/** A version (2 and later) of a use's key material as stored. */
interface StoredUseKey {
  version: number;
  key: string;
  created_at: string;
}

/** The key file's format. `use_keys` is absent from key files written before uses had versions. */
interface KeyFile {
  format: 1;
  keks: StoredKek[];
  index_key: string;
  use_keys?: Partial<Record<KeyUse, StoredUseKey[]>>;
}

/** A KEK version, unwrapped. */
export interface Kek {
  version: number;
  key: Buffer;
  createdAt: string;
  retiredAt: string | undefined;
}

/** Where the keys came from. */
export type KeyringSource = { kind: 'file'; file: string } | { kind: 'env' };

/** Options for {@link Keyring.load}. */
export interface LoadKeyringOptions {
  dataDir: string;
  /** The value of PLEDGE_KEYS, when set. */
  envKeys?: string | undefined;
  clock?: () => Date;
}

/** The master keys of a deployment. */
export class Keyring {
  readonly #keks: Map<number, Kek>;
  readonly indexKey: Buffer;
  readonly source: KeyringSource;
  readonly #uses: ReadonlyMap<KeyUse, UseKeys>;

  private constructor(file: KeyFile, source: KeyringSource) {
    this.#keks = new Map(
      file.keks.map((k) => [
        k.version,
        {
          version: k.version,
          key: decodeKey(k.key, `KEK version ${k.version}`),
          createdAt: k.created_at,
          retiredAt: k.retired_at,
        },
      ]),
    );
    this.indexKey = decodeKey(file.index_key, 'the index key');
    this.source = source;
    this.#uses = new Map(
      KEY_USES.map((use) => [
        use,
        new UseKeys(use, [
          { version: 1, secret: this.indexKey, createdAt: undefined },
          ...(file.use_keys?.[use] ?? []).map((k) => ({
            version: k.version,
            secret: decodeKey(k.key, `the ${use} key version ${k.version}`),
            createdAt: k.created_at,
          })),
        ]),
      ]),
    );
    if (this.activeVersions().length === 0) {
      throw new PledgeError(
        'vault.keys_invalid',
        'the key file has no active KEK version; restore it from your backup',
      );
    }
  }

  /**
   * Loads the keys from PLEDGE_KEYS or the key file, creating the file (0600, never overwriting an
   * existing one) on first start. Throws `vault.keys_invalid` naming the problem when they are unusable.
   */
  static async load(options: LoadKeyringOptions): Promise<Keyring> {
    const now = options.clock ?? (() => new Date());
    if (options.envKeys !== undefined && options.envKeys.trim() !== '') {
      return new Keyring(parseKeyFile(options.envKeys, 'PLEDGE_KEYS'), { kind: 'env' });
    }
    const file = path.join(path.resolve(options.dataDir), KEY_FILE_NAME);
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw keyFileError(file, err);
    }
    if (text === undefined) {
      const fresh: KeyFile = {
        format: 1,
        keks: [{ version: 1, key: randomBytes(32).toString('base64'), created_at: now().toISOString() }],
        index_key: randomBytes(32).toString('base64'),
      };
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      // 0700 whether or not the folder was there: it holds the key file.
      await secureDataDir(path.dirname(file));
      try {
        // 'wx': two processes starting at once must not each write their own keys.
        const handle = await open(file, 'wx', 0o600);
        try {
          await handle.writeFile(`${JSON.stringify(fresh, null, 2)}\n`);
          await handle.sync();
        } finally {
          await handle.close();
        }
        return new Keyring(fresh, { kind: 'file', file });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw keyFileError(file, err);
        text = await readFile(file, 'utf8');
      }
    }
    return new Keyring(parseKeyFile(text, file), { kind: 'file', file });
  }

  /** The KEK new data keys are wrapped with: the newest active version. */
  currentKek(): Kek {
    const active = this.activeVersions();
    const newest = active[active.length - 1];
    const kek = newest === undefined ? undefined : this.#keks.get(newest);
    if (!kek) throw new PledgeError('vault.keys_invalid', 'no active KEK');
    return kek;
  }

  /** A KEK by version, retired or not; throws `vault.kek_missing` when the keyring does not have it. */
  kek(version: number): Kek {
    const kek = this.#keks.get(version);
    if (!kek) {
      throw new PledgeError(
        'vault.kek_missing',
        `KEK version ${version} is not in the keyring; a data key wrapped with it cannot be opened (was the key file replaced?)`,
      );
    }
    return kek;
  }

  /** Every KEK version, oldest first. */
  versions(): Kek[] {
    return [...this.#keks.values()].sort((a, b) => a.version - b.version);
  }

  /** Versions not retired, oldest first. */
  activeVersions(): number[] {
    return this.versions()
      .filter((k) => k.retiredAt === undefined)
      .map((k) => k.version);
  }

  /** A new keyring with one more KEK version, which becomes current. Persist it with {@link save}. */
  withNewVersion(now: Date): Keyring {
    const file = this.#toFile();
    const version = Math.max(...file.keks.map((k) => k.version)) + 1;
    file.keks.push({ version, key: randomBytes(32).toString('base64'), created_at: now.toISOString() });
    return new Keyring(file, this.source);
  }

  /** The versions of one use's key material (version 1 is the index key). */
  use(use: KeyUse): UseKeys {
    return this.#uses.get(use) as UseKeys;
  }

  /**
   * A new keyring with one more version of `use`'s key material (fresh random bytes), which becomes
   * the one new tokens are made with; older versions still verify. Persist it with {@link save}.
   * The blind index cannot rotate (docs/vault.md): `vault.index_key_fixed`.
   */
  withNewUseVersion(use: KeyUse, now: Date): Keyring {
    if (use === 'index') {
      throw new PledgeError(
        'vault.index_key_fixed',
        'the blind index key cannot rotate: the hashes of erased subjects and suppressed addresses are kept without the identifier they hash, so they cannot be recomputed (docs/vault.md, "Rotating the blind index")',
        { status: 409 },
      );
    }
    const file = this.#toFile();
    const version = this.use(use).current().version + 1;
    const useKeys = { ...file.use_keys };
    useKeys[use] = [
      ...(useKeys[use] ?? []),
      { version, key: randomBytes(32).toString('base64'), created_at: now.toISOString() },
    ];
    return new Keyring({ ...file, use_keys: useKeys }, this.source);
  }

  /** A new keyring with `version` retired (its key material removed). Persist it with {@link save}. */
  withRetired(version: number, now: Date): Keyring {
    const file = this.#toFile();
    const kek = file.keks.find((k) => k.version === version);
    if (!kek)
      throw new PledgeError('vault.kek_missing', `there is no KEK version ${version}`, { status: 404 });
    if (this.currentKek().version === version) {
      throw new PledgeError('vault.kek_current', `KEK version ${version} is the current one; rotate first`, {
        status: 409,
      });
    }
    // Retiring removes the key material: that is what makes retirement mean something.
    kek.key = Buffer.alloc(32).toString('base64');
    kek.retired_at = now.toISOString();
    return new Keyring(file, this.source);
  }

  /**
   * Writes the keyring to its file atomically (a 0600 temporary file renamed over the old one). With
   * keys from PLEDGE_KEYS there is no file: the caller shows {@link serialize}'s output instead.
   */
  async save(): Promise<void> {
    if (this.source.kind !== 'file') {
      throw new PledgeError(
        'vault.keys_from_env',
        'the keys come from PLEDGE_KEYS; set it to the new value instead',
        {
          status: 409,
        },
      );
    }
    const file = this.source.file;
    const temp = `${file}.${process.pid}.tmp`;
    const handle = await open(temp, 'w', 0o600);
    try {
      await handle.writeFile(this.serialize());
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(temp, 0o600);
    await rename(temp, file);
  }

  /** The key file's JSON (secret: handle like a password). */
  serialize(): string {
    return `${JSON.stringify(this.#toFile(), null, 2)}\n`;
  }

  #toFile(): KeyFile {
    return {
      format: 1,
      keks: this.versions().map((k) => ({
        version: k.version,
        key: k.key.toString('base64'),
        created_at: k.createdAt,
        ...(k.retiredAt !== undefined ? { retired_at: k.retiredAt } : {}),
      })),
      index_key: this.indexKey.toString('base64'),
      ...this.#useKeysToFile(),
    };
  }

  #useKeysToFile(): Pick<KeyFile, 'use_keys'> {
    const stored: Partial<Record<KeyUse, StoredUseKey[]>> = {};
    for (const [use, keys] of this.#uses) {
      const later = keys.versions().filter((v) => v.version > 1);
      if (later.length === 0) continue;
      stored[use] = later.map((v) => ({
        version: v.version,
        key: v.secret.toString('base64'),
        created_at: v.createdAt ?? '',
      }));
    }
    // A key file no use has rotated in stays byte for byte what it was.
    return Object.keys(stored).length === 0 ? {} : { use_keys: stored };
  }
}

function parseKeyFile(text: string, where: string): KeyFile {
  let data: unknown;
  try {
    data = JSON.parse(text.trim().startsWith('{') ? text : Buffer.from(text, 'base64').toString('utf8'));
  } catch {
    throw new PledgeError('vault.keys_invalid', `${where} is not the JSON of a Pledge key file`);
  }
  const file = data as Partial<KeyFile>;
  if (file.format !== 1 || !Array.isArray(file.keks) || typeof file.index_key !== 'string') {
    throw new PledgeError(
      'vault.keys_invalid',
      `${where} is not a Pledge key file (expected { format: 1, keks: [...], index_key })`,
    );
  }
  for (const k of file.keks) {
    if (!Number.isInteger(k.version) || typeof k.key !== 'string') {
      throw new PledgeError(
        'vault.keys_invalid',
        `${where}: every KEK needs an integer version and a base64 key`,
      );
    }
  }
  for (const [use, list] of Object.entries(file.use_keys ?? {})) {
    if (!(KEY_USES as readonly string[]).includes(use) || use === 'index' || !Array.isArray(list)) {
      throw new PledgeError(
        'vault.keys_invalid',
        `${where}: use_keys.${use} is not a rotatable use (${KEY_USES.filter((u) => u !== 'index').join(', ')})`,
      );
    }
    let expected = 2;
    for (const k of list) {
      if (k.version !== expected || typeof k.key !== 'string') {
        throw new PledgeError(
          'vault.keys_invalid',
          `${where}: use_keys.${use} must list versions 2, 3, ... in order, each with a base64 key`,
        );
      }
      expected += 1;
    }
  }
  return file as KeyFile;
}

function decodeKey(base64: string, what: string): Buffer {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== 32) throw new PledgeError('vault.keys_invalid', `${what} is not a base64 256-bit key`);
  return key;
}

function keyFileError(file: string, err: unknown): PledgeError {
  return new PledgeError(
    'vault.keys_unreadable',
    `cannot read or create the key file ${file}: ${(err as Error).message}; check the data directory's permissions`,
    { cause: err },
  );
}
