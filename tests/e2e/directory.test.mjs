// End-to-end journey of the demo agent ("camille") through the who's-who in a real browser:
// sign in with the one-time password `beffroi demo` prints, find a colleague by skill, open
// their profile, download their vCard, browse the org chart (re-centring on a manager), then
// edit her own profile with a photo. Every page passes axe (WCAG 2.1 A + AA) at 1280 px and at
// 360 px, scrolls no sideways at 360 px, and is saved as a screenshot in artefacts/.
//
//   cd tests/e2e && npm ci && node --test directory.test.mjs
//
// Environment: E2E_BEFFROI_BINARY, CHROMIUM_PATH (as journey.test.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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
const ARTEFACTS = join(HERE, 'artefacts');
const STARTUP_TIMEOUT_MS = 60_000;
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const NEW_PASSWORD = 'beffroi-e2e-Annuaire-2024';
// A 1×1 PNG, the photo camille uploads.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64');

let server;
let workDir;
let base;
let agentPassword;
let adminPassword;
let browser;
let context;
let page;
let colleagueUrl;

/** Starts `beffroi demo`; resolves with the URL and the agent's one-time password. */
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
    const timer = setTimeout(() => fail('no URL and password on stdout in time'), STARTUP_TIMEOUT_MS);
    child.stdout.on('data', (chunk) => {
      output.stdout += chunk;
      const url = /^\s*URL:\s+(https:\/\/\S+?)\/?\s*$/m.exec(output.stdout);
      const agent = /^\s*Agent one-time pass\.:\s+(\S+)\s*$/m.exec(output.stdout);
      const admin = /^\s*One-time password:\s+(\S+)\s*$/m.exec(output.stdout);
      if (url && agent && admin) {
        clearTimeout(timer);
        resolvePromise({ url: url[1], agent: agent[1], admin: admin[1] });
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

/** axe at 1280 px and 360 px, a screenshot at each, and no sideways scrolling on the phone. */
async function checkPage(name, p = page) {
  await mkdir(ARTEFACTS, { recursive: true });
  await p.setViewportSize({ width: 1280, height: 900 });
  assert.deepEqual(await axeViolations(p), [], `axe violations on ${name} at 1280 px`);
  await p.screenshot({ path: join(ARTEFACTS, `directory-${name}-desktop.png`), fullPage: true });
  await p.setViewportSize({ width: 360, height: 740 });
  try {
    await p.screenshot({ path: join(ARTEFACTS, `directory-${name}-360.png`), fullPage: true });
    const { scrollWidth, clientWidth } = await p.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
    }));
    assert.equal(clientWidth, 360);
    assert.ok(scrollWidth <= 360, `${name} scrolls sideways at 360 px: scrollWidth ${scrollWidth}`);
    assert.deepEqual(await axeViolations(p), [], `axe violations on ${name} at 360 px`);
  } finally {
    await p.setViewportSize({ width: 1280, height: 900 });
  }
}

before(async () => {
  await access(BIN, constants.X_OK).catch(() => {
    throw new Error(`${BIN} is missing or not executable: run \`cargo build --bin beffroi\` or set E2E_BEFFROI_BINARY`);
  });
  workDir = await mkdtemp(join(tmpdir(), 'beffroi-e2e-directory-'));
  const demo = startDemo(join(workDir, 'demo'));
  server = demo.child;
  const started = await demo.ready;
  base = started.url;
  agentPassword = started.agent;
  adminPassword = started.admin;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu'] });
  context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR', acceptDownloads: true });
  page = await context.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopDemo(server);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

process.on('exit', () => { if (server && server.exitCode === null) server.kill('SIGKILL'); });

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

test('a. camille signs in and finds a colleague by skill from the navigation', async () => {
  await signIn(page, 'camille', agentPassword);

  await page.goto(`${base}/`);
  const nav = page.getByRole('navigation', { name: 'Navigation principale' }).getByRole('link', { name: 'Annuaire' });
  assert.equal(await nav.count(), 1);
  await submitAndWait(page, () => nav.click());
  assert.equal(new URL(page.url()).pathname, '/people');
  assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Annuaire');

  await page.getByLabel('Compétences').fill('marchés publics');
  await submitAndWait(page, () => page.getByRole('button', { name: 'Rechercher' }).click());
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('skill'), 'marchés publics');
  const results = page.locator('.person-list > li');
  assert.ok(await results.count() >= 2, 'several agents know public procurement');
  const skills = await page.locator('.person-list .person-card__facts').allInnerTexts();
  for (const text of skills) assert.match(text, /Marchés publics/);
  await checkPage('search');

  // The same search through the department filter, which includes sub-departments.
  await page.getByLabel('Compétences').fill('');
  await page.getByLabel('Service', { exact: true }).selectOption({ label: 'Direction des finances' });
  await submitAndWait(page, () => page.getByRole('button', { name: 'Rechercher' }).click());
  const departments = await page.locator('.person-list dd').allInnerTexts();
  assert.ok(departments.some((d) => d.includes('Direction des finances › Comptabilité')),
    'the directorate search reaches its services');
});

test('b. camille opens a colleague\'s profile and downloads the vCard', async () => {
  await page.goto(`${base}/people?q=&skill=march%C3%A9s+publics`);
  const first = page.locator('.person-list .person-card__name a').first();
  const name = await first.innerText();
  await submitAndWait(page, () => first.click());
  colleagueUrl = page.url();
  assert.match(new URL(colleagueUrl).pathname, /^\/people\/\d+$/);
  assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), name);
  assert.ok(await page.getByRole('heading', { name: 'Coordonnées' }).count() === 1);
  await checkPage('profile');

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: /vCard/ }).click(),
  ]);
  assert.match(download.suggestedFilename(), /^[a-z0-9-]+\.vcf$/);
  const file = join(workDir, 'contact.vcf');
  await download.saveAs(file);
  const card = await readFile(file, 'utf8');
  assert.ok(card.startsWith('BEGIN:VCARD\r\nVERSION:4.0\r\n'), card);
  assert.ok(card.includes(`FN:${name}\r\n`));
  assert.ok(card.includes('ORG:Commune de Démo-sur-Loire;'));
  assert.ok(card.trimEnd().endsWith('END:VCARD'));
});

