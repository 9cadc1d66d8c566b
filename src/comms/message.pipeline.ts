/**
 * The mail pipeline: everything a message passes between "this person is in the audience" and
 * "these bytes may go to the SMTP server". It is the only way a campaign's message is made, and
 * it has no switch that skips a step. Per recipient, just before sending:
 *
 * 1. marketing: the consent decision for the list on the e-mail channel (skip with its reason);
 * 2. the address and the template's fields through the use gate (`Vault.read`, audited);
 *    an erased or unknown subject gets nothing, service mail included;
 * 3. marketing: the suppression list (skip `suppressed`);
 * 4. the templates rendered, the mandatory footer added to text and HTML;
 * 5. the List-Unsubscribe, List-Unsubscribe-Post and List-Id headers (marketing), a deterministic
 *    Message-ID, and the DKIM signatures.
 */
import { createHmac, type KeyObject } from 'node:crypto';
import type { ConsentService } from '../consent/consent.service.js';
import { createLinkToken, DEFAULT_UNSUBSCRIBE_TTL_SECONDS } from '../consent/link-tokens.js';
import type { Manifest, Purpose } from '../manifest/manifest.schema.js';
import { coversCategory } from '../manifest/taxonomy.js';
import type { Context } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import type { ReadResult, Vault } from '../vault/vault.service.js';
import type { Campaign } from './campaigns.repository.js';
import { signMessage, type DkimKeys } from './dkim.js';
import type { MailSettings } from './mail.settings.js';
import {
  appendHtmlFooter,
  compileTemplates,
  composeMessage,
  listHeaders,
  renderFooter,
  type CompiledTemplates,
} from './message.compose.js';
import type { SuppressionService } from './suppression.service.js';

/** The category an address is read from. */
export const EMAIL_CATEGORY = 'user.contact.email';

/** What the pipeline made of one recipient. */
export type PreparedMessage =
  { kind: 'skip'; reason: string } | { kind: 'ready'; to: string; raw: Buffer; messageId: string };

/** What the pipeline uses. */
export interface MessagePipelineDeps {
  manifest: Manifest;
  consent: Pick<ConsentService, 'decide'>;
  vault: Pick<Vault, 'read'>;
  suppression: Pick<SuppressionService, 'isSuppressed'>;
  /** The key link tokens are signed with. */
  linkKey: KeyObject;
  /** A secret Message-IDs are derived from (so they do not show subject ids). */
  messageIdKey: Buffer;
  settings: MailSettings;
  /** Absent: messages leave unsigned (service mail only; campaigns refuse to start without). */
  dkim: DkimKeys | undefined;
}

/** Makes messages, one recipient at a time. */
export class MessagePipeline {
  readonly #deps: MessagePipelineDeps;
  readonly #templates = new Map<string, CompiledTemplates>();

  constructor(deps: MessagePipelineDeps) {
    this.#deps = deps;
  }

