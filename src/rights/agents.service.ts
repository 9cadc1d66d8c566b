/**
 * Authorized agents under the Data Rights Protocol 1.0: staff register an agent's Ed25519 key; an
 * agent posts a signed data rights request, which is checked against that key only (its signature,
 * the agent's status, the business it names, its time window, that it was not seen before) and
 * then filed through the ordinary intake, so the person still gets a code at each identifier and
 * must confirm it. Nothing the message says is believed beyond that: its identity claims are only
 * identifiers to verify by code.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { AuditAppender } from '../audit/audit.service.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../platform/errors.js';
import type { AgentRecord, AgentsRepository } from './agents.repository.js';
import type { RequestType } from './requests.repository.js';
import type { RequestsService } from './requests.service.js';
import { REQUESTS_PURPOSE } from './steps.engine.js';

export type { AgentRecord } from './agents.repository.js';

/** The protocol version accepted. */
export const DRP_VERSION = '1.0';
/** Clock skew allowed on `issued-at` and `expires-at`. */
export const AGENT_SKEW_MS = 60_000;
/** The longest window a signed message may claim. */
export const AGENT_MESSAGE_MAX_MS = 86_400_000;
/** Codes per hour an agent may have sent for the people it files for. */
export const AGENT_CODES_PER_HOUR = 1_000;

/** DRP `exercise` values and the request type each files (an opt-out of sale is an objection). */
export const DRP_EXERCISES: Readonly<Record<string, RequestType>> = {
  access: 'access',
  'access:categories': 'access',
  'access:specific': 'export',
  deletion: 'erasure',
  'sale:opt-out': 'objection',
  // The protocol's certification suite spells it with an underscore.
  'sale:opt_out': 'objection',
};

/** DRP `regime` values and the jurisdiction whose deadlines apply. */
const REGIMES: Readonly<Record<string, string | undefined>> = { ccpa: 'US-CA', voluntary: undefined };

// The DER prefix of an Ed25519 SubjectPublicKeyInfo: the raw 32-byte key follows it.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** What the service uses. */
export interface AgentsServiceDeps {
  db: Transactions;
  agents: AgentsRepository;
  requests: RequestsService;
  audit: AuditAppender;
  /** The DRP `business-id` a message must name (the host of the public URL). */
  businessId: string;
}

/** What an accepted agent request answers, in DRP's terms. */
export interface AgentRequestResult {
  request_id: string;
  status: 'open';
  received_at: string;
  expected_by: string;
  processing_details: string;
}

function invalid(code: string, path: string, message: string): ValidationError {
  return new ValidationError(code, `${path === '' ? 'body' : path}: ${message}`, {
    problems: [{ path, message }],
  });
}

function keyOf(publicKey: string): KeyObject {
  return createPublicKey({
    key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(publicKey, 'base64')]),
    format: 'der',
    type: 'spki',
  });
}

/** Authorized agents: registration by staff, and their signed requests. */
export class AgentsService {
  readonly #deps: AgentsServiceDeps;

  constructor(deps: AgentsServiceDeps) {
    this.#deps = deps;
  }

