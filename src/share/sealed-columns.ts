/**
 * The seal of the share capability's free-text columns that can name a person: the signatory of an
 * acknowledgement (`share_acknowledgements.acknowledged_by`, key use `share_signatories`) and a
 * legal request's authority name, reference, citation and rejection reason (`legal_requests`, key
 * use `legal_requests`). AES-256-GCM under a key derived from the use's secret with its own HKDF
 * label; the additional authenticated data binds the table, the row's id, the column and the key
 * version, so a value copied to another row or column, or relabelled with another version, fails
 * to open instead of showing the wrong thing.
 *
 * A value is written as `k<version>:<base64>` and opened under the version it names, so the use
 * rotates (`pledge keys rotate --use USE`) without rewriting rows. Nothing filters or searches by
 * these columns; a lookup by them would need a keyed hash (as the blind index does), never the
 * plaintext.
 */
import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { PledgeError } from '../platform/errors.js';
import type { UseKeys, VersionedKeys } from '../vault/use-keys.js';
import { open, seal } from '../vault/vault.crypto.js';

const VERSIONED = /^k([1-9]\d{0,5}):([A-Za-z0-9+/]+={0,2})$/;
const AAD_LABEL = 'pledge.share.column.v1';

/** Where a sealed value belongs: every part is authenticated. */
export interface ColumnBinding {
  table: string;
  rowId: string;
  column: string;
}

/** Seals and opens the values of one key use's columns. */
export class ColumnSeal {
  readonly use: string;
  readonly #keys: VersionedKeys<KeyObject>;

  /** `keys`: the keyring's use for these columns (`keyring.use('share_signatories')` ...). */
  constructor(keys: UseKeys) {
    this.use = keys.use;
    const info = `pledge sealed column v1 ${keys.use}`;
    this.#keys = keys.derive((s) =>
      createSecretKey(Buffer.from(hkdfSync('sha256', s, Buffer.alloc(0), info, 32))),
    );
  }

  /** The sealed value (`k<version>:<base64>`) of `plaintext` in `binding`'s row and column. */
  seal(binding: ColumnBinding, plaintext: string): string {
    const { version, key } = this.#keys.current;
    const body = seal(key, Buffer.from(plaintext, 'utf8'), aadOf(binding, version));
    return `k${version}:${body.toString('base64')}`;
  }

  /** `seal` for an optional value: `null` stays `null`. */
  sealOptional(binding: ColumnBinding, plaintext: string | undefined | null): string | null {
    return plaintext === undefined || plaintext === null ? null : this.seal(binding, plaintext);
  }

  /**
   * Opens the value stored in `binding`'s row and column. Throws `share.seal_key_missing` when the
   * keyring lacks its version and `share.seal_invalid` when it was altered or moved from another
   * row or column.
   */
  open(binding: ColumnBinding, sealed: string): string {
    const where = `${binding.table}.${binding.column} of row ${binding.rowId}`;
    const match = VERSIONED.exec(sealed);
    if (match === null) {
      throw new PledgeError(
        'share.seal_invalid',
        `${where} is not a sealed value (expected k<version>:<base64>); the row was altered outside Pledge: restore it from a backup`,
        {
          status: 500,
          expose: true,
          details: { table: binding.table, column: binding.column, id: binding.rowId },
        },
      );
    }
    const version = Number(match[1]);
    const key = this.#keys.get(version);
    if (key === undefined) {
      throw new PledgeError(
        'share.seal_key_missing',
        `${where} is sealed with ${this.use} key version ${version}, which the keyring does not hold; restore the key file`,
        {
          status: 500,
          expose: true,
          details: { table: binding.table, column: binding.column, id: binding.rowId, version },
        },
      );
    }
    try {
      return open(key, Buffer.from(match[2] as string, 'base64'), aadOf(binding, version)).toString('utf8');
    } catch (err) {
      throw new PledgeError(
        'share.seal_invalid',
        `${where} does not open under ${this.use} key version ${version}: it was altered, or copied from another row or column; restore the row from a backup`,
        {
          status: 500,
          expose: true,
          details: { table: binding.table, column: binding.column, id: binding.rowId, version },
          cause: err,
        },
      );
    }
  }

  /** `open` for an optional value: `null` stays `undefined`. */
  openOptional(binding: ColumnBinding, sealed: string | null): string | undefined {
    return sealed === null ? undefined : this.open(binding, sealed);
  }
}

// Each part is its UTF-8 byte length (u32, big-endian) then its bytes, so no two bindings share an
// encoding whatever characters an id holds.
function aadOf(binding: ColumnBinding, version: number): Buffer {
  const parts = [AAD_LABEL, binding.table, binding.rowId, binding.column, `k${version}`].map((p) =>
    Buffer.from(p, 'utf8'),
  );
  const out: Buffer[] = [];
  for (const part of parts) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(part.length);
    out.push(length, part);
  }
  return Buffer.concat(out);
}