  /** The Message-ID of a campaign's message to a subject: the same every time it is asked. */
  messageIdOf(campaignId: string, subjectId: string): string {
    const tag = createHmac('sha256', this.#deps.messageIdKey)
      .update(`${campaignId}\u0000${subjectId}`)
      .digest()
      .subarray(0, 15)
      .toString('base64url');
    return `<${campaignId}.${tag}@${this.#deps.settings.mailDomain}>`;
  }

  /**
   * Runs the pipeline for one recipient of `campaign`. Never sends; returns the message to send or
   * why there is none. A database or signing error propagates (the send is retried later).
   */
  async prepare(ctx: Context, campaign: Campaign, subjectId: string): Promise<PreparedMessage> {
    const purpose = this.#purposeOrThrow(campaign.list);
    let decisionReason: string | undefined;
    if (campaign.kind === 'marketing') {
      const decision = await this.#decide(ctx, subjectId, purpose.key);
      if (!decision.allowed) return { kind: 'skip', reason: decision.reason };
      decisionReason = decision.reason;
    }

    let read: ReadResult;
    try {
      read = await this.#deps.vault.read(ctx, subjectId, purpose.key);
    } catch (err) {
      if (err instanceof PledgeError && err.code === 'vault.subject_not_found') {
        return { kind: 'skip', reason: 'unknown_subject' };
      }
      throw err;
    }
    if (!read.decision.allowed) return { kind: 'skip', reason: read.decision.reason };
    const { address, fields } = personOf(read);
    if (address === undefined) return { kind: 'skip', reason: 'no_address' };

    if (
      campaign.kind === 'marketing' &&
      (await this.#deps.suppression.isSuppressed(ctx, address, purpose.key))
    ) {
      return { kind: 'skip', reason: 'suppressed' };
    }

    const { settings } = this.#deps;
    const templates = await this.#compiled(campaign);
    const now = ctx.clock.now();
    const messageId = this.messageIdOf(campaign.id, subjectId);
    const headers: Array<{ key: string; value: string }> = [];
    let footer: { text: string; html: string };
    if (campaign.kind === 'marketing') {
      const token = createLinkToken(
        this.#deps.linkKey,
        { scope: 'unsubscribe', subjectId, purpose: purpose.key, channel: 'email' },
        { now },
      );
      const preferences = createLinkToken(
        this.#deps.linkKey,
        { scope: 'preferences', subjectId },
        // A link in an e-mail is opened late: it lasts as long as the unsubscribe link.
        { now, ttlSeconds: DEFAULT_UNSUBSCRIBE_TTL_SECONDS },
      );
      footer = renderFooter({
        manifest: this.#deps.manifest,
        purpose,
        kind: 'marketing',
        decisionReason,
        unsubscribeUrl: `${settings.publicUrl}/unsubscribe?t=${token}`,
        preferencesUrl: `${settings.publicUrl}/preferences?t=${preferences}`,
        privacyUrl: `${settings.publicUrl}/privacy`,
      });
      headers.push(
        ...listHeaders({
          oneClickUrl: `${settings.publicUrl}/unsubscribe/one-click/${token}`,
          mailtoAddress: `unsubscribe+${token}@${settings.mailDomain}`,
          purpose,
          mailDomain: settings.mailDomain,
        }),
      );
    } else {
      footer = renderFooter({
        manifest: this.#deps.manifest,
        purpose,
        kind: 'service',
        privacyUrl: `${settings.publicUrl}/privacy`,
      });
    }
    const raw = await composeMessage({
      from: settings.from,
      to: address,
      subject: templates.subject(fields),
      text: `${templates.text(fields).replace(/\s+$/, '')}\n${footer.text}`,
      html: appendHtmlFooter(templates.html(fields), footer.html),
      messageId,
      date: now,
      headers,
    });
    const signed = this.#deps.dkim === undefined ? raw : await signMessage(raw, this.#deps.dkim);
    return { kind: 'ready', to: address, raw: signed, messageId };
  }

  async #decide(ctx: Context, subjectId: string, purpose: string) {
    try {
      return await this.#deps.consent.decide(ctx, subjectId, purpose, 'email');
    } catch (err) {
      if (err instanceof PledgeError && err.code === 'consent.subject_not_found') {
        return { allowed: false, reason: 'unknown_subject' } as const;
      }
      throw err;
    }
  }

  async #compiled(campaign: Campaign): Promise<CompiledTemplates> {
    let compiled = this.#templates.get(campaign.id);
    if (compiled === undefined) {
      compiled = await compileTemplates(campaign.templates);
      // A handful of campaigns run at once; keep the cache from growing without end.
      if (this.#templates.size >= 100) this.#templates.clear();
      this.#templates.set(campaign.id, compiled);
    }
    return compiled;
  }

  #purposeOrThrow(key: string): Purpose {
    const purpose = this.#deps.manifest.purposes.find((p) => p.key === key);
    if (purpose === undefined) {
      throw new PledgeError(
        'comms.list_unknown',
        `the campaign's list "${key}" is no longer a purpose of the manifest in force`,
        { status: 422, details: { list: key } },
      );
    }
    return purpose;
  }
}

/**
 * The person as the use gate gave them: the e-mail address (the newest record's) and the fields a
 * template may use, by field name (newer records win).
 */
export function personOf(read: ReadResult): { address: string | undefined; fields: Record<string, unknown> } {
  const records = [...read.records].sort((a, b) => a.collectedAt.getTime() - b.collectedAt.getTime());
  const fields: Record<string, unknown> = {};
  let address: string | undefined;
  for (const record of records) {
    for (const [name, field] of Object.entries(record.fields)) {
      if (typeof field.value !== 'string' && typeof field.value !== 'number') continue;
      fields[name] = field.value;
      if (typeof field.value === 'string' && coversCategory(EMAIL_CATEGORY, field.category)) {
        address = field.value;
      }
    }
  }
  return { address, fields };
}
