// End-to-end journeys through spaces in a real browser, on the demo instance:
// - Camille, an agent at the town hall, opens the HR space from the navigation, sees the
//   teleworking rules for everyone and for her site (not the depot's), reads them and
//   downloads the attached charter;
// - the administrator creates a space and adds Camille as a contributor;
// - Hugo (editor of `communication`, where approval is required) writes a page, which waits:
//   Camille cannot open it until the administrator (its manager) approves it from the space's
//   queue, reached from the space's home; the navigation works at 360 px through its menu.
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
  ARTEFACTS, NEW_PASSWORD, axeViolations, checkPage, launchBrowser, newFrenchContext, screenshots, signIn,
  submitAndWait,
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

/** Signs in an account whose one-time password was already replaced by NEW_PASSWORD. */
async function signInAgain(p, login) {
  await p.goto(`${base}/login`);
  await p.getByLabel('Identifiant').fill(login);
  await p.getByLabel('Mot de passe').fill(NEW_PASSWORD);
  await submitAndWait(p, () => p.getByRole('button', { name: 'Se connecter' }).click());
  assert.notEqual(new URL(p.url()).pathname, '/login');
}

test('c. a page written by an editor waits for the manager’s approval', async () => {
  const context = await newFrenchContext(browser);
  try {
    const hugo = await context.newPage();
    await signIn(hugo, base, 'hugo', passwords.editor);
    await hugo.goto(`${base}/spaces/communication`);
    await submitAndWait(hugo, () => hugo.getByRole('link', { name: 'Nouvelle page' }).click());
    assert.match(await hugo.locator('main').innerText(), /approuvées par un gestionnaire/);
    assert.deepEqual(await axeViolations(hugo), []);
    await hugo.locator('#page-title').fill('Charte éditoriale');
    await hugo.locator('#page-body').fill('## Écrire pour l’intranet\n\nUn titre court, une phrase d’accroche.');
    await submitAndWait(hugo, () => hugo.getByRole('button', { name: 'Enregistrer' }).click());
    assert.equal(new URL(hugo.url()).pathname, '/spaces/communication/pending');
    assert.match(await hugo.getByRole('status').innerText(), /envoyée pour approbation/);
    assert.match(await hugo.locator('main').innerText(), /Charte éditoriale/);
    await checkPage(hugo, 'spaces-pending-writer');
  } finally {
    await context.close();
  }

  const readerContext = await newFrenchContext(browser);
  const adminContext = await newFrenchContext(browser);
  try {
    const camille = await readerContext.newPage();
    await signInAgain(camille, 'camille');
    const hidden = await camille.goto(`${base}/spaces/communication/pages/charte-editoriale`);
    assert.equal(hidden.status(), 404, 'a reader never sees a page before approval');

    const admin = await adminContext.newPage();
    await signInAgain(admin, 'admin');
    await admin.goto(`${base}/spaces/communication`);
    await submitAndWait(admin, () => admin.getByRole('link', { name: 'Modifications à approuver (1)' }).click());
    await admin.getByText('Lire le texte proposé').click();
    assert.match(await admin.locator('main').innerText(), /Un titre court/);
    await checkPage(admin, 'spaces-pending-manager');
    await submitAndWait(admin, () =>
      admin.getByRole('button', { name: 'Approuver « Charte éditoriale »' }).click());
    assert.match(await admin.getByRole('status').innerText(), /approuvée et publiée/);
    assert.deepEqual(await axeViolations(admin), []);

    const shown = await camille.goto(`${base}/spaces/communication/pages/charte-editoriale`);
    assert.equal(shown.status(), 200);
    assert.equal(await camille.getByRole('heading', { level: 1 }).innerText(), 'Charte éditoriale');

    // At 360 px the navigation is a menu that opens without JavaScript; the approval queue
    // is one of its entries for the administrator.
    await admin.setViewportSize({ width: 360, height: 740 });
    await admin.goto(`${base}/`);
    const nav = admin.getByRole('navigation', { name: 'Navigation principale' });
    assert.equal(await nav.getByRole('link', { name: 'Espaces' }).count(), 0, 'closed menu');
    await nav.getByText('Menu').click();
    assert.equal(await nav.getByRole('link', { name: /^À approuver \(\d+\)$/ }).count(), 1);
    assert.deepEqual(await axeViolations(admin), []);
    await admin.screenshot({ path: join(ARTEFACTS, 'nav-menu-open-360.png'), fullPage: true });
    await submitAndWait(admin, () => nav.getByRole('link', { name: 'Espaces' }).click());
    assert.equal(new URL(admin.url()).pathname, '/spaces');
  } finally {
    await readerContext.close();
    await adminContext.close();
  }
});
