/**
 * DKIM: the keys Pledge signs its mail with, checked at boot, and the signing itself. Every message
 * gets one signature per configured key (RSA-SHA256 with a key of at least 2048 bits, and
 * Ed25519-SHA256 per RFC 8463), each covering the headers a mailbox provider relies on, the
 * List-Unsubscribe pair included (RFC 8058 asks that both be signed), and names the headers of
 * {@link OVERSIGNED_HEADERS} once more than the message has them, so that a copy of one added on
 * the way (a second From or Subject, another List-Unsubscribe) breaks the signature. mailauth
 * canonicalizes and formats; the keys are parsed once.
 */
import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type * as MailauthBody from 'mailauth/lib/dkim/body/index.js';
import type * as MailauthHeader from 'mailauth/lib/dkim/header/index.js';
import type * as MailauthTools from 'mailauth/lib/tools.js';
import type { Config } from '../platform/config.js';
import { ConfigError, PledgeError } from '../platform/errors.js';

/** The headers every signature covers (h=), in this order. */
export const SIGNED_HEADERS = [
  'From',
  'Subject',
  'Date',
  'Message-ID',
  'To',
  'List-Unsubscribe',
  'List-Unsubscribe-Post',
  'List-Id',
  'MIME-Version',
  'Content-Type',
] as const;

/**
 * Headers over-signed (RFC 6376 section 8.15): h= names each once more than the message holds it.
 * A verifier takes an h= name with no instance left as the empty string, so the signature holds as
 * sent and fails once anyone adds one. Service mail, which has no List-Unsubscribe, signs that there
 * is none.
 */
export const OVERSIGNED_HEADERS = ['From', 'Subject', 'List-Unsubscribe', 'List-Unsubscribe-Post'] as const;

/** The smallest RSA key accepted (RFC 8301 asks verifiers to accept 1024; providers want 2048). */
export const MIN_RSA_BITS = 2048;

/** One signing key. */
export interface DkimKey {
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  selector: string;
  /** The private key, parsed once (parsing a PEM key costs more than an RSA signature). */
  privateKey: KeyObject;
  /** The TXT record to publish at `<selector>._domainkey.<domain>`. */
  dnsRecord: string;
}

/** The keys and the signing domain (d=). */
export interface DkimKeys {
  domain: string;
  keys: DkimKey[];
}

/**
 * Loads and checks the DKIM keys of the configuration: each given as PEM text or a file path; the
 * RSA key must be RSA of at least {@link MIN_RSA_BITS} bits and the Ed25519 key Ed25519. Returns
 * `undefined` when no key is configured. Throws one {@link ConfigError} listing every problem.
 */
