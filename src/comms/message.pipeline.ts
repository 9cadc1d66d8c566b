/**
 * The mail pipeline: everything a message passes between "this person is in the audience" and
 * "these bytes may go to the SMTP server". It is the only way a campaign's message is made, and
 * it has no switch that skips a step. For a batch of recipients of one campaign:
 *
 * 1. marketing: the consent decision for the list on the e-mail channel, one batched decision
 *    (skip with its reason);
 * 2. the address and the template's fields through the use gate (`Vault.read`, audited), per
 *    person; an erased or unknown subject gets nothing, service mail included;
 * 3. marketing: the suppression list, one query for the batch (skip `suppressed`);
 * 4. the templates (compiled once per campaign) rendered, the mandatory footer added to text and
 *    HTML, and (marketing) the extras' HTML for those who allowed it (the e-mail open pixel);
 * 5. the List-Unsubscribe, List-Unsubscribe-Post and List-Id headers (marketing), the signed return
 *    token (return-tokens.ts) in the Message-ID and the VERP return path, and the DKIM signatures.
 *
 * Then, just before the messages are handed to SMTP, {@link MessagePipeline.recheck} asks steps 1
 * and 3 again for those few messages, so a choice made while they were being prepared counts.
 */
import type { PassThroughGate } from '../share/share.types.js';
import type { AuditEntry } from '../audit/audit.service.js';
import type { ConsentService } from '../consent/consent.service.js';
import { createLinkToken, MAX_PREFERENCES_TTL_SECONDS, type LinkTokenKeys } from '../consent/link-tokens.js';
import type { Manifest, Purpose } from '../manifest/manifest.schema.js';
import { coversCategory } from '../manifest/taxonomy.js';
import type { Context } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import type { UseKeys } from '../vault/use-keys.js';
import type { ReadResult, Vault } from '../vault/vault.service.js';
import type { Campaign } from './campaigns.repository.js';
import { signMessage, type DkimKeys } from './dkim.js';
import { createMailtoToken, MAILTO_LOCAL_PREFIX } from './mailto-tokens.js';
import type { MailSettings } from './mail.settings.js';
import {
  appendHtmlFooter,
  compileTemplates,
  composeMessage,
  listHeaders,
  loadHandlebars,
  renderFooter,
  type CompiledTemplates,
} from './message.compose.js';
import {
  createReturnToken,
  returnMessageId,
  returnTokenKeysOf,
  returnPath,
  type ReturnTokenKeys,
} from './return-tokens.js';
import type { SuppressionService } from './suppression.service.js';
import { templateFieldNames, usableFields } from './template-fields.js';
import { mailRecipientOf } from '../share/share.gate.js';

export { mailRecipientOf } from '../share/share.gate.js';

/** The category an address is read from. */
export const EMAIL_CATEGORY = 'user.contact.email';

/**
 * What the pipeline made of one recipient: a message to send, a reason not to send one, or an
 * error (the database, a template, signing) after which nothing was sent and the send is retried.
 */
export type PreparedMessage =
  | { kind: 'skip'; reason: string }
  | {
      kind: 'ready';
      to: string;
      raw: Buffer;
      messageId: string;
      /** MAIL FROM: the VERP return path `bounces+TOKEN@MAILDOMAIN` that bounces come back to. */
      envelopeFrom: string;
      /** The record of the hand-over to the e-mail delivery provider (share gate), appended when it is marked sending. */
      disclosure?: AuditEntry | undefined;
    }
  | { kind: 'error'; error: unknown };

/** A prepared message as {@link MessagePipeline.recheck} needs it. */
export interface RecheckInput {
  subjectId: string;
  /** The address the message goes to. */
  to: string;
}

/** What the pipeline uses. */
export interface MessagePipelineDeps {
  manifest: Manifest;
  consent: Pick<ConsentService, 'decideMany' | 'linkGenerationOf'>;
  vault: Pick<Vault, 'readMany'>;
  suppression: Pick<SuppressionService, 'suppressedAmong'>;
  /** The links keys link tokens are signed with (`deriveLinkTokenKeys(keyring.use('links'))`). */
  linkKey: LinkTokenKeys;
  /**
   * The secret return tokens (the signed Message-ID and return path, which prove a bounce or a
   * complaint answers this message) are derived from, with a label of their own.
   */
  returnTokenSecret: Buffer | UseKeys;
  settings: MailSettings;
  /** Absent: messages leave unsigned (service mail only; campaigns refuse to start without). */
  dkim: DkimKeys | undefined;
  /** What marketing messages may carry besides their template (the open pixel); absent: nothing. */
  extras?: MessageExtras | undefined;
  /**
   * The share gate: a message handed to the e-mail delivery provider is a disclosure of the address
   * and the template's fields, checked once per batch (the same decision for all of it) and
   * recorded per message. Absent (a pipeline built alone in a test): not checked.
   */
  share?: MailShare | undefined;
}

