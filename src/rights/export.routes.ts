/**
 * The public routes of an export's link: `GET /requests/export/:token` shows a page and changes
 * nothing (a mail scanner's GET spends no download); `POST` of the same URL, the page's button,
 * takes one download and sends the zip. A forged, altered or expired link is refused in the one
 * error shape (`rights.export_link_invalid` 403, `rights.export_link_expired` 410,
 * `rights.export_downloads_exhausted` 410). The token is in the path (a wildcard: it is longer than
 * the 100 characters Fastify allows a parameter), so no referrer may carry it off the page.
 */
import { Readable } from 'node:stream';
import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import { siteOf } from '../consent/pages.views.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import { createContext } from '../platform/context.js';
import { sendPage } from '../platform/http/pages.js';
import { EXPORT_PATH, type ExportDeliveries } from './export.delivery.js';
import { exportDownloadPage } from './export.pages.js';

/** What the export routes use. */
export interface ExportRoutesDeps {
  deliveries: Pick<ExportDeliveries, 'view' | 'download'>;
  manifest: { readonly manifest: Manifest };
}

const params = {
  type: 'object',
  properties: { '*': { type: 'string', maxLength: 200 } },
  required: ['*'],
} as const;

type TokenParams = { Params: { '*': string } };

/** Registers `GET` and `POST /requests/export/:token`. */
export async function registerExportRoutes(http: FastifyInstance, deps: ExportRoutesDeps): Promise<void> {
  await http.register(async (scope) => {
    // The page's form posts an empty urlencoded body; nothing in it is read.
    await scope.register(formbody, { bodyLimit: 1024 });
    scope.addHook('onSend', async (_request, reply) => {
      reply.header('referrer-policy', 'no-referrer');
    });

    scope.get<TokenParams>(`${EXPORT_PATH}/*`, { schema: { hide: true, params } }, async (request, reply) => {
      const ctx = createContext({ kind: 'anonymous' }, { requestId: request.id });
      const token = request.params['*'];
      const view = await deps.deliveries.view(ctx, token);
      return sendPage(
        reply,
        200,
        exportDownloadPage(siteOf(deps.manifest.manifest), view, `${EXPORT_PATH}/${encodeURI(token)}`),
      );
    });

    scope.post<TokenParams>(
      `${EXPORT_PATH}/*`,
      { schema: { hide: true, params } },
      async (request, reply) => {
        const ctx = createContext({ kind: 'anonymous' }, { requestId: request.id });
        const { size, body } = await deps.deliveries.download(ctx, request.params['*']);
        return reply
          .status(200)
          .header('content-type', 'application/zip')
          .header('content-disposition', 'attachment; filename="personal-data.zip"')
          .header('content-length', String(size))
          .header('cache-control', 'no-store')
          .send(Readable.from(body));
      },
    );
  });
}
