// End-to-end journey of the demo administrator through the branding page, in a real browser:
// an agent is refused the administration pages; the administrator opens Administration from the
// navigation, is refused a low-contrast colour pair (with the ratio), saves good colours,
// uploads a logo and adds a footer link, and the home page shows all of it at once. axe
// (WCAG 2.1 A + AA) runs on every admin page; screenshots at 1280 px and 360 px go to
// tests/e2e/artefacts.
//
//   cd tests/e2e && npm ci && node --test branding.test.mjs
//
// Environment: E2E_BEFFROI_BINARY, CHROMIUM_PATH (as journey.test.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { startDemo } from './support/demo.mjs';
import {
  axeViolations, launchBrowser, newFrenchContext, screenshots, signIn, submitAndWait,
} from './support/browser.mjs';

// A 2 × 2 opaque PNG (purple), written by hand so that no artwork is involved.
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000020000000208020000' +
  '00fdd49a73000000104944415478da6388d26a0222060805001c1604' +
  '1906a0a0860000000049454e44ae426082', 'hex');

let demo;
let workDir;
let base;
let passwords;     // { admin, agent, … }
let browser;
let context;
let page;

/** Submits a form by clicking `button` and returns the status of the POST's answer. */
async function postStatus(p, path, button) {
  const answered = p.waitForResponse((r) => new URL(r.url()).pathname === path && r.request().method() === 'POST');
  await submitAndWait(p, () => button.click());
  return (await answered).status();
}

before(async () => {
  demo = await startDemo('branding');
  ({ base, passwords, workDir } = demo);
  browser = await launchBrowser();
  context = await newFrenchContext(browser);
  page = await context.newPage();
});

after(async () => {
  await browser?.close().catch(() => {});
  await demo?.stop();
});

test('a. an agent sees no Administration link and is refused the admin pages', async () => {
  const other = await newFrenchContext(browser);
  try {
    const p = await other.newPage();
    await signIn(p, base, 'camille', passwords.agent);
    await p.goto(`${base}/`);
    assert.equal(await p.getByRole('link', { name: 'Administration' }).count(), 0);
    for (const path of ['/admin', '/admin/branding']) {
      const response = await p.goto(`${base}${path}`);
      assert.equal(response.status(), 403, path);
      assert.equal(await p.locator('#org-name').count(), 0, `${path} shows the form`);
    }
    assert.deepEqual(await axeViolations(p), []);
  } finally {
    await other.close();
  }
});

test('b. the administrator reaches branding from the navigation; hub and page pass axe', async () => {
  await signIn(page, base, 'admin', passwords.admin);
  await page.goto(`${base}/`);
  // The demo's own branding: its name, logo and footer links.
  assert.match(await page.locator('.brand').innerText(), /Commune de Démo-sur-Loire/);
  assert.match(await page.locator('.brand img').getAttribute('src'), /^\/branding\/logo\?v=[0-9a-f]{16}$/);
  assert.equal(await page.getByRole('contentinfo').getByRole('link', { name: /^Accessibilité/ }).count(), 1);
  const navLink = page.getByRole('navigation', { name: 'Navigation principale' }).getByRole('link', { name: 'Administration' });
  await submitAndWait(page, () => navLink.click());
  assert.equal(new URL(page.url()).pathname, '/admin');
  assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Administration');
  for (const name of ['Identité visuelle', 'Annuaire', 'Espaces']) {
    assert.equal(await page.locator('main').getByRole('link', { name }).count(), 1, name);
  }
  assert.deepEqual(await axeViolations(page), []);
  await screenshots(page, 'admin-hub');
  await submitAndWait(page, () => page.getByRole('link', { name: 'Identité visuelle' }).click());
  assert.equal(new URL(page.url()).pathname, '/admin/branding');
  assert.equal(await page.getByLabel('Couleur principale', { exact: true }).inputValue(), '#1b4f72');
  assert.deepEqual(await axeViolations(page), []);
  await screenshots(page, 'branding');
});

