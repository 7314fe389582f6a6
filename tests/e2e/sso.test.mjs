// End-to-end single sign-on journey through a real browser and the real test OpenID provider
// (tests/idp), with an axe accessibility check (WCAG 2.1 A + AA) of every Beffroi page it sees.
//
//   cd tests/idp && npm ci
//   cd tests/e2e && npm ci && node --test
//
// Starts the test IdP (`node server.mjs`, free port) and `beffroi serve` with an [oidc] section
// pointing at it, in a fresh temporary directory, on a free port; drives Debian's chromium
// through playwright-core; stops everything at the end. Tests a–c share one browser page (sign-in,
// then sign-out) and must run in order, which node:test does for the top-level tests of a file;
// d and e start from a fresh browser so that they do not depend on the outcome of c.
//
// Environment:
//   E2E_BEFFROI_BINARY  the server binary (default: ../../target/debug/beffroi, from this directory)
//   CHROMIUM_PATH       the browser (default: /usr/bin/chromium)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Only what is the same here as for the demo: this file starts `beffroi serve`, not the demo.
import {
  assertBinaryExists, BEFFROI_BINARY as BIN, STARTUP_TIMEOUT_MS, stopProcess as stop,
} from './support/demo.mjs';
import { ARTEFACTS, axeViolations, launchBrowser } from './support/browser.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const IDP_DIR = resolve(HERE, '../idp');
const SESSION_COOKIE = '__Host-beffroi';
const CLIENT_ID = 'beffroi-e2e';
const CLIENT_SECRET = 'e2e-secret';
const PROVIDER_NAME = 'IdP de test';
const SSO_BUTTON = `Se connecter avec ${PROVIDER_NAME}`;

let idp;           // { child, output } of the test IdP
let issuer;        // e.g. http://127.0.0.1:41234
let server;        // { child, output } of beffroi serve
let workDir;       // temporary directory: config, secret, data
let base;          // e.g. https://127.0.0.1:41235
let browser;
let page;          // the browser page of tests a–c, which run in order on it
const browserLog = []; // console messages and failed requests of every page, for error messages

// ---------------------------------------------------------------------------------------------
// Processes

/** Collects a child's stdout and stderr as text, for error messages. */
function collect(child) {
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk) => { output.stdout += chunk; });
  child.stderr.on('data', (chunk) => { output.stderr += chunk; });
  return output;
}

const describeOutput = (name, output) =>
  `--- ${name} stdout:\n${output.stdout}\n--- ${name} stderr:\n${output.stderr}`;

/** Starts the test IdP and resolves with its issuer once it prints IDP_READY. */
async function startIdp() {
  // stdin stays piped and open: the IdP exits as soon as it closes (even if we are killed).
  const child = spawn(process.execPath, ['server.mjs'], {
    cwd: IDP_DIR,
    env: { ...process.env, IDP_PORT: '0', IDP_HOST: '127.0.0.1', IDP_EXIT_ON_STDIN_EOF: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const output = collect(child);
  idp = { child, output };
  return new Promise((resolvePromise, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`the test IdP did not start: ${why} (did you run \`npm ci\` in tests/idp?)\n` +
        describeOutput('idp', output)));
    };
    const timer = setTimeout(() => fail(`no IDP_READY line after ${STARTUP_TIMEOUT_MS / 1000} s`),
      STARTUP_TIMEOUT_MS);
    child.stdout.on('data', () => {
      const m = /^IDP_READY (\{.*\})\s*$/m.exec(output.stdout);
      if (m) {
        clearTimeout(timer);
        resolvePromise(JSON.parse(m[1]).issuer);
      }
    });
    child.on('error', (e) => fail(e.message));
    child.on('exit', (code, signal) => setTimeout(() => fail(`exited early (code ${code}, signal ${signal})`), 100));
  });
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
function freePort() {
  return new Promise((resolvePromise, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePromise(port));
    });
  });
}

