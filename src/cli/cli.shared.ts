/** Small pieces every CLI command shares. */
import { DEFAULT_MANIFEST } from '../platform/config.js';

/** The manifest a command reads when none is named: $PLEDGE_MANIFEST, else the example. */
export function defaultManifestPath(): string {
  return process.env.PLEDGE_MANIFEST ?? DEFAULT_MANIFEST;
}
