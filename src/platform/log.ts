/**
 * Logging. Pledge logs what happened, never to whom: request logs carry the method, the route
 * pattern and the status, not the URL's query string, headers or bodies, and every field name that
 * could hold personal data is redacted as a second line of defence.
 */
import type { LoggerOptions } from 'pino';

/** Field names whose values are replaced with "[redacted]" wherever they appear (two levels deep). */
export const REDACTED_FIELDS = [
  'email',
  'identifier',
  'ip',
  'name',
  'phone',
  'address',
  'password',
  'token',
  'authorization',
  'cookie',
  'card_number',
  'value',
  'values',
  'body',
];

/** The pino options every Pledge logger uses (shared with Fastify). */
export function loggerOptions(level = 'info'): LoggerOptions {
  return {
    level,
    redact: {
      paths: [...REDACTED_FIELDS, ...REDACTED_FIELDS.map((f) => `*.${f}`)],
      censor: '[redacted]',
    },
    base: undefined,
  };
}
