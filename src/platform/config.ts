/**
 * Configuration, read once at boot from the environment and command-line overrides. Every problem
 * is listed at once and the process exits, rather than failing on the first request that needs a
 * missing setting.
 */
import path from 'node:path';
import { ConfigError } from './errors.js';

/** Pledge's settings. */
export interface Config {
  port: number;
  host: string;
  /** PostgreSQL connection URL; absent means the embedded SQLite database. */
  databaseUrl: string | undefined;
  /** Where the SQLite database and the key files live. */
  dataDir: string;
  manifestPath: string;
  logLevel: string;
  /** Requests per minute per client address on /api. */
  rateLimitPerMinute: number;
  /** Largest accepted request body, in bytes. */
  bodyLimitBytes: number;
  /** The key file's JSON from PLEDGE_KEYS; absent means the key file in the data directory. */
  keys: string | undefined;
  /** Seconds between retention sweeps inside `serve`; 0 turns the schedule off. */
  retentionIntervalSeconds: number;
  /**
   * The address people reach this server at (links in e-mails, one-click URLs), without a trailing
   * slash. Defaults to http://localhost:PORT, which only suits development.
   */
  publicUrl: string;
  /** The SMTP server mail leaves through (smtp:// or smtps://); absent, Pledge sends no mail. */
  smtpUrl: string | undefined;
  /** The From address of mail Pledge sends; defaults to the manifest's privacy contact. */
  mailFrom: string | undefined;
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
  const bodyLimitBytes = int('PLEDGE_BODY_LIMIT', env.PLEDGE_BODY_LIMIT, 1_048_576, 1024, 100 * 1_048_576);
  const retentionIntervalSeconds = int(
    'PLEDGE_RETENTION_INTERVAL',
    env.PLEDGE_RETENTION_INTERVAL,
    3600,
    0,
    7 * 86_400,
  );
  const keys = env.PLEDGE_KEYS?.trim() || undefined;

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
  const publicUrl = (
    url('PLEDGE_PUBLIC_URL', env.PLEDGE_PUBLIC_URL, ['https:', 'http:'], 'https://privacy.example.com') ??
    `http://localhost:${port}`
  ).replace(/\/+$/, '');
  const smtpUrl = url(
    'PLEDGE_SMTP_URL',
    env.PLEDGE_SMTP_URL,
    ['smtp:', 'smtps:'],
    'smtp://mail.example.com:587',
  );
  const mailFrom = env.PLEDGE_MAIL_FROM?.trim() || undefined;
  if (mailFrom !== undefined && !/^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/.test(mailFrom)) {
    problems.push(
      `PLEDGE_MAIL_FROM must be an e-mail address such as privacy@example.com, got "${mailFrom}"`,
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

  const logLevel = env.PLEDGE_LOG_LEVEL ?? env.LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`PLEDGE_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);

  const host = overrides.host ?? env.HOST ?? '0.0.0.0';
  const dataDir = path.resolve(overrides.dataDir ?? env.PLEDGE_DATA_DIR ?? './data');
  const manifestPath = path.resolve(overrides.manifest ?? env.PLEDGE_MANIFEST ?? DEFAULT_MANIFEST);

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host,
    databaseUrl,
    dataDir,
    manifestPath,
    logLevel,
    rateLimitPerMinute,
    bodyLimitBytes,
    keys,
    retentionIntervalSeconds,
    publicUrl,
    smtpUrl,
    mailFrom,
  };
}
