/**
 * LISTEN on PostgreSQL over a connection of its own (a pooled connection would lose its LISTEN when
 * returned). When the connection drops, the listener reports it (notifications may have been
 * missed, so caches must not be trusted), reconnects with backoff, and reports when it listens again.
 *
 * A connection can also go silent without dropping (a partition: no reset, no error, for as long as
 * TCP keepalive takes). So the listener asks the server a trivial question every
 * {@link HEARTBEAT_INTERVAL_MS} and reports each answer as a confirmation valid for
 * {@link LISTEN_TRUST_MS}; a heartbeat not answered in time counts as a dropped connection.
 * PostgreSQL delivers notifications on a connection in commit order and before the answer to a
 * later query, so an answered heartbeat proves that everything notified before it was sent has
 * arrived.
 */
import type { Client, QueryConfig } from 'pg';
import { KEEPALIVE_DELAY_MS } from './postgres-pool.js';

/** What a listener tells its owner. */
export interface ListenHandlers {
  /** A notification's payload. */
  onMessage: (payload: string) => void;
  /** Listening again after a gap (or for the first time): anything cached may be stale. */
  onListening: () => void;
  /** The connection dropped or stopped answering: notifications may be missed until onListening. */
  onLost: () => void;
  /**
   * The connection proved alive: every notification committed before the proof was asked for has
   * been delivered. Trust that until `trustUntil` (a `performance.now()` time); a later call
   * extends it, and without one, notifications may be going unheard after it.
   */
  onConfirmed?: (trustUntil: number) => void;
}

/** A running listener. */
export interface Listener {
  /** Stops listening and closes the connection. */
  close(): Promise<void>;
  /** Resolves once the first LISTEN is in place. */
  ready: Promise<void>;
}

/** Where and how to connect. */
export interface ListenOptions {
  databaseUrl: string;
  schema: string | undefined;
  /** How long opening the connection and the LISTEN statement may take. */
  connectTimeoutMs: number;
}

/** How often the listening connection is asked to prove that it is alive. */
export const HEARTBEAT_INTERVAL_MS = 1_000;
/** A heartbeat unanswered this long means the connection is dead, however quiet its socket. */
export const HEARTBEAT_TIMEOUT_MS = 1_000;
/**
 * How long one confirmation is trusted: the next heartbeat is sent within the interval and answered
 * within the timeout, or the connection is given up. This bounds how stale a cache kept coherent by
 * notifications can be, even in a partition nothing reports.
 */
export const LISTEN_TRUST_MS = HEARTBEAT_INTERVAL_MS + HEARTBEAT_TIMEOUT_MS;

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/** Starts listening on `channel` (a name validated by the caller; it is quoted here anyway). */
export function listenPostgres(options: ListenOptions, channel: string, handlers: ListenHandlers): Listener {
  let client: Client | undefined;
  let closed = false;
  let retryMs = RETRY_MIN_MS;
  let retryTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));

  const scheduleRetry = (): void => {
    retryTimer = setTimeout(() => void attempt(), retryMs);
    retryTimer.unref();
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  };

  const connect = async (): Promise<void> => {
    const { default: pg } = await import('pg');
    const c = new pg.Client({
      connectionString: options.databaseUrl,
      // Named by its channel, so an operator (or a test) can tell which capability's listener it is.
      application_name: `pledge-listen ${channel}`.slice(0, 63),
      connectionTimeoutMillis: options.connectTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    });
    client = c;
    let gone = false;
    // Whatever ends this connection (an error, its end, a heartbeat or a LISTEN that timed out, a
    // failed connect) ends up here once: the connection is closed and a new one is tried.
    const onGone = (): void => {
      if (gone) return;
      gone = true;
      clearTimeout(heartbeatTimer);
      c.removeAllListeners('notification');
      c.end().catch(() => {});
      if (closed) return;
      handlers.onLost();
      scheduleRetry();
    };
    // Kept for the client's whole life: pg may emit 'error' again while it is being torn down.
    c.on('error', onGone);
    c.on('end', onGone);
    c.on('notification', (n) => {
      if (n.channel === channel && n.payload !== undefined) handlers.onMessage(n.payload);
    });
    const ask = (text: string, timeoutMs: number): Promise<unknown> =>
      // query_timeout is pg's client-side bound (pg 8); @types/pg leaves it out of QueryConfig.
      c.query({ text, query_timeout: timeoutMs } as QueryConfig);

    const beat = (): void => {
      if (gone || closed) return;
      const sentAt = performance.now();
      ask('select 1', HEARTBEAT_TIMEOUT_MS).then(() => {
        if (gone || closed) return;
        handlers.onConfirmed?.(sentAt + LISTEN_TRUST_MS);
        heartbeatTimer = setTimeout(beat, Math.max(0, sentAt + HEARTBEAT_INTERVAL_MS - performance.now()));
        heartbeatTimer.unref();
      }, onGone);
    };

    try {
      await c.connect();
      const sentAt = performance.now();
      await ask(`listen "${channel.replace(/"/g, '""')}"`, options.connectTimeoutMs);
      if (gone) return;
      if (closed) {
        await c.end().catch(() => {});
        return;
      }
      retryMs = RETRY_MIN_MS;
      handlers.onListening();
      handlers.onConfirmed?.(sentAt + LISTEN_TRUST_MS);
      resolveReady();
      heartbeatTimer = setTimeout(beat, HEARTBEAT_INTERVAL_MS);
      heartbeatTimer.unref();
    } catch {
      onGone();
    }
  };
  // Only what comes before the connection's own error handling can throw here (loading pg, a URL pg
  // cannot parse); it is retried like any other failure.
  const attempt = (): Promise<void> =>
    connect().catch(() => {
      if (closed) return;
      handlers.onLost();
      scheduleRetry();
    });
  void attempt();

  return {
    ready,
    close: async () => {
      closed = true;
      clearTimeout(retryTimer);
      clearTimeout(heartbeatTimer);
      resolveReady();
      await client?.end().catch(() => {});
    },
  };
}
