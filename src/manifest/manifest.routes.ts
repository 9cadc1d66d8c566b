/**
 * The published policy (`/privacy`, no JavaScript needed) and the manifest API.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthHook } from '../platform/http/auth.js';
import { NotFoundError } from '../platform/errors.js';
import { apiContext } from '../platform/http/auth.js';
import type { ActiveManifest, ManifestVersions } from './manifest.service.js';
import { presentActiveManifest, presentVersion } from './manifest.presenter.js';
import { POLICY_CSS } from './manifest.renderer.js';
import {
  processorHistory,
  processorRows,
  renderProcessorsAtom,
  renderProcessorsHtml,
  type ProcessorHistory,
} from './processors.page.js';

/** What the manifest routes use. */
export interface ManifestRoutesDeps {
  active: ActiveManifest;
  versions: ManifestVersions;
  auth: AuthHook;
  /** Where Pledge is reached from outside, for the absolute links of /privacy/processors.atom. */
  publicUrl: string;
}

const versionSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    hash: { type: 'string', description: 'SHA-256 of the manifest file, hex' },
    policyVersion: { type: 'string' },
    effective: { type: 'string', format: 'date' },
    firstSeenAt: { type: 'string', format: 'date-time' },
    inForceFrom: { type: 'string', format: 'date-time' },
  },
  required: ['id', 'hash', 'policyVersion', 'effective', 'firstSeenAt', 'inForceFrom'],
} as const;

/** Registers `/privacy`, its stylesheet and `/api/v1/manifest`. */
export function registerManifestRoutes(app: FastifyInstance, deps: ManifestRoutesDeps): void {
  const { active } = deps;
  const etag = `"${active.version.hash.slice(0, 32)}"`;

  app.get('/privacy', { schema: { hide: true } }, async (request, reply) => {
    if (request.headers['if-none-match'] === etag) return reply.status(304).send();
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'public, max-age=300')
      .header('etag', etag)
      .header('content-language', 'en')
      .send(active.policy.html);
  });

  // The list of processors and its feed come from the stored versions (for "since when" and the
  // changes); read once per set of versions, which changes only when a manifest comes into force.
  let history: { key: string; value: ProcessorHistory } | undefined;
  const historyOf = async (request: FastifyRequest): Promise<ProcessorHistory> => {
    const ctx = apiContext(request);
    const list = await deps.versions.list(ctx);
    // A rollback moves its version's inForceFrom, so the key changes with every activation.
    const key = list.map((v) => `${v.id}@${v.inForceFrom.toISOString()}`).join(',');
    if (history?.key !== key) {
      const activations = await deps.versions.activations(ctx);
      history = { key, value: processorHistory(list, active.manifest.organization.website, activations) };
    }
    return history.value;
  };

  app.get('/privacy/processors', { schema: { hide: true } }, async (request, reply) => {
    const h = await historyOf(request);
    const pageTag = `"p${active.version.hash.slice(0, 16)}-${h.entries.length}-${h.updated.getTime()}"`;
    if (request.headers['if-none-match'] === pageTag) return reply.status(304).send();
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'public, max-age=300')
      .header('etag', pageTag)
      .header('content-language', 'en')
      .send(renderProcessorsHtml(active.manifest, processorRows(active.manifest, h.firstSeen)));
  });

  app.get('/privacy/processors.atom', { schema: { hide: true } }, async (request, reply) => {
    const h = await historyOf(request);
    const feedTag = `"a${active.version.hash.slice(0, 16)}-${h.entries.length}-${h.updated.getTime()}"`;
    if (request.headers['if-none-match'] === feedTag) return reply.status(304).send();
    return reply
      .header('content-type', 'application/atom+xml; charset=utf-8')
      .header('cache-control', 'public, max-age=300')
      .header('etag', feedTag)
      .send(renderProcessorsAtom(active.manifest, h, { publicUrl: deps.publicUrl }));
  });

  app.get('/privacy.md', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .header('content-type', 'text/markdown; charset=utf-8')
      .header('cache-control', 'public, max-age=300')
      .header('etag', etag)
      .send(active.policy.markdown),
  );

  app.get('/assets/policy.css', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .header('content-type', 'text/css; charset=utf-8')
      .header('cache-control', 'public, max-age=86400')
      .send(POLICY_CSS),
  );

  app.get(
    '/api/v1/manifest',
    {
      onRequest: deps.auth('manifest:read'),
      schema: {
        tags: ['manifest'],
        summary: 'The manifest in force, with its recorded version',
        security: [{ apiKey: [] }],
        response: {
          200: {
            type: 'object',
            properties: { version: versionSchema, manifest: { type: 'object', additionalProperties: true } },
            required: ['version', 'manifest'],
          },
        },
      },
    },
    () => presentActiveManifest(active.manifest, active.version),
  );

  app.get(
    '/api/v1/manifest/versions',
    {
      onRequest: deps.auth('manifest:read'),
      schema: {
        tags: ['manifest'],
        summary: 'Every manifest version that has been in force, newest first',
        security: [{ apiKey: [] }],
        response: {
          200: {
            type: 'object',
            properties: { versions: { type: 'array', items: versionSchema } },
            required: ['versions'],
          },
        },
      },
    },
    async (request) => ({ versions: (await deps.versions.list(apiContext(request))).map(presentVersion) }),
  );

  app.get<{ Params: { id: number } }>(
    '/api/v1/manifest/versions/:id',
    {
      onRequest: deps.auth('manifest:read'),
      schema: {
        tags: ['manifest'],
        summary: 'One manifest version, with the manifest file as it was',
        security: [{ apiKey: [] }],
        params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] },
        response: {
          200: {
            type: 'object',
            properties: { version: versionSchema, source: { type: 'string', description: 'the YAML file' } },
            required: ['version', 'source'],
          },
        },
      },
    },
    async (request) => {
      const v = await deps.versions.getById(apiContext(request), request.params.id);
      if (!v) {
        throw new NotFoundError(
          'manifest.version_not_found',
          `there is no manifest version ${request.params.id}`,
          {
            id: request.params.id,
          },
        );
      }
      return { version: presentVersion(v), source: v.source };
    },
  );
}