export function loadDkimKeys(dkim: Config['dkim'], defaultDomain: string | undefined): DkimKeys | undefined {
  const problems: string[] = [];
  const keys: DkimKey[] = [];
  const load = (
    variable: string,
    raw: string | undefined,
    want: 'rsa' | 'ed25519',
    selector: string,
  ): void => {
    if (raw === undefined) return;
    let text = raw;
    if (!raw.includes('-----BEGIN')) {
      try {
        text = readFileSync(raw, 'utf8');
      } catch (err) {
        problems.push(
          `${variable} is neither a PEM key nor a readable file: ${(err as Error).message}; give the PEM text or the path of a file holding it`,
        );
        return;
      }
    }
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: text, format: 'pem' });
    } catch (err) {
      problems.push(
        `${variable} is not a PEM private key (${(err as Error).message}); see docs/mail.md for how to make one with openssl`,
      );
      return;
    }
    if (key.asymmetricKeyType !== want) {
      problems.push(
        `${variable} must be an ${want === 'rsa' ? 'RSA' : 'Ed25519'} private key, got a ${String(key.asymmetricKeyType)} key`,
      );
      return;
    }
    if (want === 'rsa') {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) {
        problems.push(
          `${variable} is a ${bits}-bit RSA key; DKIM keys must have at least ${MIN_RSA_BITS} bits (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048)`,
        );
        return;
      }
    }
    keys.push({
      algorithm: want === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256',
      selector,
      privateKey: key,
      dnsRecord: dkimDnsRecord(createPublicKey(key)),
    });
  };
  load('PLEDGE_DKIM_RSA_KEY', dkim.rsaKey, 'rsa', dkim.rsaSelector);
  load('PLEDGE_DKIM_ED25519_KEY', dkim.ed25519Key, 'ed25519', dkim.ed25519Selector);
  const domain = dkim.domain ?? defaultDomain;
  if (keys.length > 0 && domain === undefined) {
    problems.push('PLEDGE_DKIM_DOMAIN (or PLEDGE_MAIL_DOMAIN) must be set to sign mail');
  }
  if (dkim.rsaKey === undefined && dkim.ed25519Key !== undefined) {
    problems.push(
      'PLEDGE_DKIM_ED25519_KEY is set without PLEDGE_DKIM_RSA_KEY: many receivers do not verify Ed25519 yet, so an RSA signature must come with it',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  if (keys.length === 0 || domain === undefined) return undefined;
  return { domain, keys };
}

/** The DKIM TXT record of a public key: `v=DKIM1; k=rsa; p=…` (Ed25519: the raw 32 bytes, RFC 8463). */
export function dkimDnsRecord(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  if (publicKey.asymmetricKeyType === 'ed25519') {
    return `v=DKIM1; k=ed25519; p=${der.subarray(der.length - 32).toString('base64')}`;
  }
  return `v=DKIM1; k=rsa; p=${der.toString('base64')}`;
}

/** The parts of mailauth the signer uses: its canonicalization and its header formatting. */
interface MailauthSigning {
  parseHeaders: typeof MailauthTools.parseHeaders;
  getSigningHeaderLines: typeof MailauthTools.getSigningHeaderLines;
  formatSignatureHeaderLine: typeof MailauthTools.formatSignatureHeaderLine;
  dkimBody: typeof MailauthBody.dkimBody;
  generateCanonicalizedHeader: typeof MailauthHeader.generateCanonicalizedHeader;
}

// Loaded on the first signature (mailauth is a large module tree that a server sending no marketing,
// or not yet, should not pay for at start), and only once: an `import()` per message costs a
// module-resolution round trip each time.
let mailauthSigning: Promise<MailauthSigning> | undefined;
function loadMailauth(): Promise<MailauthSigning> {
  return (mailauthSigning ??= Promise.all([
    import('mailauth/lib/tools.js'),
    import('mailauth/lib/dkim/body/index.js'),
    import('mailauth/lib/dkim/header/index.js'),
  ]).then(([tools, body, header]) => ({
    parseHeaders: tools.parseHeaders,
    getSigningHeaderLines: tools.getSigningHeaderLines,
    formatSignatureHeaderLine: tools.formatSignatureHeaderLine,
    dkimBody: body.dkimBody,
    generateCanonicalizedHeader: header.generateCanonicalizedHeader,
  })));
}

/** Options of {@link signMessage}. */
export interface SignMessageOptions {
  /** The signature time (t=); now when absent. */
  signTime?: Date | undefined;
}

/**
 * Signs a whole message (CRLF line ends) with every key; returns the message with the
 * DKIM-Signature headers in front, in the order of the keys. Throws `comms.dkim_failed` when a
 * signature cannot be made, so an unsigned message never leaves.
 *
 * mailauth's `dkimSign` does what this does, byte for byte but for the over-signed names in h= (a
 * test holds the two to that), but parses the PEM key again for every signature, which costs more than the RSA signature itself; and
 * it streams a message that is already in memory. So the same mailauth steps are taken here in
 * order (its header parser, relaxed header and body canonicalization, DKIM-Signature formatting)
 * with the keys parsed once, at boot, by {@link loadDkimKeys}.
 */
export async function signMessage(
  message: Buffer,
  keys: DkimKeys,
  options: SignMessageOptions = {},
): Promise<Buffer> {
  const m = await loadMailauth();
  try {
    // As mailauth's parser: bare LF counts as CRLF for the hashes (the message is sent unchanged).
    const canonical = hasBareLf(message)
      ? Buffer.from(message.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1')
      : message;
    const end = canonical.indexOf('\r\n\r\n');
    if (end < 0) throw new Error('the message has no body');
    const headers = m.parseHeaders(canonical.subarray(0, end + 4));
    const signed = m.getSigningHeaderLines(headers.parsed, SIGNED_HEADERS_LIST);
    // The extra names add nothing to the hash now (no instance is left for them), only to h=.
    const signingHeaderLines = { ...signed, keys: [signed.keys, ...OVERSIGNED_HEADERS].join(': ') };
    const body = m.dkimBody('relaxed', 'sha256', false);
    body.update(canonical.subarray(end + 4));
    const bodyHash = body.digest('base64');
    // One t= for every signature, given (mailauth would otherwise read the clock twice a signature,
    // and a second ticking over in between would break it).
    const signTime = options.signTime ?? new Date();
    const lines = keys.keys.map((key) => {
      const { canonicalizedHeader, dkimHeaderOpts } = m.generateCanonicalizedHeader(
        'DKIM',
        signingHeaderLines,
        {
          signingDomain: keys.domain,
          selector: key.selector,
          algorithm: key.algorithm,
          canonicalization: 'relaxed/relaxed',
          bodyHash,
          signTime,
        },
      );
      // RSA signs the header with SHA-256; Ed25519 signs its SHA-256 digest (RFC 8463).
      const signature =
        key.algorithm === 'rsa-sha256'
          ? sign('rsa-sha256', canonicalizedHeader, key.privateKey)
          : sign(null, createHash('sha256').update(canonicalizedHeader).digest(), key.privateKey);
      return m.formatSignatureHeaderLine(
        'DKIM',
        { ...dkimHeaderOpts, b: signature.toString('base64') },
        true,
      );
    });
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8'), message]);
  } catch (err) {
    throw new PledgeError('comms.dkim_failed', 'the message could not be DKIM-signed', {
      details: { errors: [err instanceof Error ? err.message : 'signing failed'] },
    });
  }
}

/** The signed header list as mailauth reads it: one colon-separated string. */
const SIGNED_HEADERS_LIST = SIGNED_HEADERS.join(':');

function hasBareLf(message: Buffer): boolean {
  for (let i = message.indexOf(0x0a); i >= 0; i = message.indexOf(0x0a, i + 1)) {
    if (i === 0 || message[i - 1] !== 0x0d) return true;
  }
  return false;
}
