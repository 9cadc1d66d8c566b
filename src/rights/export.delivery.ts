/**
 * Delivering an export (docs/requests.md, "What an access request returns"): the zip is stored only
 * sealed — in chunks, each AES-256-GCM under a key derived for the delivery from the keyring's
 * `export_files` use, with the delivery id and chunk number as associated data — and offered through
 * a link signed with the `export_links` use that expires. Opening the link (GET) shows a page and
 * spends nothing, so a mail scanner that follows it costs the person no download; the page's button
 * POSTs, and each POST takes one download of a limited budget in one UPDATE, so concurrent POSTs
 * never exceed it. A job deletes the chunks when the delivery expires.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { Writable } from 'node:stream';
import type { AuditAppender } from '../audit/audit.service.js';
import { asLinkHolder, type Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { ForbiddenError, PledgeError, ValidationError } from '../platform/errors.js';
import { uuidv7 } from '../platform/ids.js';
import { jobDone } from '../platform/jobs/jobs.definition.js';
import type { JobQueue, JobType } from '../platform/jobs/jobs.service.js';
import type { UseKeys, VersionedKeys } from '../vault/use-keys.js';
import type { ExportDelivery, ExportRepository } from './export.repository.js';

/** The job that deletes an expired export. */
export const EXPORT_EXPIRE_JOB = 'rights.export_expire';
/** Where the links point (public pages). */
export const EXPORT_PATH = '/requests/export';
/** Downloads a delivery allows unless the request says otherwise. */
export const DEFAULT_MAX_DOWNLOADS = 3;
/** How long a delivery lives unless the request says otherwise (7 days). */
export const DEFAULT_EXPORT_TTL_MS = 7 * 86_400_000;
/** The most downloads and the longest life a request may ask for. */
const MAX_DOWNLOADS_LIMIT = 20;
const MAX_TTL_MS = 30 * 86_400_000;
/** The plaintext size of a sealed chunk. */
const CHUNK_BYTES = 1024 * 1024;

const LINK_INFO = 'pledge export link v1';
const FILE_INFO = 'pledge export file v1 ';
const TOKEN = /^([0-9a-f-]{36})\.([0-9]{1,12})\.([0-9]{1,6})\.([A-Za-z0-9_-]{43})$/;

/** Options of {@link ExportDeliveries.store}. */
export interface StoreExportOptions {
  /** Downloads allowed (1 to 20; default {@link DEFAULT_MAX_DOWNLOADS}). */
  maxDownloads?: number | undefined;
  /** How long the link works, in ms (at most 30 days; default {@link DEFAULT_EXPORT_TTL_MS}). */
  ttlMs?: number | undefined;
}

/** A stored export and its link. */
export interface StoredExportResult {
  deliveryId: string;
  /** The path with its token (`/requests/export/…`); the workflow puts it after the public URL. */
  path: string;
  expiresAt: Date;
  maxDownloads: number;
}

/** What a link's page shows. */
export interface ExportLinkView {
  expiresAt: Date;
  downloadsLeft: number;
  size: number;
}

/** What {@link ExportDeliveries} uses. */
export interface ExportDeliveriesDeps {
  db: Transactions;
  repo: ExportRepository;
  audit: AuditAppender;
  jobs: Pick<JobQueue, 'define'>;
  linkKeys: UseKeys;
  fileKeys: UseKeys;
}

function linkRefused(): PledgeError {
  return new ForbiddenError(
    'rights.export_link_invalid',
    'this download link does not work: it was changed or cut short when copied; use the link exactly as we sent it, or ask us for a new one',
  );
}

function linkExpired(): PledgeError {
  return new PledgeError(
    'rights.export_link_expired',
    'this download link has expired and the export was deleted; make a new access request to get a fresh copy',
    { status: 410 },
  );
}

function optionOrThrow(value: number | undefined, fallback: number, max: number, path: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new ValidationError(
      'rights.export_option_invalid',
      `${path} must be a whole number from 1 to ${max}`,
      { path },
    );
  return value;
}

