/**
 * Configuration, read once at boot from the environment and command-line overrides. Every problem
 * is listed at once and the process exits, rather than failing on the first request that needs a
 * missing setting.
 */
import { isIP } from 'node:net';
import path from 'node:path';
import { DEFAULT_DATABASE_TIMEOUTS, type DatabaseTimeouts } from './db/dialects/postgres-pool.js';
import { isMailboxAddress } from './email-address.js';
import { ConfigError } from './errors.js';

/**
 * `PLEDGE_PUBLIC_URL` as links are built on it (`${publicUrl}/preferences?t=…`, in mail headers and
 * bodies): an absolute http(s) URL with a host and nothing after its path, written back in the URL
 * parser's serialization (so no CR, LF or other control character, which the parser would drop
 * silently, can reach a List-Unsubscribe header) without trailing slashes. `undefined` when unset;
 * a problem is added and `undefined` returned when it is not such a URL.
 */
export function publicUrlOrProblem(raw: string | undefined, problems: string[]): string | undefined {
  const value = raw?.trim() || undefined;
  if (value === undefined) return undefined;
  const example = 'e.g. https://privacy.example.com';
  // Checked on the text itself: the URL parser removes tabs and line breaks instead of refusing them.
  if (
    [...value].some((c) => c.charCodeAt(0) <= 0x20 || (c.charCodeAt(0) >= 0x7f && c.charCodeAt(0) <= 0x9f))
  ) {
    problems.push(`PLEDGE_PUBLIC_URL holds a space or a control character (a line break?); ${example}`);
    return undefined;
  }
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    problems.push(`PLEDGE_PUBLIC_URL is not an absolute URL; ${example}`);
    return undefined;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    problems.push(`PLEDGE_PUBLIC_URL must start with https:// or http://, got "${u.protocol}//"; ${example}`);
    return undefined;
  }
  if (u.hostname === '' || u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') {
    problems.push(
      `PLEDGE_PUBLIC_URL must be a scheme, a host and an optional path, without a user, a query or a fragment; ${example}`,
    );
    return undefined;
  }
  return `${u.origin}${u.pathname}`.replace(/\/+$/, '');
}

/** The proxies whose X-Forwarded-For is believed: none, a hop count, or addresses and CIDR blocks. */
export type TrustProxy = false | number | string[];

/** The names proxy-addr (Fastify's trustProxy) gives to well-known ranges. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * `PLEDGE_TRUST_PROXY`: unset or `0` trusts no proxy (the connection's address is the client's); a
 * number from 1 to 20 trusts that many hops; otherwise a comma-separated list of IP addresses, CIDR
 * blocks (`10.0.0.0/8`, `fd00::/8`) or proxy-addr's names (`loopback`, `linklocal`, `uniquelocal`).
 * Never "every proxy": a client could then name any address it likes in X-Forwarded-For.
 */
export function trustProxyOrProblem(raw: string | undefined, problems: string[]): TrustProxy {
  const value = raw?.trim() ?? '';
  if (value === '' || value === '0') return false;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops <= 20) return hops;
    problems.push(`PLEDGE_TRUST_PROXY must be a hop count from 0 to 20 or a list of addresses, got ${value}`);
    return false;
  }
  const entries = value.split(',').map((e) => e.trim());
  const bad = entries.filter((e) => !isProxyEntry(e));
  if (bad.length > 0) {
    problems.push(
      `PLEDGE_TRUST_PROXY must be a hop count or a comma-separated list of IP addresses and CIDR blocks ` +
        `(e.g. 10.0.0.0/8,::1); not valid: ${bad.map((e) => JSON.stringify(e)).join(', ')}`,
    );
    return false;
  }
  return entries;
}

