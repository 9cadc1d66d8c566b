/**
 * Signed notes, checkpoints and cosignatures against the C2SP specifications and Go's sumdb/note:
 * the published PeterNeumann key and note are reproduced byte for byte, a checkpoint parses only in
 * its exact form, and a note is refused when any bit of its text or of a known signature changes.
 */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ValidationError } from '../../src/platform/errors.js';
import {
  NoteSigner,
  cosign,
  cosignatureTimestamp,
  cosignatureVerifierKey,
  ed25519PublicKey,
  formatCheckpointBody,
  openNote,
  parseCheckpointBody,
  parseVerifierKey,
  type Checkpoint,
} from '../../src/audit/note.js';

// The key and note of golang.org/x/mod/sumdb/note's tests and documentation.
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const PETER_TEXT =
  'If you think cryptography is the answer to your problem,\n' +
  "then you don't know what your problem is.\n";
const PETER_NOTE =
  PETER_TEXT +
  '\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';

/** The seed of the Go private key: its last part is base64(0x01 || 32-byte seed). */
const PETER_SEED = Buffer.from(PETER_SKEY.split('+').slice(4).join('+'), 'base64').subarray(1);

const ROOT = createHash('sha256').update('a root').digest();
const CHECKPOINT: Checkpoint = { origin: 'pledge.example/log', size: 20852163, root: ROOT };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ValidationError, `a ValidationError, not ${String(err)}`);
    return err.code;
  }
  assert.fail('did not throw');
}

describe('signed notes: the Go sumdb/note test vector', () => {
  test('the signer made from the seed has the published key id and verifier key', () => {
    assert.equal(PETER_SEED.length, 32);
    const signer = NoteSigner.fromSeed('PeterNeumann', PETER_SEED);
    assert.equal(signer.keyId.toString('hex'), 'c74f20a3');
    assert.equal(signer.verifierKey(), PETER_VKEY);
    assert.equal(signer.publicKey.length, 32);
  });

  test('signing the text gives the published note byte for byte, and it opens', () => {
    const signer = NoteSigner.fromSeed('PeterNeumann', PETER_SEED);
    assert.equal(signer.sign(PETER_TEXT), PETER_NOTE);
    const opened = openNote(PETER_NOTE, [parseVerifierKey(PETER_VKEY)]);
    assert.equal(opened.body, PETER_TEXT);
    assert.deepEqual(opened.verifiedBy, ['PeterNeumann']);
    assert.equal(opened.signatures.length, 1);
    assert.equal(opened.signatures[0]!.keyId.toString('hex'), 'c74f20a3');
    assert.equal(opened.signatures[0]!.sig.length, 64);
  });

  test('the spec example vkey verifies its example note', () => {
    const note =
      'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';
    const v = parseVerifierKey('example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k');
    assert.deepEqual(openNote(note, [v]).verifiedBy, ['example.com/foo']);
  });
});

