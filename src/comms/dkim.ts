/**
 * DKIM: the keys Pledge signs its mail with, checked at boot, and the signing itself. Every message
 * gets one signature per configured key (RSA-SHA256 with a key of at least 2048 bits, and
 * Ed25519-SHA256 per RFC 8463), each covering the headers a mailbox provider relies on, the
 * List-Unsubscribe pair included (RFC 8058 asks that both be signed). mailauth does the work.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DKIMSignOptions } from 'mailauth';
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

/** The smallest RSA key accepted (RFC 8301 asks verifiers to accept 1024; providers want 2048). */
export const MIN_RSA_BITS = 2048;

/** One signing key. */
export interface DkimKey {
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  selector: string;
  /** PKCS#8 PEM (what mailauth parses). */
  privateKeyPem: string;
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
      privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
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

/**
 * Signs a whole message (CRLF line ends) with every key; returns the message with the
 * DKIM-Signature headers in front. Throws `comms.dkim_failed` when mailauth reports an error, so an
 * unsigned message never leaves.
 */
export async function signMessage(message: Buffer, keys: DkimKeys): Promise<Buffer> {
  const options = {
    signingDomain: keys.domain,
    selector: keys.keys[0]?.selector ?? '',
    privateKey: keys.keys[0]?.privateKeyPem ?? '',
    // mailauth 4.13 reads the list as one colon-separated string (its type says string[]).
    headerList: SIGNED_HEADERS.join(':') as unknown as string[],
    canonicalization: 'relaxed/relaxed',
    signatureData: keys.keys.map((k) => ({
      signingDomain: keys.domain,
      selector: k.selector,
      privateKey: k.privateKeyPem,
      algorithm: k.algorithm,
      canonicalization: 'relaxed/relaxed',
    })),
  } satisfies DKIMSignOptions;
  // Loaded on the first signature: mailauth is a large module tree that a server sending no
  // marketing (or not yet) should not pay for at start.
  const { dkimSign } = await import('mailauth/lib/dkim/sign.js');
  const result = await dkimSign(message, options);
  if (result.errors.length > 0) {
    throw new PledgeError('comms.dkim_failed', 'the message could not be DKIM-signed', {
      details: {
        errors: result.errors.map((e) => {
          const err = (e as { err?: unknown }).err;
          return err instanceof Error ? err.message : 'signing failed';
        }),
      },
    });
  }
  return Buffer.concat([Buffer.from(result.signatures, 'utf8'), message]);
}