  /**
   * Registers an agent: `{ id, name, public_key }` with the raw 32-byte Ed25519 verify key in hex
   * (as DRP agents export it) or base64; it is kept in base64.
   * `requests.agent_invalid` (with paths), `requests.agent_exists` (409).
   */
  async register(ctx: Context, body: unknown): Promise<AgentRecord> {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const problems: Array<{ path: string; message: string }> = [];
    const id = b.id;
    if (typeof id !== 'string' || !/^[A-Za-z0-9._:-]{1,100}$/.test(id))
      problems.push({ path: 'id', message: "must be the agent's DRP agent-id (letters, digits, . _ : -)" });
    const name = b.name;
    if (typeof name !== 'string' || name.trim() === '' || name.length > 200)
      problems.push({ path: 'name', message: 'must be text of 1 to 200 characters' });
    const given = b.public_key;
    const key =
      typeof given === 'string' && /^[0-9a-fA-F]{64}$/.test(given)
        ? Buffer.from(given, 'hex').toString('base64')
        : given;
    if (typeof key !== 'string' || Buffer.from(key, 'base64').length !== 32)
      problems.push({
        path: 'public_key',
        message: 'must be the raw 32-byte Ed25519 verify key, in hex or base64',
      });
    else {
      try {
        keyOf(key);
      } catch {
        problems.push({ path: 'public_key', message: 'is not an Ed25519 public key' });
      }
    }
    if (problems.length > 0)
      throw new ValidationError(
        'requests.agent_invalid',
        problems.map((p) => `${p.path}: ${p.message}`).join('; '),
        { problems },
      );
    const agent: AgentRecord = {
      id: id as string,
      name: (name as string).trim(),
      publicKey: key as string,
      status: 'active',
      registeredBy: 'id' in ctx.actor ? `${ctx.actor.kind}:${ctx.actor.id}` : ctx.actor.kind,
      registeredAt: ctx.clock.now(),
      revokedAt: undefined,
    };
    const d = this.#deps;
    await d.db.transaction(ctx, async (tctx) => {
      if ((await d.agents.get(tctx, agent.id)) !== undefined)
        throw new ConflictError('requests.agent_exists', `agent ${agent.id} is registered already`);
      await d.agents.insert(tctx, agent);
      await d.audit.append(tctx, [
        { action: 'requests.agent_registered', purpose: REQUESTS_PURPOSE, details: { agentId: agent.id } },
      ]);
    });
    return agent;
  }

  /** Every registered agent. */
  async list(ctx: Context): Promise<AgentRecord[]> {
    return this.#deps.agents.list(ctx);
  }

  /** Revokes an agent: its messages are refused from now on. `requests.agent_not_found` (404). */
  async revoke(ctx: Context, id: string): Promise<AgentRecord> {
    const d = this.#deps;
    return d.db.transaction(ctx, async (tctx) => {
      const agent = await d.agents.get(tctx, id);
      if (agent === undefined) throw new NotFoundError('requests.agent_not_found', `no agent ${id}`);
      if (await d.agents.revoke(tctx, id, ctx.clock.now()))
        await d.audit.append(tctx, [
          { action: 'requests.agent_revoked', purpose: REQUESTS_PURPOSE, details: { agentId: id } },
        ]);
      return (await d.agents.get(tctx, id)) ?? agent;
    });
  }