describe('verifier keys', () => {
  test('malformed keys are refused with log.vkey_malformed', () => {
    const [name, id, key] = PETER_VKEY.split('+') as [string, string, string];
    const raw = Buffer.from(key, 'base64');
    const bad = [
      '',
      'PeterNeumann',
      `${name}+${id}`,
      `${PETER_VKEY}+x`,
      `+${id}+${key}`, // empty name
      `Peter Neumann+${id}+${key}`, // a space in the name
      `${name}+C74F20A3+${key}`, // upper-case hex
      `${name}+c74f20a+${key}`,
      `${name}+c74f20a4+${key}`, // the id does not match
      `${name}+${id}+${key.slice(0, -4)}`, // a short key
      `${name}+${id}+${Buffer.concat([raw, Buffer.from([0])]).toString('base64')}`,
      `${name}+${id}+${Buffer.concat([Buffer.from([0x02]), raw.subarray(1)]).toString('base64')}`, // ECDSA type
      `${name}+${id}+ ${key}`, // a space before the base64
      `${name}+${id}+${key}\n`,
      `${name}+${id}+${key}!`,
      `peterneumann+${id}+${key}`, // another name, so another id
    ];
    for (const k of bad)
      assert.equal(
        code(() => parseVerifierKey(k)),
        'log.vkey_malformed',
        k,
      );
  });

  test('every single-bit change of the verifier key is refused or verifies nothing', () => {
    const v = parseVerifierKey(PETER_VKEY);
    assert.ok(v.verify(Buffer.from(PETER_TEXT), openNote(PETER_NOTE, [v]).signatures[0]!.sig));
    const bytes = Buffer.from(PETER_VKEY);
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const c = Buffer.from(bytes);
      c[bit >> 3]! ^= 1 << (bit & 7);
      let opened: string[] = [];
      try {
        opened = openNote(PETER_NOTE, [parseVerifierKey(c.toString('latin1'))]).verifiedBy;
      } catch {
        // Refused: the key does not parse, or the note does not verify with it.
      }
      assert.deepEqual(opened, [], `bit ${bit}`);
    }
  });
});

