/**
 * Processors bound to the policy they signed (docs/sharing.md, "Acknowledgements"). Each processor
 * and affiliate acknowledges a policy version; the share gate asks {@link AcknowledgementService.standingOf}
 * before anything leaves for it.
 *
 * - A recipient with an `agreement` counts as acknowledging the version in force when a manifest
 *   naming it first comes into force, so a deployment upgraded to this version keeps running.
 * - When a later manifest comes into force with a material change (per `pledge diff`) under the
 *   recipient's own entry (what it receives, for what, where, on what terms), its disclosures pause
 *   until it acknowledges the new version; its contact is sent a notice (an e-mail, and a signed
 *   POST to its webhook when it has one), as jobs queued in the pause's transaction.
 * - Changes of its sub-processors are material to people (the diff says so) but pause no one: the
 *   processor made them, and told us.
 *
 * Every acknowledgement and pause is recorded with who and when, and appended to the audit log in
 * the same transaction.
 *
 * Standings are answered from an in-process cache (acknowledgements.cache.ts): each acknowledgement
 * and activation evicts the recipients it changes here once it commits, and on PostgreSQL announces
 * them in its transaction (`NOTIFY pledge_share_standing_<schema>`), so every instance drops them;
 * an instance that cannot hear those notifications answers nothing from its cache.
 */
import type { AuditAppender, AuditEntry } from '../audit/audit.service.js';
import { diffManifests } from '../manifest/manifest.diff.js';
import { parseManifest } from '../manifest/manifest.loader.js';
import type { ManifestVersion } from '../manifest/manifest.repository.js';
import type { Manifest, Recipient } from '../manifest/manifest.schema.js';
import { ACKNOWLEDGING_KINDS } from '../manifest/recipients.checks.js';
import type { Context } from '../platform/context.js';
import { CacheInvalidation } from '../platform/db/cache-invalidation.js';
import type { Database } from '../platform/db/database.js';
import type { Transactions } from '../platform/db/db.js';
import { NotFoundError, ValidationError } from '../platform/errors.js';
import { uuidv7 } from '../platform/ids.js';
import type {
  Acknowledgement,
  AcknowledgementsRepository,
  Notice,
  Pause,
  PauseChange,
} from './acknowledgements.repository.js';
import { StandingCache } from './acknowledgements.cache.js';
import type { RecipientStanding, RecipientStandingResult } from './share.types.js';

/** What {@link AcknowledgementService} uses. */
export interface AcknowledgementServiceDeps {
  db: Transactions;
  repo: AcknowledgementsRepository;
  audit: AuditAppender;
  /**
   * The database's notifications: changes are announced on its channel (PostgreSQL), and
   * {@link AcknowledgementService.start} listens there for other instances' changes.
   */
  notifications: Pick<Database, 'dialect' | 'channel' | 'listen'>;
  /** The manifest in force and the id of its stored version. */
  manifest: { manifest: Manifest; versionId: number };
  /** Stored manifest versions: the one weighed last is read back to diff against. */
  versions?: { getById(ctx: Context, id: number): Promise<ManifestVersion | undefined> };
  /** Queues the notices of a pause in its transaction; absent (the CLI), no notice is sent. */
  notices?: { enqueue(ctx: Context, pause: Pause, recipient: Recipient): Promise<Notice[]> };
}

/** What {@link AcknowledgementService.acknowledge} records. */
export interface AcknowledgeOptions {
  recipient: string;
  /** The policy version acknowledged: the one in force (`policy.version`). */
  version: string;
  /** The person who acknowledged for the recipient (their name, as they sign). */
  by: string;
  /** How it was recorded (default `api`). */
  method?: 'cli' | 'api';
}

/** What an acknowledgement did. */
export interface AcknowledgeResult {
  acknowledgement: Acknowledgement;
  /** The pauses it lifted. */
  lifted: string[];
}

/** What {@link AcknowledgementService.activate} found. */
export interface ActivateResult {
  /** False when this activation was weighed before (a restart, or another instance). */
  weighed: boolean;
  /** Recipients counted as acknowledging from their agreement. */
  acknowledged: string[];
  /** Recipients whose disclosures now pause. */
  paused: string[];
}

/** A recipient's record: its standing, acknowledgements, pauses and notices (newest first). */
export interface RecipientRecord {
  recipient: string;
  standing: RecipientStandingResult;
  acknowledgements: Acknowledgement[];
  pauses: Pause[];
  notices: Notice[];
}

const NOTIFY_NAME = 'pledge_share_standing';
const MAX_NAME_LENGTH = 200;
const RECORD_LIMIT = 100;

