/**
 * An application for the Pledge side of data-subject requests on either engine: the example manifest
 * with the test system (every purpose and source) and a real HTTP receiver as the webhook of the
 * affiliate `group-companies`, so a recipient's `subject.erased` event is seen arriving.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext, type Context } from '../../src/platform/context.js';
import type { TestDatabase, TestDialect } from '../helpers/databases.js';
import { exampleWithTestSystem, TEST_SYSTEM } from '../helpers/manifests.js';
import { captureLogs } from '../helpers/logs.js';
import { openTestStores, randomEmail } from '../helpers/vault.js';

/** What the receiver was sent. */
export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A running app and what a test inspects. */
export interface RightsTestApp {
  app: App;
  database: TestDatabase;
  /** The test system's context. */
  ctx: Context;
  received: Received[];
  register(firstName?: string): Promise<{ id: string; email: string }>;
  cleanup(): Promise<void>;
}

/** The affiliate whose webhook is the test receiver. */
export const NOTIFIED_RECIPIENT = 'group-companies';

/** Opens the app on `dialect`. */
export async function openRightsApp(
  dialect: TestDialect,
  options: { holdRecheckMs?: number } = {},
): Promise<RightsTestApp> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/pledge`;
  const doc = parseDocument(readFileSync(exampleWithTestSystem(), 'utf8'));
  const list = (doc.toJS() as { recipients: Array<{ key: string }> }).recipients;
  doc.setIn(['recipients', list.findIndex((r) => r.key === NOTIFIED_RECIPIENT), 'webhook'], url);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-rights-manifest-'));
  const manifestPath = path.join(dir, 'pledge.yaml');
  await writeFile(manifestPath, doc.toString({ lineWidth: 0 }));

  const {
    database,
    keystore,
    dataDir,
    cleanup: closeStores,
  } = await openTestStores(dialect, 'pledge-rights-');
  const { logStream } = captureLogs();
  const app = await createApp(
    {
      ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'info' }, { manifest: manifestPath }),
      retentionIntervalSeconds: 0,
      rateLimitPerMinute: 100_000,
    },
    {
      database,
      keystore,
      logStream,
      ...(options.holdRecheckMs !== undefined ? { erasureHoldRecheckMs: options.holdRecheckMs } : {}),
    },
  );
  const ctx = createContext({ kind: 'system', id: TEST_SYSTEM, key: 'test' });
  return {
    app,
    database,
    ctx,
    received,
    async register(firstName = 'Ada') {
      const email = randomEmail();
      const res = await app.collect.collect(ctx, 'registration', {
        jurisdiction: 'US',
        data: {
          email,
          first_name: firstName,
          last_name: 'Lovelace',
          phone: '+44 20 7946 0000',
          password: 'correct horse battery staple',
        },
      });
      return { id: res.subject.id, email };
    },
    async cleanup() {
      await app.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeStores();
    },
  };
}
