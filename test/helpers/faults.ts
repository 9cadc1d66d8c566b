/**
 * Odds and ends for database fault tests against real `pledge serve` processes: timed requests,
 * waiting for a condition with a deadline, registering people, the error a client sees. No side
 * effects at import.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { randomLetters } from './vault.js';

/** An HTTP answer and how long it took. */
export interface TimedAnswer {
  status: number;
  body: unknown;
  /** The Retry-After header, if any. */
  retryAfter: string | null;
  ms: number;
  /** When the request was sent (performance.now() of this process). */
  sentAt: number;
}

/** Sends a request and times it; `body` is JSON. Never rejects for an HTTP status. */
export async function timedRequest(
  base: string,
  method: 'GET' | 'POST',
  url: string,
  key: string | undefined,
  body?: unknown,
): Promise<TimedAnswer> {
  const sentAt = performance.now();
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text === '' ? undefined : (JSON.parse(text) as unknown),
    retryAfter: res.headers.get('retry-after'),
    ms: performance.now() - sentAt,
    sentAt,
  };
}

/** The code of an error body, or undefined. */
export function errorCode(body: unknown): string | undefined {
  return (body as { error?: { code?: string } } | undefined)?.error?.code;
}

/** Asserts the answer is the one error a client gets from an unavailable database. */
export function assertUnavailable(answer: TimedAnswer, what: string): void {
  assert.equal(answer.status, 503, `${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
  assert.equal(errorCode(answer.body), 'database.unavailable', `${what}: ${JSON.stringify(answer.body)}`);
  const message = (answer.body as { error: { message?: unknown } }).error.message;
  assert.equal(typeof message, 'string', `${what}: the error has a message`);
  assert.match(answer.retryAfter ?? '', /^\d+$/, `${what}: Retry-After in seconds`);
}

/**
 * Calls `probe` until it returns something other than undefined and returns that; fails with
 * `what` after `timeoutMs`. The pause between probes only paces the polling.
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await delay(25);
  }
}

/** A registration body for a new person (US, so marketing e-mail is opt-out by default). */
export function registrationBody(): Record<string, unknown> {
  return {
    jurisdiction: 'US',
    data: {
      email: `faults-${randomLetters(12)}@example.test`,
      first_name: 'Ada',
      last_name: 'Lovelace',
      password: 'correct horse battery staple',
    },
  };
}

/** Registers a person through `base` and returns their subject id. */
export async function registerSubject(base: string, key: string): Promise<string> {
  const res = await timedRequest(base, 'POST', '/api/v1/collect/registration', key, registrationBody());
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return (res.body as { subject: { id: string } }).subject.id;
}
