/**
 * The built-in rule on credentials: a value of a credentials category (a password, a recovery code,
 * a key) is kept only as a verifier, so no purpose, system or recipient may be given it back. The
 * vault stores such fields as argon2id verifiers and the use gate never opens them; `pledge check`
 * refuses a manifest that names one where data is used or shared (docs/vault.md, "Credentials").
 */
import { coversCategory } from './taxonomy.js';

/** The category whose values (and whose descendants' values) are kept only as verifiers. */
export const CREDENTIALS_CATEGORY = 'user.authorization.credentials';

/**
 * Every category kept only as a verifier: Pledge's credentials and fideslang's password, which a
 * data map brought from Fides names instead. (Pledge's taxonomy had no password category before
 * verifiers, so no stored value of it predates them: `rehash-credentials` walks credentials only.)
 */
export const VERIFIER_CATEGORIES: readonly string[] = [CREDENTIALS_CATEGORY, 'user.authorization.password'];

/** The name `pledge check` gives the rule when it refuses a manifest. */
export const CREDENTIALS_RULE = 'credentials-verifier-only';

/**
 * True when `category` is the credentials category or one of its descendants. A broad parent
 * (`user`, `user.authorization`) is not: it covers credentials, but a verifier is never readable,
 * so naming the parent gives nothing back.
 */
export function isCredentialCategory(category: string): boolean {
  // Every field of every write asks this: a prefix test first, the exact rule only for a match.
  return category.startsWith(AUTHORIZATION) && VERIFIER_CATEGORIES.some((c) => coversCategory(c, category));
}

const AUTHORIZATION = 'user.authorization.';
