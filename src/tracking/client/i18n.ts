/** The banner's language: the browser's first preferred language the manifest has texts for. */

/** The first of navigator.languages whose primary tag has texts, else the first language given. */
export function pickLanguage(languages: string[]): string {
  for (const tag of navigator.languages || [navigator.language]) {
    const primary = tag.split('-')[0]!.toLowerCase();
    if (languages.includes(primary)) return primary;
  }
  return languages[0]!;
}
