/**
 * KEK rotation: a new key-encryption-key version becomes current and every subject's data key is
 * rewrapped under it. Records are never touched: their data keys do not change, only the wrapping
 * of those keys in the key store. An old version can be retired (its key material removed from the
 * key file) once no data key is wrapped with it.
 *
 * Order matters. The new key file is saved before anything is rewrapped under it, so a crash leaves
 * keys wrapped under a KEK that is on disk; `rewrap` then finishes the job. With keys from
 * PLEDGE_KEYS there is no file to save: `rotate` returns the new value and rewraps nothing, and the
 * operator runs `rewrap` once every instance has been given that value. Rewrapping first would
 * wrap every data key under a KEK that exists only in a terminal's scrollback.
 */
import { open, rm } from 'node:fs/promises';
import type { AuditAppender } from '../audit/audit.service.js';
import type { Context } from '../platform/context.js';
import { ConflictError } from '../platform/errors.js';
import type { DataKeys } from './data-keys.service.js';
import { Keyring, type LoadKeyringOptions } from './keyring.js';
import type { KeyUse } from './use-keys.js';

/** What the rotation uses. */
export interface KeyRotationDeps {
  /** The audit log of the main database. */
  audit: AuditAppender;
  /** The data keys of the key store; given the new keyring after a rotation. */
  dataKeys: DataKeys;
  /** Where the keyring is loaded from (afresh for every operation: another process may have rotated). */
  keys: Omit<LoadKeyringOptions, 'clock'>;
}

/** What {@link KeyRotationService.rotate} did. */
export interface KeyRotateResult {
  newVersion: number;
  /** Data keys rewrapped under the new version (0 with PLEDGE_KEYS: run `rewrap` after deploying it). */
  rewrapped: number;
  /** With PLEDGE_KEYS: the new value to set it to (secret). Absent when the key file was saved. */
  keys?: string;
}

/** What {@link KeyRotationService.rotateUse} did. */
export interface KeyUseRotateResult {
  use: KeyUse;
  newVersion: number;
  /** With PLEDGE_KEYS: the new value to set it to (secret). Absent when the key file was saved. */
  keys?: string;
}

/** What {@link KeyRotationService.rewrap} did. */
export interface KeyRewrapResult {
  currentVersion: number;
  rewrapped: number;
}

/** What {@link KeyRotationService.retire} did. */
export interface KeyRetireResult {
  version: number;
  /** True when the version was retired before this call (nothing changed). */
  alreadyRetired: boolean;
  /** With PLEDGE_KEYS: the new value to set it to (secret). Absent when the key file was saved. */
  keys?: string;
}

/** One KEK version as {@link KeyRotationService.status} reports it. */
export interface KekStatus {
  version: number;
  current: boolean;
  createdAt: string | undefined;
  retiredAt: string | undefined;
  /** Data keys wrapped with this version. */
  dataKeys: number;
  /** Data keys name this version but the keyring does not have it (a replaced key file): they cannot be opened. */
  missing: boolean;
}

/** The state of the keyring and the key store. */
export interface KeyStatusResult {
  source: 'file' | 'env';
  /** The key file, when the keys come from one. */
  file: string | undefined;
  currentVersion: number;
  versions: KekStatus[];
}

/** Rotates, rewraps under and retires KEK versions. */
export class KeyRotationService {
  readonly #log: AuditAppender;
  readonly #dataKeys: DataKeys;
  readonly #keys: Omit<LoadKeyringOptions, 'clock'>;

  constructor(deps: KeyRotationDeps) {
    this.#log = deps.audit;
    this.#dataKeys = deps.dataKeys;
    this.#keys = deps.keys;
  }

