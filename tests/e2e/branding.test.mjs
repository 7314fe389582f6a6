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
import { spawn } from 'node:child_process';
import { access, constants, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
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
const NEW_PASSWORD = 'beffroi-e2e-Beffroi-2024';

// A 2 × 2 opaque PNG (purple), written by hand so that no artwork is involved.
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000020000000208020000' +
  '00fdd49a73000000104944415478da6388d26a0222060805001c1604' +
  '1906a0a0860000000049454e44ae426082', 'hex');

let server;
let workDir;
let base;
let passwords;     // { admin, agent }
let browser;
let context;
let page;

/** Starts `beffroi demo`; resolves with the URL and the admin's and agent's one-time passwords. */
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
      if (url && admin && agent) {
        clearTimeout(timer);
        resolvePromise({ url: url[1], admin: admin[1], agent: agent[1] });
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

/** Submits a form by clicking `button` and returns the status of the POST's answer. */
async function postStatus(p, path, button) {
  const answered = p.waitForResponse((r) => new URL(r.url()).pathname === path && r.request().method() === 'POST');
  await submitAndWait(p, () => button.click());
  return (await answered).status();
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

/** Screenshots at 1280 px and 360 px; at 360 px the page must not scroll sideways nor fail axe. */
async function screenshots(p, name) {
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

before(async () => {
  await access(BIN, constants.X_OK).catch(() => {
    throw new Error(`${BIN} is missing or not executable: run \`cargo build --bin beffroi\` or set E2E_BEFFROI_BINARY`);
  });
  workDir = await mkdtemp(join(tmpdir(), 'beffroi-e2e-branding-'));
  const demo = startDemo(join(workDir, 'demo'));
  server = demo.child;
  const started = await demo.ready;
  base = started.url;
  passwords = { admin: started.admin, agent: started.agent };
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu'] });
  context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR' });
  page = await context.newPage();
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopDemo(server);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

process.on('exit', () => { if (server && server.exitCode === null) server.kill('SIGKILL'); });

test('a. an agent sees no Administration link and is refused the admin pages', async () => {
  const other = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR' });
  try {
    const p = await other.newPage();
    await signIn(p, 'camille', passwords.agent);
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
  await signIn(page, 'admin', passwords.admin);
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
