/**
 * `pledge audit verify`: recomputes the transparency log's tree from the database and checks it
 * against every stored checkpoint and every checkpoint kept outside the database (the checkpoint
 * file), naming the first bad index. `pledge audit verify-proof`: checks an inclusion or consistency
 * proof (the JSON the proof API answers) against signed checkpoints and the log's public key, with
 * no database. `pledge audit public-key`: the log's C2SP verifier key, to publish.
 *
 * Exit codes of `verify`: 0 every entry verified against an external checkpoint; 1 invalid
 * configuration or unreachable database; 2 nothing wrong, but entries after the last external
 * checkpoint are not yet verifiable (run again after the next checkpoint); 3 the log is not what was
 * signed (the first bad index is named). `verify-proof`: 0 the proof holds, 1 bad input, 3 it does not.
 */
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { loadConfig, type Config } from '../platform/config.js';
import { createContext } from '../platform/context.js';
import { PledgeError, ValidationError } from '../platform/errors.js';
import type { VerifyLogResult } from '../audit/log.verify.js';
import type { NoteVerifier } from '../audit/note.js';
import { addDataDirOption, runWithDatabase, type DatabaseCommandOptions } from './migrate.command.js';
import { cliUser } from './keys.command.js';

/** Exit code: nothing wrong, but entries after the last external checkpoint are not yet verifiable. */
export const EXIT_NOT_YET_VERIFIABLE = 2;
/** Exit code: the log (or a proof) is not what was signed. */
export const EXIT_TAMPERED = 3;

interface VerifyOptions extends DatabaseCommandOptions {
  key?: string[];
  checkpoints?: string;
  format: 'text' | 'json';
}

interface VerifyProofOptions {
  proof: string;
  checkpoint: string[];
  key: string;
  entry?: string;
  format: 'text' | 'json';
}

