#!/usr/bin/env node
// The installed `pledge` command runs the bundled CLI (dist/cli-bundle/, built by `npm install`
// through the `prepare` script). In a checkout without a build it falls back to the TypeScript
// sources through tsx (a development dependency).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bundled = new URL('../dist/cli-bundle/run.js', import.meta.url);
if (existsSync(fileURLToPath(bundled))) {
  await import(bundled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/cli/run.ts', import.meta.url).href);
}
