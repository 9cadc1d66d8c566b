/**
 * API keys: `pledge_<id>_<secret>`. The id is public and finds the row; only a SHA-256 digest of
 * the secret is stored, and the full key is shown once, when it is created.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { systemClock, type Clock } from '../clock.js';
import { createContext, type Context } from '../context.js';
import { AuthenticationError, ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import type { ApiKeyCredential, ApiKeyRepository, ApiKeySummary } from './api-keys.repository.js';
import { hasScope, isDataScope, isScope, MANAGEMENT_SCOPES, SCOPES, type Scope } from './scopes.js';

/** Who a valid API key is: its id, what it may do and the system it acts for. */
export interface ApiKeyPrincipal {
  id: string;
  scopes: readonly Scope[];
  /** The manifest system it is bound to; undefined for an operator key (management only). */
  system: string | undefined;
}

/** What to create. */
export interface CreateKeyOptions {
  name: string;
  /** Scope names as given by a person or a client; each is checked. */
  scopes: readonly string[];
  /** The manifest system it acts for; without one it is an operator key (management scopes only). */
  system?: string | undefined;
  /** The person (or team) responsible for the key; what four-eyes rules compare. */
  holder?: string | undefined;
  /** When it stops working; must be in the future. */
  expiresAt?: Date | undefined;
}

/** A new key. `key` is the only copy of the secret: show it once, never store or log it. */
export interface CreateKeyResult {
  id: string;
  key: string;
  name: string;
  scopes: Scope[];
  system: string | undefined;
  holder: string | undefined;
  expiresAt: Date | undefined;
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
  /**
   * The systems the manifest in force declares, to check the `system` a key is made or bound for.
   * Without it any well-formed system key is taken (the gates still refuse one the manifest lacks).
   */
  systems?: () => readonly string[];
}

/** The shape of a key: `pledge_`, 12 base32 characters, `_`, 32 bytes in base64url (43 characters). */
export const API_KEY_PATTERN = /^pledge_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$/;

