// End-to-end journeys through spaces in a real browser, on the demo instance:
// - Camille, an agent at the town hall, opens the HR space from the navigation, sees the
//   teleworking rules for everyone and for her site (not the depot's), reads them and
//   downloads the attached charter;
// - the administrator creates a space and adds Camille as a contributor.
// Every page visited passes axe (WCAG 2.1 A + AA); screenshots at 1280 px and 360 px go to
// tests/e2e/artefacts.
//
//   cd tests/e2e && npm ci && E2E_BEFFROI_BINARY=$PWD/../../target/debug/beffroi node --test spaces.test.mjs
//
// Environment: E2E_BEFFROI_BINARY, CHROMIUM_PATH (as journey.test.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, constants, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
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
const ARTEFACTS = join(HERE, 'artefacts');
const STARTUP_TIMEOUT_MS = 60_000;
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const NEW_PASSWORD = 'beffroi-e2e-Espaces-2024';

let server;
let workDir;
let base;
let passwords;     // { admin, agent }
let browser;

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
      const agent = /^\s*Agent one-time pass\.:\s+(\S+)\s*$/m.exec(output.stdout);
      const data = /^\s*Data directory:\s+(\S+)\s*$/m.exec(output.stdout);
      if (url && admin && agent && data) {
        clearTimeout(timer);
        resolvePromise({ url: url[1], admin: admin[1], agent: agent[1], data: data[1] });
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


/** Screenshots at 1280 px and 360 px; at 360 px the page must not scroll sideways and must
 * still pass axe. */
async function shootBothWidths(p, name) {
  await mkdir(ARTEFACTS, { recursive: true });
  await p.setViewportSize({ width: 1280, height: 900 });
  await p.screenshot({ path: join(ARTEFACTS, `${name}-1280.png`), fullPage: true });
  await p.setViewportSize({ width: 360, height: 740 });
  await p.screenshot({ path: join(ARTEFACTS, `${name}-360.png`), fullPage: true });
  const { scrollWidth, clientWidth } = await p.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
  }));
  assert.equal(clientWidth, 360);
  assert.ok(scrollWidth <= 360, `${name} scrolls sideways at 360 px: scrollWidth ${scrollWidth}`);
  assert.deepEqual(await axeViolations(p), [], `axe violations on ${name} at 360 px`);
  await p.setViewportSize({ width: 1280, height: 900 });
}

before(async () => {
  await access(BIN, constants.X_OK).catch(() => {
    throw new Error(`${BIN} is missing or not executable: run \`cargo build --bin beffroi\` or set E2E_BEFFROI_BINARY`);
  });
  workDir = await mkdtemp(join(tmpdir(), 'beffroi-e2e-spaces-'));
  const demo = startDemo(join(workDir, 'demo'));
  server = demo.child;
  const started = await demo.ready;
  base = started.url;
  passwords = { admin: started.admin, agent: started.agent };
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu'] });
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopDemo(server);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

process.on('exit', () => { if (server && server.exitCode === null) server.kill('SIGKILL'); });

test('a. Camille reads the teleworking rules of her site and downloads the charter', async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR', acceptDownloads: true });
  try {
    const p = await context.newPage();
    await signIn(p, 'camille', passwords.agent);
    await p.goto(`${base}/`);
    await submitAndWait(p, () => p.getByRole('navigation', { name: 'Navigation principale' })
      .getByRole('link', { name: 'Espaces' }).click());
    assert.equal(new URL(p.url()).pathname, '/spaces');
    const main = p.locator('main');
    await p.getByRole('link', { name: 'Ressources humaines' }).waitFor();
    assert.equal(await main.getByRole('link', { name: 'Projet nouvelle médiathèque' }).count(), 1,
      'Camille is a member of the private project');
    assert.deepEqual(await axeViolations(p), []);
    await shootBothWidths(p, 'spaces-list');

    await submitAndWait(p, () => p.getByRole('link', { name: 'Ressources humaines' }).click());
    assert.equal(new URL(p.url()).pathname, '/spaces/rh');
    // Camille works at the town hall (the directory demo places her in Comptabilité there).
    assert.equal(await main.getByRole('link', { name: 'Télétravail à l’Hôtel de ville' }).count(), 1);
    assert.equal(await main.getByRole('link', { name: /Centre technique/ }).count(), 0,
      'the depot rules are not for the town hall');
    assert.deepEqual(await axeViolations(p), []);

    await submitAndWait(p, () => main.getByRole('link', { name: 'Télétravail', exact: true }).click());
    assert.equal(await p.getByRole('heading', { level: 1 }).innerText(), 'Télétravail');
    assert.match(await main.innerText(), /Deux jours/);
    assert.deepEqual(await axeViolations(p), []);
    await shootBothWidths(p, 'spaces-hr-page');

    const [download] = await Promise.all([
      p.waitForEvent('download'),
      main.getByRole('link', { name: 'charte-teletravail.txt' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), 'charte-teletravail.txt');
    const file = join(workDir, 'charte.txt');
    await download.saveAs(file);
    assert.match(await readFile(file, 'utf8'), /Charte du télétravail/);

    const townHall = await p.goto(`${base}/spaces/rh/pages/teletravail-a-l-hotel-de-ville`);
    assert.equal(townHall.status(), 200);
    assert.match(await main.innerText(), /deux jours/);
    const depot = await p.goto(`${base}/spaces/rh/pages/teletravail-au-centre-technique-municipal`);
    assert.equal(depot.status(), 404);
  } finally {
    await context.close();
  }
});

test('b. the administrator creates a space and adds Camille to it', async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR' });
  try {
    const p = await context.newPage();
    await signIn(p, 'admin', passwords.admin);
    await p.goto(`${base}/admin/spaces`);
    assert.equal(await p.getByRole('heading', { level: 1 }).innerText(), 'Administration des espaces');
    assert.deepEqual(await axeViolations(p), []);
    await submitAndWait(p, () => p.getByRole('link', { name: 'Créer un espace' }).click());
    assert.deepEqual(await axeViolations(p), []);
    await shootBothWidths(p, 'spaces-admin-new');
    await p.locator('#space-slug').fill('comite-des-fetes');
    await p.locator('#space-name').fill('Comité des fêtes');
    await p.locator('#space-description').fill('Organisation des fêtes de la commune.');
    await p.getByLabel('Privé : réservé aux membres').check();
    await submitAndWait(p, () => p.getByRole('button', { name: 'Créer un espace' }).click());
    assert.equal(new URL(p.url()).pathname, '/spaces/comite-des-fetes/members');
    assert.deepEqual(await axeViolations(p), []);

    await p.locator('#member-search').fill('Camille');
    await submitAndWait(p, () => p.getByRole('button', { name: 'Rechercher' }).click());
    await p.getByLabel('Rôle de Camille Martin', { exact: true }).selectOption('contributor');
    await submitAndWait(p, () => p.getByRole('button', { name: 'Ajouter Camille Martin' }).click());
    const table = p.locator('table');
    assert.match(await table.innerText(), /Camille Martin/);
    assert.equal(await p.getByLabel('Rôle de Camille Martin', { exact: true }).inputValue(), 'contributor');
    assert.deepEqual(await axeViolations(p), []);
    await shootBothWidths(p, 'spaces-members');
    // Administering is not reading: the private space's home stays closed to the admin.
    const home = await p.goto(`${base}/spaces/comite-des-fetes`);
    assert.equal(home.status(), 404);
  } finally {
    await context.close();
  }
});