function isProxyEntry(entry: string): boolean {
  if (PROXY_RANGE_NAMES.has(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (version === 4 ? 32 : 128);
}

/** Pledge's settings. */
export interface Config {
  port: number;
  host: string;
  /** PostgreSQL connection URL; absent means the embedded SQLite database. */
  databaseUrl: string | undefined;
  /** PostgreSQL: how long a statement and a connection may take (PLEDGE_DB_STATEMENT_TIMEOUT, PLEDGE_DB_CONNECT_TIMEOUT, ms). */
  databaseTimeouts: DatabaseTimeouts;
  /** Where the SQLite database and the key files live. */
  dataDir: string;
  manifestPath: string;
  logLevel: string;
  /** Requests per minute per client address on /api. */
  rateLimitPerMinute: number;
  /**
   * Which proxies in front of Pledge are believed about the client's address (X-Forwarded-For), as
   * Fastify's `trustProxy`: none (false), a number of hops, or addresses and CIDR blocks.
   */
  trustProxy: TrustProxy;
  /** Largest accepted request body, in bytes. */
  bodyLimitBytes: number;
  /** The key file's JSON from PLEDGE_KEYS; absent means the key file in the data directory. */
  keys: string | undefined;
  /**
   * PLEDGE_KEYSTORE_URL: where the key store lives apart from the data, a PostgreSQL URL or a SQLite
   * file path (absolute once loaded; the key file then sits beside it). Absent: beside the data.
   */
  keystoreUrl: string | undefined;
  /** Seconds between retention sweeps inside `serve`; 0 turns the schedule off. */
  retentionIntervalSeconds: number;
  /** Seconds without progress after which a data-subject request is flagged stalled (PLEDGE_REQUEST_STALL_AFTER). */
  requestStallAfterSeconds: number;
  /**
   * Seconds before a data-subject request's deadline from which it is due soon: the `request.due`
   * webhook's window and the queue's default (PLEDGE_REQUEST_DUE_SOON, default 7 days).
   */
  requestDueSoonSeconds: number;
  /**
   * The address people reach this server at (links in e-mails, one-click URLs), without a trailing
   * slash. Defaults to http://localhost:PORT, which only suits development.
   */
  publicUrl: string;
  /** The SMTP server mail leaves through (smtp:// or smtps://); absent, Pledge sends no mail. */
  smtpUrl: string | undefined;
  /** The From address of mail Pledge sends; defaults to the manifest's privacy contact. */
  mailFrom: string | undefined;
  /**
   * The domain of Pledge's own mail addresses (List-Id, the mailto unsubscribe address, the bounce
   * address); defaults to the host of the manifest's organization website.
   */
  mailDomain: string | undefined;
  /** DKIM: the signing domain (default: mailDomain) and, per algorithm, a selector and a private key (PEM text or a file path). */
  dkim: {
    domain: string | undefined;
    rsaSelector: string;
    rsaKey: string | undefined;
    ed25519Selector: string;
    ed25519Key: string | undefined;
  };
  /** Marketing messages sent per second at most (throttle). */
  mailRatePerSecond: number;
  /** Port of the SMTP listener that receives bounces, complaints and mailto unsubscribes; 0 turns it off. */
  inboundSmtpPort: number;
  /** Address the inbound SMTP listener binds to. */
  inboundSmtpHost: string;
  /** Soft bounces of one address before it is suppressed. */
  softBounceLimit: number;
  /**
   * PLEDGE_SITE_ORIGINS: the origins of the company's sites that embed /pledge.js
   * (`https://www.example.com`); the banner's and beacons' POSTs accept CORS from these only.
   */
  siteOrigins: readonly string[];
  /**
   * PLEDGE_COUNTRY_HEADER: the request header a CDN puts the visitor's country in (`cf-ipcountry`),
   * lower-cased. Absent, every visitor's jurisdiction is unknown, and gets the strictest mode. Set it
   * only behind a CDN that overwrites the header: a visitor can send it too.
   */
  countryHeader: string | undefined;
  /** PLEDGE_LOG_ORIGIN: the transparency log's checkpoint origin and signer name; default `<public host>/log`. */
  logOrigin: string;
  /** PLEDGE_LOG_CHECKPOINT_FILE: where checkpoints are appended outside the database. */
  logCheckpointFile: string;
  /** PLEDGE_LOG_CHECKPOINT_WEBHOOK: a URL each checkpoint is POSTed to; absent, none. */
  logCheckpointWebhook: string | undefined;
  /** PLEDGE_LOG_PUBLIC_TILES: serve the log's tiles and entry bundles without a key. */
  logPublicTiles: boolean;
  /**
   * PLEDGE_LOG_RATE_LIMIT: requests per minute per client address to /log/checkpoint and
   * /log/tile/*, a budget of their own (static and cacheable; a full audit asks two per 256 entries).
   */
  logRateLimitPerMinute: number;
  /**
   * PLEDGE_LOG_WITNESSES: the witnesses asked to cosign each checkpoint (C2SP tlog-witness), each a
   * verifier key and a submission prefix; empty, none.
   */
  logWitnesses: LogWitnessSetting[];
}

/** A witness as PLEDGE_LOG_WITNESSES names it: `vkey=url`. */
export interface LogWitnessSetting {
  /** The key's name (the part of the verifier key before its first "+"). */
  name: string;
  /** The witness's note verifier key (`name+hexkeyid+base64key`, Ed25519 or cosignature/v1). */
  vkey: string;
  /** The submission prefix, without a trailing slash. */
  url: string;
}

/**
 * `PLEDGE_LOG_WITNESSES`: comma-separated `vkey=url` (a witness's verifier key, then its submission
 * prefix). The key's form is checked here (name, 8 hex digits, base64 of an Ed25519 (0x01) or
 * cosignature/v1 (0x04) key); each entry that is not one adds a problem.
 */
export function logWitnessesOrProblems(raw: string | undefined, problems: string[]): LogWitnessSetting[] {
  const out: LogWitnessSetting[] = [];
  const example = 'e.g. witness.example/w1+0123abcd+BASE64KEY=https://witness.example/w1';
  for (const item of (raw ?? '').split(',').map((s) => s.trim())) {
    if (item === '') continue;
    // A verifier key holds no "=http" (base64 of its 33 bytes needs no padding).
    const m = /^([^=\s]+?=*)=(https?:\/\/\S+)$/.exec(item);
    const [, vkey = '', rawUrl = ''] = m ?? [];
    const parts = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(vkey);
    const key = parts === null ? undefined : Buffer.from(parts[3] ?? '', 'base64');
    if (
      m === null ||
      parts === null ||
      key === undefined ||
      key.length !== 33 ||
      (key[0] !== 0x01 && key[0] !== 0x04)
    ) {
      problems.push(
        `PLEDGE_LOG_WITNESSES: "${item}" is not a witness's verifier key, "=" and its URL; ${example}`,
      );
      continue;
    }
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      problems.push(`PLEDGE_LOG_WITNESSES: "${rawUrl}" is not a URL; ${example}`);
      continue;
    }
    if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      problems.push(
        `PLEDGE_LOG_WITNESSES: "${rawUrl}" must be a submission prefix without a query or credentials; ${example}`,
      );
      continue;
    }
    out.push({ name: parts[1] ?? '', vkey, url: `${url.origin}${url.pathname}`.replace(/\/+$/, '') });
  }
  return out;
}

