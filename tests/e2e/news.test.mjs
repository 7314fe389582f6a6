// End-to-end journeys of the news wall through a real browser, on `beffroi demo`:
//   a. camille (an agent) reads her wall, opens the mandatory read and presses
//      "J'ai lu ce message"; the highlight disappears;
//   b. hugo (editor in the `communication` space, where approval is required) writes an item,
//      which goes to the approval queue and is not on camille's wall;
//   c. the administrator (manager of the space) approves it; camille now sees it.
// Every page visited passes axe (WCAG 2.1 A + AA) with 0 violations; the wall and the item are
// photographed at 1280 px and 360 px into tests/e2e/artefacts, and must not scroll sideways.
//
//   cd tests/e2e && npm ci && E2E_BEFFROI_BINARY=$PWD/../../target/debug/beffroi node --test news.test.mjs
//
// Environment: E2E_BEFFROI_BINARY, CHROMIUM_PATH (as journey.test.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, constants, mkdir, mkdtemp, rm } from 'node:fs/promises';
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
const NEW_PASSWORD = 'beffroi-e2e-Actualites-2024';
const NEW_TITLE = 'Collecte de sang en mairie le 12 décembre';

let server;
let workDir;
let base;
let passwords; // { admin, agent, editor }
let browser;
const pages = {};

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
      const editor = /^\s*Editor one-time pass\.:\s+(\S+)\s*$/m.exec(output.stdout);
      if (url && admin && agent && editor) {
        clearTimeout(timer);
        resolvePromise({ url: url[1], admin: admin[1], agent: agent[1], editor: editor[1] });
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

/** Axe at desktop size, then screenshots at 1280 and 360 px, axe again and no sideways scroll. */
async function checkPage(p, name) {
  assert.deepEqual(await axeViolations(p), [], `axe violations on ${name}`);
  await mkdir(ARTEFACTS, { recursive: true });
  const viewport = p.viewportSize();
  await p.setViewportSize({ width: 1280, height: 900 });
  await p.screenshot({ path: join(ARTEFACTS, `${name}-desktop.png`), fullPage: true });
  await p.setViewportSize({ width: 360, height: 740 });
  try {
    await p.screenshot({ path: join(ARTEFACTS, `${name}-360.png`), fullPage: true });
    const { scrollWidth, clientWidth } = await p.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
    }));
    assert.equal(clientWidth, 360);
    assert.ok(scrollWidth <= 360, `${name} scrolls sideways at 360 px: scrollWidth ${scrollWidth}`);
    assert.deepEqual(await axeViolations(p), [], `axe violations on ${name} at 360 px`);
  } finally {
    await p.setViewportSize(viewport);
  }
}

async function newPage() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR' });
  return context.newPage();
}

