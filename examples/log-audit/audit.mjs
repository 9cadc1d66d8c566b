#!/usr/bin/env node
// An outsider's auditor of a transparency log served as C2SP tlog-tiles (https://c2sp.org/tlog-tiles)
// with RFC 6962 hashing and C2SP signed-note checkpoints, such as Pledge's /log. It uses nothing but
// Node (>= 20: fetch and node:crypto) and nothing of Pledge's: given the log's URL and verifier key,
// anyone can check that every entry the log serves is in the tree its signed checkpoint commits to,
// and (with --state) that the tree only ever grew since the last run.
//
//   node audit.mjs --log https://host/log --key VKEY [--token T] [--witness VKEY]... [--state FILE]
//   node audit.mjs --proof FILE --key VKEY [--witness VKEY]...
//
// Exit codes: 0 verified; 1 the log does not match what it signed (the first bad index is named);
// 2 usage, network or a server that answers with an error.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

const WIDTH = 256; // hashes per tile, entries per bundle (tlog-tiles, tile height 8)

class Mismatch extends Error {} // exit 1: the log is not what it signed
class Usage extends Error {} // exit 2: wrong arguments, network, server errors

// ---- RFC 6962 hashing --------------------------------------------------------------------------
const sha256 = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const leafHash = (entry) => sha256(Buffer.from([0]), entry);
const nodeHash = (left, right) => sha256(Buffer.from([1]), left, right);
const hex = (b) => b.toString('hex');

/** The Merkle tree hash (RFC 6962 §2.1) of hashes[lo, hi). */
function treeHash(hashes, lo, hi) {
  const n = hi - lo;
  if (n === 0) return sha256();
  if (n === 1) return hashes[lo];
  let k = 1;
  while (k * 2 < n) k *= 2; // the largest power of two below n
  return nodeHash(treeHash(hashes, lo, lo + k), treeHash(hashes, lo + k, hi));
}

