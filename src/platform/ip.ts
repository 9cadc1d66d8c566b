/**
 * IP addresses: parsing shared by the collection points, consent evidence and the rate limiter (/64
 * keys), and truncation. An address is personal data, and most purposes need only the network a
 * request came from, so it is truncated when it is collected (IPv4 to its /24, IPv6 to its /48)
 * unless a purpose of the collection point declares `full_ip_address: true`: the full address is
 * never written anywhere it was not asked for.
 */
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

/** RFC 5952 text of eight groups: lower case, no leading zeros, the longest run of zeros as "::". */
function formatIPv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** The address without an IPv6 zone ("%eth0"), trimmed; `undefined` when it is not an IP address. */
export function normalizeIp(text: string): string | undefined {
  const value = text.trim().replace(/%[^%]*$/, '');
  if (value.length === 0 || value.length > 64) return undefined;
  return isIP(value) === 0 ? undefined : value;
}

/**
 * The address with its host part zeroed: `203.0.113.77` → `203.0.113.0`, `2001:db8:85a3:8d3::1` →
 * `2001:db8:85a3::`. An IPv4 address written as IPv6 (`::ffff:203.0.113.77`) is truncated as IPv4,
 * or its host part would survive. `undefined` when the text is not an IP address.
 */
export function truncateIp(text: string): string | undefined {
  const value = normalizeIp(text);
  if (value === undefined) return undefined;
  if (isIP(value) === 4) return value.replace(/\.\d+$/, '.0');
  const groups = parseIPv6(value);
  if (!groups) return undefined;
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (mapped) return `::ffff:${(groups[6] ?? 0) >> 8}.${(groups[6] ?? 0) & 0xff}.${(groups[7] ?? 0) >> 8}.0`;
  return formatIPv6([...groups.slice(0, 3), 0, 0, 0, 0, 0]);
}
