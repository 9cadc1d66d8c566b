/**
 * Types of the mailauth 4.13 modules the DKIM signer (dkim.ts) imports by path, which mailauth
 * ships without declarations. Only what dkim.ts uses, as mailauth 4.13.3 defines it.
 */
declare module 'mailauth/lib/tools.js' {
  /** One header field as parsed: its lower-case name, its name as written, the whole field. */
  export interface ParsedHeaderLine {
    key: string | null;
    casedKey: string | undefined;
    line: Buffer;
  }
  /** Splits a header block into fields (folded lines joined). */
  export function parseHeaders(buf: Buffer): { parsed: ParsedHeaderLine[]; original: Buffer };
  /** The fields to sign: `fieldNames` is one colon-separated string. */
  export function getSigningHeaderLines(
    parsedHeaders: ParsedHeaderLine[],
    fieldNames: string,
    verify?: boolean,
  ): { keys: string; headers: ParsedHeaderLine[] };
  /** A DKIM-Signature (or ARC) header field from its tag values, folded when `folded`. */
  export function formatSignatureHeaderLine(
    type: 'DKIM' | 'ARC' | 'AS',
    values: Record<string, string | number | boolean | undefined>,
    folded?: boolean,
  ): string;
}

declare module 'mailauth/lib/dkim/body/index.js' {
  /** A body hasher for a canonicalization ("relaxed" or "simple"). */
  export function dkimBody(
    canonicalization: string,
    hashAlgo: string,
    maxBodyLength: number | false,
  ): { update(chunk: Buffer): void; digest(encoding: 'base64'): string };
}

declare module 'mailauth/lib/dkim/header/index.js' {
  import type { ParsedHeaderLine } from 'mailauth/lib/tools.js';
  /** The canonicalized signed header fields and the tag values of the signature to make. */
  export function generateCanonicalizedHeader(
    type: 'DKIM' | 'ARC',
    signingHeaderLines: { keys: string; headers: ParsedHeaderLine[] },
    options: {
      signingDomain: string;
      selector: string;
      algorithm: string;
      canonicalization: string;
      bodyHash: string;
      signTime?: Date | undefined;
    },
  ): {
    canonicalizedHeader: Buffer;
    signatureHeaderLine: string;
    dkimHeaderOpts: Record<string, string | number>;
  };
}
