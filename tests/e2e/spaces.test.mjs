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
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { startDemo } from './support/demo.mjs';
import {
  axeViolations, launchBrowser, newFrenchContext, screenshots, signIn, submitAndWait,
} from './support/browser.mjs';

let demo;
let workDir;
let base;
let passwords;     // { admin, agent, … }
let browser;

before(async () => {
  demo = await startDemo('spaces');
  ({ base, passwords, workDir } = demo);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => {});
  await demo?.stop();
});

test('a. Camille reads the teleworking rules of her site and downloads the charter', async () => {
  const context = await newFrenchContext(browser, { acceptDownloads: true });
  try {
    const p = await context.newPage();
    await signIn(p, base, 'camille', passwords.agent);
    await p.goto(`${base}/`);
    await submitAndWait(p, () => p.getByRole('navigation', { name: 'Navigation principale' })
      .getByRole('link', { name: 'Espaces' }).click());
    assert.equal(new URL(p.url()).pathname, '/spaces');
    const main = p.locator('main');
    await p.getByRole('link', { name: 'Ressources humaines' }).waitFor();
    assert.equal(await main.getByRole('link', { name: 'Projet nouvelle médiathèque' }).count(), 1,
      'Camille is a member of the private project');
    assert.deepEqual(await axeViolations(p), []);
    await screenshots(p, 'spaces-list');

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
    await screenshots(p, 'spaces-hr-page');

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
  const context = await newFrenchContext(browser);
  try {
    const p = await context.newPage();
    await signIn(p, base, 'admin', passwords.admin);
    await p.goto(`${base}/admin/spaces`);
    assert.equal(await p.getByRole('heading', { level: 1 }).innerText(), 'Administration des espaces');
    assert.deepEqual(await axeViolations(p), []);
    await submitAndWait(p, () => p.getByRole('link', { name: 'Créer un espace' }).click());
    assert.deepEqual(await axeViolations(p), []);
    await screenshots(p, 'spaces-admin-new');
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
    await screenshots(p, 'spaces-members');
    // Administering is not reading: the private space's home stays closed to the admin.
    const home = await p.goto(`${base}/spaces/comite-des-fetes`);
    assert.equal(home.status(), 404);
  } finally {
    await context.close();
  }
});
