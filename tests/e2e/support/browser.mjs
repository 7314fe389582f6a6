// Browser helpers shared by the test files: Debian's chromium through playwright-core, axe
// (WCAG 2.1 A + AA), screenshots at desktop and phone widths, and form navigation.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTEFACTS = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'artefacts');
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
/** What signIn() replaces the one-time passwords with. */
export const NEW_PASSWORD = 'beffroi-e2e-Beffroi-2024';

export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--disable-gpu'] });
}

/**
 * A browser context as a French commune's agent has one: fr-FR, and the demo's self-signed
 * certificate accepted. `options` adds to it (e.g. `{ acceptDownloads: true }`).
 */
export function newFrenchContext(browser, options = {}) {
  return browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR', ...options });
}

/** axe violations of the current page, one readable line each (empty when the page passes). */
export async function axeViolations(p) {
  const { violations } = await new AxeBuilder({ page: p }).withTags(AXE_TAGS).analyze();
  return violations.map((v) =>
    `${v.id} [${v.impact}]: ${v.help} (${v.nodes.length}) -> ` +
    v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary?.replace(/\s+/g, ' ')}`).join(' | '));
}

/**
 * Runs `action` (a click that submits a form or follows a link) and waits for the resulting
 * document to load. Returns the main-frame navigation responses seen, in order (redirects
 * first, final last).
 */
export async function submitAndWait(p, action) {
  const responses = [];
  const onResponse = (r) => {
    if (r.request().isNavigationRequest() && r.frame() === p.mainFrame()) responses.push(r);
  };
  p.on('response', onResponse);
  try {
    const loaded = p.waitForEvent('load');
    await action();
    await loaded;
  } finally {
    p.off('response', onResponse);
  }
  assert.ok(responses.length > 0, 'the form submission caused no navigation');
  return responses;
}

export const pathOf = (p) => new URL(p.url()).pathname;

/**
 * Signs `login` in on `p` at `base` with a one-time password, and replaces it with
 * NEW_PASSWORD on the forced /account/password step.
 */
export async function signIn(p, base, login, oneTimePassword) {
  await p.goto(`${base}/login`);
  await p.getByLabel('Identifiant').fill(login);
  await p.getByLabel('Mot de passe').fill(oneTimePassword);
  await submitAndWait(p, () => p.getByRole('button', { name: 'Se connecter' }).click());
  assert.equal(pathOf(p), '/account/password');
  await p.locator('#current').fill(oneTimePassword);
  await p.locator('#new').fill(NEW_PASSWORD);
  await p.locator('#confirm').fill(NEW_PASSWORD);
  await submitAndWait(p, () => p.getByRole('button', { name: 'Enregistrer' }).click());
}

/**
 * Screenshots `name`-desktop.png at 1280 px and `name`-360.png at 360 px into artefacts/; at
 * 360 px the page must not scroll sideways and must still pass axe. Restores the viewport.
 */
export async function screenshots(p, name) {
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

/** axe at the current size, then screenshots() at both widths. */
export async function checkPage(p, name) {
  assert.deepEqual(await axeViolations(p), [], `axe violations on ${name}`);
  await screenshots(p, name);
}
