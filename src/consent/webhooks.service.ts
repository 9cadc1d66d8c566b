/**
 * Propagation of choices to the systems the manifest lists, as signed webhooks.
 * (Being built: see issue 4.)
 */
import type { Kysely } from 'kysely';
import type { FastifyBaseLogger } from 'fastify';
import type { Manifest } from '../manifest/manifest.schema.js';
import type { Context } from '../platform/context.js';
import type { Tables } from '../platform/db/tables.js';
import type { ConsentChange } from './consent.service.js';

/** What the webhook service uses. */
export interface WebhookServiceDeps {
  db: Kysely<Tables>;
  manifest: Manifest;
  /** The secret webhook signing keys are derived from (the keyring's index key). */
  signingSecret: Buffer;
  log: FastifyBaseLogger;
}

/** Queues consent changes for delivery and delivers them. */
export class WebhookService {
  constructor(_deps: WebhookServiceDeps) {}

  /** Queues deliveries for changes, inside the change's transaction (`db` is that transaction). */
  async enqueue(_db: Kysely<Tables>, _ctx: Context, _changes: readonly ConsentChange[]): Promise<void> {}

  /** Starts delivering. */
  start(): void {}

  /** Stops delivering (the delivery in flight finishes). */
  async stop(): Promise<void> {}
}
