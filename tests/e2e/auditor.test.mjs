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
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startDemo } from './support/demo.mjs';
import {
  axeViolations, launchBrowser, newFrenchContext, screenshots, signIn, submitAndWait,
} from './support/browser.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const VERIFY_PY = resolve(HERE, '../../audit/verify.py');

let demo;
let workDir;
let dataDir;
let base;
let passwords;     // { admin, auditor, … }
let browser;
let context;
let page;

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
  demo = await startDemo('auditor');
  ({ base, passwords, workDir, dataDir } = demo);
  browser = await launchBrowser();
  context = await newFrenchContext(browser, { acceptDownloads: true });
  page = await context.newPage();
});

after(async () => {
  await browser?.close().catch(() => {});
  await demo?.stop();
});

test('a. the administrator, who is not an auditor, is refused and sees no audit link', async () => {
  const other = await newFrenchContext(browser);
  try {
    const p = await other.newPage();
    await signIn(p, base, 'admin', passwords.admin);
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
  await signIn(page, base, 'auditrice', passwords.auditor);
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

  // audit-desktop.png and audit-360.png; no sideways scroll and axe again at 360 px.
  await screenshots(page, 'audit');
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
