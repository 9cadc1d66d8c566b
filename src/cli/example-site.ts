/**
 * The test site of examples/site/ (`pledge serve --example-site`): a company's pages that embed
 * /pledge.js, with a tagged script, a tag loader nobody tagged, iframes, an image and a Google
 * Consent Mode consumer, to see in a browser what the banner holds and releases.
 *
 * The pages name their origins by placeholder, so that the browser tests can serve the same files
 * from a second origin: `PLEDGE/` (Pledge), `TAGS/` (a tag vendor the test manifest declares) and
 * `VIDEO/` (a video host, loaded only through a tagged iframe). Served by Pledge itself, the vendor
 * stand-ins answer on the same server under `tags.localhost` and `video.localhost`, names every
 * browser resolves to the loopback: distinct hosts, as a real vendor's would be.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** examples/site/, from src/cli/ and from the bundled dist/cli-bundle/ alike. */
export const EXAMPLE_SITE_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../examples/site',
);

/** The pages of the example site. */
export const EXAMPLE_SITE_PAGES = ['index.html', 'pricing.html'] as const;

/** Where the placeholders of a page point. */
export interface ExampleSiteOrigins {
  /** Pledge's origin, where /pledge.js is (`http://127.0.0.1:8080`). */
  pledge: string;
  /** The declared tag vendor (`http://tags.localhost:8080`), with the path its files are under. */
  tags: string;
  /** The video host of the tagged iframe. */
  video: string;
}

/** A page of examples/site/ with its placeholders replaced. */
export function renderExampleSitePage(
  page: (typeof EXAMPLE_SITE_PAGES)[number],
  origins: ExampleSiteOrigins,
): string {
  const html = readFileSync(path.join(EXAMPLE_SITE_DIR, page), 'utf8');
  const to: Record<string, string> = { PLEDGE: origins.pledge, TAGS: origins.tags, VIDEO: origins.video };
  return html.replace(/\b(PLEDGE|TAGS|VIDEO)\//g, (_m, name: string) => `${to[name]}/`);
}

/** 1x1 transparent GIF. */
const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

/**
 * The example site's pages are a company's pages, not Pledge's: they run inline scripts and load
 * other hosts, which the Content-Security-Policy of Pledge's own pages forbids, and the vendor
 * stand-ins are embedded by another origin.
 */
function asSitePage(reply: FastifyReply): FastifyReply {
  reply.removeHeader('content-security-policy');
  reply.removeHeader('x-frame-options');
  return reply.header('cross-origin-resource-policy', 'cross-origin').header('cache-control', 'no-store');
}

/**
 * Serves examples/site/ under `/example-site/` with `/pledge.js` at `pledgeOrigin`, and the vendor
 * stand-ins under `/example-site/vendor/` (`s/NAME.js` records that it ran, `i/NAME.gif`,
 * `f/NAME.html` tells its parent, `j/NAME` answers JSON), as test/helpers/third-party.ts does.
 */
export async function registerExampleSite(
  http: FastifyInstance,
  options: { pledgeOrigin: string },
): Promise<void> {
  await http.register((scope, _opts, done) => {
    // The vendor's collection call posts text/plain; the stand-in reads nothing of it.
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, _body, done) => done(null, undefined));
    const vendorOf = (host: string, port: number) => `http://${host}:${port}/example-site/vendor`;
    const page = (request: FastifyRequest, reply: FastifyReply, name: string) => {
      const file = EXAMPLE_SITE_PAGES.find((p) => p === name);
      if (file === undefined) return reply.code(404).type('text/plain').send('not found');
      const port = request.port ?? 80;
      const html = renderExampleSitePage(file, {
        pledge: options.pledgeOrigin,
        tags: vendorOf('tags.localhost', port),
        video: vendorOf('video.localhost', port),
      });
      return asSitePage(reply).type('text/html; charset=utf-8').send(html);
    };
    // One route for both spellings (the router ignores a trailing slash); the pages' relative
    // links need the slash.
    scope.get('/example-site/', { schema: { hide: true } }, (request, reply) =>
      request.url.startsWith('/example-site/')
        ? page(request, reply, 'index.html')
        : reply.redirect('/example-site/'),
    );
    scope.get<{ Params: { page: string } }>(
      '/example-site/:page',
      { schema: { hide: true } },
      (request, reply) => page(request, reply, request.params.page),
    );
    scope.route<{ Params: { kind: string; name: string } }>({
      method: ['GET', 'POST'],
      url: '/example-site/vendor/:kind/:name',
      schema: { hide: true },
      handler: (request, reply) => {
        const name = request.params.name.replace(/\.[a-z]+$/, '').replace(/[^A-Za-z0-9_-]/g, '_');
        asSitePage(reply).header('access-control-allow-origin', '*');
        switch (request.params.kind) {
          case 's':
            return reply
              .type('text/javascript')
              .send(`(window.__ran = window.__ran || []).push(${JSON.stringify(name)});`);
          case 'i':
            return reply.type('image/gif').send(GIF);
          case 'f':
            return reply
              .type('text/html; charset=utf-8')
              .send(
                `<!doctype html><html lang="en"><title>${name}</title><p>${name}, loaded</p><script>parent.postMessage({ frame: ${JSON.stringify(name)} }, '*')</script></html>`,
              );
          case 'j':
            return reply.send({ name, method: request.method });
          default:
            return reply.code(404).type('text/plain').send('not found');
        }
      },
    });
    done();
  });
}