/** Acknowledgements of the policy by processors and affiliates, and the pauses of their disclosures. */
export class AcknowledgementService implements RecipientStanding {
  readonly #db: Transactions;
  readonly #repo: AcknowledgementsRepository;
  readonly #audit: AuditAppender;
  readonly #manifest: Manifest;
  readonly #versionId: number;
  readonly #versions: AcknowledgementServiceDeps['versions'];
  readonly #notices: AcknowledgementServiceDeps['notices'];
  readonly #database: AcknowledgementServiceDeps['notifications'];
  readonly #channel: string;
  readonly #cache: StandingCache;
  readonly #invalidation: CacheInvalidation;

  constructor(deps: AcknowledgementServiceDeps) {
    this.#db = deps.db;
    this.#repo = deps.repo;
    this.#audit = deps.audit;
    this.#manifest = deps.manifest.manifest;
    this.#versionId = deps.manifest.versionId;
    this.#versions = deps.versions;
    this.#notices = deps.notices;
    this.#database = deps.notifications;
    this.#channel = deps.notifications.channel(NOTIFY_NAME);
    // On PostgreSQL nothing is cached until the notification connection listens (start()).
    this.#cache = new StandingCache({ enabled: deps.notifications.dialect === 'sqlite' });
    this.#invalidation = new CacheInvalidation(deps.notifications, this.#channel, this.#cache);
  }

  /**
   * Starts hearing other instances' acknowledgements and pauses (PostgreSQL). Until it resolves,
   * whenever the connection is lost, and whenever it has not proven alive recently, standings are
   * read from the database rather than the cache.
   */
  async start(): Promise<void> {
    await this.#invalidation.start();
  }

  /**
   * Seals the signatories of acknowledgements an earlier version of Pledge wrote in plaintext, in
   * one transaction; returns how many rows it sealed (none once done). Run at every start, before
   * anything is served (createAcknowledgements' start, the recipients CLI).
   */
  async sealStored(ctx: Context): Promise<number> {
    return this.#db.transaction(ctx, (trx) => this.#repo.sealPlaintext(trx));
  }

  /** Stops listening (on PostgreSQL nothing is cached from then on). */
  async stop(): Promise<void> {
    await this.#invalidation.stop();
  }

  /** The policy version in force. */
  get policyVersion(): string {
    return this.#manifest.policy.version;
  }

  /** The keys of the recipients bound to acknowledge the policy (processors and affiliates). */
  boundRecipients(): string[] {
    return this.#manifest.recipients.filter((r) => ACKNOWLEDGING_KINDS.has(r.kind)).map((r) => r.key);
  }

  /**
   * Whether `recipient` may receive data now: `share.recipient_paused` while a material change
   * awaits its acknowledgement, `share.acknowledgement_required` when it never acknowledged, else
   * ok. Recipients that are not bound by an agreement to acknowledge (authorities, third parties)
   * have nothing to acknowledge and stand as the policy in force; an undeclared one never stands.
   */
  async standingOf(ctx: Context, recipient: string): Promise<RecipientStandingResult> {
    const r = this.#manifest.recipients.find((x) => x.key === recipient);
    const inForce = this.policyVersion;
    if (r === undefined) {
      return {
        ok: false,
        code: 'share.acknowledgement_required',
        policyVersion: inForce,
        message: `the manifest declares no recipient "${recipient}", so it has acknowledged no policy`,
      };
    }
    if (!ACKNOWLEDGING_KINDS.has(r.kind)) return { ok: true, acknowledgedVersion: inForce };
    const cached = this.#cache.get(recipient);
    if (cached !== undefined) return cached;
    const epoch = this.#cache.epoch();
    const standing = await this.#readStanding(ctx, recipient, inForce);
    this.#cache.store(recipient, standing, epoch);
    return standing;
  }

