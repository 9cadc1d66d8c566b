/**
 * The transparency log over HTTP, as C2SP tlog-tiles (https://c2sp.org/tlog-tiles) so standard tile
 * clients can read and audit it:
 * - `GET /log/checkpoint`: the latest signed checkpoint with witnesses' cosignatures; public, the one
 *   mutable file (no-cache);
 * - `GET /log/tile/<L>/<N>[.p/<W>]` and `GET /log/tile/entries/<N>[.p/<W>]`: hash tiles and entry
 *   bundles; full tiles never change (cached a year, immutable), partial ones briefly. They need a
 *   `log:read` key unless PLEDGE_LOG_PUBLIC_TILES=true (entries name no one, but an operator decides
 *   who may count them);
 * - `GET /api/v1/log/proofs/inclusion?index=I&size=N` and `.../consistency?from=M&to=N` (`log:read`):
 *   proofs as base64 hashes, with the leaf's entry and the stored checkpoint of exactly the size
 *   asked (`checkpointMatches: true`) or, when none was signed at that size, the latest
 *   (`checkpointMatches: false`, `checkpointSize` its size).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createContext } from '../platform/context.js';
import { NotFoundError, ValidationError } from '../platform/errors.js';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import type { TransparencyLog } from './log.service.js';
import { parseTilePath, TILE_WIDTH } from './tiles.js';

/** What the log's routes use. */
export interface LogRoutesDeps {
  log: TransparencyLog;
  auth: AuthHook;
  /** PLEDGE_LOG_PUBLIC_TILES: serve tiles without a key. */
  publicTiles: boolean;
  /**
   * PLEDGE_LOG_RATE_LIMIT: requests per minute per client to the checkpoint and tiles, together;
   * absent, they count against the server's limit.
   */
  rateLimitPerMinute?: number;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';
const PARTIAL = 'public, max-age=5';

/** A non-negative whole number from a query parameter, or a 400 naming it. */
function wholeNumber(value: string | undefined, name: string): number {
  if (value === undefined || !/^\d{1,15}$/.test(value)) {
    throw new ValidationError(
      'log.query_invalid',
      `${name} must be a whole number of at least 0, e.g. ?${name}=0 (got ${value === undefined ? 'nothing' : JSON.stringify(value)})`,
      { problems: [{ path: `/${name}`, message: 'must be a whole number' }] },
    );
  }
  return Number(value);
}

const proofResponse = {
  type: 'object',
  properties: {
    index: { type: 'integer' },
    size: { type: 'integer' },
    from: { type: 'integer' },
    to: { type: 'integer' },
    entry: { type: 'string' },
    proof: { type: 'array', items: { type: 'string' } },
    checkpoint: { type: 'string' },
    checkpointSize: { type: 'integer' },
    checkpointMatches: { type: 'boolean' },
  },
  required: ['proof', 'checkpointMatches'],
} as const;

/** Registers the log's routes. */
export function registerLogRoutes(app: FastifyInstance, deps: LogRoutesDeps): void {
  const { log, auth } = deps;
  const readerContext = (request: FastifyRequest) =>
    request.principal === undefined
      ? createContext({ kind: 'anonymous' }, { requestId: request.id })
      : apiContext(request);

  // The checkpoint and tiles are static and cacheable, and an audit asks two per 256 entries: a
  // budget of their own, so neither an audit nor the API's callers use up the other's.
  const config =
    deps.rateLimitPerMinute === undefined
      ? {}
      : { config: { rateLimit: { max: deps.rateLimitPerMinute, timeWindow: 60_000, budget: 'log-tiles' } } };

  app.get(
    '/log/checkpoint',
    {
      ...config,
      schema: {
        tags: ['log'],
        summary: "The transparency log's latest signed checkpoint (C2SP tlog-checkpoint), with cosignatures",
      },
    },
    async (request, reply) => {
      const text = await log.checkpointText(readerContext(request));
      if (text === undefined)
        throw new NotFoundError('log.no_checkpoint', 'the log has signed no checkpoint yet');
      return reply
        .header('content-type', 'text/plain; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(text);
    },
  );

  app.get<{ Params: { '*': string } }>(
    '/log/tile/*',
    {
      ...config,
      ...(deps.publicTiles ? {} : { onRequest: auth('log:read') }),
      schema: {
        tags: ['log'],
        summary: 'A hash tile or entry bundle of the transparency log (C2SP tlog-tiles)',
        ...(deps.publicTiles ? {} : { security: [{ apiKey: [] }] }),
      },
    },
    async (request, reply) => {
      const path = `tile/${request.params['*']}`;
      const parsed = parseTilePath(path);
      if (parsed === undefined) {
        throw new NotFoundError(
          'log.tile_path_invalid',
          `"/log/${path}" is not a tile path; tiles are /log/tile/<L>/<N>[.p/<W>] and /log/tile/entries/<N>[.p/<W>] (C2SP tlog-tiles)`,
        );
      }
      const ctx = readerContext(request);
      const body =
        parsed.kind === 'hashes'
          ? await log.tile(ctx, parsed.level, parsed.index, parsed.width)
          : await log.entryBundle(ctx, parsed.index, parsed.width);
      if (body === undefined)
        throw new NotFoundError('log.tile_not_found', `the log has no tile "/log/${path}" (yet)`);
      return reply
        .header('content-type', 'application/octet-stream')
        .header('cache-control', parsed.width === TILE_WIDTH ? IMMUTABLE : PARTIAL)
        .send(body);
    },
  );

  app.get<{ Querystring: Record<string, string | undefined> }>(
    '/api/v1/log/proofs/inclusion',
    {
      onRequest: auth('log:read'),
      schema: {
        tags: ['log'],
        summary:
          'The inclusion proof of a leaf in the tree of a size, with its entry and the checkpoint of that size (else the latest)',
        security: [{ apiKey: [] }],
        querystring: {
          type: 'object',
          properties: {
            index: { type: 'string', description: 'the leaf index, from 0' },
            size: { type: 'string', description: 'the tree size the proof is for (a checkpoint’s)' },
          },
        },
        response: { 200: proofResponse },
      },
    },
    async (request) => {
      const index = wholeNumber(request.query.index, 'index');
      const size = wholeNumber(request.query.size, 'size');
      const r = await log.inclusion(apiContext(request), index, size);
      return {
        index: r.index,
        size: r.size,
        entry: r.entry,
        proof: r.proof.map((h) => h.toString('base64')),
        ...(r.checkpoint !== undefined ? { checkpoint: r.checkpoint, checkpointSize: r.checkpointSize } : {}),
        checkpointMatches: r.checkpointMatches,
      };
    },
  );

  app.get<{ Querystring: Record<string, string | undefined> }>(
    '/api/v1/log/proofs/consistency',
    {
      onRequest: auth('log:read'),
      schema: {
        tags: ['log'],
        summary:
          'The consistency proof between two tree sizes, with the checkpoint of the newer size (else the latest)',
        security: [{ apiKey: [] }],
        querystring: {
          type: 'object',
          properties: {
            from: { type: 'string', description: 'the older tree size, from 1' },
            to: { type: 'string', description: 'the newer tree size' },
          },
        },
        response: { 200: proofResponse },
      },
    },
    async (request) => {
      const from = wholeNumber(request.query.from, 'from');
      const to = wholeNumber(request.query.to, 'to');
      const r = await log.consistency(apiContext(request), from, to);
      return {
        from: r.from,
        to: r.to,
        proof: r.proof.map((h) => h.toString('base64')),
        ...(r.checkpoint !== undefined ? { checkpoint: r.checkpoint, checkpointSize: r.checkpointSize } : {}),
        checkpointMatches: r.checkpointMatches,
      };
    },
  );
}
