/**
 * The checks of `pledge check` for the cookie banner and the web system (docs/tracking.md): a
 * `banner:` block only on a `cookie_banner`, asking again after at most 13 months, texts that name
 * only purposes the banner asks about (and say "on until off" where a purpose is opt-out), and
 * exactly one web system, serving the banner's purposes and only cookies and web beacons, for the
 * keyless endpoints to act as. manifest.checker.ts calls it.
 */
import { askedPurposes } from '../tracking/banner.config.js';
import { durationDays } from './duration.js';
import type { Locator } from './manifest.loader.js';
import { consentModes, type Manifest } from './manifest.schema.js';
import type { ManifestPath, ManifestProblem } from './problems.js';

/** The codes these checks report. */
export const BANNER_CHECK_CODES = {
  bannerKind: 'check.banner_kind',
  bannerAskAgain: 'check.banner_ask_again',
  bannerTextsPurpose: 'check.banner_texts_purpose',
  bannerTextsMissing: 'check.banner_texts_missing',
  webSystem: 'check.web_system',
} as const;

/** What European regulators recommend at most before asking again (the CNIL: 13 months). */
const MAX_ASK_AGAIN = 'P13M';
const WEB_SOURCE_KINDS = new Set(['cookie', 'web_beacon']);

/** Every problem of the banner and the web system; never throws. */
export function checkBanner(manifest: Manifest, locator: Locator): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const report = (code: string, path: ManifestPath, message: string, hint: string) =>
    problems.push({ code, message, hint, path, location: locator.locate(path) });

  const webSystems = manifest.systems.flatMap((s, i) => (s.web === true ? [{ system: s, index: i }] : []));
  for (const extra of webSystems.slice(1)) {
    report(
      BANNER_CHECK_CODES.webSystem,
      ['systems', extra.index, 'web'],
      `system "${extra.system.key}" is a second web system; the keyless endpoints act as one (here "${webSystems[0]!.system.key}")`,
      'keep `web: true` on one system and give it every purpose and source of the banner and beacons',
    );
  }
  for (const { system, index } of webSystems) {
    system.sources.forEach((key, j) => {
      const source = manifest.sources.find((s) => s.key === key);
      if (source === undefined || WEB_SOURCE_KINDS.has(source.kind)) return;
      report(
        BANNER_CHECK_CODES.webSystem,
        ['systems', index, 'sources', j],
        `web system "${system.key}" submits to "${key}", a source of kind ${source.kind}: anyone's browser can call the keyless endpoints, so they may collect only through cookie and web_beacon sources`,
        `remove "${key}" here, and let a system with its own API key collect there`,
      );
    });
  }

  manifest.choices.forEach((choice, i) => {
    const banner = choice.banner;
    if (banner === undefined) return;
    if (choice.kind !== 'cookie_banner') {
      report(
        BANNER_CHECK_CODES.bannerKind,
        ['choices', i, 'banner'],
        `choice "${choice.key}" is of kind ${choice.kind}, and only a cookie_banner has a banner: block`,
        'set `kind: cookie_banner`, or remove the banner: block',
      );
      return;
    }
    const days = durationDays(banner.ask_again);
    if (days > durationDays(MAX_ASK_AGAIN) || days < 1) {
      report(
        BANNER_CHECK_CODES.bannerAskAgain,
        ['choices', i, 'banner', 'ask_again'],
        `the banner asks again after ${banner.ask_again}; a choice should be asked again after at most 13 months, and at least a day`,
        `write ask_again: ${MAX_ASK_AGAIN} or less (European regulators recommend at most 13 months)`,
      );
    }
    const asked = askedPurposes(manifest, choice);
    const askedKeys = new Set(asked.map((p) => p.key));
    const optOutSomewhere = asked.filter((p) => Object.values(consentModes(p)).includes('opt_out'));
    for (const [language, texts] of Object.entries(banner.languages)) {
      for (const key of Object.keys(texts.purposes)) {
        if (askedKeys.has(key)) continue;
        report(
          BANNER_CHECK_CODES.bannerTextsPurpose,
          ['choices', i, 'banner', 'languages', language, 'purposes', key],
          `the ${language} texts name "${key}", which the banner does not ask about (it asks about ${[...askedKeys].map((k) => `"${k}"`).join(', ') || 'nothing'})`,
          `remove "${key}" here, or offer it in the choice's purposes (a purpose required everywhere is never asked)`,
        );
      }
      const first = optOutSomewhere[0];
      if (texts.on_until_off === undefined && first !== undefined) {
        report(
          BANNER_CHECK_CODES.bannerTextsMissing,
          ['choices', i, 'banner', 'languages', language],
          `the ${language} texts lack on_until_off, which the dialog shows beside "${first.key}" where it is opt-out`,
          'add on_until_off: (e.g. "On unless you turn it off.") to every language',
        );
      }
    }
    const web = webSystems[0];
    if (web === undefined) {
      report(
        BANNER_CHECK_CODES.webSystem,
        ['choices', i, 'banner'],
        `the cookie banner "${choice.key}" needs a system with \`web: true\`: its choices are recorded as that system, and without one every choice is refused`,
        `declare a system with web: true, purposes: [${[...askedKeys].join(', ')}] and the cookie and web_beacon sources under systems:`,
      );
      return;
    }
    for (const p of asked) {
      if (web.system.purposes.includes(p.key)) continue;
      report(
        BANNER_CHECK_CODES.webSystem,
        ['systems', web.index, 'purposes'],
        `the cookie banner asks about "${p.key}", which web system "${web.system.key}" does not serve, so a "yes" to it is refused`,
        `add "${p.key}" to the purposes of system "${web.system.key}", or stop offering it in the banner`,
      );
    }
  });
  return problems;
}
