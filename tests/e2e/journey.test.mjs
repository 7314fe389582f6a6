// End-to-end journey of the break-glass administrator through a real browser, with an axe
// accessibility check (WCAG 2.1 A + AA) of every page it sees.
//
//   cd tests/e2e && npm ci && node --test
//
// Starts `beffroi demo` on a free port in a fresh temporary directory (support/demo.mjs), drives
// Debian's chromium through playwright-core, and stops everything at the end. The tests share
// one browser context (the signed-in session) and must run in order, which node:test does for
// the top-level tests of a file.
//
// Environment:
//   E2E_BEFFROI_BINARY      the server binary (default: ../../target/debug/beffroi, from this directory)
//   CHROMIUM_PATH    the browser (default: /usr/bin/chromium)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startDemo } from './support/demo.mjs';
import {
  axeViolations, launchBrowser, newFrenchContext, pathOf, screenshots, submitAndWait,
} from './support/browser.mjs';

const SESSION_COOKIE = '__Host-beffroi';
// This journey changes the password by hand (test c) rather than through signIn().
const NEW_PASSWORD = 'beffroi-e2e-Horloge-2024';

let demo;          // the running `beffroi demo` (see support/demo.mjs)
let base;          // e.g. https://127.0.0.1:41234
let oneTimePassword;
let browser;
let context;       // the administrator's browser context, shared by the tests in order
let page;
let oldSessionCookie; // value of the session cookie just before sign-out

const htmlLang = (p) => p.locator('html').getAttribute('lang');

// ---------------------------------------------------------------------------------------------
// Set-up and tear-down

before(async () => {
  demo = await startDemo('journey');
  base = demo.base;
  oneTimePassword = demo.passwords.admin;

  browser = await launchBrowser();
  // fr-FR: what a French commune's browsers send; the server would fall back to French anyway.
  context = await newFrenchContext(browser);
  page = await context.newPage();
});

after(async () => {
  await browser?.close().catch(() => {});
  await demo?.stop();
});

// ---------------------------------------------------------------------------------------------
// The journey

test('a. the sign-in page is French and passes axe', async () => {
  const response = await page.goto(`${base}/login`);
  assert.equal(response.status(), 200);
  assert.equal(await htmlLang(page), 'fr');
  assert.equal(await page.getByLabel('Identifiant').count(), 1);
  assert.equal(await page.getByLabel('Mot de passe').count(), 1);
  assert.equal(await page.getByRole('button', { name: 'Se connecter' }).count(), 1);
  assert.deepEqual(await axeViolations(page), []);
});

test('b. a wrong password shows an alert and stays on /login', async () => {
  await page.getByLabel('Identifiant').fill('admin');
  await page.getByLabel('Mot de passe').fill('not-the-password');
  const responses = await submitAndWait(page, () => page.getByRole('button', { name: 'Se connecter' }).click());
  assert.equal(responses.at(-1).status(), 401);
  assert.equal(pathOf(page), '/login');
  const alert = page.getByRole('alert');
  assert.equal(await alert.count(), 1);
  assert.ok(await alert.isVisible(), 'the error alert is not visible');
  assert.match(await alert.innerText(), /Identifiant ou mot de passe incorrect/);
  // The password field is described by the error, for screen-reader users.
  assert.equal(await page.getByLabel('Mot de passe').getAttribute('aria-describedby'), 'login-error');
  assert.equal((await context.cookies()).some((c) => c.name === SESSION_COOKIE), false,
    'a failed sign-in must not set a session cookie');
});

test('c. sign-in with the one-time password forces a password change', async () => {
  await page.getByLabel('Identifiant').fill('admin');
  await page.getByLabel('Mot de passe').fill(oneTimePassword);
  await submitAndWait(page, () => page.getByRole('button', { name: 'Se connecter' }).click());
  assert.equal(pathOf(page), '/account/password');
  assert.equal(new URL(page.url()).search, '');
  assert.match(await page.locator('main').innerText(), /usage unique/);

  await page.locator('#current').fill(oneTimePassword);
  await page.locator('#new').fill(NEW_PASSWORD);
  await page.locator('#confirm').fill(NEW_PASSWORD);
  const responses = await submitAndWait(page, () => page.getByRole('button', { name: 'Enregistrer' }).click());
  assert.equal(responses.at(-1).status(), 200);
  const url = new URL(page.url());
  assert.equal(url.pathname, '/account/password');
  assert.equal(url.searchParams.get('changed'), '1');
  const status = page.getByRole('status');
  assert.ok(await status.isVisible(), 'the success message is not visible');
  assert.match(await status.innerText(), /Votre mot de passe a été changé/);
  assert.equal(await page.getByRole('alert').count(), 0, 'an error is shown after a successful change');
  assert.doesNotMatch(await page.locator('main').innerText(), /usage unique/,
    'the "must change" notice is still shown after the change');
  assert.deepEqual(await axeViolations(page), []);
});

