/**
 * The share gate over HTTP: `POST /api/v1/disclosures` (one disclosure, up to 100 subjects) and
 * `POST /api/v1/disclosures/exports` (a bulk export for a processor, streamed as NDJSON: one line
 * per subject sent, then a line with the export's record). Both need a key of a system that serves
 * the purpose, with the `share:write` scope.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import { presentDisclosure, presentExport, presentExportLine } from './share.presenter.js';
import {
  EXPORT_PAGE_SIZE,
  MAX_DISCLOSE_FIELDS,
  MAX_DISCLOSE_SUBJECTS,
  type ShareService,
} from './share.service.js';

/** What the share routes use. */
export interface ShareRoutesDeps {
  share: ShareService;
  auth: AuthHook;
}

interface DiscloseBody {
  recipient: string;
  purpose: string;
  subjects: string[];
  fields: string[];
  legalRequest?: string;
}

interface ExportBody {
  recipient: string;
  purpose: string;
  fields?: string[];
  pageSize?: number;
}

const key = { type: 'string', minLength: 1, maxLength: 200 } as const;

/** Registers the disclosure routes. */
export function registerShareRoutes(app: FastifyInstance, deps: ShareRoutesDeps): void {
  const { share, auth } = deps;

  app.post<{ Body: DiscloseBody }>(
    '/api/v1/disclosures',
    {
      onRequest: auth('share:write'),
      schema: {
        tags: ['disclosures'],
        summary:
          'The share gate: disclose fields of subjects to a declared recipient for a purpose (recorded per subject)',
        security: [{ apiKey: [] }],
        body: {
          type: 'object',
          properties: {
            recipient: key,
            purpose: key,
            subjects: {
              type: 'array',
              minItems: 1,
              maxItems: MAX_DISCLOSE_SUBJECTS,
              items: { type: 'string', format: 'uuid' },
            },
            fields: {
              type: 'array',
              minItems: 1,
              maxItems: MAX_DISCLOSE_FIELDS,
              items: { type: 'string', minLength: 1, maxLength: 100 },
            },
            legalRequest: key,
          },
          required: ['recipient', 'purpose', 'subjects', 'fields'],
          additionalProperties: false,
        },
      },
    },
    async (request) => presentDisclosure(await share.disclose(apiContext(request), request.body)),
  );

  app.post<{ Body: ExportBody }>(
    '/api/v1/disclosures/exports',
    {
      onRequest: auth('share:write'),
      schema: {
        tags: ['disclosures'],
        summary:
          'A bulk export for a recipient through the share gate, as NDJSON (a line per subject, then the record)',
        security: [{ apiKey: [] }],
        body: {
          type: 'object',
          properties: {
            recipient: key,
            purpose: key,
            fields: {
              type: 'array',
              maxItems: MAX_DISCLOSE_FIELDS,
              items: { type: 'string', minLength: 1, maxLength: 100 },
            },
            pageSize: { type: 'integer', minimum: 1, maximum: EXPORT_PAGE_SIZE },
          },
          required: ['recipient', 'purpose'],
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const lines = share.exportFor(apiContext(request), request.body);
      // The first line is pulled before answering: a refused flow is an error answer, not a broken stream.
      const first = await lines.next();
      async function* ndjson(): AsyncGenerator<string> {
        if (!first.done) yield `${JSON.stringify(presentExportLine(first.value))}\n`;
        for await (const line of lines) yield `${JSON.stringify(presentExportLine(line))}\n`;
      }
      return reply.type('application/x-ndjson').send(Readable.from(ndjson()));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/disclosures/exports/:id',
    {
      onRequest: auth('share:write'),
      schema: {
        tags: ['disclosures'],
        summary: "An export's record: recipient, purpose, categories, how many subjects were sent",
        security: [{ apiKey: [] }],
        params: { type: 'object', properties: { id: { type: 'string', format: 'uuid' } }, required: ['id'] },
      },
    },
    async (request) => ({
      export: presentExport(await share.getExportOrThrow(apiContext(request), request.params.id)),
    }),
  );
}
