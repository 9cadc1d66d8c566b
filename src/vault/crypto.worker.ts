/**
 * A crypto worker thread: seals and opens packed batches (field-batch.wire.ts) that the main thread
 * transfers to it, and transfers the results back. It keeps nothing between batches: a batch
 * carries its keys and they are gone when it is done.
 */
import { parentPort } from 'node:worker_threads';
import { PledgeError } from '../platform/errors.js';
import { openPacked, sealPacked } from './field-batch.wire.js';

/** A job from the pool. */
interface Job {
  id: number;
  op: 'seal' | 'open';
  input: Uint8Array;
}

const port = parentPort;
if (port) {
  port.on('message', (job: Job) => {
    try {
      const output = job.op === 'seal' ? sealPacked(job.input) : openPacked(job.input);
      port.postMessage({ id: job.id, output }, [output.buffer as ArrayBuffer]);
    } catch (err) {
      // Only the code and the message cross back: both are fixed texts that never quote a value.
      const code = err instanceof PledgeError ? err.code : 'vault.crypto_failed';
      const message = err instanceof PledgeError ? err.message : 'a crypto batch could not be processed';
      port.postMessage({ id: job.id, error: { code, message } });
    }
  });
  // Loading this module (and what it imports) is done: jobs may come.
  port.postMessage({ ready: true });
}
