/** Captures what an app logs, for tests that check no personal data reaches the logs. */
import { PassThrough } from 'node:stream';

/** A stream to hand `createApp` as `logStream`, and everything written to it so far. */
export function captureLogs(): { logStream: PassThrough; logs: () => string } {
  let text = '';
  const logStream = new PassThrough();
  logStream.on('data', (d: Buffer) => (text += d.toString('utf8')));
  return { logStream, logs: () => text };
}
