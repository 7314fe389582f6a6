// Starting and stopping `beffroi demo` for the browser tests: one demo per test file, in a fresh
// temporary directory, on a free port, with the one-time passwords it prints.

import { spawn } from 'node:child_process';
import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The server binary: E2E_BEFFROI_BINARY, or ../../target/debug/beffroi from tests/e2e. */
export const BEFFROI_BINARY = process.env.E2E_BEFFROI_BINARY
  ? resolve(process.env.E2E_BEFFROI_BINARY)
  : resolve(E2E_DIR, '../../target/debug/beffroi');

/** How long a server may take to print its start-up banner (a debug build on a busy machine). */
export const STARTUP_TIMEOUT_MS = 60_000;

// What the demo prints, one line each; start-up is done once every one of them is there.
const BANNER = {
  url: /^\s*URL:\s+(https:\/\/\S+?)\/?\s*$/m,
  admin: /^\s*One-time password:\s+(\S+)\s*$/m,
  auditor: /^\s*Auditor one-time pass\.:\s+(\S+)\s*$/m,
  agent: /^\s*Agent one-time pass\.:\s+(\S+)\s*$/m,
  editor: /^\s*Editor one-time pass\.:\s+(\S+)\s*$/m,
  dataDir: /^\s*Data directory:\s+(\S+)\s*$/m,
};

/** Fails early, with the fix, when the binary has not been built. */
export async function assertBinaryExists() {
  await access(BEFFROI_BINARY, constants.X_OK).catch(() => {
    throw new Error(`${BEFFROI_BINARY} is missing or not executable: run \`cargo build --bin beffroi\` or set E2E_BEFFROI_BINARY`);
  });
}

/** Stops a child with SIGTERM (SIGKILL after 10 s) and waits for it to exit. */
export async function stopProcess(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts `beffroi demo` in a new temporary directory (named after `label`) and resolves once it
 * has printed its URL, one-time passwords and data directory:
 *   { base, passwords: { admin, auditor, agent, editor }, workDir, dataDir, output, stop() }
 * `base` has no trailing slash; `stop()` stops the server and removes the directory.
 */
export async function startDemo(label) {
  await assertBinaryExists();
  const workDir = await mkdtemp(join(tmpdir(), `beffroi-e2e-${label}-`));
  const dir = join(workDir, 'demo');
  const child = spawn(BEFFROI_BINARY, ['demo', '--dir', dir, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Never leave the server running if the test process is torn down abruptly.
  const killOnExit = () => { if (child.exitCode === null) child.kill('SIGKILL'); };
  process.on('exit', killOnExit);
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { output.stderr += chunk; });

  const stop = async () => {
    await stopProcess(child);
    process.off('exit', killOnExit);
    await rm(workDir, { recursive: true, force: true });
  };

  const banner = new Promise((resolvePromise, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`beffroi demo did not start: ${why}\n` +
        `--- command: ${BEFFROI_BINARY} demo --dir ${dir} --listen 127.0.0.1:0\n` +
        `--- stdout:\n${output.stdout}\n--- stderr:\n${output.stderr}`));
    };
    const timer = setTimeout(() => fail(`no URL and passwords on stdout after ${STARTUP_TIMEOUT_MS / 1000} s`),
      STARTUP_TIMEOUT_MS);
    child.stdout.on('data', (chunk) => {
      output.stdout += chunk;
      const found = Object.fromEntries(Object.entries(BANNER).map(([k, re]) => [k, re.exec(output.stdout)?.[1]]));
      if (Object.values(found).every(Boolean)) {
        clearTimeout(timer);
        resolvePromise(found);
      }
    });
    child.on('error', (e) => fail(e.message));
    // Give stderr a moment to drain so that the error shows why it stopped.
    child.on('exit', (code, signal) => setTimeout(() => fail(`exited early (code ${code}, signal ${signal})`), 100));
  });

  let found;
  try {
    found = await banner;
  } catch (e) {
    await stop();
    throw e;
  }
  const { url, dataDir, ...passwords } = found;
  return { base: url, passwords, workDir, dataDir, output, child, stop };
}