describe('openNote', () => {
  const peter = parseVerifierKey(PETER_VKEY);
  const other = NoteSigner.fromSeed('other.example/log', Buffer.alloc(32, 7));

  test('an unknown key is ignored; the note opens on the known one', () => {
    const withOther = PETER_NOTE + other.sign(PETER_TEXT).slice(PETER_TEXT.length + 1);
    const opened = openNote(withOther, [peter]);
    assert.deepEqual(opened.verifiedBy, ['PeterNeumann']);
    assert.deepEqual(
      opened.signatures.map((s) => s.name),
      ['PeterNeumann', 'other.example/log'],
    );
    // Both known: both verify.
    const both = openNote(withOther, [peter, parseVerifierKey(other.verifierKey())]);
    assert.deepEqual(both.verifiedBy, ['PeterNeumann', 'other.example/log']);
    // A key with the same name but another id, or the same id and another name, is unknown.
    const sameName = NoteSigner.fromSeed('PeterNeumann', Buffer.alloc(32, 9));
    const note2 = PETER_NOTE + sameName.sign(PETER_TEXT).slice(PETER_TEXT.length + 1);
    assert.deepEqual(openNote(note2, [peter]).verifiedBy, ['PeterNeumann']);
  });

  test('no known signature: log.note_unverified', () => {
    assert.equal(
      code(() => openNote(PETER_NOTE, [])),
      'log.note_unverified',
    );
    assert.equal(
      code(() => openNote(PETER_NOTE, [parseVerifierKey(other.verifierKey())])),
      'log.note_unverified',
    );
  });

  test('a bad signature from a known key rejects the whole note', () => {
    const forged = `${PETER_NOTE}${other.sign(PETER_TEXT).split('\n').at(-2)!.replace('other.example/log', 'PeterNeumann')}\n`;
    // The forged line carries other's key id, so it is unknown: still opens on Peter.
    assert.deepEqual(openNote(forged, [peter]).verifiedBy, ['PeterNeumann']);
    // Peter's id on a signature of another text: known, and it does not verify.
    const otherText = 'another text\n';
    const sigOfOther = NoteSigner.fromSeed('PeterNeumann', PETER_SEED).sign(otherText).split('\n').at(-2)!;
    assert.equal(
      code(() => openNote(`${PETER_TEXT}\n${sigOfOther}\n`, [peter])),
      'log.signature_invalid',
    );
    assert.equal(
      code(() => openNote(`${PETER_NOTE}${sigOfOther}\n`, [peter])),
      'log.signature_invalid',
    );
  });

  test('every single-bit change of the text or of the signature line is rejected (all bits)', () => {
    const bytes = Buffer.from(PETER_NOTE, 'utf8');
    let tried = 0;
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const c = Buffer.from(bytes);
      c[bit >> 3]! ^= 1 << (bit & 7);
      let opened: { body: string; verifiedBy: string[] } | undefined;
      try {
        opened = openNote(c.toString('utf8'), [peter]);
      } catch (err) {
        assert.ok(err instanceof ValidationError);
      }
      // Changing a bit of the base64's padding "=" could in principle leave the bytes unchanged;
      // the strict decoder refuses a second spelling, so nothing opens.
      assert.equal(opened, undefined, `bit ${bit} (byte ${bit >> 3})`);
      tried++;
    }
    assert.equal(tried, bytes.length * 8);
  });

  test('every single-bit change of the signature bytes is rejected (all 544 bits)', () => {
    const opened = openNote(PETER_NOTE, [peter]);
    const { keyId, sig } = opened.signatures[0]!;
    const all = Buffer.concat([keyId, sig]);
    for (let bit = 0; bit < all.length * 8; bit++) {
      const c = Buffer.from(all);
      c[bit >> 3]! ^= 1 << (bit & 7);
      const note = `${PETER_TEXT}\n— PeterNeumann ${c.toString('base64')}\n`;
      // A flip in the key id makes the signature unknown (no known signature); in the signature,
      // known and invalid.
      const want = bit < 32 ? 'log.note_unverified' : 'log.signature_invalid';
      assert.equal(
        code(() => openNote(note, [peter])),
        want,
        `bit ${bit}`,
      );
    }
  });

  test('malformed notes: log.note_malformed', () => {
    const sigLine = PETER_NOTE.slice(PETER_TEXT.length + 1);
    const bad = [
      '',
      PETER_TEXT, // no signatures
      `${PETER_TEXT}\n`, // a blank line and nothing after
      `${PETER_TEXT}${sigLine}`, // no blank line
      `${PETER_NOTE}\n`, // a blank line after the signatures
      PETER_NOTE.slice(0, -1), // the last line without its newline
      `${PETER_TEXT}\n-${sigLine.slice(1)}`, // a hyphen, not an em dash
      `${PETER_TEXT}\n—PeterNeumann${sigLine.slice(14)}`,
      `${PETER_TEXT}\n— PeterNeumann\n`,
      `${PETER_TEXT}\n— PeterNeumann AAAA\n`, // 3 bytes: no room for a key id and a signature
      `${PETER_TEXT}\n— PeterNeumann not*base64\n`,
      `${PETER_TEXT}\n${sigLine.replace('=\n', '\n')}`, // unpadded base64
      `${PETER_TEXT}\n${sigLine}garbage\n`,
      `If you think\tcryptography...\n\n${sigLine}`, // a tab is a control character
      `a\rb\n\n${sigLine}`,
      `\ud800\n\n${sigLine}`, // not valid UTF-8
      `${PETER_TEXT}\n${sigLine.repeat(101)}`, // more signatures than any verifier reads
    ];
    for (const n of bad)
      assert.equal(
        code(() => openNote(n, [peter])),
        'log.note_malformed',
        JSON.stringify(n),
      );
    // Sixteen signatures (what the spec says must be accepted) are fine, repeated ones counted once.
    assert.deepEqual(openNote(`${PETER_TEXT}\n${sigLine.repeat(16)}`, [peter]).verifiedBy, ['PeterNeumann']);
  });

  test('the text may hold blank lines: the last one separates the signatures', () => {
    const signer = NoteSigner.fromSeed('log.example', Buffer.alloc(32, 1));
    const text = 'first\n\nthird\n\n';
    const opened = openNote(signer.sign(text), [parseVerifierKey(signer.verifierKey())]);
    assert.equal(opened.body, text);
  });

  test('the signer refuses what cannot be a note', () => {
    const s = NoteSigner.fromSeed('log.example', Buffer.alloc(32, 1));
    assert.throws(() => s.sign('no final newline'), RangeError);
    assert.throws(() => s.sign('a\u0000b\n'), RangeError);
    assert.throws(() => NoteSigner.fromSeed('a b', Buffer.alloc(32)), RangeError);
    assert.throws(() => NoteSigner.fromSeed('a+b', Buffer.alloc(32)), RangeError);
    assert.throws(() => NoteSigner.fromSeed('', Buffer.alloc(32)), RangeError);
    assert.throws(() => NoteSigner.fromSeed('log', Buffer.alloc(31)), RangeError);
  });

  test('notes signed by fresh keys open, for random texts (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(fc.string({ unit: fc.constantFrom('a', 'é', '✓', ' ', '€', 'z', '\n') })),
        (seed, parts) => {
          const text = `${parts.join('')}\n`;
          const s = NoteSigner.fromSeed('prop.example/log', seed);
          const opened = openNote(s.sign(text), [parseVerifierKey(s.verifierKey())]);
          assert.equal(opened.body, text);
        },
      ),
      { numRuns: 100, seed: 14 },
    );
  });
});

