/**
 * API keys: `pledge_<id>_<secret>`. The id is public and finds the row; only a SHA-256 digest of
 * the secret is stored, and the full key is shown once, when it is created.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { systemClock, type Clock } from '../clock.js';
import type { Context } from '../context.js';
import { AuthenticationError, ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import type { ApiKeyCredential, ApiKeyRepository, ApiKeySummary } from './api-keys.repository.js';
import { hasScope, isScope, SCOPES, type Scope } from './scopes.js';

/** Who a valid API key is: its id and what it may do. */
export interface ApiKeyPrincipal {
  id: string;
  scopes: readonly Scope[];
}

/** What to create. */
export interface CreateKeyOptions {
  name: string;
  /** Scope names as given by a person or a client; each is checked. */
  scopes: readonly string[];
}

/** A new key. `key` is the only copy of the secret: show it once, never store or log it. */
export interface CreateKeyResult {
  id: string;
  key: string;
  name: string;
  scopes: Scope[];
}

/** What the service uses. */
export interface ApiKeyServiceDeps {
  keys: ApiKeyRepository;
  /**
   * For `last_used_at`, which `authenticate` records without a context, and for the credential
   * cache's expiry; the wall clock by default.
   */
  clock?: Clock;
  /**
   * How long a key's stored digest and scopes are reused before being read again (default 5,000 ms;
   * 0 reads the database on every request). This is how long another process (the CLI, another
   * instance) may still see a key it did not revoke itself as live; this process forgets a key it
   * revokes at once.
   */
  credentialTtlMs?: number;
}

/** The shape of a key: `pledge_`, 12 base32 characters, `_`, 32 bytes in base64url (43 characters). */
export const API_KEY_PATTERN = /^pledge_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$/;

const ID_PATTERN = /^[a-z2-7]{12}$/;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const NAME_MAX_LENGTH = 100;
/** `last_used_at` is written at most this often per key, so authenticating stays a read. */
const TOUCH_INTERVAL_MS = 60_000;
/** Credentials cached at most; past that the least recently used goes. */
const CREDENTIAL_CACHE_SIZE = 1_000;
/** Compared against when the id is unknown, so that path does the same work as a wrong secret. */
const DUMMY_DIGEST = digest('pledge-api-key-dummy-secret');

/**
 * One message for every way a key can fail (malformed, unknown id, wrong secret, revoked), so a
 * caller learns nothing about which keys exist.
 */
const INVALID_KEY_MESSAGE =
  'the API key is not valid (malformed, unknown or revoked); send a key made with `pledge keys create` ' +
  'as "Authorization: Bearer pledge_..."';

/** Creates, checks, lists and revokes API keys. */
export class ApiKeyService {
  readonly #keys: ApiKeyRepository;
  readonly #clock: Clock;
  /** When each key's `last_used_at` was last written by this process (ms since epoch). */
  readonly #touchedAt = new Map<string, number>();
  readonly #ttlMs: number;
  /**
   * id -> what authentication read from the database and when it expires (insertion order = LRU
   * order). Reading the row was a fifth of a collection request's time; the digest is still
   * compared on every request, so a cached entry never lets a wrong secret through.
   */
  readonly #credentials = new Map<string, { credential: ApiKeyCredential; expiresAt: number }>();

  constructor(deps: ApiKeyServiceDeps) {
    this.#keys = deps.keys;
    this.#clock = deps.clock ?? systemClock;
    this.#ttlMs = Math.max(0, deps.credentialTtlMs ?? 5_000);
  }