test('d. the home page greets the administrator, passes axe and fits 360 px', async () => {
  const response = await page.goto(`${base}/`);
  assert.equal(response.status(), 200);
  assert.equal(pathOf(page), '/', 'the home page redirected elsewhere (password change not recorded?)');
  assert.match(await page.getByRole('heading', { level: 1 }).innerText(), /^Bonjour\b/);
  assert.deepEqual(await axeViolations(page), []);

  // home-desktop.png and home-360.png; no sideways scroll and axe again at 360 px.
  await screenshots(page, 'home');
});

test('e. switching to English; the 404 page is in English and passes axe', async () => {
  await page.locator('#lang-select').selectOption('en');
  const responses = await submitAndWait(page,
    () => page.getByRole('button', { name: 'Changer de langue' }).click());
  assert.equal(responses.at(-1).status(), 200);
  assert.equal(pathOf(page), '/', 'the language switch did not return to the page it came from');
  assert.equal(await htmlLang(page), 'en');
  assert.match(await page.getByRole('heading', { level: 1 }).innerText(), /^Hello\b/);
  assert.equal(await page.getByRole('button', { name: 'Change language' }).count(), 1);
  assert.equal(await page.locator('#lang-select').inputValue(), 'en');

  const response = await page.goto(`${base}/no-such-page`);
  assert.equal(response.status(), 404);
  assert.equal(await htmlLang(page), 'en');
  assert.match(await page.getByRole('heading', { level: 1 }).innerText(), /Page not found/);
  assert.match(await page.locator('main').innerText(), /does not exist/);
  // Still inside the layout, still signed in.
  assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 1);
  assert.deepEqual(await axeViolations(page), []);
});

test('f. signing out revokes the session, even for a copied cookie', async () => {
  await page.goto(`${base}/`);
  assert.equal(pathOf(page), '/');
  oldSessionCookie = (await context.cookies(base)).find((c) => c.name === SESSION_COOKIE)?.value;
  assert.ok(oldSessionCookie, `no ${SESSION_COOKIE} cookie while signed in`);

  // Control: the copied cookie does give access while the session lives, so the check after
  // sign-out below fails because of the revocation and not because the copy is broken.
  const replay = async () => {
    const other = await newFrenchContext(browser);
    try {
      await other.addCookies([{ name: SESSION_COOKIE, value: oldSessionCookie, url: `${base}/`,
        secure: true, httpOnly: true, sameSite: 'Lax' }]);
      const p = await other.newPage();
      const response = await p.goto(`${base}/`);
      return { status: response.status(), path: pathOf(p),
        heading: await p.getByRole('heading', { level: 1 }).innerText() };
    } finally {
      await other.close();
    }
  };
  const live = await replay();
  assert.equal(live.path, '/', 'the copied cookie did not give access while the session was live');
  assert.match(live.heading, /^Hello\b/);

  await submitAndWait(page, () => page.getByRole('button', { name: 'Sign out' }).click());
  assert.equal(pathOf(page), '/login');
  assert.equal((await context.cookies(base)).some((c) => c.name === SESSION_COOKIE), false,
    'the session cookie was not cleared at sign-out');

  const response = await page.goto(`${base}/`);
  assert.equal(response.status(), 200);
  assert.equal(pathOf(page), '/login', 'after sign-out, / is still reachable');
  assert.equal(response.request().redirectedFrom()?.url(), `${base}/`);

  const afterSignOut = await replay();
  assert.equal(afterSignOut.path, '/login', 'the old session cookie still gives access after sign-out');
});
