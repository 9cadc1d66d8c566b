/**
 * `pledge render [FILE]`: writes the published privacy policy from a manifest, as Markdown (the
 * default) or as an HTML page, or the record of processing activities (`--format ropa` as HTML,
 * `--format ropa-csv` as CSV). Exit 0 when written, 1 when the manifest is invalid, 2 when it cannot
 * be read or parsed or the output cannot be written.
 */
import { writeFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { loadManifestFile } from '../manifest/manifest.loader.js';
import { renderPolicyHtml, renderPolicyMarkdown } from '../manifest/manifest.renderer.js';
import { renderRopaCsv, renderRopaHtml } from '../manifest/ropa.renderer.js';
import { formatLocation, sortProblems, type ManifestProblem } from '../manifest/problems.js';
import { defaultManifestPath } from './cli.shared.js';

/** The lines `render` and `diff` print for a manifest they cannot use: file:line:column, then the fix. */
export function formatManifestProblems(problems: readonly ManifestProblem[]): string {
  return sortProblems([...problems])
    .flatMap((p) => [
      `${formatLocation(p.location)}: error ${p.code}: ${p.message}`,
      ...(p.hint ? [`    fix: ${p.hint}`] : []),
    ])
    .map((line) => `${line}\n`)
    .join('');
}

interface RenderOptions {
  format: 'md' | 'html' | 'ropa' | 'ropa-csv';
  output?: string;
  stylesheet?: string;
}

/** Registers `pledge render`. */
export function registerRenderCommand(program: Command): void {
  program
    .command('render')
    .description(
      'write the published privacy policy from a manifest (Markdown or HTML), or its record of processing activities (ropa: HTML, ropa-csv: CSV)',
    )
    .argument('[file]', 'the manifest (default: $PLEDGE_MANIFEST or examples/example-online/pledge.yaml)')
    .addOption(
      new Option('--format <format>', 'md, html, ropa or ropa-csv')
        .choices(['md', 'html', 'ropa', 'ropa-csv'])
        .default('md'),
    )
    .option('-o, --output <file>', 'write to this file instead of standard output')
    .option(
      '--stylesheet <href>',
      'for html: where the page links its stylesheet (default: /assets/policy.css)',
    )
    // A usage error (unknown format, missing file) exits 2 like an unreadable manifest: 1 would
    // claim a verdict about a manifest that was never read. Commander itself exits on these.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .action(async (file: string | undefined, opts: RenderOptions) => {
      const target = file ?? defaultManifestPath();
      const loaded = await loadManifestFile(target);
      if (loaded.manifest === undefined) {
        process.stderr.write(formatManifestProblems(loaded.problems));
        const n = loaded.problems.length;
        process.stderr.write(`\n${n} problem${n === 1 ? '' : 's'} in ${target}; nothing rendered\n`);
        process.exitCode = loaded.unreadable ? 2 : 1;
        return;
      }
      const manifest = loaded.manifest;
      const text = (() => {
        switch (opts.format) {
          case 'html':
            return renderPolicyHtml(
              manifest,
              opts.stylesheet === undefined ? {} : { stylesheetHref: opts.stylesheet },
            );
          case 'ropa':
            return renderRopaHtml(manifest);
          case 'ropa-csv':
            return renderRopaCsv(manifest);
          case 'md':
            return renderPolicyMarkdown(manifest);
        }
      })();
      if (opts.output === undefined) {
        process.stdout.write(text);
        return;
      }
      try {
        await writeFile(opts.output, text, 'utf8');
      } catch (err) {
        process.stderr.write(`pledge render: cannot write ${opts.output}: ${(err as Error).message}\n`);
        process.exitCode = 2;
      }
    });
}