/** Registers `pledge audit` and its subcommands. */
export function registerAuditCommand(program: Command): void {
  const audit = program.command('audit').description('the transparency log: verify it, its proofs, its key');
  const formatOption = () =>
    new Option('--format <format>', 'output format').choices(['text', 'json']).default('text');

  addDataDirOption(
    audit
      .command('verify')
      .description(
        'recompute the log from the database and check it against every stored and every external checkpoint',
      )
      .option(
        '--key <vkey...>',
        "the log's verifier key(s) as published (default: derived from this deployment's keys)",
      )
      .option(
        '--checkpoints <file>',
        'the checkpoint file kept outside the database (default: $PLEDGE_LOG_CHECKPOINT_FILE)',
      )
      .addOption(formatOption()),
  ).action(async (options: VerifyOptions) => {
    await runWithDatabase(options, async (database) => {
      const config = loadConfig(process.env, { dataDir: options.dataDir });
      const [{ LogVerifyRepository }, { storedLogSource, verifyLog }, { parseCheckpointFile }] =
        await Promise.all([
          import('../audit/log.verify.repository.js'),
          import('../audit/log.verify.js'),
          import('../audit/log.publisher.js'),
        ]);
      const verifiers = await logVerifiers(config, options.key);
      const file = options.checkpoints ?? config.logCheckpointFile;
      const externalText = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return '';
        throw new ValidationError('audit.checkpoint_file_unreadable', `cannot read ${file}: ${err.message}`);
      });
      let parsed: ReturnType<typeof parseCheckpointFile>;
      try {
        parsed = parseCheckpointFile(externalText);
      } catch (err) {
        throw new ValidationError(
          'audit.checkpoint_file_invalid',
          `${file} is not a checkpoint file (JSON Lines): ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      const ctx = createContext({ kind: 'cli', id: cliUser() });
      const source = await storedLogSource(ctx, new LogVerifyRepository(database.db), {
        origin: config.logOrigin,
        verifiers,
        externalCheckpoints: parsed.lines.map((l) => l.note),
      });
      const result = await verifyLog(source);
      if (options.format === 'json')
        process.stdout.write(
          `${JSON.stringify({ ...result, checkpointFile: file, cutShortLine: parsed.truncated }, null, 2)}\n`,
        );
      else process.stdout.write(formatVerify(result, file, parsed.truncated));
      process.exitCode = exitCodeOf(result);
    });
  });

  audit
    .command('verify-proof')
    .description(
      'check an inclusion or consistency proof against signed checkpoints and the public key (no database)',
    )
    .requiredOption('--proof <file>', 'the proof as the API answered it (JSON)')
    .requiredOption(
      '--checkpoint <file...>',
      'the signed checkpoint (note) the proof is for; a consistency proof takes the old one and the new one',
    )
    .requiredOption('--key <vkey>', "the log's verifier key (`pledge audit public-key`)")
    .option('--entry <file>', "the entry's bytes, for an inclusion proof (default: the entry in the proof)")
    .addOption(formatOption())
    .action(async (options: VerifyProofOptions) => {
      try {
        const { verifyProofFiles } = await import('../audit/log.proof-verify.js');
        const read = (f: string) =>
          readFile(f).catch((err: NodeJS.ErrnoException) => {
            throw new ValidationError('audit.file_unreadable', `cannot read ${f}: ${err.message}`);
          });
        const result = verifyProofFiles({
          proof: (await read(options.proof)).toString('utf8'),
          checkpoints: await Promise.all(
            options.checkpoint.map(async (f) => (await read(f)).toString('utf8')),
          ),
          key: options.key,
          ...(options.entry !== undefined ? { entry: await read(options.entry) } : {}),
        });
        if (options.format === 'json') process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else process.stdout.write(`${result.ok ? 'OK' : 'FAILED'}: ${result.message}\n`);
        process.exitCode = result.ok ? 0 : EXIT_TAMPERED;
      } catch (err) {
        if (!(err instanceof PledgeError)) throw err;
        process.stderr.write(`error: ${err.message}\n`);
        process.exitCode = 1;
      }
    });

  audit
    .command('public-key')
    .description("print the log's verifier key (C2SP signed-note), to publish beside the log")
    .option('--data-dir <dir>', 'directory of the key file (default: $PLEDGE_DATA_DIR or ./data)')
    .action(async (options: { dataDir?: string }) => {
      try {
        const config = loadConfig(process.env, { dataDir: options.dataDir });
        const [{ Keyring }, { keyFileDirOf }, { checkpointSigner }] = await Promise.all([
          import('../vault/keyring.js'),
          import('../vault/keystore.js'),
          import('../audit/log.integrator.js'),
        ]);
        const keyring = await Keyring.load({ dataDir: keyFileDirOf(config), envKeys: config.keys });
        process.stdout.write(
          `${checkpointSigner(config.logOrigin, keyring.use('log_checkpoints')).verifierKey()}\n`,
        );
      } catch (err) {
        if (!(err instanceof PledgeError)) throw err;
        process.stderr.write(`error: ${err.message}\n`);
        process.exitCode = 1;
      }
    });
}

/**
 * The verifiers checkpoints are checked with: the keys given, else one per version of this
 * deployment's `log_checkpoints` key (a rotated key still verifies what it signed).
 */
async function logVerifiers(config: Config, keys: readonly string[] | undefined): Promise<NoteVerifier[]> {
  const { parseVerifierKey } = await import('../audit/note.js');
  if (keys !== undefined && keys.length > 0)
    return keys.map((k) => {
      try {
        return parseVerifierKey(k);
      } catch (err) {
        throw new ValidationError(
          'audit.key_invalid',
          `--key ${k} is not a note verifier key (name+hexid+base64): ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    });
  const [{ Keyring }, { keyFileDirOf }, { checkpointSigner }, { UseKeys }] = await Promise.all([
    import('../vault/keyring.js'),
    import('../vault/keystore.js'),
    import('../audit/log.integrator.js'),
    import('../vault/use-keys.js'),
  ]);
  const keyring = await Keyring.load({ dataDir: keyFileDirOf(config), envKeys: config.keys });
  return keyring
    .use('log_checkpoints')
    .versions()
    .map((v) =>
      parseVerifierKey(checkpointSigner(config.logOrigin, new UseKeys('log_checkpoints', [v])).verifierKey()),
    );
}

function exitCodeOf(result: VerifyLogResult): number {
  if (!result.ok) return EXIT_TAMPERED;
  return result.notYetVerifiable > 0 ? EXIT_NOT_YET_VERIFIABLE : 0;
}

function formatVerify(result: VerifyLogResult, file: string, cutShort: boolean): string {
  const out = [
    `log: ${result.entries} entries, ${result.storedCheckpoints} stored checkpoints, ${result.externalCheckpoints} external checkpoints (${file})`,
  ];
  if (result.externalCheckpoints === 0)
    out.push(
      `note: ${file} holds no checkpoint (missing or empty), so nothing can be verified against one kept outside the database; point --checkpoints at the file or copy the server's`,
    );
  if (cutShort)
    out.push(`note: the last line of ${file} is cut short (a write interrupted by a crash); it is ignored`);
  if (result.ok) {
    out.push(
      result.verifiedSize > 0
        ? `verified: leaves 0 to ${result.verifiedSize - 1} match the signed external checkpoint of size ${result.verifiedSize}`
        : 'verified: nothing yet (no external checkpoint)',
    );
  } else {
    out.push(`FAILED: first bad index ${String(result.firstBadIndex ?? 'unknown')}`);
    for (const p of result.problems) out.push(`  ${p.code}: ${p.message}`);
    out.push(
      result.verifiedSize > 0
        ? `verified before it: leaves 0 to ${result.verifiedSize - 1} (external checkpoint of size ${result.verifiedSize})`
        : 'verified before it: nothing',
    );
  }
  if (result.notYetVerifiable > 0)
    out.push(
      `not yet verifiable: ${result.notYetVerifiable} entries (from index ${result.lastExternalSize}) after the last external checkpoint`,
    );
  return `${out.join('\n')}\n`;
}
