/**
 * A real witness for the tests: a loopback HTTP server speaking C2SP tlog-witness
 * (https://c2sp.org/tlog-witness). It knows one log (its origin and public key), keeps the latest
 * checkpoint it cosigned, checks each `add-checkpoint` against it (the log's signature, the old size,
 * the consistency proof), and cosigns with cosignature/v1 (https://c2sp.org/tlog-cosignature).
 * Written from the specification, not from Pledge's client, so the client is tested against the
 * protocol rather than against itself.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyConsistency } from '../../src/audit/merkle.js';
import {
  cosign,
  cosignatureVerifierKey,
  ed25519PublicKey,
  openNote,
  parseCheckpointBody,
  parseVerifierKey,
} from '../../src/audit/note.js';

/** A running witness. */
export interface TestWitness {
  /** The submission prefix (`http://127.0.0.1:PORT`); add-checkpoint is under it. */
  url: string;
  name: string;
  /** The witness's cosignature/v1 verifier key. */
  vkey: string;
  /** `vkey=url`, as PLEDGE_LOG_WITNESSES lists a witness. */
  config: string;
  /** The size and root it last cosigned, per origin. */
  state: Map<string, { size: number; root: Buffer }>;
  /** Every request's answer status, in order. */
  statuses: number[];
  /** Answers the next `n` requests with 503 (a witness that is down for a while). */
  failNext(n: number): void;
  close(): Promise<void>;
}

/** Starts a witness that trusts the log `logVkey` (its note verifier key) for `origin`. */
export async function startWitness(options: {
  origin: string;
  logVkey: string;
  name?: string;
  /** Timestamp of the cosignatures, in seconds (default: now). */
  now?: () => number;
}): Promise<TestWitness> {
  const name = options.name ?? `witness.test/${randomBytes(4).toString('hex')}`;
  const seed = randomBytes(32);
  const vkey = cosignatureVerifierKey(name, ed25519PublicKey(seed));
  const logVerifier = parseVerifierKey(options.logVkey);
  const state = new Map<string, { size: number; root: Buffer }>();
  const statuses: number[] = [];
  let failing = 0;
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));

  const answer = (res: http.ServerResponse, status: number, body: string, type = 'text/plain') => {
    statuses.push(status);
    res.writeHead(status, { 'content-type': type });
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (failing > 0) {
        failing -= 1;
        answer(res, 503, 'down for maintenance\n');
        return;
      }
      if (req.method !== 'POST' || req.url !== '/add-checkpoint') {
        answer(res, 404, 'not found\n');
        return;
      }
      const text = Buffer.concat(chunks).toString('utf8');
      const blank = text.indexOf('\n\n');
      if (blank < 0) {
        answer(res, 400, 'no empty line before the checkpoint\n');
        return;
      }
      const head = text.slice(0, blank).split('\n');
      const note = text.slice(blank + 2);
      const old = /^old (0|[1-9][0-9]*)$/.exec(head[0] ?? '');
      if (old === null || head.length - 1 > 63) {
        answer(res, 400, 'the first line must be "old N" and at most 63 proof lines may follow\n');
        return;
      }
      const oldSize = Number(old[1]);
      const proof = head.slice(1).map((l) => Buffer.from(l, 'base64'));
      if (proof.some((p, i) => p.length !== 32 || p.toString('base64') !== head[i + 1])) {
        answer(res, 400, 'a proof line is not a base64 hash\n');
        return;
      }
      const origin = note.split('\n', 1)[0] ?? '';
      if (origin !== options.origin) {
        answer(res, 404, 'unknown log\n');
        return;
      }
      let body: string;
      try {
        body = openNote(note, [logVerifier]).body;
      } catch {
        answer(res, 403, 'no signature verifies with the log key\n');
        return;
      }
      const checkpoint = parseCheckpointBody(body);
      if (oldSize > checkpoint.size) {
        answer(res, 400, 'old size is larger than the checkpoint size\n');
        return;
      }
      const last = state.get(origin) ?? { size: 0, root: Buffer.alloc(0) };
      if (oldSize !== last.size) {
        answer(res, 409, `${last.size}\n`, 'text/x.tlog.size');
        return;
      }
      if (oldSize === checkpoint.size) {
        if (oldSize !== 0 && !last.root.equals(checkpoint.root)) {
          answer(res, 409, `${last.size}\n`, 'text/x.tlog.size');
          return;
        }
      } else if (oldSize === 0) {
        if (proof.length !== 0) {
          answer(res, 422, 'the proof from size 0 must be empty\n');
          return;
        }
      } else if (!verifyConsistency(oldSize, checkpoint.size, proof, last.root, checkpoint.root)) {
        answer(res, 422, 'the consistency proof does not verify\n');
        return;
      }
      state.set(origin, { size: checkpoint.size, root: checkpoint.root });
      answer(res, 200, cosign(name, seed, body, now()));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    name,
    vkey,
    config: `${vkey}=${url}`,
    state,
    statuses,
    failNext(n) {
      failing = n;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