before(async () => {
  await access(BIN, constants.X_OK).catch(() => {
    throw new Error(`${BIN} is missing or not executable: run \`cargo build --bin beffroi\` or set E2E_BEFFROI_BINARY`);
  });
  workDir = await mkdtemp(join(tmpdir(), 'beffroi-e2e-news-'));
  const demo = startDemo(join(workDir, 'demo'));
  server = demo.child;
  const started = await demo.ready;
  base = started.url;
  passwords = { admin: started.admin, agent: started.agent, editor: started.editor };
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu'] });
  pages.camille = await newPage();
  pages.hugo = await newPage();
  pages.admin = await newPage();
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopDemo(server);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

process.on('exit', () => { if (server && server.exitCode === null) server.kill('SIGKILL'); });

test('a. camille reads her wall and acknowledges the mandatory read', async () => {
  const p = pages.camille;
  await signIn(p, 'camille', passwords.agent);
  await p.goto(`${base}/`);
  const mandatory = p.getByRole('region', { name: 'À lire et confirmer' });
  assert.equal(await mandatory.count(), 1, 'the mandatory read is highlighted');
  assert.match(await mandatory.innerText(), /règlement intérieur/);
  assert.match(await mandatory.innerText(), /À confirmer avant le/);
  const feed = await p.getByRole('region', { name: 'Dernières actualités' }).innerText();
  // Pinned first; the scheduled and the expired items are not there, nor the editors' one.
  const titles = await p.locator('.news-feed h3').allInnerTexts();
  assert.equal(titles[0], 'Bienvenue sur le nouvel intranet de la commune');
  assert.doesNotMatch(feed, /Vœux du maire/);
  assert.doesNotMatch(feed, /Fermeture estivale/);
  assert.doesNotMatch(feed, /rédaction des actualités/);
  await checkPage(p, 'news-wall');

  await submitAndWait(p, () => mandatory.getByRole('link', { name: /règlement intérieur/ }).click());
  assert.match(new URL(p.url()).pathname, /^\/news\/\d+$/);
  await checkPage(p, 'news-item');
  await submitAndWait(p, () => p.getByRole('button', { name: "J'ai lu ce message" }).click());
  assert.match(await p.getByRole('status').innerText(), /votre lecture est enregistrée/);
  assert.match(await p.locator('main').innerText(), /Vous avez confirmé la lecture le/);
  await p.goto(`${base}/`);
  assert.equal(await p.getByRole('region', { name: 'À lire et confirmer' }).count(), 0);
  assert.deepEqual(await axeViolations(p), []);
});

test('b. hugo writes a news item in communication; it waits for approval', async () => {
  const p = pages.hugo;
  await signIn(p, 'hugo', passwords.editor);
  await p.goto(`${base}/`);
  await submitAndWait(p, () => p.getByRole('link', { name: /Rédiger une actualité dans « Communication interne »/ }).click());
  assert.equal(new URL(p.url()).pathname, '/news/new');
  assert.deepEqual(await axeViolations(p), [], 'axe violations on the form');
  await p.getByLabel('Titre').fill(NEW_TITLE);
  await p.getByLabel('Catégorie').selectOption('action-sociale');
  await p.getByLabel('Texte').fill("L'Établissement français du sang installe une collecte dans la salle des fêtes.\n\nInscription **conseillée**.");
  await p.getByLabel('Important').check();
  await checkPage(p, 'news-form');
  await submitAndWait(p, () => p.getByRole('button', { name: /Publier ou soumettre/ }).click());
  assert.match(await p.getByRole('status').innerText(), /envoyée pour approbation/);
  assert.match(await p.locator('main').innerText(), /En attente d'approbation/);
  assert.deepEqual(await axeViolations(p), []);

  const camille = pages.camille;
  await camille.goto(`${base}/`);
  assert.doesNotMatch(await camille.locator('main').innerText(), new RegExp(NEW_TITLE));
});

test('c. the administrator approves it; camille sees it on her wall', async () => {
  const p = pages.admin;
  await signIn(p, 'admin', passwords.admin);
  await p.goto(`${base}/news/pending`);
  await checkPage(p, 'news-pending');
  await submitAndWait(p, () => p.getByRole('link', { name: NEW_TITLE }).click());
  await submitAndWait(p, () => p.getByRole('button', { name: 'Approuver la publication' }).click());
  assert.match(await p.getByRole('status').innerText(), /La publication est approuvée/);
  assert.deepEqual(await axeViolations(p), []);

  const camille = pages.camille;
  await camille.goto(`${base}/`);
  const titles = await camille.locator('.news-feed h3').allInnerTexts();
  assert.ok(titles.includes(NEW_TITLE), `not on the wall: ${titles.join(' | ')}`);
  await checkPage(camille, 'news-wall-after-approval');

  // The hugo's own list shows the outcome.
  const hugo = pages.hugo;
  await hugo.goto(`${base}/news/pending`);
  assert.match(await hugo.locator('main').innerText(), new RegExp(`${NEW_TITLE}[^\\n]*Publiée`));
});
