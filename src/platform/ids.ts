/**
 * Identifiers for rows. Records use UUIDv7 (RFC 9562): time-ordered, so new rows land at the end of
 * the primary-key index instead of at random pages (cheaper inserts; docs/benchmarks.md), and still
 * 74 random bits, so they reveal nothing but the time they were made, which the row says anyway.
 */
import { randomFillSync } from 'node:crypto';

const POOL = Buffer.alloc(16 * 256);
let poolAt = POOL.length;
let lastMs = 0;
let sequence = 0;

/** A new UUIDv7 string; ids made in the same millisecond by this process sort in creation order. */
export function uuidv7(): string {
  if (poolAt >= POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const b = POOL.subarray(poolAt, poolAt + 16);
  poolAt += 16;
  let ms = Date.now();
  if (ms <= lastMs) {
    // Same millisecond (or a clock step back): keep order with a 12-bit counter in rand_a.
    ms = lastMs;
    sequence++;
    if (sequence > 0xfff) {
      ms = ++lastMs;
      sequence = 0;
    }
  } else {
    lastMs = ms;
    sequence = 0;
  }
  b.writeUIntBE(ms, 0, 6);
  b[6] = 0x70 | (sequence >> 8);
  b[7] = sequence & 0xff;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A UUID of any version in its canonical text form (what every id Pledge makes looks like). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