test('c. a low-contrast pair is refused with its ratio; good colours apply at once', async () => {
  await page.goto(`${base}/admin/branding`);
  await page.locator('#primary').fill('#777777');
  await page.locator('#on-primary').fill('#ffffff');
  const refused = await postStatus(page, '/admin/branding',
    page.getByRole('button', { name: 'Enregistrer le nom et les couleurs' }));
  assert.equal(refused, 422);
  const alert = await page.locator('#identity-errors').innerText();
  assert.match(alert, /Texte sur la couleur principale \(en-tête, boutons\) : #ffffff sur #777777 donne un contraste de 4,47:1/);
  assert.match(alert, /Liens dans la couleur principale sur le fond des pages/);
  assert.match(await page.title(), /^Erreur :/);
  assert.deepEqual(await axeViolations(page), []);
  await screenshots(page, 'branding-refused');
  // Nothing was saved: the header still has the demo's colour.
  await page.goto(`${base}/`);
  const demoHeader = await page.locator('.site-header').evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(demoHeader, 'rgb(27, 79, 114)');

  await page.goto(`${base}/admin/branding`);
  await page.locator('#org-name').fill('Mairie de Beffroi-les-Bains');
  await page.locator('#primary').fill('#5a2a82');
  await page.locator('#on-primary').fill('#ffffff');
  await page.locator('#secondary').fill('#f3eef7');
  await page.locator('#on-secondary').fill('#2d1541');
  const saved = await postStatus(page, '/admin/branding',
    page.getByRole('button', { name: 'Enregistrer le nom et les couleurs' }));
  assert.equal(saved, 303);
  assert.match(await page.getByRole('status').innerText(), /Le nom et les couleurs sont enregistrés/);
  await page.goto(`${base}/`);
  assert.match(await page.locator('.brand').innerText(), /Mairie de Beffroi-les-Bains/);
  const header = await page.locator('.site-header').evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(header, 'rgb(90, 42, 130)');
  const footer = await page.locator('.site-footer').evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(footer, 'rgb(243, 238, 247)');
});

test('d. a logo upload and a new footer link show on the home page', async () => {
  const logoFile = join(workDir, 'logo.png');
  await writeFile(logoFile, PNG);
  const svgFile = join(workDir, 'logo.svg');
  await writeFile(svgFile, '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');

  await page.goto(`${base}/admin/branding`);
  await page.locator('#logo-file').setInputFiles(svgFile);
  const refused = await postStatus(page, '/admin/branding/logo', page.getByRole('button', { name: 'Envoyer le logo' }));
  assert.equal(refused, 415);
  assert.match(await page.locator('#logo-errors').innerText(), /n’est pas une image PNG, JPEG ou WebP/);
  assert.deepEqual(await axeViolations(page), []);

  await page.locator('#logo-file').setInputFiles(logoFile);
  const uploaded = await postStatus(page, '/admin/branding/logo', page.getByRole('button', { name: 'Envoyer le logo' }));
  assert.equal(uploaded, 303);
  assert.match(await page.getByRole('status').innerText(), /Le logo est enregistré/);

  await page.locator('#label-3').fill('Plan du site');
  await page.locator('#url-3').fill('/plan-du-site');
  const linked = await postStatus(page, '/admin/branding/footer', page.getByRole('button', { name: 'Enregistrer les liens' }));
  assert.equal(linked, 303);
  assert.deepEqual(await axeViolations(page), []);

  await page.goto(`${base}/`);
  const logo = page.locator('.brand img');
  assert.match(await logo.getAttribute('src'), /^\/branding\/logo\?v=[0-9a-f]{16}$/);
  assert.equal(await logo.evaluate((img) => img.complete && img.naturalWidth), 2);
  const footerLinks = await page.getByRole('contentinfo').getByRole('link').allInnerTexts();
  assert.deepEqual(footerLinks, [
    'Mentions légales', 'Accessibilité : partiellement conforme', 'Données personnelles', 'Plan du site',
  ]);
  assert.deepEqual(await axeViolations(page), []);
  await screenshots(page, 'home-branded');
});
