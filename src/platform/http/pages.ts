/** Sending the server-rendered pages people open from a link (preferences, unsubscribe). */
import type { FastifyReply } from 'fastify';

/**
 * Sends an English HTML page that no cache may keep: such pages carry links that open a person's
 * choices, so a shared cache must never hand them to someone else.
 */
export function sendPage(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply
    .status(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-language', 'en')
    .send(body);
}