const ID_PATTERN = /^[a-z2-7]{12}$/;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const NAME_MAX_LENGTH = 100;
const SYSTEM_PATTERN = /^[a-z][a-z0-9_-]*$/;
/** `last_used_at` is written at most this often per key, so authenticating stays a read. */
const TOUCH_INTERVAL_MS = 60_000;
/** Credentials cached at most; past that the least recently used goes. */
const CREDENTIAL_CACHE_SIZE = 1_000;
/** Compared against when the id is unknown, so that path does the same work as a wrong secret. */
const DUMMY_DIGEST = Buffer.from(digest('pledge-api-key-dummy-secret'), 'hex');
/** A SHA-256 digest as stored: 64 lowercase hex digits. */
const HEX_DIGEST = /^[0-9a-f]{64}$/;

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
  /** When each key's `last_used_at` was last written by this process (ms since epoch). */
  readonly #touchedAt = new Map<string, number>();
  readonly #ttlMs: number;
  /** Milliseconds since the epoch: Date.now on the wall clock (no Date per request), else the clock's. */
  readonly #nowMs: () => number;
  /**
   * id -> what authentication read from the database, the digest decoded, and when it expires
   * (insertion order = oldest read first). Reading the row was a fifth of a collection request's
   * time; the digest is still compared on every request, so a cached entry never lets a wrong
   * secret through.
   */
  readonly #credentials = new Map<string, CachedCredential>();
  readonly #systems: (() => readonly string[]) | undefined;

  constructor(deps: ApiKeyServiceDeps) {
    this.#keys = deps.keys;
    this.#systems = deps.systems;
    this.#ttlMs = Math.max(0, deps.credentialTtlMs ?? 5_000);
    const clock = deps.clock ?? systemClock;
    this.#nowMs = clock === systemClock ? Date.now : () => clock.now().getTime();
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
    const system = options.system === undefined ? undefined : this.#checkSystem(options.system);
    if (system === undefined) {
      const data = scopes.filter((s) => isDataScope(s) && s !== 'admin');
      if (data.length > 0) {
        throw new ValidationError(
          'auth.system_required',
          `scope${data.length > 1 ? 's' : ''} ${data.join(', ')} act${data.length > 1 ? '' : 's'} on people's data, ` +
            'which only a key of a declared system may do: add --system SYSTEM (a key under systems: in the manifest)',
          { scopes: data, managementScopes: [...MANAGEMENT_SCOPES] },
        );
      }
    }
    const holder = options.holder?.trim();
    if (holder !== undefined && (holder.length === 0 || holder.length > NAME_MAX_LENGTH)) {
      throw new ValidationError(
        'auth.key_holder_invalid',
        `a key's holder is the person or team responsible for it, 1 to ${NAME_MAX_LENGTH} characters`,
        { holder: options.holder },
      );
    }
    const expiresAt = options.expiresAt;
    if (expiresAt !== undefined && !(expiresAt.getTime() > ctx.clock.now().getTime())) {
      throw new ValidationError(
        'auth.key_expiry_invalid',
        'a key must expire in the future: give a later date (e.g. --expires 2027-12-31) or none',
        { expiresAt: Number.isNaN(expiresAt.getTime()) ? null : expiresAt.toISOString() },
      );
    }
    // 60 random bits: a collision is not a concern at any realistic number of keys, and the
    // primary key would refuse one rather than mix two keys up.
    const id = [...randomBytes(12)].map((b) => ID_ALPHABET[b & 31]).join('');
    const secret = randomBytes(32).toString('base64url');
    await this.#keys.insert(ctx, {
      id,
      name,
      secretHash: digest(secret),
      scopes,
      createdAt: ctx.clock.now(),
      system,
      holder,
      expiresAt,
    });
    return { id, key: `pledge_${id}_${secret}`, name, scopes, system, holder, expiresAt };
  }

  /**
   * Binds key `id` (an operator key, or one made before keys had systems) to `system`, so that its
   * data scopes take effect for that system's purposes. Throws NotFoundError `auth.key_not_found`
   * for no live key `id`, ValidationError `auth.system_unknown` for a system the manifest lacks and
   * `auth.key_already_bound` for a key bound to another system (make a new key instead: a key's
   * purposes must not change under the code that holds it).
   */
  async bindKey(ctx: Context, id: string, systemKey: string): Promise<ApiKeySummary> {
    const system = this.#checkSystem(systemKey);
    const current = ID_PATTERN.test(id) ? await this.#keys.get(ctx, id) : undefined;
    if (current === undefined || current.revokedAt !== undefined) throw keyNotFound(id);
    if (current.system !== undefined && current.system !== system) {
      throw new ValidationError(
        'auth.key_already_bound',
        `API key ${id} acts for system "${current.system}"; create a new key with --system ${system} instead`,
        { id, system: current.system },
      );
    }
    await this.#keys.bind(ctx, id, system);
    this.#credentials.delete(id);
    const bound = await this.#keys.get(ctx, id);
    if (bound === undefined) throw keyNotFound(id);
    return bound;
  }

  #checkSystem(raw: string): string {
    const system = raw.trim();
    const known = this.#systems?.();
    if (!SYSTEM_PATTERN.test(system) || (known !== undefined && !known.includes(system))) {
      throw new ValidationError(
        'auth.system_unknown',
        known === undefined || known.length === 0
          ? `"${raw}" is not a system of the manifest; declare it under systems: first`
          : `"${raw}" is not a system of the manifest; its systems are: ${known.join(', ')}`,
        { system: raw, systems: known === undefined ? [] : [...known] },
      );
    }
    return system;
  }

  /**
   * The principal of a presented key. Throws an AuthenticationError `auth.key_invalid`, with the
   * same message whatever the reason, for anything that is not a live key; never throws anything
   * else for bad input.
   */
  async authenticate(rawKey: string): Promise<ApiKeyPrincipal> {
    const fast = this.authenticateCached(rawKey);
    if (fast !== undefined) return fast;
    const { id, secret } = parseKey(rawKey);
    const principal = check(await this.#readCredential(id), secret, this.#nowMs());
    await this.#touch(id);
    return principal;
  }

  /**
   * {@link authenticate} without waiting, for the common case: the key's credential is cached and
   * fresh and its `last_used_at` needs no write. Returns `undefined` when the database must be read
   * or written (then call `authenticate`); throws `auth.key_invalid` exactly as `authenticate` would
   * for a malformed, wrong or revoked key whose answer is already known.
   */
  authenticateCached(rawKey: string): ApiKeyPrincipal | undefined {
    const { id, secret } = parseKey(rawKey);
    if (this.#ttlMs === 0) return undefined;
    const cached = this.#credentials.get(id);
    const now = this.#nowMs();
    if (cached === undefined || cached.expiresAt <= now) return undefined;
    const touched = this.#touchedAt.get(id);
    if (touched === undefined || now - touched >= TOUCH_INTERVAL_MS) return undefined;
    return check(cached, secret, now);
  }

  /** Throws a ForbiddenError `auth.scope_missing` unless `principal` holds `scope` (or 'admin'). */
  requireScope(principal: ApiKeyPrincipal, scope: Scope): void {
    requireScope(principal, scope);
  }

  /** Every key, revoked ones included; never a secret or its digest. */
  async listKeys(ctx: Context): Promise<ApiKeySummary[]> {
    return this.#keys.list(ctx);
  }

  /**
   * Revokes key `id`; it fails authentication from then on in this process, and in other processes
   * (other instances, a server when the CLI revokes) once their cached credential expires, within
   * `credentialTtlMs`. Revoking a revoked key changes nothing. Throws NotFoundError `auth.key_not_found`.
   */
  async revokeKey(ctx: Context, id: string): Promise<ApiKeySummary> {
    if (ID_PATTERN.test(id)) {
      this.#credentials.delete(id);
      await this.#keys.revoke(ctx, id, ctx.clock.now());
      // A request that read the row before the revocation committed must not put it back.
      this.#credentials.delete(id);
      const key = await this.#keys.get(ctx, id);
      if (key !== undefined) return key;
    }
    throw keyNotFound(id);
  }

  /**
   * The stored credential of key `id` (digest checked), from the cache while it is fresh; undefined
   * for an unknown id. Unknown ids are not cached: a key made a moment ago by another process works
   * at once.
   */
  async #readCredential(id: string): Promise<CachedCredential | undefined> {
    const now = this.#nowMs();
    const cached = this.#credentials.get(id);
    if (cached !== undefined && cached.expiresAt > now) return cached;
    const credential = await this.#keys.getCredential(AUTHENTICATION, id);
    if (credential === undefined || this.#ttlMs === 0) {
      this.#credentials.delete(id);
      return credential && toCached(credential, now);
    }
    const fresh = toCached(credential, now + this.#ttlMs);
    // Deleted first so that the refreshed entry moves to the end: the oldest read goes first.
    this.#credentials.delete(id);
    this.#credentials.set(id, fresh);
    if (this.#credentials.size > CREDENTIAL_CACHE_SIZE) {
      const oldest = this.#credentials.keys().next().value;
      if (oldest !== undefined) this.#credentials.delete(oldest);
    }
    return fresh;
  }

  async #touch(id: string): Promise<void> {
    const now = this.#nowMs();
    const last = this.#touchedAt.get(id);
    if (last !== undefined && now - last < TOUCH_INTERVAL_MS) return;
    // Claimed before the write so that concurrent requests with the same key write once.
    this.#touchedAt.set(id, now);
    try {
      await this.#keys.touch(AUTHENTICATION, id, new Date(now));
    } catch {
      // last_used_at is a hint for people tidying up keys; a failed write (a busy database) must not
      // turn away a valid key. The next request after the interval tries again.
    }
  }
}

