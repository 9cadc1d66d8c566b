/**
 * What the tests and the bench of the web endpoints (banner, beacons) send as a visitor's browser;
 * no side effects at import.
 */

/** The example manifest's site (examples/example-online), an origin listed in PLEDGE_SITE_ORIGINS. */
export const EXAMPLE_SITE = 'https://www.example-online.test';

/** A desktop Chrome's user agent: a person's browser, which the bot check lets through. */
export const DESKTOP_CHROME_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