describe('checkpoints', () => {
  test('format is origin, size, base64 root, each line ending in a newline', () => {
    assert.equal(
      formatCheckpointBody(CHECKPOINT),
      `pledge.example/log\n20852163\n${ROOT.toString('base64')}\n`,
    );
    assert.equal(
      formatCheckpointBody({ ...CHECKPOINT, size: 0, extensions: ['ext one', 'ext two'] }),
      `pledge.example/log\n0\n${ROOT.toString('base64')}\next one\next two\n`,
    );
    assert.throws(() => formatCheckpointBody({ ...CHECKPOINT, origin: '' }), RangeError);
    assert.throws(() => formatCheckpointBody({ ...CHECKPOINT, origin: 'a\nb' }), RangeError);
    assert.throws(() => formatCheckpointBody({ ...CHECKPOINT, size: -1 }), RangeError);
    assert.throws(() => formatCheckpointBody({ ...CHECKPOINT, root: ROOT.subarray(1) }), RangeError);
    assert.throws(() => formatCheckpointBody({ ...CHECKPOINT, extensions: [''] }), RangeError);
  });

  test('parse gives back what format wrote (and the spec example)', () => {
    assert.deepEqual(parseCheckpointBody(formatCheckpointBody(CHECKPOINT)), CHECKPOINT);
    const withExt = { ...CHECKPOINT, extensions: ['x'] };
    assert.deepEqual(parseCheckpointBody(formatCheckpointBody(withExt)), withExt);
    const spec = parseCheckpointBody(
      'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n',
    );
    assert.equal(spec.origin, 'example.com/behind-the-sofa');
    assert.equal(spec.size, 20852163);
    assert.equal(spec.root.length, 32);
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, unit: fc.constantFrom('a', 'b', '/', '.', ' ', 'é') }),
        fc.maxSafeNat(),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (origin, size, root) => {
          const c = { origin, size, root: Buffer.from(root) };
          assert.deepEqual(parseCheckpointBody(formatCheckpointBody(c)), c);
        },
      ),
      { numRuns: 200, seed: 3 },
    );
  });

  test('parse refuses every malformed body with log.checkpoint_malformed', () => {
    const r = ROOT.toString('base64');
    // The last character before "=" carries two bits past the 32 bytes; setting one of them is
    // another spelling of the same bytes, which a strict parser refuses.
    const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const lastChar = B64[B64.indexOf(r.at(-2)!) ^ 1]!;
    const stray = `${r.slice(0, -2)}${lastChar}=`;
    assert.deepEqual(Buffer.from(stray, 'base64'), ROOT);
    const bad: Array<[string, RegExp]> = [
      ['', /end with a newline/],
      [`o\n1\n${r}`, /end with a newline/],
      ['o\n1\n', /2 line/], // missing root line
      ['o\n', /1 line/],
      [`\n1\n${r}\n`, /origin\) is empty/],
      [`o\n\n${r}\n`, /tree size/],
      [`o\n01\n${r}\n`, /tree size/], // a leading zero
      [`o\n-1\n${r}\n`, /tree size/],
      [`o\n1.0\n${r}\n`, /tree size/],
      [`o\n0x10\n${r}\n`, /tree size/],
      [`o\n 1\n${r}\n`, /tree size/],
      [`o\n1e3\n${r}\n`, /tree size/],
      [`o\n١٢\n${r}\n`, /tree size/], // digits, but not ASCII decimal
      [`o\n99999999999999999999\n${r}\n`, /too large/],
      [`o\n1\n${ROOT.subarray(1).toString('base64')}\n`, /root hash/], // 31 bytes
      [`o\n1\n${Buffer.concat([ROOT, ROOT.subarray(0, 1)]).toString('base64')}\n`, /root hash/], // 33
      [`o\n1\n${r.replace(/=$/, '')}\n`, /root hash/], // unpadded
      [`o\n1\n${stray}\n`, /root hash/], // non-canonical last character
      [`o\n1\n${ROOT.toString('base64url')}\n`, /root hash/],
      [`o\n1\n${ROOT.toString('hex')}\n`, /root hash/],
      [`o\n1\n${r}\n\n`, /extension\) is empty/],
      [`o\n1\n${r}\next\n\n`, /line 5 \(extension\) is empty/],
      [`o\t\n1\n${r}\n`, /control character/],
    ];
    for (const [text, why] of bad) {
      assert.throws(
        () => parseCheckpointBody(text),
        (err: unknown) =>
          err instanceof ValidationError && err.code === 'log.checkpoint_malformed' && why.test(err.message),
        JSON.stringify(text),
      );
    }
  });

  test('a signed checkpoint: every single-bit change of its body fails to open (all bits)', () => {
    const signer = NoteSigner.fromSeed('pledge.example/log', Buffer.alloc(32, 3));
    const v = parseVerifierKey(signer.verifierKey());
    const body = formatCheckpointBody(CHECKPOINT);
    const note = signer.sign(body);
    assert.deepEqual(parseCheckpointBody(openNote(note, [v]).body), CHECKPOINT);
    const bytes = Buffer.from(body);
    const sigPart = note.slice(body.length);
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const c = Buffer.from(bytes);
      c[bit >> 3]! ^= 1 << (bit & 7);
      assert.throws(() => openNote(c.toString('utf8') + sigPart, [v]), ValidationError, `bit ${bit}`);
    }
  });
});

