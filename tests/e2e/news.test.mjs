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

import { startDemo } from './support/demo.mjs';
import {
  axeViolations, checkPage, launchBrowser, newFrenchContext, signIn, submitAndWait,
} from './support/browser.mjs';

const NEW_TITLE = 'Collecte de sang en mairie le 12 décembre';

let demo;
let base;
let passwords; // { admin, agent, editor, … }
let browser;
const pages = {};

async function newPage() {
  const context = await newFrenchContext(browser);
  return context.newPage();
}

before(async () => {
  demo = await startDemo('news');
  ({ base, passwords } = demo);
  browser = await launchBrowser();
  pages.camille = await newPage();
  pages.hugo = await newPage();
  pages.admin = await newPage();
});

after(async () => {
  await browser?.close().catch(() => {});
  await demo?.stop();
});

test('a. camille reads her wall and acknowledges the mandatory read', async () => {
  const p = pages.camille;
  await signIn(p, base, 'camille', passwords.agent);
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
  await signIn(p, base, 'hugo', passwords.editor);
  await p.goto(`${base}/`);
  await submitAndWait(p, () => p.getByRole('link', { name: /Rédiger une actualité dans « Communication interne »/ }).click());
  assert.equal(new URL(p.url()).pathname, '/news/new');
  assert.deepEqual(await axeViolations(p), [], 'axe violations on the form');
  await p.getByLabel('Titre').fill(NEW_TITLE);
  await p.getByLabel('Catégorie').selectOption('action-sociale');
  await p.getByLabel('Texte', { exact: true }).fill("L'Établissement français du sang installe une collecte dans la salle des fêtes.\n\nInscription **conseillée**.");
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
  await signIn(p, base, 'admin', passwords.admin);
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
