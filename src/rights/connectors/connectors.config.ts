/**
 * Connection URLs of the connected datasets, from the environment only: `PLEDGE_CONNECTOR_<KEY>_URL`
 * (the dataset key upper-cased, `-` as `_`). Never from pledge.yaml, which is committed and
 * published. Checked at boot like src/platform/config.ts: every problem is listed at once, and a
 * URL is only ever shown with its password redacted.
 */
import type { ConnectorEngine, Dataset } from '../../manifest/dataset.schema.js';
import { ConfigError } from '../../platform/errors.js';

/** One connected dataset's connection setting. */
export interface ConnectorSetting {
  dataset: string;
  engine: ConnectorEngine;
  /** The URL as given; pass it to the driver, never to a log (see {@link redactUrl}). */
  url: string;
  /** The environment variable it came from. */
  variable: string;
}

/** The environment variable holding the URL of dataset `key`. */
export function connectorUrlVariable(key: string): string {
  return `PLEDGE_CONNECTOR_${key.toUpperCase().replace(/-/g, '_')}_URL`;
}

const SCHEMES: Record<ConnectorEngine, readonly string[]> = {
  postgresql: ['postgres:', 'postgresql:'],
  mysql: ['mysql:', 'mariadb:'],
};

/** The engine a URL's scheme names, if a connector knows it. */
export function engineOfUrl(url: string): ConnectorEngine | undefined {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    return undefined;
  }
  return (Object.keys(SCHEMES) as ConnectorEngine[]).find((e) => SCHEMES[e].includes(protocol));
}

/** `url` with its password (and any `password=` query parameter) replaced by `***`, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    for (const k of [...u.searchParams.keys()])
      if (/pass|secret|token/i.test(k)) u.searchParams.set(k, '***');
    return u.href;
  } catch {
    return '(an unparsable URL)';
  }
}

/**
 * The settings of every dataset with `connected: true`; a missing or unusable URL adds a problem
 * naming the variable (never the value beyond its scheme).
 */
export function connectorSettingsOrProblems(
  datasets: readonly Dataset[],
  env: NodeJS.ProcessEnv,
  problems: string[],
): ConnectorSetting[] {
  const settings: ConnectorSetting[] = [];
  for (const d of datasets) {
    if (d.connected !== true) continue;
    const variable = connectorUrlVariable(d.key);
    const url = env[variable]?.trim() || undefined;
    if (d.engine === undefined) {
      problems.push(`dataset ${d.key} is connected but names no engine (engine: postgresql or mysql)`);
      continue;
    }
    if (url === undefined) {
      problems.push(
        `${variable} is not set: dataset ${d.key} is connected (connected: true), so Pledge needs its ${d.engine} URL; set it, or set connected: false`,
      );
      continue;
    }
    const engine = engineOfUrl(url);
    if (engine !== d.engine) {
      problems.push(
        `${variable} must be a ${d.engine} URL (${SCHEMES[d.engine].map((s) => `${s}//`).join(' or ')}…) for dataset ${d.key}, got ${engine === undefined ? 'something else' : `a ${engine} URL`}`,
      );
      continue;
    }
    settings.push({ dataset: d.key, engine, url, variable });
  }
  return settings;
}

/** The connector settings, or a {@link ConfigError} listing every problem (for boot). */
export function loadConnectorSettings(
  datasets: readonly Dataset[],
  env: NodeJS.ProcessEnv = process.env,
): ConnectorSetting[] {
  const problems: string[] = [];
  const settings = connectorSettingsOrProblems(datasets, env, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return settings;
}