/** RFC 9162 §2.1.3.2: is `leaf` at `index` in the tree of `size` whose root is `root`? */
function verifyInclusion(index, size, leaf, proof, root) {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

// ---- C2SP signed notes and checkpoints -------------------------------------------------------
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

/** "name+hexkeyid+base64(type || 32-byte key)": type 0x01 Ed25519, 0x04 cosignature/v1. */
function parseVerifierKey(vkey) {
  const [, name, id, b64] = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(vkey ?? '') ?? [];
  const key = name === undefined ? Buffer.alloc(0) : Buffer.from(b64, 'base64');
  if (key.length !== 33 || (key[0] !== 0x01 && key[0] !== 0x04))
    throw new Usage(`not a verifier key (name+keyid+base64key, Ed25519 or cosignature/v1): ${vkey}`);
  // The key id is the first 4 bytes of SHA-256(name || "\n" || type || key): it must match.
  if (hex(sha256(Buffer.from(`${name}\n`), key).subarray(0, 4)) !== id)
    throw new Usage(`the key id of ${vkey} does not match its name and key`);
  const publicKey = createPublicKey({
    key: Buffer.concat([SPKI_ED25519, key.subarray(1)]),
    format: 'der',
    type: 'spki',
  });
  return { name, id, type: key[0], publicKey };
}

/** Splits a note into its text (up to and with the newline before the blank line) and signature lines. */
function splitNote(note) {
  const at = note.lastIndexOf('\n\n');
  if (at < 0 || !note.endsWith('\n'))
    throw new Mismatch('the checkpoint is not a signed note (no blank line before its signatures)');
  const body = note.slice(0, at + 1);
  const signatures = note
    .slice(at + 2, -1)
    .split('\n')
    .map((line) => {
      const m = /^\u2014 (\S+) ([A-Za-z0-9+/]+=*)$/.exec(line);
      if (m === null) throw new Mismatch(`not a signature line: ${JSON.stringify(line)}`);
      const bytes = Buffer.from(m[2], 'base64');
      return { name: m[1], id: hex(bytes.subarray(0, 4)), sig: bytes.subarray(4) };
    });
  return { body, signatures };
}

/**
 * The signature of `key` on the note, checked: undefined when the note has none by that key, the
 * cosignature's time (or true) when it verifies; throws Mismatch when it does not.
 */
function checkSignature(body, signatures, key) {
  const found = signatures.find((s) => s.name === key.name && s.id === key.id);
  if (found === undefined) return undefined;
  const { sig } = found;
  let ok = false;
  let time = true;
  if (key.type === 0x01) {
    ok = sig.length === 64 && verify(null, Buffer.from(body), key.publicKey, sig);
  } else if (sig.length === 72) {
    // cosignature/v1: 8-byte big-endian time, then Ed25519 over "cosignature/v1\ntime T\n" || body.
    const t = sig.readBigUInt64BE(0);
    time = t < 8_640_000_000_000n ? new Date(Number(t) * 1000).toISOString() : `${t} s`;
    ok = verify(null, Buffer.from(`cosignature/v1\ntime ${t}\n${body}`), key.publicKey, sig.subarray(8));
  }
  if (!ok) throw new Mismatch(`the signature of ${key.name} on the checkpoint does not verify`);
  return time;
}

/** Opens a checkpoint note: the log's signature must verify; witnesses' cosignatures are reported. */
function openCheckpoint(note, logKey, witnesses) {
  const { body, signatures } = splitNote(note);
  if (checkSignature(body, signatures, logKey) === undefined)
    throw new Mismatch(`the checkpoint carries no signature by ${logKey.name}+${logKey.id}`);
  const lines = body.slice(0, -1).split('\n');
  const [origin, sizeLine, rootLine] = lines;
  const root = Buffer.from(rootLine ?? '', 'base64');
  if (lines.length < 3 || !/^(0|[1-9][0-9]*)$/.test(sizeLine) || root.length !== 32)
    throw new Mismatch(`the signed checkpoint is not "origin, size, base64 root": ${JSON.stringify(body)}`);
  const cosigned = witnesses.map((w) => ({ name: w.name, time: checkSignature(body, signatures, w) }));
  return { origin, size: Number(sizeLine), root, cosigned };
}

function reportCheckpoint(c) {
  console.log(
    `checkpoint: ${c.origin}, size ${c.size}, root ${c.root.toString('base64')} (signature verified)`,
  );
  for (const w of c.cosigned)
    console.log(
      `  witness ${w.name}: ${w.time === undefined ? 'no cosignature' : `cosigned, ${w.time === true ? 'verified' : `at ${w.time}, verified`}`}`,
    );
}

// ---- tlog-tiles --------------------------------------------------------------------------------
/** "x001/x234/067" for 1234067. */
function tileIndex(n) {
  const groups = [];
  do {
    groups.unshift(String(n % 1000).padStart(3, '0'));
    n = Math.floor(n / 1000);
  } while (n > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

function tilePath(level, index, width) {
  const where = level === 'entries' ? 'entries' : String(level);
  return `tile/${where}/${tileIndex(index)}${width === WIDTH ? '' : `.p/${width}`}`;
}

/**
 * GETs a file of the log: its bytes, or undefined on 404; other failures are Usage (exit 2). A 429
 * (the server's per-client rate limit) is waited out as its retry-after says, a few times.
 */
async function get(base, path, token) {
  for (let attempt = 1; ; attempt++) {
    let res;
    try {
      res = await fetch(`${base}/${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    } catch (err) {
      throw new Usage(`GET ${base}/${path}: ${err.cause?.message ?? err.message}`);
    }
    if (res.status === 404) return undefined;
    if (res.status === 429 && attempt <= 10) {
      const seconds = Math.min(Math.max(Number(res.headers.get('retry-after')) || 1, 1), 60);
      console.error(`GET ${base}/${path}: rate limited, retrying in ${seconds} s`);
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      continue;
    }
    if (!res.ok) {
      const hint = res.status === 401 || res.status === 403 ? ' (the tiles may need a key: --token)' : '';
      throw new Usage(`GET ${base}/${path}: HTTP ${res.status}${hint}`);
    }
    return Buffer.from(await res.arrayBuffer());
  }
}

/**
 * A tile of `width` (entries or hashes): the partial one, or the full one cut to `width` when the
 * tree has grown past it since (the spec lets servers drop partial tiles once full).
 */
async function getTile(base, level, index, width, token) {
  const tile =
    (await get(base, tilePath(level, index, width), token)) ??
    (width < WIDTH ? await get(base, tilePath(level, index, WIDTH), token) : undefined);
  if (tile === undefined) {
    const first = index * WIDTH ** ((level === 'entries' ? 0 : level) + 1);
    throw new Mismatch(
      `index ${first}: the log does not serve ${tilePath(level, index, width)}, which its checkpoint covers`,
    );
  }
  return tile;
}

/** An entry bundle's entries: each a 2-byte big-endian length and its bytes. */
function decodeBundle(bundle, first) {
  const entries = [];
  for (let at = 0; at < bundle.length;) {
    const n = at + 2 <= bundle.length ? bundle.readUInt16BE(at) : Infinity;
    if (at + 2 + n > bundle.length)
      throw new Mismatch(`index ${first + entries.length}: the entry bundle is cut short`);
    entries.push(bundle.subarray(at + 2, at + 2 + n));
    at += 2 + n;
  }
  return entries;
}

/**
 * Downloads the tree of `size`: every entry bundle and level-0 tile, each leaf hash recomputed from
 * its entry and compared with the tile's (the first difference is the first bad index); then each
 * higher tile level compared with the hashes recomputed from the level below. Returns the leaf hashes
 * and a tally of the entries' actions.
 */
async function downloadTree(base, size, token) {
  const leaves = [];
  const actions = new Map();
  for (let t = 0; t * WIDTH < size; t++) {
    const width = Math.min(WIDTH, size - t * WIDTH);
    const [bundle, tile] = await Promise.all([
      getTile(base, 'entries', t, width, token),
      getTile(base, 0, t, width, token),
    ]);
    const entries = decodeBundle(bundle, t * WIDTH);
    // A full bundle may have been served where a partial one was asked: only `width` entries count.
    if (entries.length < width)
      throw new Mismatch(`index ${t * WIDTH + entries.length}: the entry bundle ends before the tree does`);
    for (let i = 0; i < width; i++) {
      const index = t * WIDTH + i;
      const hash = leafHash(entries[i]);
      const served = tile.subarray(i * 32, i * 32 + 32);
      if (!hash.equals(served))
        throw new Mismatch(
          `index ${index}: the entry hashes to ${hex(hash)}, the level-0 tile says ${hex(served)}`,
        );
      leaves.push(hash);
      const action = actionOf(entries[i]);
      actions.set(action, (actions.get(action) ?? 0) + 1);
    }
  }
  // Level L holds the roots of the full subtrees of 256^L leaves: each is the tree hash of 256 below.
  let below = leaves;
  let level = 1;
  for (; below.length >= WIDTH; level++) {
    const hashes = [];
    for (let i = 0; i + WIDTH <= below.length; i += WIDTH) hashes.push(treeHash(below, i, i + WIDTH));
    for (let t = 0; t * WIDTH < hashes.length; t++) {
      const width = Math.min(WIDTH, hashes.length - t * WIDTH);
      const tile = await getTile(base, level, t, width, token);
      for (let i = 0; i < width; i++) {
        if (!hashes[t * WIDTH + i].equals(tile.subarray(i * 32, i * 32 + 32)))
          throw new Mismatch(
            `index ${(t * WIDTH + i) * WIDTH ** level}: tile level ${level} does not hash the leaves from there`,
          );
      }
    }
    below = hashes;
  }
  return { leaves, actions, levels: level };
}

/** Pledge's entries are JSON with an "action"; any other log's entries are counted as "(other)". */
function actionOf(entry) {
  try {
    return JSON.parse(entry.toString('utf8')).action ?? '(other)';
  } catch {
    return '(other)';
  }
}

// ---- the two modes -----------------------------------------------------------------------------
async function auditLog({ log, token, state: stateFile }, logKey, witnesses) {
  const base = log.replace(/\/+$/, '');
  const note = await get(base, 'checkpoint', token);
  if (note === undefined)
    throw new Usage(`GET ${base}/checkpoint: HTTP 404 (no checkpoint yet, or not a log)`);
  const checkpoint = openCheckpoint(note.toString('utf8'), logKey, witnesses);
  reportCheckpoint(checkpoint);

  const { leaves, actions, levels } = await downloadTree(base, checkpoint.size, token);
  console.log(
    `entries: ${leaves.length} downloaded, every leaf hash recomputed and equal to the level-0 tiles'`,
  );
  console.log(`  ${[...actions].map(([a, n]) => `${a} ${n}`).join(', ') || '(none)'}`);
  const root = treeHash(leaves, 0, leaves.length);
  if (!root.equals(checkpoint.root))
    throw new Mismatch(
      `the tree of the served entries has root ${root.toString('base64')}, the checkpoint signs ${checkpoint.root.toString('base64')}`,
    );
  if (levels > 1) {
    const which = levels > 2 ? `levels 1 to ${levels - 1}` : 'level 1';
    console.log(`tiles: ${which} equal to the hashes recomputed from the level below`);
  }
  console.log('root: recomputed from the entries, equal to the signed checkpoint');

  if (stateFile !== undefined) {
    const last = await readState(stateFile);
    if (last !== undefined) {
      // Consistency: the tree remembered must be the first `last.size` leaves of this one.
      if (last.origin !== checkpoint.origin)
        throw new Usage(`${stateFile} is the state of ${last.origin}, not ${checkpoint.origin}`);
      if (checkpoint.size < last.size)
        throw new Mismatch(
          `the log shrank: size ${checkpoint.size} now, ${last.size} when last verified (${last.time})`,
        );
      const old = treeHash(leaves, 0, last.size);
      if (!old.equals(Buffer.from(last.root, 'base64')))
        throw new Mismatch(
          `history rewritten: the first ${last.size} entries now hash to ${old.toString('base64')}, ` +
            `the checkpoint verified ${last.time} signed ${last.root}`,
        );
      console.log(`consistency: the tree verified ${last.time} (size ${last.size}) is the start of this one`);
    }
    const next = {
      origin: checkpoint.origin,
      size: checkpoint.size,
      root: checkpoint.root.toString('base64'),
      time: new Date().toISOString(),
      checkpoint: note.toString('utf8'),
    };
    await writeFile(`${stateFile}.tmp`, `${JSON.stringify(next, null, 2)}\n`);
    await rename(`${stateFile}.tmp`, stateFile);
    console.log(`state: size ${checkpoint.size} remembered in ${stateFile}`);
  }
}

async function readState(file) {
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT') return undefined; // the first run
    throw new Usage(`cannot read ${file}: ${err.message}`);
  }
  try {
    const s = JSON.parse(text);
    if (Number.isSafeInteger(s.size) && typeof s.root === 'string' && typeof s.origin === 'string') return s;
  } catch {
    // fall through
  }
  throw new Usage(`${file} is not a state file this script wrote`);
}

/** One inclusion proof as GET /api/v1/log/proofs/inclusion answers it: {index, size, entry, proof, checkpoint}. */
async function auditProof(file, logKey, witnesses) {
  let p;
  try {
    p = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Usage(`cannot read the proof ${file}: ${err.message}`);
  }
  if (
    !Number.isSafeInteger(p.index) ||
    !Number.isSafeInteger(p.size) ||
    typeof p.entry !== 'string' ||
    !Array.isArray(p.proof) ||
    typeof p.checkpoint !== 'string'
  )
    throw new Usage(
      `${file} is not an inclusion proof: {index, size, entry, proof: [base64...], checkpoint}`,
    );
  const checkpoint = openCheckpoint(p.checkpoint, logKey, witnesses);
  reportCheckpoint(checkpoint);
  if (checkpoint.size !== p.size)
    throw new Usage(
      `the proof is for a tree of size ${p.size}, its checkpoint is of size ${checkpoint.size}: ask for the proof with size=${checkpoint.size}`,
    );
  const proof = p.proof.map((h) => Buffer.from(h, 'base64'));
  if (proof.some((h) => h.length !== 32))
    throw new Mismatch(`index ${p.index}: the proof holds something that is not a 32-byte hash`);
  if (!verifyInclusion(p.index, p.size, leafHash(Buffer.from(p.entry, 'utf8')), proof, checkpoint.root))
    throw new Mismatch(
      `index ${p.index}: the entry is not in the tree the checkpoint signs (the inclusion proof fails)`,
    );
  console.log(`inclusion: entry ${p.index} is in the tree of size ${p.size}`);
  console.log(`  ${p.entry}`);
}

// ---- command line ------------------------------------------------------------------------------
const USAGE = `usage: node audit.mjs --log URL --key VKEY [--token T] [--witness VKEY]... [--state FILE]
       node audit.mjs --proof FILE --key VKEY [--witness VKEY]...`;

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        log: { type: 'string' },
        key: { type: 'string' },
        token: { type: 'string' },
        witness: { type: 'string', multiple: true, default: [] },
        state: { type: 'string' },
        proof: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new Usage(`${err.message}\n${USAGE}`);
  }
  if (values.help) return console.log(USAGE);
  if (values.key === undefined || (values.log === undefined) === (values.proof === undefined))
    throw new Usage(USAGE);
  const logKey = parseVerifierKey(values.key);
  const witnesses = values.witness.map(parseVerifierKey);
  const token = values.token ?? process.env.LOG_TOKEN;
  if (values.proof !== undefined) await auditProof(values.proof, logKey, witnesses);
  else await auditLog({ ...values, token }, logKey, witnesses);
  console.log('VERIFIED');
}

main().then(
  () => (process.exitCode = 0),
  (err) => {
    if (err instanceof Mismatch) {
      console.error(`MISMATCH: ${err.message}`);
      process.exitCode = 1;
    } else {
      console.error(err instanceof Usage ? err.message : err.stack);
      process.exitCode = 2;
    }
  },
);
