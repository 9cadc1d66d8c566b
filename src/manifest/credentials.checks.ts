/**
 * The check of `pledge check` for the built-in credentials rule (credentials.ts): no purpose,
 * recipient or system may name a credentials category (or one under it) among what it uses or
 * receives, since a credential is kept only as a verifier that nothing reads back. A broad parent
 * (`user`) is not refused: it covers credentials, but gives none. A collection point may still
 * pass a credential through to a recipient at collection (`pass_through`), as card numbers are.
 * manifest.checker.ts calls it.
 */
import { CREDENTIALS_RULE, isCredentialCategory } from './credentials.js';
import type { Locator } from './manifest.loader.js';
import type { Manifest } from './manifest.schema.js';
import type { ManifestPath, ManifestProblem } from './problems.js';

/** The codes this check reports. */
export const CREDENTIALS_CHECK_CODES = {
  credentialsReadable: 'check.credentials_readable',
} as const;

/** What a purpose, recipient or system declares it uses: categories, or pairs that carry some. */
interface Declares {
  key: string;
  categories?: readonly string[] | undefined;
  declarations?: ReadonlyArray<{ categories?: readonly string[] | undefined }> | undefined;
}

/** Refuses every credentials category named where data is used or shared; never throws. */
export function checkCredentials(manifest: Manifest, locator: Locator): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const walk = (what: 'purpose' | 'recipient' | 'system', list: string, items: readonly Declares[]) => {
    items.forEach((item, i) => {
      // In the declaration form the listed categories are the pairs' (the schema's transform fills
      // `categories` from them): report where the file says it.
      const places: Array<{ path: ManifestPath; categories: readonly string[] }> =
        item.declarations !== undefined
          ? item.declarations.map((d, k) => ({
              path: [list, i, 'declarations', k, 'categories'],
              categories: d.categories ?? [],
            }))
          : [{ path: [list, i, 'categories'], categories: item.categories ?? [] }];
      for (const place of places) {
        place.categories.forEach((c, j) => {
          if (!isCredentialCategory(c)) return;
          const path = [...place.path, j];
          problems.push({
            code: CREDENTIALS_CHECK_CODES.credentialsReadable,
            message: `${what} "${item.key}" names "${c}", a credentials category, which breaks the built-in rule ${CREDENTIALS_RULE}: credentials are kept only as verifiers, and no ${what} is given them back`,
            hint:
              what === 'recipient'
                ? `remove "${c}" here; to hand a credential to this recipient, pass it through at collection (pass_through: [{ category: ${c}, recipient: ${item.key} }]), never from storage`
                : `remove "${c}" here; a system checks a person's secret with POST /api/v1/subjects/:id/credentials/verify (docs/vault.md)`,
            path,
            location: locator.locate(path),
          });
        });
      }
    });
  };
  walk('purpose', 'purposes', manifest.purposes);
  walk('recipient', 'recipients', manifest.recipients);
  const systems = (manifest as { systems?: readonly Declares[] }).systems;
  if (systems !== undefined) walk('system', 'systems', systems);
  return problems;
}