/** GET over HTTPS without certificate verification (Beffroi's certificate is self-signed). */
function insecureGet(url) {
  return new Promise((resolvePromise, reject) => {
    const req = https.get(url, { rejectUnauthorized: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => resolvePromise(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Starts `beffroi serve` and resolves once /healthz answers 200. */
async function startServer(configPath) {
  // Only the variables we set may start with BEFFROI_: any other one makes beffroi refuse to start.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BEFFROI_')));
  const child = spawn(BIN, ['serve', '--config', configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collect(child);
  server = { child, output };
  let exited = null;
  let spawnError = null;
  child.on('exit', (code, signal) => { exited = `exited early (code ${code}, signal ${signal})`; });
  child.on('error', (e) => { spawnError = e.message; });
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let lastError = 'never answered';
  for (;;) {
    if (spawnError || exited) {
      await new Promise((r) => setTimeout(r, 100)); // let stderr drain
      break;
    }
    try {
      const status = await insecureGet(`${base}/healthz`);
      if (status === 200) return;
      lastError = `/healthz answered ${status}`;
    } catch (e) {
      lastError = e.message;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`beffroi serve did not become healthy: ${spawnError ?? exited ?? lastError}\n` +
    `--- command: ${BIN} serve --config ${configPath}\n${describeOutput('beffroi', output)}`);
}

/** Calls the IdP's control API; resolves with the JSON answer, throws on a non-2xx status. */
async function idpControl(method, path, body) {
  const res = await fetch(`${issuer}/__test/${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} /__test/${path} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

// ---------------------------------------------------------------------------------------------
// Browser helpers

/**
 * Runs `action` (a click that navigates) and waits for the resulting document to load.
 * Returns the main-frame navigation responses seen, in order (redirects first, final last).
 * Fails at once, rather than after the load timeout, when the browser blocks or aborts the
 * navigation (for example a Content-Security-Policy refusal), quoting what the browser said.
 */
async function navigateAndWait(p, action) {
  const responses = [];
  const isMainNavigation = (request) => request.isNavigationRequest() && request.frame() === p.mainFrame();
  const onResponse = (r) => { if (isMainNavigation(r.request())) responses.push(r); };
  let onFailed;
  const failed = new Promise((_, reject) => {
    onFailed = (request) => {
      if (!isMainNavigation(request)) return;
      const why = `${request.method()} ${request.url()}: ${request.failure()?.errorText}`;
      // Let the console message explaining the block arrive first.
      setTimeout(() => reject(new Error(`the browser did not complete the navigation (${why})\n` +
        `  responses so far:\n  ${trail(responses)}\n  browser says:\n  ${browserLog.slice(-5).join('\n  ')}`)), 300);
    };
  });
  p.on('response', onResponse);
  p.on('requestfailed', onFailed);
  try {
    const loaded = p.waitForEvent('load');
    await action();
    await Promise.race([loaded, failed]);
  } finally {
    p.off('response', onResponse);
    p.off('requestfailed', onFailed);
    failed.catch(() => {});
  }
  assert.ok(responses.length > 0, 'the action caused no navigation');
  return responses;
}

/** A new page in a new browser context (own cookies), as a French-speaking agent's browser. */
async function newPage() {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR' });
  const p = await ctx.newPage();
  p.on('console', (m) => browserLog.push(`console.${m.type()}: ${m.text()}`));
  p.on('requestfailed', (r) => browserLog.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  return p;
}

const pathOf = (p) => new URL(p.url()).pathname;
const onIdp = (p) => p.url().startsWith(`${issuer}/`);
const trail = (responses) => responses.map((r) => `${r.status()} ${r.url()}`).join('\n  ');
const hasSessionCookie = async (p) => (await p.context().cookies(base)).some((c) => c.name === SESSION_COOKIE);
const ssoButton = (p) => p.getByRole('link', { name: SSO_BUTTON });

/** On Beffroi's /login: clicks the SSO button and checks the browser reached the IdP's login form. */
async function startSso(p) {
  assert.equal(pathOf(p), '/login');
  const responses = await navigateAndWait(p, () => ssoButton(p).click());
  assert.ok(onIdp(p), `the SSO button did not lead to the IdP (${issuer}) but to ${p.url()}\n  ${trail(responses)}`);
  assert.equal(await p.locator('input[name="login"]').count(), 1,
    `no IdP login form at ${p.url()} (provider session still alive?)`);
}

/** On the IdP's login form: signs in as `login`, accepts the consent, returns the responses. */
async function signInAtIdp(p, login) {
  await p.locator('input[name="login"]').fill(login);
  await p.locator('input[type="password"]').fill('any-password');
  await navigateAndWait(p, () => p.locator('button[type="submit"]').click());
  assert.ok(onIdp(p), `after the IdP login, expected its consent page, got ${p.url()}`);
  assert.equal(await p.locator('input[name="prompt"][value="consent"]').count(), 1,
    `expected the IdP consent page at ${p.url()}`);
  return navigateAndWait(p, () => p.locator('button[type="submit"]').click());
}

/** Visits / and checks it redirects to /login (no valid session). */
async function assertSignedOut(p, why) {
  const response = await p.goto(`${base}/`);
  assert.equal(response.status(), 200);
  assert.equal(pathOf(p), '/login', `${why}: / is reachable`);
  assert.equal(response.request().redirectedFrom()?.url(), `${base}/`);
}

// ---------------------------------------------------------------------------------------------
// Set-up and tear-down

before(async () => {
  await assertBinaryExists();
  issuer = await startIdp();

  const port = await freePort();
  base = `https://127.0.0.1:${port}`;
  workDir = await mkdtemp(join(tmpdir(), 'beffroi-e2e-sso-'));
  await chmod(workDir, 0o700);
  const secretPath = join(workDir, 'oidc-client-secret');
  await writeFile(secretPath, CLIENT_SECRET, { mode: 0o600 });
  const configPath = join(workDir, 'beffroi.toml');
  const q = JSON.stringify; // a JSON string is a valid TOML basic string here
  await writeFile(configPath, [
    '[server]',
    `listen = ${q(`127.0.0.1:${port}`)}`,
    `public_url = ${q(base)}`,
    '',
    '[storage]',
    `data_dir = ${q(join(workDir, 'data'))}`,
    '',
    '[oidc]',
    `issuer = ${q(issuer)}`,
    `client_id = ${q(CLIENT_ID)}`,
    `client_secret_file = ${q(secretPath)}`,
    `provider_name = ${q(PROVIDER_NAME)}`,
    'scopes = ["openid", "profile", "email", "groups"]',
    'admin_groups = ["admins"]',
    'auditor_groups = ["auditors"]',
    '',
  ].join('\n'), { mode: 0o600 });

  await idpControl('POST', 'clients', {
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [`${base}/auth/oidc/callback`],
    post_logout_redirect_uris: [`${base}/login`],
    backchannel_logout_uri: `${base}/auth/oidc/backchannel-logout`,
  });

  await startServer(configPath);

  browser = await launchBrowser();
  page = await newPage();
});

after(async () => {
  await browser?.close().catch(() => {});
  await stop(server?.child);
  idp?.child.stdin.end(); // IDP_EXIT_ON_STDIN_EOF
  await stop(idp?.child);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

// Never leave a child running if the test process is torn down abruptly.
process.on('exit', () => {
  for (const c of [server?.child, idp?.child]) if (c && c.exitCode === null) c.kill('SIGKILL');
});

/** Wraps a test body so that a failure also shows both servers' logs. */
const withLogs = (fn) => async (t) => {
  try {
    await fn(t);
  } catch (e) {
    e.message += `\n--- browser:\n${browserLog.join('\n')}\n` +
      `${describeOutput('beffroi', server.output)}\n${describeOutput('idp', idp.output)}`;
    throw e;
  }
};

// ---------------------------------------------------------------------------------------------
// The journey

test('a. / leads to a sign-in page that offers only the SSO button, and passes axe', withLogs(async () => {
  const response = await page.goto(`${base}/`);
  assert.equal(response.status(), 200);
  assert.equal(pathOf(page), '/login');
  assert.equal(await page.locator('html').getAttribute('lang'), 'fr');
  assert.equal(await ssoButton(page).count(), 1, `no "${SSO_BUTTON}" link`);
  assert.equal(await page.locator('input[type="password"]').count(), 0,
    'a password field is shown although single sign-on is configured');
  assert.deepEqual(await axeViolations(page), []);
}));

test('b. alice signs in at the provider and lands on the home page as admin', withLogs(async () => {
  await startSso(page);
  const responses = await signInAtIdp(page, 'alice');
  const last = responses.at(-1);
  assert.equal(last.status(), 200, `sign-in did not end on a 200 page:\n  ${trail(responses)}`);
  assert.ok(page.url().startsWith(`${base}/`), `not back on Beffroi: ${page.url()}\n  ${trail(responses)}`);
  assert.equal(pathOf(page), '/', `after SSO, landed on ${page.url()}\n  ${trail(responses)}`);
  assert.ok(responses.some((r) => r.url().startsWith(`${base}/auth/oidc/callback?`)),
    `the callback was not seen:\n  ${trail(responses)}`);
  assert.ok(await hasSessionCookie(page), `no ${SESSION_COOKIE} cookie after SSO`);
  assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Bonjour Alice Martin !');
  const roles = page.locator('main p', { hasText: 'Vos rôles' });
  assert.equal(await roles.count(), 1, 'the roles are not shown');
  assert.match(await roles.innerText(), /admin/);
  assert.equal(await page.getByRole('button', { name: 'Se déconnecter' }).count(), 1);
  assert.deepEqual(await axeViolations(page), []);
}));

test('c. signing out also ends the provider session (RP-initiated logout)', withLogs(async () => {
  const toIdp = await navigateAndWait(page,
    () => page.getByRole('button', { name: 'Se déconnecter' }).click());
  assert.ok(page.url().startsWith(`${issuer}/session/end`),
    `sign-out did not lead to the IdP's logout page: ${page.url()}\n  ${trail(toIdp)}`);
  assert.equal(await hasSessionCookie(page), false, 'the session cookie was not cleared at sign-out');
  assert.equal(await page.locator('#logout-yes').count(), 1, 'no #logout-yes button on the IdP logout page');

  const back = await navigateAndWait(page, () => page.locator('#logout-yes').click());
  assert.ok(page.url().startsWith(`${base}/login`),
    `after the IdP logout, expected ${base}/login, got ${page.url()}\n  ${trail(back)}`);
  assert.equal(back.at(-1).status(), 200);
  assert.equal(await ssoButton(page).count(), 1);

  await assertSignedOut(page, 'after sign-out');
  // The provider's session ended too: the SSO button asks for a login again.
  await startSso(page);
}));

test('d. an ID token for another audience is refused with a clear 403 page', withLogs(async () => {
  const p = await newPage();
  try {
    await idpControl('POST', 'misbehave', { mode: 'wrong_aud', client_id: CLIENT_ID });
    await p.goto(`${base}/login`);
    await startSso(p);
    const responses = await signInAtIdp(p, 'bob');
    const state = await idpControl('GET', 'state');
    assert.equal(state.last_applied?.mode, 'wrong_aud', `the IdP did not tamper the token: ${JSON.stringify(state)}`);

    assert.equal(responses.at(-1).status(), 403, `expected a 403 page:\n  ${trail(responses)}`);
    assert.equal(pathOf(p), '/auth/oidc/callback');
    assert.match(await p.locator('main').innerText(), /La connexion a été refusée/);
    assert.equal(await hasSessionCookie(p), false, 'a refused sign-in set a session cookie');
    assert.deepEqual(await axeViolations(p), []);

    await assertSignedOut(p, 'after a refused sign-in');
  } finally {
    await idpControl('POST', 'misbehave', { mode: null, client_id: CLIENT_ID }).catch(() => {});
    await p.context().close();
  }
}));

test('e. the sign-in page at 360 px (screenshot)', withLogs(async () => {
  const p = await newPage();
  try {
    await p.setViewportSize({ width: 360, height: 740 });
    const response = await p.goto(`${base}/login`);
    assert.equal(response.status(), 200);
    assert.equal(await ssoButton(p).count(), 1);
    await mkdir(ARTEFACTS, { recursive: true });
    await p.screenshot({ path: join(ARTEFACTS, 'sso-login-360.png'), fullPage: true });
    const { scrollWidth, clientWidth } = await p.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
    }));
    assert.equal(clientWidth, 360);
    assert.ok(scrollWidth <= 360, `horizontal scroll at 360 px: scrollWidth is ${scrollWidth}`);
  } finally {
    await p.context().close();
  }
}));
