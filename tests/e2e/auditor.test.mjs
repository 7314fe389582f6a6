// End-to-end journey of the demo auditor ("auditrice") through a real browser: sign in with the
// one-time password `beffroi demo` prints, open the audit log from the navigation, filter by
// action, check the results and run axe (WCAG 2.1 A + AA) at desktop size and at 360 px, then
// download the JSONL export and have the independent verifier (audit/verify.py) accept it.
// The break-glass administrator, who is not an auditor, is refused.
//
//   cd tests/e2e && npm ci && node --test auditor.test.mjs
//
// Environment: E2E_BEFFROI_BINARY, CHROMIUM_PATH (as journey.test.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { access, constants, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.E2E_BEFFROI_BINARY
  ? resolve(process.env.E2E_BEFFROI_BINARY)
  : resolve(HERE, '../../target/debug/beffroi');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const VERIFY_PY = resolve(HERE, '../../audit/verify.py');
const ARTEFACTS = join(HERE, 'artefacts');
const STARTUP_TIMEOUT_MS = 60_000;
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const NEW_PASSWORD = 'beffroi-e2e-Registre-2024';

let server;
let workDir;
let dataDir;
let base;
let passwords;     // { admin, auditor }
let browser;
let context;
let page;

/** Starts `beffroi demo`; resolves with the URL, both one-time passwords and the data directory. */
function startDemo(dir) {
  const child = spawn(BIN, ['demo', '--dir', dir, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { output.stderr += chunk; });
  const ready = new Promise((resolvePromise, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`beffroi demo did not start: ${why}\n--- stdout:\n${output.stdout}\n--- stderr:\n${output.stderr}`));
    };
    const timer = setTimeout(() => fail('no URL and passwords on stdout in time'), STARTUP_TIMEOUT_MS);
    child.stdout.on('data', (chunk) => {
      output.stdout += chunk;
      const url = /^\s*URL:\s+(https:\/\/\S+?)\/?\s*$/m.exec(output.stdout);
      const admin = /^\s*One-time password:\s+(\S+)\s*$/m.exec(output.stdout);
      const auditor = /^\s*Auditor one-time pass\.:\s+(\S+)\s*$/m.exec(output.stdout);
      const data = /^\s*Data directory:\s+(\S+)\s*$/m.exec(output.stdout);
      if (url && admin && auditor && data) {
        clearTimeout(timer);
        resolvePromise({ url: url[1], admin: admin[1], auditor: auditor[1], data: data[1] });
      }
    });
    child.on('error', (e) => fail(e.message));
    child.on('exit', (code, signal) => setTimeout(() => fail(`exited early (code ${code}, signal ${signal})`), 100));
  });
  return { child, ready };
}

async function stopDemo(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function axeViolations(p) {
  const { violations } = await new AxeBuilder({ page: p }).withTags(AXE_TAGS).analyze();
  return violations.map((v) =>
    `${v.id} [${v.impact}]: ${v.help} (${v.nodes.length}) -> ` +
    v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary?.replace(/\s+/g, ' ')}`).join(' | '));
}

async function submitAndWait(p, action) {
  const loaded = p.waitForEvent('load');
  await action();
  await loaded;
}

/** Signs in on `p` and replaces the one-time password. */
async function signIn(p, login, oneTime) {
  await p.goto(`${base}/login`);
  await p.getByLabel('Identifiant').fill(login);
  await p.getByLabel('Mot de passe').fill(oneTime);
  await submitAndWait(p, () => p.getByRole('button', { name: 'Se connecter' }).click());
  assert.equal(new URL(p.url()).pathname, '/account/password');
  await p.locator('#current').fill(oneTime);
  await p.locator('#new').fill(NEW_PASSWORD);
  await p.locator('#confirm').fill(NEW_PASSWORD);
  await submitAndWait(p, () => p.getByRole('button', { name: 'Enregistrer' }).click());
}

/**
 * The server's checkpoint public key, in hex, derived from its own key file in the demo's data
 * directory (what an operator hands the auditor out of band), never from the export itself.
 */
async function serverPublicKeyHex() {
  // A PKCS#8 v2 Ed25519 key (RFC 8410 OneAsymmetricKey, as ring writes it) ends with the public
  // key: [1] IMPLICIT BIT STRING: 81 21 00 <32 bytes>. OpenSSL reads only v1, hence by hand.
  const der = await readFile(join(dataDir, 'audit-checkpoint-key.pk8'));
  const tail = der.subarray(der.length - 35);
  assert.equal(tail.subarray(0, 3).toString('hex'), '812100', 'unexpected key file layout');
  return tail.subarray(3).toString('hex');
}

before(async () => {
  await access(BIN, constants.X_OK).catch(() => {
    throw new Error(`${BIN} is missing or not executable: run \`cargo build --bin beffroi\` or set E2E_BEFFROI_BINARY`);
  });
  workDir = await mkdtemp(join(tmpdir(), 'beffroi-e2e-auditor-'));
  const demo = startDemo(join(workDir, 'demo'));
  server = demo.child;
  const started = await demo.ready;
  base = started.url;
  dataDir = started.data;
  passwords = { admin: started.admin, auditor: started.auditor };
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu'] });
  context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR', acceptDownloads: true });
  page = await context.newPage();
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopDemo(server);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

