/**
 * /pledge.js, built: the browser script of src/tracking/client/ bundled and minified by esbuild,
 * with its CSS and the manifest's banner configuration inlined, and a content hash for the
 * `/pledge.<hash>.js` URL that can be cached for ever.
 *
 * The client is built once per process and the configuration put into it per manifest. Where
 * esbuild and the client's source are at hand (a checkout, the tests) it is built from source;
 * an installed package has neither and reads the copy `npm run build` wrote (scripts/build-client.mjs).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type * as Esbuild from 'esbuild';
import type { BannerConfig } from './banner.contract.js';

/** The identifier in the built client that stands for its configuration. */
export const CONFIG_PLACEHOLDER = '__PLEDGE_CONFIG__';
/** Where `npm run build` writes the client, relative to the package root. */
export const PREBUILT_CLIENT = 'dist/pledge-client.js';
/** What the bundled client is written for: every browser since 2020 (optional chaining, `??`). */
const TARGET = 'es2020';

/** The built script and the hash that names it. */
export interface BannerScriptResult {
  code: string;
  /** SHA-256 of `code`, base64url, 16 characters. */
  hash: string;
}

/** The package root: this module is two folders down, in src/tracking/, dist/tracking/ or dist/cli-bundle/. */
function packageRoot(): string {
  return fileURLToPath(new URL('../..', import.meta.url)).replace(/[\\/]$/, '');
}

/**
 * Bundles the client without its configuration (`__PLEDGE_CONFIG__` stays in the code once).
 * Used here and by scripts/build-client.mjs, so that both builds are the same.
 */
export async function buildClient(esbuild: typeof Esbuild, root: string): Promise<string> {
  const dir = `${root}/src/tracking/client`;
  const css = await esbuild.transform(await readFile(`${dir}/banner.css`, 'utf8'), {
    loader: 'css',
    minify: true,
    target: ['chrome80', 'firefox80', 'safari14'],
  });
  const out = await esbuild.build({
    entryPoints: [`${dir}/main.ts`],
    bundle: true,
    write: false,
    minify: true,
    format: 'iife',
    target: TARGET,
    charset: 'utf8',
    legalComments: 'none',
    // esbuild keeps the space after a custom property's colon (its value is kept verbatim).
    define: { __PLEDGE_CSS__: JSON.stringify(css.code.trim().replace(/(--[\w-]+): /g, '$1:')) },
    logLevel: 'silent',
  });
  const code = out.outputFiles[0]!.text;
  if (code.split(CONFIG_PLACEHOLDER).length !== 2) {
    throw new Error(`the built client must name ${CONFIG_PLACEHOLDER} exactly once`);
  }
  return code;
}

let client: Promise<string> | undefined;

/**
 * The client without its configuration, for the package at `root`: built from source when esbuild
 * and the source are there, else the copy `npm run build` wrote (an installed package has neither).
 */
export async function loadClient(root = packageRoot()): Promise<string> {
  if (existsSync(`${root}/src/tracking/client/main.ts`)) {
    // A variable specifier: the CLI bundle must not try to bundle esbuild, which it may lack.
    const specifier = 'esbuild';
    const esbuild = (await import(specifier).catch(() => undefined)) as typeof Esbuild | undefined;
    if (esbuild !== undefined) return buildClient(esbuild, root);
  }
  return readFile(`${root}/${PREBUILT_CLIENT}`, 'utf8');
}

/**
 * The script for one manifest's banner configuration. Builds the client on the first call of the
 * process (a few hundred milliseconds); call it once per manifest version, never per request.
 */
export async function buildBannerScript(config: BannerConfig): Promise<BannerScriptResult> {
  client ??= loadClient();
  let base: string;
  try {
    base = await client;
  } catch (err) {
    client = undefined;
    throw err;
  }
  // A function replacement: "$" in the configuration's texts must not be read as a pattern.
  const code = base.replace(CONFIG_PLACEHOLDER, () => JSON.stringify(config));
  return { code, hash: createHash('sha256').update(code).digest('base64url').slice(0, 16) };
}