/** Values given on the command line; they win over the environment. */
export interface ConfigOverrides {
  port?: string | number;
  manifest?: string;
  dataDir?: string;
  host?: string;
}

/** The manifest used when none is named. */
export const DEFAULT_MANIFEST = 'examples/example-online/pledge.yaml';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads the configuration. Throws a {@link ConfigError} listing every problem when any setting is
 * wrong; never returns a half-valid config.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): Config {
  const problems: string[] = [];

  const int = (
    name: string,
    raw: string | number | undefined,
    fallback: number,
    min: number,
    max: number,
  ) => {
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}, got "${String(raw)}"`);
      return fallback;
    }
    return n;
  };

  const port = int(
    overrides.port !== undefined ? '--port' : 'PORT',
    overrides.port ?? env.PORT,
    8080,
    0,
    65535,
  );
  const rateLimitPerMinute = int('PLEDGE_RATE_LIMIT', env.PLEDGE_RATE_LIMIT, 600, 1, 1_000_000);
  const logRateLimitPerMinute = int('PLEDGE_LOG_RATE_LIMIT', env.PLEDGE_LOG_RATE_LIMIT, 6_000, 1, 1_000_000);
  const trustProxy = trustProxyOrProblem(env.PLEDGE_TRUST_PROXY, problems);
  const bodyLimitBytes = int('PLEDGE_BODY_LIMIT', env.PLEDGE_BODY_LIMIT, 1_048_576, 1024, 100 * 1_048_576);
  const retentionIntervalSeconds = int(
    'PLEDGE_RETENTION_INTERVAL',
    env.PLEDGE_RETENTION_INTERVAL,
    3600,
    0,
    7 * 86_400,
  );
  // At least a minute (the watch looks every tenth of it), at most 30 days (a request's deadline).
  const requestStallAfterSeconds = int(
    'PLEDGE_REQUEST_STALL_AFTER',
    env.PLEDGE_REQUEST_STALL_AFTER,
    86_400,
    60,
    30 * 86_400,
  );
  // At least an hour (the watch looks at most every few hours), at most 90 days (the longest
  // extended answer period of the example's rules).
  const requestDueSoonSeconds = int(
    'PLEDGE_REQUEST_DUE_SOON',
    env.PLEDGE_REQUEST_DUE_SOON,
    7 * 86_400,
    3600,
    90 * 86_400,
  );
  const keys = env.PLEDGE_KEYS?.trim() || undefined;
  // Milliseconds, as PostgreSQL counts its own timeouts. No 0 ("wait forever"): the bound is what
  // turns a silent database into a 503 instead of a request that hangs.
  const databaseTimeouts: DatabaseTimeouts = {
    statementTimeoutMs: int(
      'PLEDGE_DB_STATEMENT_TIMEOUT',
      env.PLEDGE_DB_STATEMENT_TIMEOUT,
      DEFAULT_DATABASE_TIMEOUTS.statementTimeoutMs,
      100,
      3_600_000,
    ),
    connectTimeoutMs: int(
      'PLEDGE_DB_CONNECT_TIMEOUT',
      env.PLEDGE_DB_CONNECT_TIMEOUT,
      DEFAULT_DATABASE_TIMEOUTS.connectTimeoutMs,
      100,
      600_000,
    ),
  };

  const url = (name: string, raw: string | undefined, protocols: readonly string[], example: string) => {
    const value = raw?.trim() || undefined;
    if (value === undefined) return undefined;
    try {
      const u = new URL(value);
      if (!protocols.includes(u.protocol)) {
        problems.push(
          `${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}, got "${u.protocol}//"; e.g. ${example}`,
        );
        return undefined;
      }
      return value;
    } catch {
      problems.push(`${name} is not a URL; write it as ${example}`);
      return undefined;
    }
  };
  const publicUrl = publicUrlOrProblem(env.PLEDGE_PUBLIC_URL, problems) ?? `http://localhost:${port}`;
  const smtpUrl = url(
    'PLEDGE_SMTP_URL',
    env.PLEDGE_SMTP_URL,
    ['smtp:', 'smtps:'],
    'smtp://mail.example.com:587',
  );
  const mailFrom = env.PLEDGE_MAIL_FROM?.trim() || undefined;
  const mailDomain = env.PLEDGE_MAIL_DOMAIN?.trim().toLowerCase() || undefined;
  const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
  if (mailDomain !== undefined && !DOMAIN.test(mailDomain)) {
    problems.push(`PLEDGE_MAIL_DOMAIN must be a domain name such as mail.example.com, got "${mailDomain}"`);
  }
  const dkimDomain = env.PLEDGE_DKIM_DOMAIN?.trim().toLowerCase() || undefined;
  if (dkimDomain !== undefined && !DOMAIN.test(dkimDomain)) {
    problems.push(`PLEDGE_DKIM_DOMAIN must be a domain name such as example.com, got "${dkimDomain}"`);
  }
  const SELECTOR = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  const selector = (name: string, raw: string | undefined, fallback: string) => {
    const value = raw?.trim() || fallback;
    if (!SELECTOR.test(value))
      problems.push(`${name} must be a DNS label such as "${fallback}", got "${value}"`);
    return value;
  };
  const dkim = {
    domain: dkimDomain,
    rsaSelector: selector('PLEDGE_DKIM_RSA_SELECTOR', env.PLEDGE_DKIM_RSA_SELECTOR, 'pledge-rsa'),
    rsaKey: env.PLEDGE_DKIM_RSA_KEY?.trim() || undefined,
    ed25519Selector: selector(
      'PLEDGE_DKIM_ED25519_SELECTOR',
      env.PLEDGE_DKIM_ED25519_SELECTOR,
      'pledge-ed25519',
    ),
    ed25519Key: env.PLEDGE_DKIM_ED25519_KEY?.trim() || undefined,
  };
  const mailRatePerSecond = int('PLEDGE_MAIL_RATE', env.PLEDGE_MAIL_RATE, 50, 1, 100_000);
  const inboundSmtpPort = int('PLEDGE_INBOUND_SMTP_PORT', env.PLEDGE_INBOUND_SMTP_PORT, 0, 0, 65535);
  const inboundSmtpHost = env.PLEDGE_INBOUND_SMTP_HOST?.trim() || '127.0.0.1';
  const softBounceLimit = int('PLEDGE_SOFT_BOUNCE_LIMIT', env.PLEDGE_SOFT_BOUNCE_LIMIT, 3, 1, 100);
  if (mailFrom !== undefined && !isMailboxAddress(mailFrom)) {
    problems.push(
      `PLEDGE_MAIL_FROM must be an e-mail address such as privacy@example.com, got ${JSON.stringify(mailFrom)}`,
    );
  }

  let databaseUrl = env.DATABASE_URL?.trim() || undefined;
  if (databaseUrl !== undefined) {
    try {
      const u = new URL(databaseUrl);
      if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
        problems.push(
          `DATABASE_URL must be a PostgreSQL URL (postgres://user@host:5432/db), got protocol "${u.protocol}"; unset it to use SQLite`,
        );
        databaseUrl = undefined;
      }
    } catch {
      problems.push('DATABASE_URL is not a URL; write it as postgres://user@host:5432/database');
      databaseUrl = undefined;
    }
  }

  let keystoreUrl = env.PLEDGE_KEYSTORE_URL?.trim() || undefined;
  if (keystoreUrl !== undefined) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(keystoreUrl)) {
      if (!/^postgres(ql)?:\/\/./i.test(keystoreUrl)) {
        problems.push(
          `PLEDGE_KEYSTORE_URL must be a PostgreSQL URL (postgres://user@host:5432/keys) or a SQLite file path (/secure/keys.db), got "${keystoreUrl.split(':')[0] ?? ''}:..."`,
        );
        keystoreUrl = undefined;
      }
    } else if (keystoreUrl.endsWith('/') || path.extname(keystoreUrl) === '') {
      problems.push(
        `PLEDGE_KEYSTORE_URL must name a SQLite file such as /secure/pledge/keys.db, got the folder-like "${keystoreUrl}"`,
      );
      keystoreUrl = undefined;
    } else {
      keystoreUrl = path.resolve(keystoreUrl);
    }
  }

  const logLevel = env.PLEDGE_LOG_LEVEL ?? env.LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`PLEDGE_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);

  const host = overrides.host ?? env.HOST ?? '0.0.0.0';
  const siteOrigins = siteOriginsOrProblem(env.PLEDGE_SITE_ORIGINS, problems);
  const countryHeader = env.PLEDGE_COUNTRY_HEADER?.trim().toLowerCase() || undefined;
  if (countryHeader !== undefined && !/^[a-z0-9-]{1,64}$/.test(countryHeader)) {
    problems.push(
      `PLEDGE_COUNTRY_HEADER must be a header name such as cf-ipcountry, got ${JSON.stringify(countryHeader)}`,
    );
  }
  const dataDir = path.resolve(overrides.dataDir ?? env.PLEDGE_DATA_DIR ?? './data');
  const log = logSettingsOrProblems(env, { publicUrl, dataDir }, problems, url);
  const logWitnesses = logWitnessesOrProblems(env.PLEDGE_LOG_WITNESSES, problems);
  const manifestPath = path.resolve(overrides.manifest ?? env.PLEDGE_MANIFEST ?? DEFAULT_MANIFEST);

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host,
    databaseUrl,
    databaseTimeouts,
    dataDir,
    manifestPath,
    logLevel,
    rateLimitPerMinute,
    logRateLimitPerMinute,
    trustProxy,
    bodyLimitBytes,
    keys,
    keystoreUrl,
    retentionIntervalSeconds,
    requestStallAfterSeconds,
    requestDueSoonSeconds,
    publicUrl,
    smtpUrl,
    mailFrom,
    mailDomain,
    dkim,
    mailRatePerSecond,
    inboundSmtpPort,
    inboundSmtpHost,
    softBounceLimit,
    siteOrigins,
    countryHeader,
    ...log,
    logWitnesses,
  };
}

/** The transparency log's settings (PLEDGE_LOG_*), each problem added to `problems`. */
function logSettingsOrProblems(
  env: NodeJS.ProcessEnv,
  at: { publicUrl: string; dataDir: string },
  problems: string[],
  url: (
    name: string,
    raw: string | undefined,
    protocols: readonly string[],
    example: string,
  ) => string | undefined,
): Pick<Config, 'logOrigin' | 'logCheckpointFile' | 'logCheckpointWebhook' | 'logPublicTiles'> {
  let fallbackOrigin = 'localhost/log';
  try {
    fallbackOrigin = `${new URL(at.publicUrl).host}/log`;
  } catch {
    // PLEDGE_PUBLIC_URL's own problem is listed already.
  }
  const origin = env.PLEDGE_LOG_ORIGIN?.trim() || fallbackOrigin;
  // A signed note's key name: no spaces, no plus sign (it separates a verifier key's parts).
  if (!/^[\x21-\x7e]{1,200}$/.test(origin) || origin.includes('+')) {
    problems.push(
      `PLEDGE_LOG_ORIGIN must be printable ASCII without spaces or "+", such as example.com/log, got ${JSON.stringify(origin)}`,
    );
  }
  const rawPublic = env.PLEDGE_LOG_PUBLIC_TILES?.trim().toLowerCase() ?? '';
  if (!['', 'true', 'false', '1', '0'].includes(rawPublic)) {
    problems.push(`PLEDGE_LOG_PUBLIC_TILES must be true or false, got ${JSON.stringify(rawPublic)}`);
  }
  return {
    logOrigin: origin,
    logCheckpointFile: path.resolve(
      env.PLEDGE_LOG_CHECKPOINT_FILE?.trim() || path.join(at.dataDir, 'log-checkpoints.jsonl'),
    ),
    logCheckpointWebhook: url(
      'PLEDGE_LOG_CHECKPOINT_WEBHOOK',
      env.PLEDGE_LOG_CHECKPOINT_WEBHOOK,
      ['https:', 'http:'],
      'https://witness.example.com/pledge-checkpoints',
    ),
    logPublicTiles: rawPublic === 'true' || rawPublic === '1',
  };
}

/**
 * `PLEDGE_SITE_ORIGINS`: comma-separated origins (scheme, host and optional port, nothing else),
 * kept in the form a browser's Origin header carries them.
 */
function siteOriginsOrProblem(value: string | undefined, problems: string[]): string[] {
  const origins: string[] = [];
  for (const raw of (value ?? '').split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    let u: URL | undefined;
    try {
      u = new URL(entry);
    } catch {
      u = undefined;
    }
    if (
      u === undefined ||
      !/^https?:$/.test(u.protocol) ||
      u.origin !== entry.replace(/\/$/, '').toLowerCase()
    ) {
      problems.push(
        `PLEDGE_SITE_ORIGINS must list origins such as https://www.example.com,https://shop.example.com (a scheme, a host and an optional port; no path), got "${entry}"`,
      );
      continue;
    }
    origins.push(u.origin);
  }
  return origins;
}