process.on('exit', () => { if (server && server.exitCode === null) server.kill('SIGKILL'); });

test('a. the administrator, who is not an auditor, is refused and sees no audit link', async () => {
  const other = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR' });
  try {
    const p = await other.newPage();
    await signIn(p, 'admin', passwords.admin);
    await p.goto(`${base}/`);
    assert.equal(await p.getByRole('link', { name: "Journal d'audit" }).count(), 0);
    const response = await p.goto(`${base}/audit`);
    assert.equal(response.status(), 403);
    assert.doesNotMatch(await p.locator('main').innerText(), /auth\.sign_in/);
    assert.deepEqual(await axeViolations(p), []);
  } finally {
    await other.close();
  }
});

test('b. the auditor opens the log from the navigation; the page passes axe', async () => {
  await signIn(page, 'auditrice', passwords.auditor);
  await page.goto(`${base}/`);
  const navLink = page.getByRole('navigation').getByRole('link', { name: "Journal d'audit" });
  assert.equal(await navLink.count(), 1);
  await submitAndWait(page, () => navLink.click());
  assert.equal(new URL(page.url()).pathname, '/audit');
  assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), "Journal d'audit");
  assert.match(await page.locator('main').innerText(), /UTC/);
  assert.ok(await page.locator('table caption').count() === 1, 'the results table has a caption');
  assert.deepEqual(await axeViolations(page), []);
});

test('c. filtering by action shows only that action, and keeps the filter', async () => {
  await page.getByLabel('Action').selectOption('auth.sign_in');
  await submitAndWait(page, () => page.getByRole('button', { name: 'Rechercher' }).click());
  const url = new URL(page.url());
  assert.equal(url.pathname, '/audit');
  assert.equal(url.searchParams.get('action'), 'auth.sign_in');
  const actions = await page.locator('table tbody tr td:nth-of-type(4)').allInnerTexts();
  assert.ok(actions.length >= 2, `expected both sign-ins, saw ${actions.length}`);
  assert.deepEqual([...new Set(actions)], ['auth.sign_in']);
  const actors = (await page.locator('table tbody tr td:nth-of-type(2)').allInnerTexts()).join(' ');
  assert.match(actors, /Auditrice de démo/);
  assert.equal(await page.getByLabel('Action').inputValue(), 'auth.sign_in');
  assert.deepEqual(await axeViolations(page), []);

  await mkdir(ARTEFACTS, { recursive: true });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: join(ARTEFACTS, 'audit-desktop.png'), fullPage: true });
  const viewport = page.viewportSize();
  await page.setViewportSize({ width: 360, height: 740 });
  try {
    await page.screenshot({ path: join(ARTEFACTS, 'audit-360.png'), fullPage: true });
    const { scrollWidth, clientWidth } = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
    }));
    assert.equal(clientWidth, 360);
    assert.ok(scrollWidth <= 360, `the page scrolls sideways at 360 px: scrollWidth ${scrollWidth}`);
    assert.deepEqual(await axeViolations(page), [], 'axe violations at 360 px');
  } finally {
    await page.setViewportSize(viewport);
  }
});

test('d. the JSONL export of the filtered set downloads and audit/verify.py accepts it', async () => {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: /JSONL/ }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'audit-export.jsonl');
  const file = join(workDir, 'export.jsonl');
  await download.saveAs(file);
  const text = await readFile(file, 'utf8');
  const header = JSON.parse(text.split('\n', 1)[0]);
  assert.equal(header.filter.action, 'auth.sign_in');
  const key = await serverPublicKeyHex();
  assert.equal(header.public_key, key, 'the export names another key than the server\'s');
  const result = spawnSync('python3', [VERIFY_PY, file, '--public-key', key], { encoding: 'utf8' });
  assert.equal(result.status, 0, `verify.py refused the export:\n${result.stdout}${result.stderr}`);
  assert.match(result.stdout + result.stderr, /entries/);
  // A tampered copy is refused.
  const lines = text.split('\n');
  lines[1] = lines[1].replace('auth.sign_in', 'auth.sign_out');
  const tampered = join(workDir, 'tampered.jsonl');
  await writeFile(tampered, lines.join('\n'));
  const refused = spawnSync('python3', [VERIFY_PY, tampered, '--public-key', key], { encoding: 'utf8' });
  assert.notEqual(refused.status, 0, 'verify.py accepted a tampered export');
});
