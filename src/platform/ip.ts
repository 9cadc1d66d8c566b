/** IPv6 address parsing shared by the collection points (truncation) and the rate limiter (/64 keys). */
import { isIP } from 'node:net';

/**
 * The eight 16-bit groups of an IPv6 address (a zone such as `%eth0` ignored), or `undefined` when
 * it is not one. An embedded IPv4 address ("::ffff:192.0.2.1") stands for the last two groups.
 */
export function parseIPv6(address: string): number[] | undefined {
  const zone = address.indexOf('%');
  const text = zone >= 0 ? address.slice(0, zone) : address;
  if (isIP(text) !== 6) return undefined;
  let body = text;
  const tail: number[] = [];
  // An embedded IPv4 address ("::ffff:192.0.2.1") stands for the last two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(body);
  if (v4?.[1] !== undefined) {
    const octets = v4[1].split('.').map(Number);
    tail.push(((octets[0] ?? 0) << 8) | (octets[1] ?? 0), ((octets[2] ?? 0) << 8) | (octets[3] ?? 0));
    body = body.slice(0, -v4[1].length);
    if (body.endsWith(':') && !body.endsWith('::')) body = body.slice(0, -1);
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const [head = '', rest] = body.split('::');
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const missing = 8 - left.length - right.length - tail.length;
  return [...left, ...new Array<number>(rest === undefined ? 0 : missing).fill(0), ...right, ...tail];
}
