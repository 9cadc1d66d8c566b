/**
 * LISTEN on PostgreSQL over a connection of its own (a pooled connection would lose its LISTEN when
 * returned). When the connection drops, the listener reports it (notifications may have been
 * missed, so caches must not be trusted), reconnects with backoff, and reports when it listens again.
 */
import type { Client } from 'pg';

/** What a listener tells its owner. */
export interface ListenHandlers {
  /** A notification's payload. */
  onMessage: (payload: string) => void;
  /** Listening again after a gap (or for the first time): anything cached may be stale. */
  onListening: () => void;
  /** The connection dropped: notifications may be missed until onListening. */
  onLost: () => void;
}

/** A running listener. */
export interface Listener {
  /** Stops listening and closes the connection. */
  close(): Promise<void>;
  /** Resolves once the first LISTEN is in place. */
  ready: Promise<void>;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/** Starts listening on `channel` (a name validated by the caller; it is quoted here anyway). */
export function listenPostgres(
  options: { databaseUrl: string; schema: string | undefined },
  channel: string,
  handlers: ListenHandlers,
): Listener {
  let client: Client | undefined;
  let closed = false;
  let retryMs = RETRY_MIN_MS;
  let timer: NodeJS.Timeout | undefined;
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));

  const connect = async (): Promise<void> => {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: options.databaseUrl, application_name: 'pledge-listen' });
    client = c;
    let lost = false;
    const onGone = (): void => {
      if (lost) return;
      lost = true;
      c.removeAllListeners('notification');
      c.end().catch(() => {});
      if (closed) return;
      handlers.onLost();
      timer = setTimeout(() => void start(), retryMs);
      timer.unref();
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    };
    c.on('error', onGone);
    c.on('end', onGone);
    c.on('notification', (n) => {
      if (n.channel === channel && n.payload !== undefined) handlers.onMessage(n.payload);
    });
    await c.connect();
    await c.query(`listen "${channel.replace(/"/g, '""')}"`);
    if (closed) {
      await c.end().catch(() => {});
      return;
    }
    retryMs = RETRY_MIN_MS;
    handlers.onListening();
    resolveReady();
  };

  const start = async (): Promise<void> => {
    try {
      await connect();
    } catch {
      if (closed) return;
      client?.end().catch(() => {});
      handlers.onLost();
      timer = setTimeout(() => void start(), retryMs);
      timer.unref();
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    }
  };
  void start();

  return {
    ready,
    close: async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      resolveReady();
      await client?.end().catch(() => {});
    },
  };
}
