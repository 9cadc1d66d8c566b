#!/usr/bin/env node
// Builds the browser script of /pledge.js (src/tracking/client/) into dist/pledge-client.js, for an
// installed package, which has neither esbuild (a devDependency) nor the client's source: the server
// reads this copy and puts each manifest's configuration into it. Runs after tsc, with the same
// build function the server uses from source (dist/tracking/banner.bundle.js).
import { writeFileSync } from 'node:fs';
import * as esbuild from 'esbuild';
import { buildClient, PREBUILT_CLIENT } from '../dist/tracking/banner.bundle.js';

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
writeFileSync(`${root}/${PREBUILT_CLIENT}`, await buildClient(esbuild, root));