/**
 * The refusal of an operator key (bound to no system) where a person's data is concerned, with
 * how to get a key that may: the same words from the auth hook and from the gates.
 */
export function systemRequired(keyId: string, required?: Scope): ForbiddenError {
  return new ForbiddenError(
    'auth.system_required',
    'this is an operator key, bound to no system: it manages Pledge but reads, collects and decides nothing ' +
      `for a person. Use a key made with \`pledge keys create --system SYSTEM\`, or bind this one with \`pledge keys bind ${keyId} --system SYSTEM\``,
    { key: keyId, ...(required !== undefined ? { required } : {}) },
  );
}

function keyNotFound(id: string): NotFoundError {
  return new NotFoundError(
    'auth.key_not_found',
    `no API key has the id "${id}"; \`pledge keys list\` shows them`,
    {
      id,
    },
  );
}

/**
 * Throws a ForbiddenError `auth.scope_missing` with details `{ required }` unless `principal` may
 * act, and `auth.system_required` when the scope acts on people's data and the key is bound to no
 * system (an operator key, or one made before keys had systems: its data scopes are inert).
 */
export function requireScope(principal: ApiKeyPrincipal, scope: Scope): void {
  if (principal.system === undefined && isDataScope(scope)) throw systemRequired(principal.id, scope);
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
function digest(secret: string): string {
  // The one-shot form, as hex: no Hash object and no Buffer per request (every API request
  // digests its key).
  return hash('sha256', secret, 'hex');
}

/** The id and secret of a key of the form {@link API_KEY_PATTERN}; throws `auth.key_invalid` otherwise. */
function parseKey(rawKey: string): { id: string; secret: string } {
  if (typeof rawKey !== 'string' || !API_KEY_PATTERN.test(rawKey)) throw invalidKey();
  // pledge_ (7 characters), the id (12), _ (1), the secret.
  return { id: rawKey.slice(7, 19), secret: rawKey.slice(20) };
}

/** A credential as the cache keeps it: the digest checked once, the principal built once. */
interface CachedCredential {
  /** The stored digest, or undefined when the row's is malformed (then no secret matches). */
  digest: Buffer | undefined;
  revoked: boolean;
  /** When the key itself expires (ms since epoch), or Infinity. */
  keyExpiresAt: number;
  principal: ApiKeyPrincipal;
  expiresAt: number;
}

function toCached(credential: ApiKeyCredential, expiresAt: number): CachedCredential {
  const stored = credential.secretHash.toLowerCase();
  return {
    digest: HEX_DIGEST.test(stored) ? Buffer.from(stored, 'hex') : undefined,
    revoked: credential.revokedAt !== undefined,
    keyExpiresAt: credential.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY,
    principal: Object.freeze({
      id: credential.id,
      scopes: Object.freeze([...credential.scopes]),
      system: credential.system,
    }),
    expiresAt,
  };
}

/**
 * The principal when `secret` matches the credential; throws `auth.key_invalid` otherwise. The
 * comparison takes the same time whatever the digests hold, and runs even for an unknown id
 * (against a dummy digest) so that the time taken does not tell the two apart.
 */
function check(cached: CachedCredential | undefined, secret: string, nowMs: number): ApiKeyPrincipal {
  const equal = timingSafeEqual(cached?.digest ?? DUMMY_DIGEST, hash('sha256', secret, 'buffer'));
  if (cached === undefined || cached.digest === undefined || !equal || cached.revoked) throw invalidKey();
  if (cached.keyExpiresAt <= nowMs) throw invalidKey();
  return cached.principal;
}

/** The context of the key store's reads and writes made while authenticating (no request's yet). */
const AUTHENTICATION = createContext({ kind: 'job', id: 'authentication' });

function invalidKey(): AuthenticationError {
  return new AuthenticationError('auth.key_invalid', INVALID_KEY_MESSAGE);
}
