/**
 * A token with one character of its signature changed to another of the same alphabet. The
 * character is taken away from the end: a token's final character may carry unused low bits, so
 * changing it can leave the decoded bytes as they were and the "forged" token valid.
 */
export function forgeSignature(token: string): string {
  const at = token.length - 5;
  const replacement = token[at] === 'a' ? 'b' : 'a';
  return token.slice(0, at) + replacement + token.slice(at + 1);
}