/** What the pipeline asks of the share gate: whether a batch may be handed over, and its entries. */
export type MailShare = Pick<PassThroughGate, 'authorizePassThrough'>;

/**
 * HTML a marketing message carries for its recipient besides the template and footer: the e-mail
 * open pixel (src/tracking/mail-open.service.ts), which only people who allowed it get. Asked once
 * per batch, for the people who are sent a message.
 */
export interface MessageExtras {
  /** For each of `subjectIds`, in order: HTML to end the message's HTML part with, or `undefined`. */
  htmlFor(
    ctx: Context,
    campaign: Pick<Campaign, 'id' | 'kind'>,
    subjectIds: readonly string[],
  ): Promise<Array<string | undefined>>;
}

/** Makes messages, a batch of recipients at a time. */
export class MessagePipeline {
  readonly #deps: MessagePipelineDeps;
  readonly #templates = new Map<string, CompiledTemplates>();
  readonly #fields = new Map<string, Array<{ name: string; category: string }>>();
  readonly #returnKeys: ReturnTokenKeys;

  constructor(deps: MessagePipelineDeps) {
    this.#deps = deps;
    this.#returnKeys = returnTokenKeysOf(deps.returnTokenSecret);
  }

  /**
   * Runs the pipeline for recipients of `campaign`; the answers are in the order of `subjectIds`.
   * Never sends and never throws: a failure is the answer `error` for the recipients it concerns
   * (all of them when the batched decision or suppression query fails).
   */
  async prepareMany(
    ctx: Context,
    campaign: Campaign,
    subjectIds: readonly string[],
  ): Promise<PreparedMessage[]> {
    const out = new Array<PreparedMessage | undefined>(subjectIds.length);
    try {
      const purpose = this.#purposeOrThrow(campaign.list);
      const marketing = campaign.kind === 'marketing';
      // Refused (an undeclared provider, one that has not acknowledged the policy): every message of
      // the batch fails with the gate's error, which the runner records on the job.
      const grant = await this.#grantFor(ctx, campaign, purpose);
      const decisions = marketing
        ? await this.#deps.consent.decideMany(ctx, subjectIds, purpose.key, 'email')
        : undefined;
      // The use gate, for the people the decision allows, in one read: one query for the
      // subjects, one for their records, one crypto batch and one commit for the audit entries.
      const asked = subjectIds.filter((_, i) => decisions?.[i]?.allowed !== false);
      const reads = await this.#readAll(ctx, asked, purpose.key);
      const readOf = new Map(asked.map((id, j) => [id, reads[j]]));
      const people = subjectIds.map((subjectId, i): Person | undefined => {
        const decision = decisions?.[i];
        if (decision !== undefined && !decision.allowed) {
          out[i] = { kind: 'skip', reason: decision.reason };
          return undefined;
        }
        const read = readOf.get(subjectId);
        if (read instanceof Error) {
          out[i] = { kind: 'error', error: read };
          return undefined;
        }
        const person = personFrom(read);
        if (person.kind === 'skip') {
          out[i] = person;
          return undefined;
        }
        return { ...person, decisionReason: decision?.reason };
      });
      const suppressed = marketing
        ? await this.#deps.suppression.suppressedAmong(
            ctx,
            people.flatMap((p) => (p === undefined ? [] : [p.address])),
            purpose.key,
          )
        : new Set<string>();
      const templates = await this.#compiled(campaign);
      const extras = marketing
        ? await this.#extrasFor(ctx, campaign, subjectIds, people, suppressed)
        : undefined;
      for (let i = 0; i < subjectIds.length; i++) {
        const person = people[i];
        if (person === undefined) continue;
        if (suppressed.has(person.address)) {
          out[i] = { kind: 'skip', reason: 'suppressed' };
          continue;
        }
        try {
          const extra = extras?.get(i);
          const made = await this.#render(ctx, campaign, purpose, templates, subjectIds[i]!, person, extra);
          out[i] =
            grant === undefined || made.kind !== 'ready'
              ? made
              : {
                  ...made,
                  disclosure: grant.entryFor(subjectIds[i], { campaign: campaign.id, kind: campaign.kind }),
                };
        } catch (error) {
          out[i] = { kind: 'error', error };
        }
      }
    } catch (error) {
      for (let i = 0; i < out.length; i++) out[i] ??= { kind: 'error', error };
    }
    return out as PreparedMessage[];
  }

  /**
   * Asks the consent decision and the suppression list again for prepared marketing messages, in
   * one batch, just before they are handed to SMTP: a person who opted out (or an address that
   * bounced) since the message was prepared is skipped. Returns, in order, the reason to skip each
   * message or `undefined` to send it. Service messages are not rechecked. A database error throws.
   */
  async recheck(
    ctx: Context,
    campaign: Campaign,
    messages: readonly RecheckInput[],
  ): Promise<Array<string | undefined>> {
    if (campaign.kind !== 'marketing' || messages.length === 0) return messages.map(() => undefined);
    const purpose = this.#purposeOrThrow(campaign.list);
    const decisions = await this.#deps.consent.decideMany(
      ctx,
      messages.map((m) => m.subjectId),
      purpose.key,
      'email',
    );
    const suppressed = await this.#deps.suppression.suppressedAmong(
      ctx,
      messages.map((m) => m.to),
      purpose.key,
    );
    return messages.map((m, i) => {
      const decision = decisions[i];
      if (decision !== undefined && !decision.allowed) return decision.reason;
      return suppressed.has(m.to) ? 'suppressed' : undefined;
    });
  }

  /** The extra HTML of the people who are sent a message, by their index in the batch. */
  async #extrasFor(
    ctx: Context,
    campaign: Campaign,
    subjectIds: readonly string[],
    people: ReadonlyArray<Person | undefined>,
    suppressed: ReadonlySet<string>,
  ): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    const extras = this.#deps.extras;
    if (extras === undefined) return out;
    const sent = people.flatMap((p, i) => (p === undefined || suppressed.has(p.address) ? [] : [i]));
    if (sent.length === 0) return out;
    const html = await extras.htmlFor(
      ctx,
      campaign,
      sent.map((i) => subjectIds[i]!),
    );
    sent.forEach((i, n) => {
      const h = html[n];
      if (h !== undefined) out.set(i, h);
    });
    return out;
  }

  /**
   * The use-gate reads of some subjects, in one batch; when the batch fails (a record that does not
   * decrypt fails the whole read), each subject is read alone, so only the one it concerns fails.
   */
  async #readAll(
    ctx: Context,
    subjectIds: readonly string[],
    purpose: string,
  ): Promise<Array<ReadResult | undefined | Error>> {
    if (subjectIds.length === 0) return [];
    try {
      return await this.#deps.vault.readMany(ctx, subjectIds, purpose);
    } catch {
      return Promise.all(
        subjectIds.map(async (id) => {
          try {
            return (await this.#deps.vault.readMany(ctx, [id], purpose))[0];
          } catch (error) {
            return error instanceof Error ? error : new Error(String(error));
          }
        }),
      );
    }
  }

  /** Renders, composes and signs one message. */
  async #render(
    ctx: Context,
    campaign: Campaign,
    purpose: Purpose,
    templates: CompiledTemplates,
    subjectId: string,
    person: Person,
    extraHtml?: string,
  ): Promise<PreparedMessage> {
    const { settings } = this.#deps;
    const { address, fields } = person;
    const now = ctx.clock.now();
    // The same for a message prepared again within the hour (the time in it counts in hours); the
    // campaign id keeps two campaigns' messages to one person apart.
    const returnToken = createReturnToken(this.#returnKeys, { subjectId, list: purpose.key }, { now });
    const messageId = returnMessageId(campaign.id, returnToken, settings.mailDomain);
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
        // A link in an e-mail is opened late: it lasts as long as a preference link may (30 days),
        // in the person's current link generation, so "sign out every link" ends it.
        {
          now,
          ttlSeconds: MAX_PREFERENCES_TTL_SECONDS,
          generation: await this.#deps.consent.linkGenerationOf(ctx, subjectId),
        },
      );
      footer = renderFooter({
        manifest: this.#deps.manifest,
        purpose,
        kind: 'marketing',
        decisionReason: person.decisionReason,
        unsubscribeUrl: `${settings.publicUrl}/unsubscribe?t=${token}`,
        preferencesUrl: `${settings.publicUrl}/preferences?t=${preferences}`,
        privacyUrl: `${settings.publicUrl}/privacy`,
      });
      headers.push(
        ...listHeaders({
          oneClickUrl: `${settings.publicUrl}/unsubscribe/one-click/${token}`,
          // Its own compact token: a link token is too long for an address's local part.
          mailtoAddress: `${MAILTO_LOCAL_PREFIX}${createMailtoToken(
            this.#deps.linkKey,
            { subjectId, purpose: purpose.key },
            { now },
          )}@${settings.mailDomain}`,
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
      html: appendHtmlFooter(
        templates.html(fields),
        extraHtml === undefined ? footer.html : `${footer.html}\n${extraHtml}`,
      ),
      messageId,
      date: now,
      headers,
    });
    const signed = this.#deps.dkim === undefined ? raw : await signMessage(raw, this.#deps.dkim);
    return {
      kind: 'ready',
      to: address,
      raw: signed,
      messageId,
      envelopeFrom: returnPath(returnToken, settings.mailDomain),
    };
  }

  /** The share gate's grant for this campaign's messages to its delivery provider (asked per batch). */
  async #grantFor(
    ctx: Context,
    campaign: Campaign,
    purpose: Purpose,
  ): Promise<
    { entryFor(subjectId: string | undefined, details?: Record<string, unknown>): AuditEntry } | undefined
  > {
    const share = this.#deps.share;
    if (share === undefined) return undefined;
    const recipient = mailRecipientOf(this.#deps.manifest, purpose);
    if (recipient === undefined) {
      throw new PledgeError(
        'share.recipient_undeclared',
        `no processor is declared to receive e-mail addresses (${EMAIL_CATEGORY}) for "${purpose.key}", so its mail cannot be handed to a delivery provider; declare the e-mail delivery provider under recipients: with that category and purpose`,
        { status: 403, expose: true, details: { purpose: purpose.key, campaign: campaign.id } },
      );
    }
    return share.authorizePassThrough(ctx, {
      recipient,
      purpose: purpose.key,
      fields: await this.#fieldsOf(campaign, purpose),
    });
  }

  /** What a campaign's message carries to the provider: the address and the template's fields, with their categories. */
  async #fieldsOf(campaign: Campaign, purpose: Purpose): Promise<Array<{ name: string; category: string }>> {
    let fields = this.#fields.get(campaign.id);
    if (fields === undefined) {
      const handlebars = await loadHandlebars();
      const usable = usableFields(this.#deps.manifest, purpose);
      const names = new Set<string>();
      for (const part of [campaign.templates.subject, campaign.templates.text, campaign.templates.html]) {
        for (const n of templateFieldNames(handlebars, part)) names.add(n);
      }
      fields = [
        { name: 'to', category: EMAIL_CATEGORY },
        ...[...names].flatMap((name) => {
          const category = usable.get(name);
          return category === undefined ? [] : [{ name, category }];
        }),
      ];
      if (this.#fields.size >= 100) this.#fields.clear();
      this.#fields.set(campaign.id, fields);
    }
    return fields;
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

/** A recipient the use gate gave an address for. */
interface Person {
  address: string;
  fields: Record<string, unknown>;
  /** Why the decision allowed marketing (for the footer's words). */
  decisionReason?: string | undefined;
}

/** The address and fields of a use-gate read, or why there are none (no read: an unknown subject). */
function personFrom(
  read: ReadResult | undefined,
): { kind: 'skip'; reason: string } | { kind: 'person'; address: string; fields: Record<string, unknown> } {
  if (read === undefined) return { kind: 'skip', reason: 'unknown_subject' };
  if (!read.decision.allowed) return { kind: 'skip', reason: read.decision.reason };
  const { address, fields } = personOf(read);
  if (address === undefined) return { kind: 'skip', reason: 'no_address' };
  return { kind: 'person', address, fields };
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