  /**
   * Adds a KEK version and makes it current. With a key file: saves it, then rewraps every data key
   * under the new version. With PLEDGE_KEYS: returns the new value and rewraps nothing yet.
   */
  async rotate(ctx: Context): Promise<KeyRotateResult> {
    return this.#withKeyFileLock(async () => {
      const keyring = await this.#load(ctx);
      const next = keyring.withNewVersion(ctx.clock.now());
      const newVersion = next.currentKek().version;
      if (next.source.kind === 'env') {
        await this.#audit(ctx, 'keys.rotate', { version: newVersion, rewrapped: 0, source: 'env' });
        return { newVersion, rewrapped: 0, keys: next.serialize() };
      }
      // Saved before any data key is wrapped with it; see the module comment.
      await next.save();
      this.#dataKeys.useKeyring(next);
      const rewrapped = await this.#dataKeys.rewrapAll(ctx);
      await this.#audit(ctx, 'keys.rotate', { version: newVersion, rewrapped, source: 'file' });
      return { newVersion, rewrapped };
    });
  }

  /**
   * Adds a version of one use's key (links, webhooks, evidence, message_id): new tokens, signatures
   * and seals are made with it once each instance has loaded it (restart them), and those of older
   * versions still verify until they expire. Nothing stored is rewritten. The blind index cannot
   * rotate: `vault.index_key_fixed` (docs/vault.md).
   */
  async rotateUse(ctx: Context, use: KeyUse): Promise<KeyUseRotateResult> {
    return this.#withKeyFileLock(async () => {
      const keyring = await this.#load(ctx);
      const next = keyring.withNewUseVersion(use, ctx.clock.now());
      const newVersion = next.use(use).current().version;
      if (next.source.kind === 'file') await next.save();
      await this.#audit(ctx, 'keys.rotate_use', { use, version: newVersion, source: next.source.kind });
      return next.source.kind === 'env' ? { use, newVersion, keys: next.serialize() } : { use, newVersion };
    });
  }

  /**
   * Rewraps every data key not yet under the current KEK: finishes a rotation that crashed, follows a
   * rotation with PLEDGE_KEYS, and catches keys an instance still on the old keys made meanwhile.
   */
  async rewrap(ctx: Context): Promise<KeyRewrapResult> {
    const keyring = await this.#load(ctx);
    this.#dataKeys.useKeyring(keyring);
    const rewrapped = await this.#dataKeys.rewrapAll(ctx);
    const currentVersion = keyring.currentKek().version;
    if (rewrapped > 0) await this.#audit(ctx, 'keys.rewrap', { version: currentVersion, rewrapped });
    return { currentVersion, rewrapped };
  }

  /** Every KEK version with its dates and the number of data keys it wraps. */
  async status(ctx: Context): Promise<KeyStatusResult> {
    const keyring = await this.#load(ctx);
    const counts = await this.#dataKeys.countByKek(ctx);
    const current = keyring.currentKek().version;
    const versions: KekStatus[] = keyring.versions().map((k) => ({
      version: k.version,
      current: k.version === current,
      createdAt: k.createdAt,
      retiredAt: k.retiredAt,
      dataKeys: counts.get(k.version) ?? 0,
      missing: false,
    }));
    for (const [version, n] of counts) {
      if (!versions.some((v) => v.version === version)) {
        versions.push({
          version,
          current: false,
          createdAt: undefined,
          retiredAt: undefined,
          dataKeys: n,
          missing: true,
        });
      }
    }
    versions.sort((a, b) => a.version - b.version);
    return {
      source: keyring.source.kind,
      file: keyring.source.kind === 'file' ? keyring.source.file : undefined,
      currentVersion: current,
      versions,
    };
  }

  /**
   * Retires a KEK version: its key material is removed from the keyring. Refuses the current version
   * (`vault.kek_current`) and a version that still wraps data keys (`vault.kek_in_use`, 409: run
   * `pledge keys rewrap` first). Retiring a retired version changes nothing.
   */
  async retire(ctx: Context, version: number): Promise<KeyRetireResult> {
    return this.#withKeyFileLock(async () => {
      const keyring = await this.#load(ctx);
      const kek = keyring.versions().find((k) => k.version === version);
      if (kek?.retiredAt !== undefined) return { version, alreadyRetired: true };
      // withRetired refuses an unknown version (404) and the current one (409).
      const next = keyring.withRetired(version, ctx.clock.now());
      const inUse = (await this.#dataKeys.countByKek(ctx)).get(version) ?? 0;
      if (inUse > 0) {
        throw new ConflictError(
          'vault.kek_in_use',
          `KEK version ${version} still wraps ${inUse} data key${inUse === 1 ? '' : 's'}; run \`pledge keys rewrap\` (after every instance runs with the current keys), then retire it`,
          { version, dataKeys: inUse },
        );
      }
      if (next.source.kind === 'file') await next.save();
      await this.#audit(ctx, 'keys.retire', { version, source: next.source.kind });
      return next.source.kind === 'env'
        ? { version, alreadyRetired: false, keys: next.serialize() }
        : { version, alreadyRetired: false };
    });
  }

  #load(ctx: Context): Promise<Keyring> {
    return Keyring.load({ ...this.#keys, clock: () => ctx.clock.now() });
  }

  #audit(ctx: Context, action: string, details: Record<string, unknown>): Promise<void> {
    return this.#log.append(ctx, [{ action, details }]);
  }

  /**
   * Runs `work` holding `<key file>.lock`. Two rotations at once would each save a different new
   * KEK under the same version number and rewrap keys under both: the file keeps one, and every key
   * wrapped under the other could never be opened again. PLEDGE_KEYS has no file (and rotate
   * rewraps nothing then), so nothing is locked.
   */
  async #withKeyFileLock<T>(work: () => Promise<T>): Promise<T> {
    // Loading also creates the key file (and its directory) on a first start, so there is a file to lock beside.
    const keyring = await Keyring.load(this.#keys);
    if (keyring.source.kind !== 'file') return work();
    const lock = `${keyring.source.file}.lock`;
    let handle;
    try {
      handle = await open(lock, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      throw new ConflictError(
        'vault.keys_locked',
        `another \`pledge keys\` command is changing the keys (${lock} exists); wait for it, or delete that file if no such command runs`,
        { lock },
      );
    }
    try {
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      return await work();
    } finally {
      await rm(lock, { force: true });
    }
  }
}
