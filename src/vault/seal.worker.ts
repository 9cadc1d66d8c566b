/**
 * A worker thread of the vault's crypto pool. It runs the same code as the main thread
 * (crypto-pool.ts sealItems/openItems over vault.crypto.ts); it only lets a batch use another core.
 */
import { parentPort } from 'node:worker_threads';
import { openItems, sealItems, type CryptoJob, type CryptoJobResult } from './crypto-pool.js';

parentPort?.on('message', (job: CryptoJob) => {
  let result: CryptoJobResult;
  try {
    result = {
      id: job.id,
      ok: true,
      values: job.op === 'seal' ? sealItems(job.keys, job.items) : openItems(job.keys, job.items),
    };
  } catch (err) {
    result = { id: job.id, ok: false, code: (err as { code?: string }).code ?? 'vault.crypto_failed' };
  }
  parentPort?.postMessage(result);
});