  /**
   * Files a signed DRP request: `{ "signed_message": base64 }`, a libsodium combined signed message
   * (the 64-byte Ed25519 signature, then the JSON request). Refusals, each leaving nothing:
   * `requests.agent_message_invalid` (400), `requests.agent_unknown`, `requests.agent_revoked`,
   * `requests.agent_signature_invalid`, `requests.agent_business_mismatch` (403),
   * `requests.agent_message_expired` (400), `requests.agent_replay` (409).
   */
  async receiveSigned(ctx: Context, body: unknown): Promise<AgentRequestResult> {
    const d = this.#deps;
    // DRP sends the base64 signed message as the text/plain body; a JSON { signed_message } also works.
    const raw = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const encoded = typeof body === 'string' ? body.trim() : raw.signed_message;
    if (typeof encoded !== 'string' || encoded.length > 20_000)
      throw invalid(
        'requests.agent_message_invalid',
        'signed_message',
        'must be the base64 libsodium signed message (signature, then the JSON request)',
      );
    const signed = Buffer.from(encoded, 'base64');
    if (signed.length <= 64)
      throw invalid('requests.agent_message_invalid', 'signed_message', 'is too short to hold a signature');
    const signature = signed.subarray(0, 64);
    const message = signed.subarray(64);
    let claims: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(message.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not an object');
      claims = parsed as Record<string, unknown>;
    } catch {
      throw invalid(
        'requests.agent_message_invalid',
        'signed_message',
        'the signed part is not a JSON object',
      );
    }
    // The agent-id is read before the signature is checked only to find the key that must check it.
    const agentId = claims['agent-id'];
    if (typeof agentId !== 'string' || agentId.length > 100)
      throw invalid('requests.agent_message_invalid', 'agent-id', 'must name the registered agent');
    const agent = await d.agents.get(ctx, agentId);
    if (agent === undefined)
      throw new ForbiddenError('requests.agent_unknown', `no agent ${agentId} is registered here`);
    if (agent.status !== 'active')
      throw new ForbiddenError('requests.agent_revoked', `agent ${agentId} was revoked`);
    if (!verify(null, message, keyOf(agent.publicKey), signature))
      throw new ForbiddenError(
        'requests.agent_signature_invalid',
        "the signature does not verify under the agent's registered key",
      );
    // From here the claims are the agent's own words; still, only identifiers to verify by code.
    if (claims['business-id'] !== d.businessId)
      throw new ForbiddenError('requests.agent_business_mismatch', `business-id must be ${d.businessId}`);
    if (claims['drp.version'] !== DRP_VERSION)
      throw invalid('requests.agent_message_invalid', 'drp.version', `must be "${DRP_VERSION}"`);
    const time = (name: string): Date => {
      const v = claims[name];
      const at = typeof v === 'string' ? new Date(v) : undefined;
      if (at === undefined || Number.isNaN(at.getTime()))
        throw invalid('requests.agent_message_invalid', name, 'must be an ISO-8601 time');
      return at;
    };
    const issuedAt = time('issued-at');
    const expiresAt = time('expires-at');
    const now = ctx.clock.now().getTime();
    if (
      issuedAt.getTime() > now + AGENT_SKEW_MS ||
      expiresAt.getTime() + AGENT_SKEW_MS < now ||
      expiresAt.getTime() - issuedAt.getTime() > AGENT_MESSAGE_MAX_MS ||
      expiresAt.getTime() <= issuedAt.getTime()
    )
      throw invalid(
        'requests.agent_message_expired',
        'expires-at',
        'the message is outside its issued-at/expires-at window (at most a day long); sign a new one',
      );
    const exercise = claims.exercise;
    const type = typeof exercise === 'string' ? DRP_EXERCISES[exercise] : undefined;
    if (type === undefined)
      throw invalid(
        'requests.agent_message_invalid',
        'exercise',
        `must be one of ${Object.keys(DRP_EXERCISES).join(', ')}`,
      );
    const regime = claims.regime ?? 'voluntary';
    if (typeof regime !== 'string' || !(regime in REGIMES))
      throw invalid(
        'requests.agent_message_invalid',
        'regime',
        `must be one of ${Object.keys(REGIMES).join(', ')}`,
      );
    const identity = (
      typeof claims.identity === 'object' && claims.identity !== null ? claims.identity : claims
    ) as Record<string, unknown>;
    const messageId = createHash('sha256').update(message).digest('hex');
    return d.db.transaction(ctx, async (tctx) => {
      if (await d.agents.seen(tctx, messageId))
        throw new ConflictError('requests.agent_replay', 'this signed message was received already');
      const jurisdiction = REGIMES[regime];
      const intake = await d.requests.receive(
        tctx,
        {
          type,
          email: identity.email,
          phone: identity.phone_number,
          ...(jurisdiction === undefined ? {} : { jurisdiction }),
          ...(type === 'objection'
            ? {
                details:
                  'Opt-out of the sale and sharing of personal data (Data Rights Protocol sale:opt-out)',
              }
            : {}),
        },
        { agent: `drp:${agent.id}`, ip: `drp:${agent.id}`, clientLimit: AGENT_CODES_PER_HOUR },
      );
      const first = await d.agents.remember(tctx, {
        id: messageId,
        agentId: agent.id,
        requestId: intake.requestId,
        expiresAt,
      });
      // A copy sent at the same moment passed `seen` too; the key lets one in, the other is a replay.
      if (!first)
        throw new ConflictError('requests.agent_replay', 'this signed message was received already');
      const request = await d.requests.getOrThrow(tctx, intake.requestId);
      return {
        request_id: intake.requestId,
        status: 'open' as const,
        received_at: request.receivedAt.toISOString(),
        expected_by: request.dueAt.toISOString(),
        processing_details: 'a code was sent to each identifier given; the person must confirm it',
      };
    });
  }
}