  /** A bound recipient's standing, from the database. */
  async #readStanding(ctx: Context, recipient: string, inForce: string): Promise<RecipientStandingResult> {
    const [open] = await this.#repo.openPauses(ctx, recipient);
    if (open !== undefined) {
      return {
        ok: false,
        code: 'share.recipient_paused',
        policyVersion: open.policyVersion,
        message: `disclosures to "${recipient}" are paused: policy version ${open.policyVersion} changes what it receives (${open.changes.map((c) => c.kind).join(', ')}); record its acknowledgement with \`pledge recipients acknowledge ${recipient} --version ${open.policyVersion} --by NAME\``,
      };
    }
    const latest = await this.#repo.latestAcknowledgement(ctx, recipient);
    if (latest === undefined) {
      return {
        ok: false,
        code: 'share.acknowledgement_required',
        policyVersion: inForce,
        message: `"${recipient}" has not acknowledged the policy (it has no agreement in the manifest); record its acknowledgement with \`pledge recipients acknowledge ${recipient} --version ${inForce} --by NAME\``,
      };
    }
    return { ok: true, acknowledgedVersion: latest.policyVersion };
  }

  /**
   * Records that `recipient` acknowledged the policy version in force, and lifts its pauses that
   * waited for it, with an audit entry, in one transaction. Throws `share.recipient_undeclared`
   * (404), `share.acknowledgement_not_needed` (an authority or third party),
   * `share.acknowledgement_version` (not the version in force) or `share.acknowledged_by_invalid`.
   */
  async acknowledge(ctx: Context, options: AcknowledgeOptions): Promise<AcknowledgeResult> {
    const r = this.#boundRecipientOrThrow(options.recipient);
    if (options.version !== this.policyVersion) {
      throw new ValidationError(
        'share.acknowledgement_version',
        `the policy in force is version ${this.policyVersion}, not ${options.version}: a recipient acknowledges the version in force (the one it was sent)`,
        { path: 'version', inForce: this.policyVersion },
      );
    }
    const by = options.by.trim();
    // eslint-disable-next-line no-control-regex
    if (by.length === 0 || by.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(by)) {
      throw new ValidationError(
        'share.acknowledged_by_invalid',
        `"by" names the person who acknowledged for ${r.name}: 1 to ${MAX_NAME_LENGTH} characters, no line breaks or control characters`,
        { path: 'by' },
      );
    }
    return this.#db.transaction(ctx, async (trx) => {
      const now = trx.clock.now();
      const acknowledgement: Acknowledgement = {
        id: uuidv7(),
        recipient: r.key,
        policyVersion: this.policyVersion,
        manifestVersionId: this.#versionId,
        actor: trx.actor,
        acknowledgedBy: by,
        method: options.method ?? 'api',
        acknowledgedAt: now,
      };
      await this.#repo.insertAcknowledgement(trx, acknowledgement);
      const lifted = await this.#repo.liftPauses(trx, r.key, this.policyVersion, acknowledgement.id, now);
      await this.#announce(trx, [r.key]);
      await this.#audit.append(trx, [
        acknowledgedEntry(acknowledgement),
        ...lifted.map((pause) => ({
          action: 'share.pause_lifted',
          details: { recipient: r.key, pause, acknowledgement: acknowledgement.id },
        })),
      ]);
      return { acknowledgement, lifted };
    });
  }

  /** A recipient's standing and record, newest first. Throws `share.recipient_undeclared`. */
  async recordOf(ctx: Context, recipient: string): Promise<RecipientRecord> {
    const r = this.#recipientOrThrow(recipient);
    const [standing, acknowledgements, pauses, notices] = await Promise.all([
      this.standingOf(ctx, r.key),
      this.#repo.listAcknowledgements(ctx, r.key, RECORD_LIMIT),
      this.#repo.listPauses(ctx, r.key, RECORD_LIMIT),
      this.#repo.listNotices(ctx, r.key, RECORD_LIMIT),
    ]);
    return { recipient: r.key, standing, acknowledgements, pauses, notices };
  }

  /**
   * Weighs the manifest that has just come into force (at start, after activateManifest), once per
   * activation across instances: recipients named for the first time count as acknowledging it from
   * their agreement; those a material change touches are paused and sent a notice. One transaction.
   */
  async activate(
    ctx: Context,
    version: Pick<ManifestVersion, 'id' | 'inForceFrom'>,
  ): Promise<ActivateResult> {
    const none: ActivateResult = { weighed: false, acknowledged: [], paused: [] };
    return this.#db.transaction(ctx, async (trx) => {
      const inForceFrom = version.inForceFrom.toISOString();
      const last = await this.#repo.lastActivation(trx);
      if (last?.manifestVersionId === version.id && last.inForceFrom === inForceFrom) return none;
      const claimed = await this.#repo.claimActivation(trx, {
        manifestVersionId: version.id,
        inForceFrom,
        previousManifestVersionId: last?.manifestVersionId ?? 0,
        at: trx.clock.now(),
      });
      if (!claimed) return none;
      const previous = last === undefined ? undefined : await this.#manifestOf(trx, last.manifestVersionId);
      const changes =
        previous === undefined || last?.manifestVersionId === version.id
          ? []
          : diffManifests(previous, this.#manifest).changes.filter((c) => c.material);
      const bound = this.#manifest.recipients
        .map((recipient, index) => ({ recipient, index }))
        .filter(({ recipient }) => ACKNOWLEDGING_KINDS.has(recipient.kind));
      const seen = await this.#repo.seenRecipients(
        trx,
        bound.map((b) => b.recipient.key),
      );
      const now = trx.clock.now();
      const entries: AuditEntry[] = [];
      const result: ActivateResult = { weighed: true, acknowledged: [], paused: [] };
      for (const { recipient, index } of bound) {
        if (!seen.has(recipient.key)) {
          if (recipient.agreement === undefined) continue;
          const acknowledgement: Acknowledgement = {
            id: uuidv7(),
            recipient: recipient.key,
            policyVersion: this.policyVersion,
            manifestVersionId: version.id,
            actor: trx.actor,
            acknowledgedBy: `agreement ${recipient.agreement.reference} (signed ${recipient.agreement.signed})`,
            method: 'agreement',
            acknowledgedAt: now,
          };
          await this.#repo.insertAcknowledgement(trx, acknowledgement);
          entries.push(acknowledgedEntry(acknowledgement));
          result.acknowledged.push(recipient.key);
          continue;
        }
        const touching = changes.filter(
          (c) => touches(c.path, index) && !c.kind.startsWith('sub_processor.'),
        );
        if (touching.length === 0) continue;
        const pause: Pause = {
          id: uuidv7(),
          recipient: recipient.key,
          policyVersion: this.policyVersion,
          manifestVersionId: version.id,
          previousManifestVersionId: last?.manifestVersionId ?? 0,
          changes: touching.map((c): PauseChange => ({ kind: c.kind, path: c.path, summary: c.summary })),
          pausedAt: now,
          liftedAt: undefined,
          liftedBy: undefined,
        };
        await this.#repo.insertPause(trx, pause);
        const notices = (await this.#notices?.enqueue(trx, pause, recipient)) ?? [];
        entries.push({
          action: 'share.paused',
          details: {
            recipient: recipient.key,
            pause: pause.id,
            policyVersion: pause.policyVersion,
            changes: pause.changes.map((c) => c.kind),
            notices: notices.map((n) => n.channel),
          },
        });
        result.paused.push(recipient.key);
      }
      await this.#repo.insertSeenRecipients(
        trx,
        bound.map((b) => b.recipient.key).filter((k) => !seen.has(k)),
        version.id,
        now,
      );
      await this.#announce(trx, [...result.acknowledged, ...result.paused]);
      await this.#audit.append(trx, entries);
      return result;
    });
  }

  /**
   * Tells every instance, this one included, that the standing of `recipients` changes with the
   * transaction of `ctx`: a notification sent at its commit (PostgreSQL) and an eviction here after it.
   */
  async #announce(ctx: Context, recipients: readonly string[]): Promise<void> {
    if (recipients.length === 0) return;
    if (this.#database.dialect === 'postgres') await this.#repo.notify(ctx, this.#channel, recipients);
    this.#db.afterCommit(ctx, () => this.#cache.evict(recipients));
  }

  /** The manifest of a stored version, or undefined when it is gone or no longer parses. */
  async #manifestOf(ctx: Context, id: number): Promise<Manifest | undefined> {
    const stored = await this.#versions?.getById(ctx, id);
    if (stored === undefined) return undefined;
    // A version that no longer parses cannot be weighed; nothing is paused for it rather than
    // everything (the recipients' acknowledgements of it stand).
    return parseManifest(stored.source, `manifest version ${id}`).manifest;
  }

  #recipientOrThrow(key: string): Recipient {
    const r = this.#manifest.recipients.find((x) => x.key === key);
    if (r === undefined) {
      const known = this.#manifest.recipients
        .filter((x) => ACKNOWLEDGING_KINDS.has(x.kind))
        .map((x) => x.key);
      throw new NotFoundError(
        'share.recipient_undeclared',
        `the manifest in force declares no recipient "${key}"; its processors and affiliates are ${known.map((k) => `"${k}"`).join(', ') || 'none'}`,
        { recipient: key },
      );
    }
    return r;
  }

  #boundRecipientOrThrow(key: string): Recipient {
    const r = this.#recipientOrThrow(key);
    if (!ACKNOWLEDGING_KINDS.has(r.kind)) {
      throw new ValidationError(
        'share.acknowledgement_not_needed',
        `"${key}" is ${r.kind === 'authority' ? 'an authority' : 'a third party'}: only processors and affiliates acknowledge the policy`,
        { recipient: key },
      );
    }
    return r;
  }
}

/** True when a diff path (`recipients[2].categories`) is under the recipient at `index`. */
function touches(path: string, index: number): boolean {
  const prefix = `recipients[${index}]`;
  return path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);
}

function acknowledgedEntry(a: Acknowledgement): AuditEntry {
  // The name of the person is in the acknowledgement's row, not in the log.
  return {
    action: 'share.acknowledged',
    details: {
      recipient: a.recipient,
      acknowledgement: a.id,
      policyVersion: a.policyVersion,
      manifestVersion: a.manifestVersionId,
      method: a.method,
    },
  };
}