  /**
   * Creates a key with `scopes`. Throws a ValidationError `auth.scope_unknown` listing the valid
   * scopes when one is unknown, `auth.scope_required` when there is none, `auth.key_name_invalid`
   * for an empty or overlong name.
   */
  async createKey(ctx: Context, options: CreateKeyOptions): Promise<CreateKeyResult> {
    const name = options.name.trim();
    if (name.length === 0 || name.length > NAME_MAX_LENGTH) {
      throw new ValidationError(
        'auth.key_name_invalid',
        `an API key needs a name of 1 to ${NAME_MAX_LENGTH} characters that says who uses it (e.g. "billing-service")`,
        { name: options.name },
      );
    }
    const unknown = options.scopes.filter((s) => !isScope(s));
    if (unknown.length > 0) {
      throw new ValidationError(
        'auth.scope_unknown',
        `unknown scope${unknown.length > 1 ? 's' : ''} ${unknown.map((s) => `"${s}"`).join(', ')}; ` +
          `valid scopes are: ${SCOPES.join(', ')}`,
        { unknown, valid: [...SCOPES] },
      );
    }
    if (options.scopes.length === 0) {
      throw new ValidationError(
        'auth.scope_required',
        `an API key needs at least one scope; valid scopes are: ${SCOPES.join(', ')}`,
        { valid: [...SCOPES] },
      );
    }
    // Canonical order, no duplicates: what is stored reads the same however it was asked for.
    const scopes = SCOPES.filter((s) => options.scopes.includes(s));
    // 60 random bits: a collision is not a concern at any realistic number of keys, and the
    // primary key would refuse one rather than mix two keys up.
    const id = [...randomBytes(12)].map((b) => ID_ALPHABET[b & 31]).join('');
    const secret = randomBytes(32).toString('base64url');
    await this.#keys.insert({
      id,
      name,
      secretHash: digest(secret).toString('hex'),
      scopes,
      createdAt: ctx.clock.now(),
    });
    return { id, key: `pledge_${id}_${secret}`, name, scopes };
  }

  /**
   * The principal of a presented key. Throws an AuthenticationError `auth.key_invalid`, with the
   * same message whatever the reason, for anything that is not a live key; never throws anything
   * else for bad input.
   */
  async authenticate(rawKey: string): Promise<ApiKeyPrincipal> {
    const match = typeof rawKey === 'string' ? API_KEY_PATTERN.exec(rawKey) : null;
    const id = match?.[1];
    const secret = match?.[2];
    if (id === undefined || secret === undefined) throw invalidKey();

    const credential = await this.#getCredential(id);
    const stored = credential === undefined ? undefined : Buffer.from(credential.secretHash, 'hex');
    const expected = stored?.length === DUMMY_DIGEST.length ? stored : DUMMY_DIGEST;
    // Digests have equal lengths, so timingSafeEqual compares in constant time; it runs even for an
    // unknown id so that the time taken does not tell the two apart.
    const equal = timingSafeEqual(expected, digest(secret));
    if (
      credential === undefined ||
      expected === DUMMY_DIGEST ||
      !equal ||
      credential.revokedAt !== undefined
    ) {
      throw invalidKey();
    }
    await this.#touch(id);
    return { id, scopes: credential.scopes };
  }

  /** Throws a ForbiddenError `auth.scope_missing` unless `principal` holds `scope` (or 'admin'). */
  requireScope(principal: ApiKeyPrincipal, scope: Scope): void {
    requireScope(principal, scope);
  }

  /** Every key, revoked ones included; never a secret or its digest. */
  async listKeys(_ctx: Context): Promise<ApiKeySummary[]> {
    return this.#keys.list();
  }

  /**
   * Revokes key `id`; it fails authentication from then on in this process, and in other processes
   * (other instances, a server when the CLI revokes) once their cached credential expires, within
   * `credentialTtlMs`. Revoking a revoked key changes nothing. Throws NotFoundError `auth.key_not_found`.
   */
  async revokeKey(ctx: Context, id: string): Promise<ApiKeySummary> {
    if (ID_PATTERN.test(id)) {
      this.#credentials.delete(id);
      await this.#keys.revoke(id, ctx.clock.now());
      // A request that read the row before the revocation committed must not put it back.
      this.#credentials.delete(id);
      const key = await this.#keys.get(id);
      if (key !== undefined) return key;
    }
    throw new NotFoundError(
      'auth.key_not_found',
      `no API key has the id "${id}"; \`pledge keys list\` shows them`,
      {
        id,
      },
    );
  }

  /**
   * The stored credential of key `id`, from the cache while it is fresh. Unknown ids are not cached:
   * a key made a moment ago by another process works at once.
   */
  async #getCredential(id: string): Promise<ApiKeyCredential | undefined> {
    if (this.#ttlMs === 0) return this.#keys.getCredential(id);
    const now = this.#clock.now().getTime();
    const cached = this.#credentials.get(id);
    if (cached && cached.expiresAt > now) {
      this.#credentials.delete(id);
      this.#credentials.set(id, cached);
      return cached.credential;
    }
    const credential = await this.#keys.getCredential(id);
    this.#credentials.delete(id);
    if (credential === undefined) return undefined;
    this.#credentials.set(id, { credential, expiresAt: now + this.#ttlMs });
    if (this.#credentials.size > CREDENTIAL_CACHE_SIZE) {
      const oldest = this.#credentials.keys().next().value;
      if (oldest !== undefined) this.#credentials.delete(oldest);
    }
    return credential;
  }

  async #touch(id: string): Promise<void> {
    const now = this.#clock.now();
    const last = this.#touchedAt.get(id);
    if (last !== undefined && now.getTime() - last < TOUCH_INTERVAL_MS) return;
    // Claimed before the write so that concurrent requests with the same key write once.
    this.#touchedAt.set(id, now.getTime());
    try {
      await this.#keys.touch(id, now);
    } catch {
      // last_used_at is a hint for people tidying up keys; a failed write (a busy database) must not
      // turn away a valid key. The next request after the interval tries again.
    }
  }
}

/** Throws a ForbiddenError `auth.scope_missing` with details `{ required }` unless `principal` may act. */
export function requireScope(principal: ApiKeyPrincipal, scope: Scope): void {
  if (hasScope(principal.scopes, scope)) return;
  throw new ForbiddenError(
    'auth.scope_missing',
    `this API key lacks the "${scope}" scope; create a key with \`pledge keys create --scope ${scope}\``,
    { required: scope },
  );
}

/**
 * SHA-256 of the secret. A fast hash is right here, unlike for passwords: the secret is 256 random
 * bits, so there is nothing to guess from a digest, and a slow hash would only slow every request.
 */
function digest(secret: string): Buffer {
  // The one-shot form: no Hash object per request (every API request digests its key).
  return hash('sha256', secret, 'buffer');
}

function invalidKey(): AuthenticationError {
  return new AuthenticationError('auth.key_invalid', INVALID_KEY_MESSAGE);
}
