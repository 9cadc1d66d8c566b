/**
 * A second origin for browser tests of /pledge.js: a loopback HTTP server that stands for a
 * third-party tag vendor and records every request it receives, so a test can count what reached
 * "the network" before and after consent. Chromium resolves every `*.localhost` name to the
 * loopback, so `http://tags.localhost:PORT` (and `cdn.tags.localhost`, `other.localhost` ...) all
 * reach this one server, each as a distinct host to declare or not; the Host header says which one
 * a request named.
 *
 * Also a tiny page server ({@link startPageServer}) for the test pages themselves, on 127.0.0.1:
 * another site than every `*.localhost` host, as a real site and its vendors are.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the second origin received. */
export interface Hit {
  /** 0, 1, 2 ... in arrival order. */
  seq: number;
  /** `performance.now()` of the test process when the request arrived. */
  at: number;
  method: string;
  /** The host the browser asked for, without the port (`tags.localhost`, `cdn.tags.localhost`). */
  host: string;
  /** The path and query (`/s/analytics.js?x=1`). */
  path: string;
  /** The path without query. */
  pathname: string;
  /** The request body as text (fetch, XHR and sendBeacon payloads). */
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** A running second origin. */
export interface ThirdParty {
  /** `http://tags.localhost:PORT`. */
  origin: string;
  /** `tags.localhost`. */
  host: string;
  port: number;
  /** Every request received, in arrival order (OPTIONS preflights included, marked by method). */
  hits: Hit[];
  /** `http://<host>:PORT<path>`; host defaults to {@link ThirdParty.host}. */
  url(path: string, host?: string): string;
  /** The hits whose pathname is `pathname` (for the default host, unless `host` is given). */
  hitsFor(pathname: string, host?: string): Hit[];
  /** Resolves once at least `count` hits match `filter` (every hit when absent), with those hits. */
  waitForHits(count: number, filter?: (hit: Hit) => boolean): Promise<Hit[]>;
  close(): Promise<void>;
}

/** 1x1 transparent GIF. */
const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

/** A name safe to embed in served JS and HTML. */
function nameOf(pathname: string): string {
  const last = pathname.split('/').pop() ?? '';
  return last.replace(/\.[a-z]+$/, '').replace(/[^A-Za-z0-9_-]/g, '_');
}

/**
 * What each path serves (every answer `Cache-Control: no-store`, CORS open to any origin, so a
 * request that is not held is visible every time and a cross-origin fetch can read its answer):
 * - `/s/<name>.js`: a script that runs `(window.__ran ||= []).push('<name>')`;
 * - `/i/<name>.gif` (or any `/i/...`): a 1x1 GIF;
 * - `/f/<name>.html`: an iframe page that tells its parent `{ frame: '<name>' }` by postMessage;
 * - `/c/<name>.css`: a stylesheet that sets `--<name>: 1` on `:root`;
 * - `/j/<name>` (any method): JSON `{ "name": "<name>", "method": ..., "body": ... }`;
 * - anything else: 404.
 * `?delay=<ms>` (at most 5000) holds the answer back that long (to keep a resource in flight).
 */
function answer(req: http.IncomingMessage, res: http.ServerResponse, url: URL, body: string): void {
  const name = nameOf(url.pathname);
  const headers: http.OutgoingHttpHeaders = {
    'cache-control': 'no-store',
    'access-control-allow-origin': '*',
    'access-control-allow-headers': '*',
    'access-control-allow-methods': 'GET, POST, PUT, OPTIONS',
    'cross-origin-resource-policy': 'cross-origin',
  };
  if (req.method === 'OPTIONS') {
    res.writeHead(204, headers).end();
    return;
  }
  const send = (status: number, type: string, content: string | Buffer): void => {
    res.writeHead(status, { ...headers, 'content-type': type }).end(content);
  };
  if (url.pathname.startsWith('/s/')) {
    send(200, 'text/javascript', `(window.__ran = window.__ran || []).push(${JSON.stringify(name)});`);
  } else if (url.pathname.startsWith('/i/')) {
    send(200, 'image/gif', GIF);
  } else if (url.pathname.startsWith('/f/')) {
    send(
      200,
      'text/html; charset=utf-8',
      `<!doctype html><title>${name}</title><script>parent.postMessage({ frame: ${JSON.stringify(name)} }, '*')</script>`,
    );
  } else if (url.pathname.startsWith('/c/')) {
    send(200, 'text/css', `:root { --${name}: 1; }`);
  } else if (url.pathname.startsWith('/j/')) {
    send(200, 'application/json', JSON.stringify({ name, method: req.method, body }));
  } else {
    send(404, 'text/plain', 'not found');
  }
}

/** Reads a request body (at most 1 MB; the rest is dropped). */
function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 1 << 20) chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Starts the second origin on a free loopback port. `host` (default `tags.localhost`) is the name
 * tests declare; any other `*.localhost` name reaches the same server and is recorded as such.
 */
