// End-to-end journey through the session pages, in a real browser: an agent signed in on two
// "devices" (two browser contexts) opens My account, sees both sessions with this one marked,
// ends the other, and the other device is sent back to sign in; an administrator finds the agent
// under Administration → Sessions and ends every session of the account. axe (WCAG 2.1 A + AA)
// runs on each page; screenshots at 1280 px and 360 px go to tests/e2e/artefacts.
//
//   cd tests/e2e && npm ci && E2E_BEFFROI_BINARY=$PWD/../../target/debug/beffroi node --test sessions.test.mjs
//
// Environment: E2E_BEFFROI_BINARY, CHROMIUM_PATH (as journey.test.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startDemo } from './support/demo.mjs';
import {
  NEW_PASSWORD, checkPage, launchBrowser, newFrenchContext, pathOf, signIn, submitAndWait,
} from './support/browser.mjs';

let demo;
let base;
let passwords;
let browser;
let laptop;   // camille's first device
let phone;    // camille's second device
let admin;

/** Signs in with a password already chosen (no one-time step). */
async function signInAgain(p, login, password) {
  await p.goto(`${base}/login`);
  await p.getByLabel('Identifiant').fill(login);
  await p.getByLabel('Mot de passe').fill(password);
  await submitAndWait(p, () => p.getByRole('button', { name: 'Se connecter' }).click());
  assert.equal(pathOf(p), '/');
}

before(async () => {
  demo = await startDemo('sessions');
  ({ base, passwords } = demo);
  browser = await launchBrowser();
  laptop = await (await newFrenchContext(browser)).newPage();
  phone = await (await newFrenchContext(browser)).newPage();
  admin = await (await newFrenchContext(browser)).newPage();
});

after(async () => {
  await browser?.close().catch(() => {});
  await demo?.stop();
});

test('a. the agent sees both sessions, this one marked, from My account', async () => {
  await signIn(laptop, base, 'camille', passwords.agent);
  await signInAgain(phone, 'camille', NEW_PASSWORD);
  await laptop.goto(`${base}/`);
  await submitAndWait(laptop, () => laptop.getByRole('link', { name: 'Mon compte' }).click());
  assert.equal(pathOf(laptop), '/account/sessions');
  assert.equal(await laptop.getByRole('heading', { level: 1 }).innerText(), 'Mes sessions');
  const table = laptop.getByRole('table', { name: 'Sessions actives' });
  assert.equal(await table.locator('tbody tr').count(), 2);
  assert.equal(await table.getByText('Cette session').count(), 1);
  assert.equal(await laptop.getByRole('button', { name: /^Mettre fin à la session ouverte le / }).count(), 1);
  await checkPage(laptop, 'sessions-agent');
});

test('b. ending the other session signs that device out', async () => {
  await submitAndWait(laptop, () =>
    laptop.getByRole('button', { name: /^Mettre fin à la session ouverte le / }).click());
  assert.equal(pathOf(laptop), '/account/sessions');
  assert.match(await laptop.getByRole('status').innerText(), /Sessions terminées : 1/);
  assert.equal(await laptop.locator('tbody tr').count(), 1);
  await checkPage(laptop, 'sessions-agent-ended');
  await phone.goto(`${base}/`);
  assert.equal(pathOf(phone), '/login');
});

test('c. an administrator ends every session of the account from Administration', async () => {
  await signInAgain(phone, 'camille', NEW_PASSWORD);
  await signIn(admin, base, 'admin', passwords.admin);
  await admin.goto(`${base}/admin`);
  await submitAndWait(admin, () => admin.getByRole('link', { name: 'Sessions', exact: true }).click());
  assert.equal(pathOf(admin), '/admin/sessions');
  await checkPage(admin, 'sessions-admin-index');
  await submitAndWait(admin, () => admin.getByRole('link', { name: 'Camille Martin' }).click());
  assert.match(pathOf(admin), /^\/admin\/sessions\/\d+$/);
  assert.equal(await admin.locator('tbody tr').count(), 2);
  await checkPage(admin, 'sessions-admin-account');
  await submitAndWait(admin, () =>
    admin.getByRole('button', { name: 'Mettre fin à toutes les sessions de ce compte' }).click());
  assert.match(await admin.getByRole('status').innerText(), /Sessions terminées : 2/);
  for (const device of [laptop, phone]) {
    await device.goto(`${base}/`);
    assert.equal(pathOf(device), '/login');
  }
});

test('d. the e-mail page is reached from Administration and says when no relay is set', async () => {
  await admin.goto(`${base}/admin`);
  await submitAndWait(admin, () => admin.getByRole('link', { name: 'Courriels', exact: true }).click());
  assert.equal(pathOf(admin), '/admin/mail');
  // The demo has no [smtp] section: the page says so and offers no test form.
  assert.match(await admin.locator('main').innerText(), /Aucun relais de messagerie n'est configuré/);
  assert.equal(await admin.getByRole('button', { name: 'Envoyer un message de test' }).count(), 0);
  assert.equal(await admin.locator('#mail-failed').innerText(), '0');
  await checkPage(admin, 'mail-admin');
});
