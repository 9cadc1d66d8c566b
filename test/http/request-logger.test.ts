/**
 * A request's logger: lines carry the request id as before, and a request that logs nothing below
 * the server's level costs no pino child.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { loggerOptions } from '../../src/platform/log.js';
import { lazyChildLogger } from '../../src/platform/http/request-logger.js';

function parentLogger(level: string): {
  logger: FastifyBaseLogger;
  lines: () => string[];
  children: () => number;
} {
  let out = '';
  // Appends as pino writes, synchronously: what was logged is there at once.
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      out += chunk.toString('utf8');
      done();
    },
  });
  const logger = pino(loggerOptions(level), stream);
  let children = 0;
  const child = logger.child.bind(logger);
  logger.child = ((...args: Parameters<typeof child>) => {
    children++;
    return child(...args);
  }) as typeof logger.child;
  return { logger, lines: () => out.split('\n').filter(Boolean), children: () => children };
}

describe('request logger', () => {
  test('below the level nothing is written and no child is made', () => {
    const p = parentLogger('warn');
    const log = lazyChildLogger(p.logger, { reqId: 'r-1' }, {});
    log.info({ res: { statusCode: 200 } }, 'request completed');
    log.debug('details');
    assert.equal(p.children(), 0);
    assert.deepEqual(p.lines(), []);
    assert.equal(log.level, 'warn');
  });

  test('a line at the level carries the request id, as a pino child writes it', () => {
    const p = parentLogger('warn');
    const log = lazyChildLogger(p.logger, { reqId: 'r-2' }, {});
    log.error({ code: 'x' }, 'request failed');
    log.warn('again');
    assert.equal(p.children(), 1, 'one child, made once');
    const [first, second] = p.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(first?.reqId, 'r-2');
    assert.equal(first?.code, 'x');
    assert.equal(first?.msg, 'request failed');
    assert.equal(second?.reqId, 'r-2');
    // Personal data is still redacted in a request's lines.
    log.error({ email: 'alice@example.com' }, 'oops');
    assert.ok(!p.lines().join('\n').includes('alice'));
  });

  test("a route's own level makes the child at once, with that level", () => {
    const p = parentLogger('warn');
    const log = lazyChildLogger(p.logger, { reqId: 'r-3' }, { level: 'debug' });
    assert.equal(p.children(), 1);
    assert.equal(log.level, 'debug');
    const grandchild = lazyChildLogger(p.logger, { reqId: 'r-4' }, {}).child({ step: 1 });
    assert.equal(grandchild.level, 'warn');
  });
});