test('c. camille browses the org chart and re-centres it on a manager', async () => {
  await page.goto(colleagueUrl);
  await submitAndWait(page, () => page.getByRole('link', { name: 'Voir dans l’organigramme' }).click());
  assert.match(new URL(page.url()).pathname, /^\/org-chart\/\d+$/);
  const managers = page.locator('.org-node--manager > a');
  assert.ok(await managers.count() >= 1, 'the colleague has a manager chain');
  await checkPage('org-chart-person');
  const top = managers.first();
  const topName = await top.locator('.org-node__name').innerText();
  await submitAndWait(page, () => top.click());
  assert.equal(await page.locator('.org-node--centre > .org-node__card .org-node__name').innerText(), topName);
  assert.ok(await page.locator('.org-level--reports > li').count() >= 5, 'the top of the chain has reports');

  await submitAndWait(page, () => page.getByRole('link', { name: 'Haut de l’organigramme' }).click());
  assert.equal(new URL(page.url()).pathname, '/org-chart');
  assert.match(await page.locator('.org-node--root .org-node__title').first().innerText(), /Direct(eur|rice) général(e)? des services/);
  await checkPage('org-chart-top');
});

test('d. camille edits her own profile, with a photo', async () => {
  await page.goto(`${base}/people`);
  await submitAndWait(page, () => page.getByRole('link', { name: 'Mon profil' }).click());
  assert.equal(new URL(page.url()).pathname, '/profile');
  await checkPage('edit-profile');
  await page.getByLabel('Téléphone mobile').fill('06 39 98 00 42');
  await page.getByLabel('Compétences').fill('Comptabilité publique\nM57\nAnglais');
  await page.getByLabel('Présentation').fill('Gestionnaire comptable au service Comptabilité.');
  await page.getByLabel('Photo', { exact: true }).setInputFiles({ name: 'moi.png', mimeType: 'image/png', buffer: PNG });
  await submitAndWait(page, () => page.getByRole('button', { name: 'Enregistrer' }).click());
  assert.equal(new URL(page.url()).pathname, '/profile');
  assert.match(await page.getByRole('status').innerText(), /Modifications enregistrées/);

  await submitAndWait(page, () => page.getByRole('link', { name: /Voir mon profil/ }).click());
  const main = await page.locator('main').innerText();
  assert.match(main, /Anglais/);
  assert.match(main, /06 39 98 00 42/);
  assert.match(main, /Direction des finances › Comptabilité/);
  const photo = page.locator('.profile__avatar img');
  assert.equal(await photo.count(), 1);
  assert.ok(await photo.evaluate((img) => img.complete && img.naturalWidth === 1), 'the photo is served');
  await checkPage('own-profile');
});

test('e. the administrator\'s directory pages pass axe; a policy change applies at once', async () => {
  const other = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR' });
  try {
    const p = await other.newPage();
    await signIn(p, 'admin', adminPassword);
    await p.goto(`${base}/admin/directory`);
    assert.equal(await p.getByRole('heading', { level: 1 }).innerText(), 'Administration de l’annuaire');
    assert.match(await p.locator('.dept-tree').innerText(), /Comptabilité/);
    await checkPage('admin-structure', p);
    await p.goto(`${base}/admin/directory/fields`);
    await checkPage('admin-fields', p);
    await p.getByLabel('Qui peut voir : Compétences').selectOption('private');
    await submitAndWait(p, () => p.getByRole('button', { name: 'Enregistrer' }).click());
    assert.match(await p.getByRole('status').innerText(), /Modifications enregistrées/);
    // Camille no longer sees colleagues' skills, nor finds them by skill.
    await page.goto(`${base}/people?skill=march%C3%A9s+publics`);
    assert.equal(await page.locator('.person-list > li').count(), 0);
    await page.goto(colleagueUrl);
    assert.equal(await page.getByRole('heading', { name: 'Compétences' }).count(), 0);
    // The administrator's edit form for that colleague.
    await p.goto(`${colleagueUrl}/edit`);
    await checkPage('admin-edit', p);
  } finally {
    await other.close();
  }
});
