/**
 * The one check of an e-mail address, shared by every place that takes one (collection fields of
 * the e-mail category, the consent pages' link forms, the vault's identifiers, the suppression list,
 * the configuration). An address goes into SMTP envelopes, headers and links: a control character,
 * a line break, an angle bracket, a quote or a space in it could end a header or a command and
 * start another, so only the unquoted form RFC 5321 §4.1.2 defines is taken: a Dot-string local part
 * (atoms of `atext` joined by single dots) "@" a domain of LDH labels, with the UTF-8 letters RFC
 * 6531 (SMTPUTF8) adds to both. Quoted local parts and address literals (`[192.0.2.1]`) are refused:
 * no mailbox people type needs them, and they are where such characters would hide.
 */

/** `atext` (RFC 5322 §3.2.3) and, for RFC 6531, any non-ASCII character that is not a control, format or space one. */
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]|[^\\p{C}\\p{Z}\\x00-\\x7f]";
const ATOM = `(?:${ATEXT})+`;
const LOCAL_PART = new RegExp(`^${ATOM}(?:\\.${ATOM})*$`, 'u');
/** A label: letters, digits (any script, with their combining marks) and inner hyphens. */
const LABEL = /^[\p{L}\p{N}](?:[\p{L}\p{N}\p{M}-]*[\p{L}\p{N}\p{M}])?$/u;

/** RFC 5321 §4.5.3.1: local part 64 octets, domain 255, label 63; a path 256 with its brackets. */
const MAX_LOCAL_OCTETS = 64;
const MAX_DOMAIN_OCTETS = 255;
const MAX_LABEL_OCTETS = 63;
const MAX_ADDRESS_OCTETS = 254;

const octets = (text: string): number => Buffer.byteLength(text, 'utf8');

/**
 * True when `address` is a mailbox as RFC 5321 writes it unquoted (see the module comment), with a
 * domain of at least two labels. The text is taken as it is: callers trim and normalize first.
 */
export function isMailboxAddress(address: string): boolean {
  if (octets(address) > MAX_ADDRESS_OCTETS) return false;
  const at = address.lastIndexOf('@');
  if (at <= 0) return false;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (octets(local) > MAX_LOCAL_OCTETS || !LOCAL_PART.test(local)) return false;
  if (octets(domain) > MAX_DOMAIN_OCTETS) return false;
  const labels = domain.split('.');
  if (labels.length < 2) return false;
  return labels.every((label) => octets(label) <= MAX_LABEL_OCTETS && LABEL.test(label));
}