export async function startThirdParty(options: { host?: string } = {}): Promise<ThirdParty> {
  const host = options.host ?? 'tags.localhost';
  const hits: Hit[] = [];
  const events = new EventEmitter();
  const server = http.createServer((req, res) => {
    const at = performance.now();
    const hostHeader = req.headers.host ?? '';
    const requested = hostHeader.replace(/:\d+$/, '');
    const url = new URL(req.url ?? '/', `http://${hostHeader || 'localhost'}`);
    void readBody(req).then(
      async (body) => {
        const hit: Hit = {
          seq: hits.length,
          at,
          method: req.method ?? 'GET',
          host: requested,
          path: url.pathname + url.search,
          pathname: url.pathname,
          body,
          headers: req.headers,
        };
        hits.push(hit);
        events.emit('hit', hit);
        const delay = Math.min(Number(url.searchParams.get('delay') ?? 0) || 0, 5000);
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        answer(req, res, url, body);
      },
      () => res.destroy(),
    );
  });
  // Chromium may try ::1 first for a *.localhost name; listen on both stacks when the machine has
  // IPv6, else on 127.0.0.1 alone.
  const port = await listen(server);
  const origin = `http://${host}:${port}`;
  return {
    origin,
    host,
    port,
    hits,
    url: (path, h = host) => `http://${h}:${port}${path}`,
    hitsFor: (pathname, h = host) => hits.filter((x) => x.pathname === pathname && x.host === h),
    waitForHits(count, filter = () => true) {
      return new Promise((resolve) => {
        const check = (): boolean => {
          const found = hits.filter(filter);
          if (found.length < count) return false;
          events.off('hit', onHit);
          resolve(found);
          return true;
        };
        const onHit = (): void => void check();
        events.on('hit', onHit);
        check();
      });
    },
    close: () => closeServer(server),
  };
}

async function listen(server: http.Server): Promise<number> {
  const tryListen = (hostname: string, ipv6Only?: boolean): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host: hostname, ipv6Only }, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  try {
    // '::' without ipv6Only accepts IPv4 too (dual stack).
    return await tryListen('::', false);
  } catch {
    return tryListen('127.0.0.1');
  }
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
}

/** A page the page server answers. */
export interface TestPage {
  body: string | Buffer;
  /** Default `text/html; charset=utf-8`. */
  type?: string;
  /** Extra response headers. */
  headers?: http.OutgoingHttpHeaders;
  /** Hold the answer back this many milliseconds (to model a slow script). */
  delayMs?: number;
}

/** A running page server. */
export interface PageServer {
  /** `http://127.0.0.1:PORT`. */
  origin: string;
  /** Serves `page` at `path` (replacing what was there); a string is HTML. */
  set(path: string, page: TestPage | string): void;
  /** The paths requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * A tiny HTTP server for test pages on 127.0.0.1 (a site of its own, apart from every
 * `*.localhost` host). Answers `no-store` unless a page's headers say otherwise; unknown paths 404.
 */
export async function startPageServer(pages: Record<string, TestPage | string> = {}): Promise<PageServer> {
  const table = new Map<string, TestPage>();
  const set = (p: string, page: TestPage | string): void => {
    table.set(p, typeof page === 'string' ? { body: page } : page);
  };
  for (const [p, page] of Object.entries(pages)) set(p, page);
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(req.url ?? '/');
    const page = table.get(pathname);
    if (page === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const send = (): void => {
      res
        .writeHead(200, {
          'content-type': page.type ?? 'text/html; charset=utf-8',
          'cache-control': 'no-store',
          ...page.headers,
        })
        .end(page.body);
    };
    if (page.delayMs) setTimeout(send, page.delayMs);
    else send();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, set, requests, close: () => closeServer(server) };
}
