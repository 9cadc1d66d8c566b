/**
 * IP addresses are personal data, and most purposes need only the network a request came from. So
 * an address is truncated when it is collected (IPv4 to its /24, IPv6 to its /48), unless a purpose
 * of the collection point declares `full_ip_address: true`: the full address is never written
 * anywhere it was not asked for.
 */
import { isIP } from 'node:net';
import { parseIPv6 } from '../platform/ip.js';

/** How many leading bits of an address survive truncation. */
export const TRUNCATED_PREFIX = { ipv4: 24, ipv6: 48 } as const;

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
