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
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { startDemo } from './support/demo.mjs';
import {
  axeViolations, launchBrowser, newFrenchContext, screenshots, signIn, submitAndWait,
} from './support/browser.mjs';

// A 1×1 PNG, the photo camille uploads.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64');

let demo;
let workDir;
let base;
let agentPassword;
let adminPassword;
let browser;
let context;
let page;
let colleagueUrl;

/** axe at 1280 px, then screenshots (directory-`name`-*.png) and axe again at 360 px. */
async function checkPage(name, p = page) {
  // Back to 1280 px first: axe must pass at desktop size too, whatever size `p` had.
  await p.setViewportSize({ width: 1280, height: 900 });
  assert.deepEqual(await axeViolations(p), [], `axe violations on ${name} at 1280 px`);
  await screenshots(p, `directory-${name}`);
}

before(async () => {
  demo = await startDemo('directory');
  ({ base, workDir } = demo);
  agentPassword = demo.passwords.agent;
  adminPassword = demo.passwords.admin;
  browser = await launchBrowser();
  context = await newFrenchContext(browser, { acceptDownloads: true });
  page = await context.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
});

after(async () => {
  await browser?.close().catch(() => {});
  await demo?.stop();
});

test('a. camille signs in and finds a colleague by skill from the navigation', async () => {
  await signIn(page, base, 'camille', agentPassword);

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
  const other = await newFrenchContext(browser);
  try {
    const p = await other.newPage();
    await signIn(p, base, 'admin', adminPassword);
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