describe('cosignature/v1', () => {
  const seed = Buffer.alloc(32, 0x42);
  const name = 'witness.example/w1';
  const pub = ed25519PublicKey(seed);
  const log = NoteSigner.fromSeed('pledge.example/log', Buffer.alloc(32, 3));
  const body = formatCheckpointBody(CHECKPOINT);
  const note = log.sign(body);
  const T = 1679315147;

  test('the verifier key has type 0x04 and the cosignature key id', () => {
    const vkey = cosignatureVerifierKey(name, pub);
    const [n, id, ...rest] = vkey.split('+') as [string, string, ...string[]];
    const key = rest.join('+');
    assert.equal(n, name);
    const raw = Buffer.from(key, 'base64');
    assert.equal(raw[0], 0x04);
    assert.deepEqual(raw.subarray(1), pub);
    const want = createHash('sha256')
      .update(Buffer.concat([Buffer.from(`${name}\n`), Buffer.from([0x04]), pub]))
      .digest()
      .subarray(0, 4);
    assert.equal(id, want.toString('hex'));
    // The same key as Ed25519 (0x01) has another id: the two are not confused.
    assert.notEqual(NoteSigner.fromSeed(name, seed).keyId.toString('hex'), id);
  });

  test('the line is keyid || 8-byte big-endian time || Ed25519 over "cosignature/v1\\ntime T\\n" + body', () => {
    const line = cosign(name, seed, body, T);
    assert.ok(line.startsWith(`— ${name} `) && line.endsWith('\n'));
    const bytes = Buffer.from(line.slice(`— ${name} `.length, -1), 'base64');
    assert.equal(bytes.length, 4 + 8 + 64);
    assert.equal(bytes.readBigUInt64BE(4), BigInt(T));
    // Built here from the spec, independently: the same signature (Ed25519 is deterministic).
    const key = createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
      format: 'der',
      type: 'pkcs8',
    });
    assert.deepEqual(createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(-32), pub);
    const message = Buffer.from(`cosignature/v1\ntime ${T}\n${body}`);
    assert.deepEqual(bytes.subarray(12), sign(null, message, key));
    assert.equal(cosignatureTimestamp(bytes.subarray(4)), T);
  });

  test('the spec example cosignature line has that layout and its time', () => {
    const b = Buffer.from(
      'jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==',
      'base64',
    );
    assert.equal(b.length, 76);
    assert.equal(cosignatureTimestamp(b.subarray(4)), 1679315147);
  });

  test('a cosigned checkpoint opens with the witness key, and the log key still verifies', () => {
    const cosigned = note + cosign(name, seed, body, T);
    const w = parseVerifierKey(cosignatureVerifierKey(name, pub));
    const lv = parseVerifierKey(log.verifierKey());
    assert.deepEqual(openNote(cosigned, [w]).verifiedBy, [name]);
    assert.deepEqual(openNote(cosigned, [lv, w]).verifiedBy, ['pledge.example/log', name]);
    assert.deepEqual(openNote(cosigned, [lv]).verifiedBy, ['pledge.example/log']);
    const sig = openNote(cosigned, [w]).signatures[1]!.sig;
    assert.equal(cosignatureTimestamp(sig), T);
  });

  test('every single-bit change of the cosignature (key id, time, signature) or the body is rejected', () => {
    const w = parseVerifierKey(cosignatureVerifierKey(name, pub));
    const line = cosign(name, seed, body, T);
    const bytes = Buffer.from(line.slice(`— ${name} `.length, -1), 'base64');
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const c = Buffer.from(bytes);
      c[bit >> 3]! ^= 1 << (bit & 7);
      const n = `${body}\n— ${name} ${c.toString('base64')}\n`;
      const want = bit < 32 ? 'log.note_unverified' : 'log.signature_invalid';
      assert.equal(
        code(() => openNote(n, [w])),
        want,
        `bit ${bit}`,
      );
    }
    const bodyBytes = Buffer.from(body);
    for (let bit = 0; bit < bodyBytes.length * 8; bit++) {
      const c = Buffer.from(bodyBytes);
      c[bit >> 3]! ^= 1 << (bit & 7);
      assert.throws(
        () => openNote(`${c.toString('utf8')}\n${line}`, [w]),
        ValidationError,
        `body bit ${bit}`,
      );
    }
    // The same signature with another time does not verify: the time is signed.
    const other = Buffer.from(bytes);
    other.writeBigUInt64BE(BigInt(T + 1), 4);
    assert.equal(
      code(() => openNote(`${body}\n— ${name} ${other.toString('base64')}\n`, [w])),
      'log.signature_invalid',
    );
  });

  test('cosign refuses a bad time, name, seed or body', () => {
    assert.throws(() => cosign(name, seed, body, -1), RangeError);
    assert.throws(() => cosign(name, seed, body, 1.5), RangeError);
    assert.throws(() => cosign('a b', seed, body, T), RangeError);
    assert.throws(() => cosign(name, seed.subarray(1), body, T), RangeError);
    assert.throws(() => cosign(name, seed, 'no newline', T), RangeError);
    assert.throws(() => cosignatureVerifierKey(name, pub.subarray(1)), RangeError);
    assert.equal(cosignatureTimestamp(Buffer.alloc(64)), undefined);
  });
});