/** Stores sealed exports and hands them out through signed links. */
export class ExportDeliveries {
  readonly #deps: ExportDeliveriesDeps;
  readonly #links: VersionedKeys<Buffer>;
  readonly #expire: JobType<{ deliveryId: string }>;

  constructor(deps: ExportDeliveriesDeps) {
    this.#deps = deps;
    this.#links = deps.linkKeys.derive((s) =>
      Buffer.from(hkdfSync('sha256', s, Buffer.alloc(0), LINK_INFO, 32)),
    );
    this.#expire = deps.jobs.define<{ deliveryId: string }>({
      type: EXPORT_EXPIRE_JOB,
      handle: async (ctx, job) => {
        await this.expire(ctx, job.payload.deliveryId);
        return jobDone();
      },
    });
  }

  #fileKey(version: number, deliveryId: string): Buffer {
    const secret = this.#deps.fileKeys.secret(version);
    if (secret === undefined)
      throw new PledgeError(
        'rights.export_key_missing',
        `the keyring holds no export_files key of version ${version}`,
      );
    return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), FILE_INFO + deliveryId, 32));
  }

  #sign(key: Buffer, payload: string): string {
    return createHmac('sha256', key).update(payload).digest('base64url');
  }

  /** The token of a delivery: its id, expiry and key version, signed. */
  tokenOf(deliveryId: string, expiresAt: Date): string {
    const { version, key } = this.#links.current;
    const payload = `${deliveryId}.${Math.floor(expiresAt.getTime() / 1000)}.${version}`;
    return `${payload}.${this.#sign(key, payload)}`;
  }

  /**
   * Writes an export with `write` (writeExportZip into the stream it is given), sealed chunk by
   * chunk, then offers it: the delivery row and its log entry in one transaction. The expiry job is
   * queued first, so whatever happens after, the chunks are deleted when the export expires.
   */
  async store(
    ctx: Context,
    subjectId: string,
    write: (out: Writable) => Promise<unknown>,
    options: StoreExportOptions = {},
  ): Promise<StoredExportResult> {
    const maxDownloads = optionOrThrow(
      options.maxDownloads,
      DEFAULT_MAX_DOWNLOADS,
      MAX_DOWNLOADS_LIMIT,
      'maxDownloads',
    );
    const ttlMs = optionOrThrow(options.ttlMs, DEFAULT_EXPORT_TTL_MS, MAX_TTL_MS, 'ttlMs');
    const id = uuidv7();
    const expiresAt = new Date(ctx.clock.now().getTime() + ttlMs);
    // Queued before the first chunk is written, so chunks left by a crash before the delivery's row
    // are deleted on time too.
    await this.#expire.enqueue(ctx, { deliveryId: id }, { key: `export-expire:${id}`, runAt: expiresAt });
    const version = this.#deps.fileKeys.current().version;
    const key = this.#fileKey(version, id);
    let seq = 0;
    let size = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const plain = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(`${id}:${seq}`));
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      await this.#deps.repo.insertChunk(ctx, id, seq, sealed);
      seq++;
    };
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        size += chunk.length;
        if (pendingBytes < CHUNK_BYTES) return done();
        flush().then(() => done(), done);
      },
      final(done) {
        flush().then(() => done(), done);
      },
    });
    try {
      await write(sink);
    } catch (err) {
      // Chunks of an export that never completed are removed; no row ever offered them.
      await this.#deps.repo.deleteChunks(ctx, id, ctx.clock.now()).catch(() => undefined);
      throw err;
    }
    const now = ctx.clock.now();
    await this.#deps.db.transaction(ctx, async (trx) => {
      await this.#deps.repo.insert(trx, {
        id,
        subjectId,
        createdAt: now,
        expiresAt,
        maxDownloads,
        downloads: 0,
        keyVersion: version,
        size,
        deletedAt: undefined,
      });
      await this.#deps.audit.append(trx, [
        {
          action: 'rights.export_stored',
          subjectId,
          details: {
            deliveryId: id,
            bytes: size,
            chunks: seq,
            maxDownloads,
            expiresAt: expiresAt.toISOString(),
          },
        },
      ]);
    });
    return { deliveryId: id, path: `${EXPORT_PATH}/${this.tokenOf(id, expiresAt)}`, expiresAt, maxDownloads };
  }

  /** The delivery a token names; throws `rights.export_link_invalid` (403) or `rights.export_link_expired` (410). */
  async #deliveryOrThrow(ctx: Context, token: string): Promise<ExportDelivery> {
    const m = TOKEN.exec(token);
    if (!m) throw linkRefused();
    const [, id = '', expires = '', version = '', signature = ''] = m;
    const key = this.#links.get(Number(version));
    if (key === undefined) throw linkRefused();
    const expected = Buffer.from(this.#sign(key, `${id}.${expires}.${version}`));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw linkRefused();
    const delivery = await this.#deps.repo.get(ctx, id);
    if (delivery === undefined) throw linkRefused();
    if (delivery.deletedAt !== undefined || delivery.expiresAt.getTime() <= ctx.clock.now().getTime())
      throw linkExpired();
    return delivery;
  }

  /** What the link's page shows (GET: reads only). */
  async view(ctx: Context, token: string): Promise<ExportLinkView> {
    const d = await this.#deliveryOrThrow(ctx, token);
    return { expiresAt: d.expiresAt, downloadsLeft: Math.max(0, d.maxDownloads - d.downloads), size: d.size };
  }

  /**
   * Takes one download (POST) and gives the zip, decrypted as it is read. Throws
   * `rights.export_downloads_exhausted` (410) when none is left.
   */
  async download(ctx: Context, token: string): Promise<{ size: number; body: AsyncIterable<Buffer> }> {
    const d = await this.#deliveryOrThrow(ctx, token);
    if (!(await this.#deps.repo.takeDownload(ctx, d.id, ctx.clock.now())))
      throw new PledgeError(
        'rights.export_downloads_exhausted',
        `this export was downloaded the ${d.maxDownloads} times it allows; make a new access request for another copy`,
        { status: 410, details: { maxDownloads: d.maxDownloads } },
      );
    // The person's own link acted: the log says so, as for their other links.
    await this.#deps.audit.append(asLinkHolder(ctx, d.subjectId, 'export'), [
      { action: 'rights.export_downloaded', subjectId: d.subjectId, details: { deliveryId: d.id } },
    ]);
    return { size: d.size, body: this.#open(ctx, d) };
  }

  async *#open(ctx: Context, d: ExportDelivery): AsyncIterable<Buffer> {
    const key = this.#fileKey(d.keyVersion, d.id);
    for await (const { seq, data } of this.#deps.repo.chunks(ctx, d.id)) {
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
      decipher.setAAD(Buffer.from(`${d.id}:${seq}`));
      decipher.setAuthTag(data.subarray(data.length - 16));
      yield Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]);
    }
  }

  /** Deletes an export's chunks (the expiry job; idempotent). */
  async expire(ctx: Context, deliveryId: string): Promise<number> {
    const d = await this.#deps.repo.get(ctx, deliveryId);
    // No row: an export that never completed (its chunks, if any, were left by a crash).
    if (d === undefined) return this.#deps.repo.deleteChunks(ctx, deliveryId, ctx.clock.now());
    if (d.deletedAt !== undefined) return 0;
    return this.#deps.db.transaction(ctx, async (trx) => {
      const n = await this.#deps.repo.deleteChunks(trx, deliveryId, trx.clock.now());
      await this.#deps.audit.append(trx, [
        { action: 'rights.export_deleted', subjectId: d.subjectId, details: { deliveryId, chunks: n } },
      ]);
      return n;
    });
  }
}
