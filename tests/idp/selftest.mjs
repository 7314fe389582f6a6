// End-to-end self-test of the test OpenID provider (server.mjs), with plain fetch.
//
//   cd tests/idp && npm ci && npm test
//
// Starts `node server.mjs` on a free port, a tiny HTTPS relying party (self-signed
// certificate made with the openssl CLI) that records back-channel logout POSTs, then
// drives real authorization-code + PKCE flows through the devInteractions pages.
// The top-level tests share state and run in order.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as jose from 'jose';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLIENT_ID = 'beffroi-test';
const CLIENT_SECRET = 'beffroi-test-secret';

let idp; // child process
let idpStderr = '';
let idpStdout = '';
let ISS;
let rp; // https.Server
let RP; // https://127.0.0.1:PORT
let certDir;
const received = []; // back-channel logout POSTs received by the RP: { logout_token, claims, header }
let jwks; // jose remote key set

// ---------------------------------------------------------------------------------------------
// Helpers

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function startIdp() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(HERE, 'server.mjs')], {
      env: { ...process.env, IDP_PORT: '0', IDP_HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let ready = false;
    const timer = setTimeout(() => reject(new Error(`IDP not ready after 15 s\n${idpStderr}`)), 15_000);
    child.stderr.on('data', (d) => { idpStderr += d; });
    child.stdout.on('data', (d) => {
      idpStdout += d;
      const nl = idpStdout.indexOf('\n');
      if (nl !== -1 && !ready) {
        ready = true;
        clearTimeout(timer);
        const line = idpStdout.slice(0, nl);
        const m = /^IDP_READY (\{.*\})$/.exec(line);
        if (!m) reject(new Error(`unexpected first stdout line: ${line}`));
        else resolve({ child, issuer: JSON.parse(m[1]).issuer });
      }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`IDP exited with ${code}\n${idpStderr}`)); });
  });
}

function startRp() {
  certDir = mkdtempSync(join(tmpdir(), 'idp-selftest-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'), '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' });
  const server = https.createServer({
    key: readFileSync(join(certDir, 'key.pem')),
    cert: readFileSync(join(certDir, 'cert.pem')),
  }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/backchannel-logout') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        const token = form.get('logout_token');
        received.push({
          content_type: req.headers['content-type'],
          logout_token: token,
          header: jose.decodeProtectedHeader(token),
          claims: jose.decodeJwt(token),
        });
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end('ok');
        return;
      }
      res.writeHead(404);
      res.end('not found');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function control(path, body) {
  const res = await fetch(`${ISS}/__test/${path}`, body === undefined
    ? {}
    : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  return { status: res.status, json };
}

/** Minimal cookie jar (ignores Path: one jar per browser-like session). */
class Jar {
  cookies = new Map();

  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=.*1970/i.test(a) || /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async fetch(url, init = {}) {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...init.headers, cookie: this.header() } });
    this.store(res);
    return res;
  }
}

const location = (res) => new URL(res.headers.get('location'), ISS).href;

function pkce() {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  return { verifier, challenge };
}

/**
 * Signs `login` in through /auth + devInteractions, returns the callback URL's parameters.
 * Reuses the provider session if `jar` already holds one.
 */
async function authorize(login, {
  jar = new Jar(), scope = 'openid profile email groups', extra = {}, clientId = CLIENT_ID,
} = {}) {
  const { verifier, challenge } = pkce();
  const state = b64url(randomBytes(8));
  const nonce = b64url(randomBytes(8));
  const params = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    scope,
    redirect_uri: `${RP}/callback`,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  let res = await jar.fetch(`${ISS}/auth?${params}`);
  let interactions = 0;
  for (let hops = 0; hops < 20; hops += 1) {
    assert.ok([302, 303].includes(res.status), `expected a redirect, got ${res.status}: ${await res.text()}`);
    const url = location(res);
    if (url.startsWith(`${RP}/callback`)) {
      return { callback: new URL(url), verifier, state, nonce, jar, interactions };
    }
    if (url.includes('/interaction/')) {
      interactions += 1;
      const page = await (await jar.fetch(url)).text();
      const form = page.includes('name="login"')
        ? { prompt: 'login', login, password: 'ignored' }
        : { prompt: 'consent' };
      res = await jar.fetch(url, { method: 'POST', body: new URLSearchParams(form) });
    } else {
      res = await jar.fetch(url);
    }
  }
  throw new Error('too many redirects');
}

async function exchange(code, verifier, { auth = 'basic', clientId = CLIENT_ID, clientSecret = CLIENT_SECRET } = {}) {
  const form = new URLSearchParams({
    grant_type: 'authorization_code', code, redirect_uri: `${RP}/callback`, code_verifier: verifier,
  });
  const headers = {};
  if (auth === 'basic') {
    headers.authorization = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
  } else {
    form.set('client_id', clientId);
    form.set('client_secret', clientSecret);
  }
  const res = await fetch(`${ISS}/token`, { method: 'POST', headers, body: form });
  return { status: res.status, json: await res.json(), misbehaved: res.headers.get('x-test-misbehaved') };
}

/** Full sign-in: returns tokens plus the decoded ID token. */
async function signIn(login, opts = {}) {
  const a = await authorize(login, opts);
  assert.equal(a.callback.searchParams.get('state'), a.state);
  assert.equal(a.callback.searchParams.get('iss'), ISS);
  const code = a.callback.searchParams.get('code');
  assert.ok(code, `no code in ${a.callback}`);
  const t = await exchange(code, a.verifier, opts);
  assert.equal(t.status, 200, JSON.stringify(t.json));
  const idToken = t.json.id_token;
  return {
    ...a,
    tokens: t.json,
    misbehaved: t.misbehaved,
    idToken,
    header: jose.decodeProtectedHeader(idToken),
    claims: jose.decodeJwt(idToken),
  };
}

/** Verifies with the provider's published JWKS, without any claim check. */
const verifySig = (jwt) => jose.jwtVerify(jwt, jwks, { algorithms: ['ES256'], clockTolerance: '2h' });

async function userinfo(accessToken) {
  const res = await fetch(`${ISS}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  return { status: res.status, json: await res.json() };
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  const started = await startIdp();
  idp = started.child;
  ISS = started.issuer;
  rp = await startRp();
  RP = `https://127.0.0.1:${rp.address().port}`;
  jwks = jose.createRemoteJWKSet(new URL(`${ISS}/jwks`), { cacheMaxAge: 0, cooldownDuration: 0 });
});

after(async () => {
  idp?.removeAllListeners('exit');
  idp?.kill('SIGTERM');
  rp?.close();
  rp?.closeAllConnections();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

test('ready line: issuer is http://127.0.0.1:<bound port>', () => {
  assert.match(ISS, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(ISS, 'http://127.0.0.1:0');
});

test('discovery and JWKS', async () => {
  const d = await (await fetch(`${ISS}/.well-known/openid-configuration`)).json();
  assert.equal(d.issuer, ISS);
  assert.equal(d.jwks_uri, `${ISS}/jwks`);
  assert.equal(d.token_endpoint, `${ISS}/token`);
  assert.equal(d.userinfo_endpoint, `${ISS}/me`);
  assert.equal(d.end_session_endpoint, `${ISS}/session/end`);
  assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  assert.equal(d.backchannel_logout_supported, true);
  assert.equal(d.backchannel_logout_session_supported, true);
  for (const s of ['openid', 'profile', 'email', 'groups', 'offline_access']) assert.ok(d.scopes_supported.includes(s), s);
  for (const c of ['usual_name', 'uid', 'siret', 'idp_id', 'groups', 'sid']) assert.ok(d.claims_supported.includes(c), c);
  assert.ok(d.id_token_signing_alg_values_supported.includes('ES256'));
  assert.ok(d.token_endpoint_auth_methods_supported.includes('client_secret_basic'));
  assert.ok(d.token_endpoint_auth_methods_supported.includes('client_secret_post'));

  const k = await (await fetch(`${ISS}/jwks`)).json();
  assert.deepEqual(k.keys.map((x) => [x.kid, x.kty, x.crv, x.alg]), [['k1', 'EC', 'P-256', 'ES256']]);
  assert.ok(k.keys.every((x) => x.d === undefined), 'private parts must not be published');
});

test('client registration at runtime (and replacement)', async () => {
  const first = await control('clients', {
    client_id: CLIENT_ID, client_secret: 'old-secret', redirect_uris: [`${RP}/old`],
  });
  assert.equal(first.status, 200, JSON.stringify(first.json));
  assert.equal(first.json.replaced, false);

  const second = await control('clients', {
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [`${RP}/callback`],
    post_logout_redirect_uris: [`${RP}/logged-out`],
    backchannel_logout_uri: `${RP}/backchannel-logout`,
  });
  assert.equal(second.status, 200, JSON.stringify(second.json));
  assert.equal(second.json.replaced, true);
  assert.equal(second.json.client.id_token_signed_response_alg, 'ES256');
  assert.equal(second.json.client.backchannel_logout_session_required, true);

  const bad = await control('clients', { client_id: 'x', client_secret: 'y', redirect_uris: ['not a url'] });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error, /redirect_uris/);
});

test('PKCE is required (no code_challenge -> error=invalid_request)', async () => {
  const params = new URLSearchParams({
    client_id: CLIENT_ID, response_type: 'code', scope: 'openid', redirect_uri: `${RP}/callback`, state: 's', nonce: 'n',
  });
  const res = await fetch(`${ISS}/auth?${params}`, { redirect: 'manual' });
  const cb = new URL(location(res));
  assert.equal(cb.origin + cb.pathname, `${RP}/callback`);
  assert.equal(cb.searchParams.get('error'), 'invalid_request');
});

let alice; // kept for the sessions, userinfo and logout tests

test('authorization code + PKCE S256 for alice (client_secret_basic)', async () => {
  alice = await signIn('alice');
  assert.equal(alice.interactions, 2, 'login then consent');
  assert.equal(alice.misbehaved, null);
  assert.deepEqual(alice.header, { alg: 'ES256', kid: 'k1', ...(alice.header.typ ? { typ: alice.header.typ } : {}) });
  const { payload } = await jose.jwtVerify(alice.idToken, jwks, { issuer: ISS, audience: CLIENT_ID, algorithms: ['ES256'] });
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.nonce, alice.nonce);
  assert.equal(payload.name, 'Alice Martin');
  assert.equal(payload.email, 'alice@example.test');
  assert.equal(payload.email_verified, true);
  assert.deepEqual(payload.groups, ['admins', 'staff']);
  assert.equal(typeof payload.sid, 'string');

  const ui = await userinfo(alice.tokens.access_token);
  assert.equal(ui.status, 200);
  assert.equal(ui.json.sub, 'alice');
  assert.deepEqual(ui.json.groups, ['admins', 'staff']);
});

test('the same client also authenticates with client_secret_post; users bob, carol, mallory, other', async () => {
  const bob = await signIn('bob', { auth: 'post' });
  assert.equal(bob.claims.name, 'Bob Durand');
  assert.deepEqual(bob.claims.groups, ['staff']);
  const carol = await signIn('carol');
  assert.equal(carol.claims.email, 'carol@example.test');
  assert.deepEqual(carol.claims.groups, ['auditors', 'staff']);
  const mallory = await signIn('mallory');
  assert.equal(mallory.claims.email, 'mallory@evil.example');
  const x = await signIn('zoe');
  assert.equal(x.claims.sub, 'zoe');
  assert.equal(x.claims.name, 'zoe');
  assert.equal(x.claims.email, 'zoe@example.test');
  assert.deepEqual(x.claims.groups, []);
});

test('pc-user gets ProConnect-style claims', async () => {
  const pc = await signIn('pc-user');
  assert.equal(pc.claims.sub, 'pc-user');
  assert.equal(pc.claims.given_name, 'Jeanne');
  assert.equal(pc.claims.usual_name, 'Dupont');
  assert.equal(pc.claims.email, 'jeanne.dupont@interieur.gouv.fr');
  assert.equal(pc.claims.uid, 'pc-123');
  assert.equal(pc.claims.siret, '11000201100044');
  assert.equal(pc.claims.idp_id, 'fia1v2');
});

test('GET /__test/sessions lists the session and the sid in the ID token', async () => {
  const { status, json } = await control('sessions?account=alice');
  assert.equal(status, 200);
  const s = json.sessions.find((x) => x.sids.includes(alice.claims.sid));
  assert.ok(s, JSON.stringify(json));
  assert.equal(s.accountId, 'alice');
  assert.deepEqual(s.clients.map((c) => c.client_id), [CLIENT_ID]);
});

test('an existing provider session signs in again without interaction', async () => {
  const again = await signIn('ignored', { jar: alice.jar });
  assert.equal(again.interactions, 0);
  assert.equal(again.claims.sub, 'alice');
  assert.equal(again.claims.sid, alice.claims.sid);
});

// Each misbehaviour: [mode, check(decoded, raw)]
const MODES = {
  wrong_iss: async (r) => {
    assert.equal(r.claims.iss, 'http://evil.example');
    await verifySig(r.idToken); // still a real signature by the provider
  },
  wrong_aud: async (r) => {
    assert.equal(r.claims.aud, 'someone-else');
    await verifySig(r.idToken);
  },
  multi_aud_no_azp: async (r) => {
    assert.deepEqual(r.claims.aud, [CLIENT_ID, 'other-client']);
    assert.equal(r.claims.azp, undefined);
    await verifySig(r.idToken);
  },
  multi_aud_wrong_azp: async (r) => {
    assert.deepEqual(r.claims.aud, [CLIENT_ID, 'other-client']);
    assert.equal(r.claims.azp, 'other-client');
    await verifySig(r.idToken);
  },
  expired: async (r) => {
    const t = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(r.claims.exp - (t - 600)) < 30, `exp ${r.claims.exp}`);
    assert.ok(Math.abs(r.claims.iat - (t - 1200)) < 30, `iat ${r.claims.iat}`);
    await verifySig(r.idToken);
    await assert.rejects(jose.jwtVerify(r.idToken, jwks), { code: 'ERR_JWT_EXPIRED' });
  },
  iat_future: async (r) => {
    const t = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(r.claims.iat - (t + 3600)) < 30);
    assert.ok(Math.abs(r.claims.exp - (t + 7200)) < 30);
    await verifySig(r.idToken);
  },
  bad_signature: async (r) => {
    assert.equal(r.header.alg, 'ES256');
    assert.equal(r.claims.sub, 'alice');
    await assert.rejects(verifySig(r.idToken), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  },
  alg_none: async (r) => {
    assert.equal(r.header.alg, 'none');
    assert.ok(r.idToken.endsWith('.'), 'empty signature');
    assert.equal(r.claims.sub, 'alice');
  },
  hs256_public_key: async (r) => {
    assert.equal(r.header.alg, 'HS256');
    const { keys } = await (await fetch(`${ISS}/jwks`)).json();
    const pub = keys.find((k) => k.kid === r.header.kid) ?? keys[0];
    // the HMAC secret is the PEM text of the provider's public key
    const pem = createPublicKey({ key: pub, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    await jose.jwtVerify(r.idToken, new TextEncoder().encode(pem), { algorithms: ['HS256'] });
    await assert.rejects(verifySig(r.idToken));
  },
  unknown_kid: async (r) => {
    assert.equal(r.header.kid, 'k-unknown');
    assert.equal(r.header.alg, 'ES256');
    await assert.rejects(verifySig(r.idToken), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
  },
  nonce_mismatch: async (r) => {
    assert.equal(r.claims.nonce, 'wrong');
    assert.notEqual(r.nonce, 'wrong');
    await verifySig(r.idToken);
  },
  nonce_missing: async (r) => {
    assert.equal('nonce' in r.claims, false);
    await verifySig(r.idToken);
  },
  other_client: async (r) => {
    assert.equal(r.claims.aud, 'other-client');
    assert.equal(r.claims.azp, 'other-client');
    await verifySig(r.idToken);
  },
  sub_mismatch_userinfo: async (r) => {
    assert.equal(r.claims.sub, 'alice');
    await jose.jwtVerify(r.idToken, jwks, { issuer: ISS, audience: CLIENT_ID });
    const ui = await userinfo(r.tokens.access_token);
    assert.equal(ui.status, 200);
    assert.equal(ui.json.sub, 'someone-else');
  },
  no_sub: async (r) => {
    assert.equal('sub' in r.claims, false);
    await verifySig(r.idToken);
  },
};

for (const [mode, check] of Object.entries(MODES)) {
  test(`misbehave ${mode}: next ID token altered, the one after is clean`, async () => {
    const set = await control('misbehave', { mode });
    assert.equal(set.status, 200, JSON.stringify(set.json));
    const bad = await signIn('alice', { jar: alice.jar });
    assert.equal(bad.misbehaved, mode);
    await check(bad);

    const good = await signIn('alice', { jar: alice.jar });
    assert.equal(good.misbehaved, null);
    await jose.jwtVerify(good.idToken, jwks, { issuer: ISS, audience: CLIENT_ID, algorithms: ['ES256'] });
    assert.equal(good.claims.nonce, good.nonce);
    if (mode === 'sub_mismatch_userinfo') {
      assert.equal((await userinfo(good.tokens.access_token)).json.sub, 'alice');
    }
  });
}

test('misbehave hs256_public_key with key_form "jwk"', async () => {
  await control('misbehave', { mode: 'hs256_public_key', key_form: 'jwk' });
  const r = await signIn('alice', { jar: alice.jar });
  const { keys } = await (await fetch(`${ISS}/jwks`)).json();
  const secret = new TextEncoder().encode(JSON.stringify(keys[0]));
  await jose.jwtVerify(r.idToken, secret, { algorithms: ['HS256'] });
});

test('misbehave once:false persists until {mode: null}; unknown mode is refused', async () => {
  assert.equal((await control('misbehave', { mode: 'wrong_iss', once: false })).status, 200);
  assert.equal((await signIn('alice', { jar: alice.jar })).claims.iss, 'http://evil.example');
  assert.equal((await signIn('alice', { jar: alice.jar })).claims.iss, 'http://evil.example');
  assert.equal((await control('misbehave', { mode: null })).status, 200);
  assert.equal((await signIn('alice', { jar: alice.jar })).claims.iss, ISS);
  const unknown = await control('misbehave', { mode: 'nope' });
  assert.equal(unknown.status, 400);
});

test('misbehave scoped to one client_id leaves the other clients alone', async () => {
  const other = { clientId: 'second-rp', clientSecret: 'second-secret' };
  assert.equal((await control('clients', {
    client_id: other.clientId, client_secret: other.clientSecret, redirect_uris: [`${RP}/callback`],
  })).status, 200);
  assert.equal((await control('misbehave', { mode: 'wrong_aud', client_id: other.clientId })).status, 200);
  const mine = await signIn('alice', { jar: alice.jar });
  assert.equal(mine.claims.aud, CLIENT_ID);
  const theirs = await signIn('alice', { jar: alice.jar, ...other });
  assert.equal(theirs.claims.aud, 'someone-else');
  const theirsAgain = await signIn('alice', { jar: alice.jar, ...other });
  assert.equal(theirsAgain.claims.aud, other.clientId);
  assert.deepEqual((await control('state')).json.misbehave, {});
});

test('jwks down: /jwks answers 503, then 200 again', async () => {
  assert.equal((await control('jwks', { down: true })).status, 200);
  const down = await fetch(`${ISS}/jwks`);
  assert.equal(down.status, 503);
  await down.arrayBuffer();
  assert.equal((await control('jwks', { down: false })).status, 200);
  const up = await fetch(`${ISS}/jwks`);
  assert.equal(up.status, 200);
  assert.equal((await up.json()).keys[0].kid, 'k1');
});

test('slow: non-control responses are delayed, control ones are not', async () => {
  assert.equal((await control('slow', { ms: 400 })).status, 200);
  let t0 = Date.now();
  assert.equal((await fetch(`${ISS}/.well-known/openid-configuration`)).status, 200);
  assert.ok(Date.now() - t0 >= 390, `took ${Date.now() - t0} ms`);
  t0 = Date.now();
  await control('state');
  assert.ok(Date.now() - t0 < 300);
  await control('slow', { ms: 0 });
  t0 = Date.now();
  await fetch(`${ISS}/.well-known/openid-configuration`);
  assert.ok(Date.now() - t0 < 300);
});

test('back-channel control: valid logout token and every mode reach the RP over self-signed HTTPS', async () => {
  const sid = alice.claims.sid;
  const send = async (mode) => {
    const before = received.length;
    const r = await control('backchannel', { client_id: CLIENT_ID, sub: 'alice', sid, ...(mode ? { mode } : {}) });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.status, 200);
    assert.equal(r.json.body, 'ok');
    assert.equal(received.length, before + 1);
    const got = received.at(-1);
    assert.equal(got.logout_token, r.json.logout_token);
    assert.equal(got.content_type, 'application/x-www-form-urlencoded');
    return got;
  };

  const valid = await send();
  const { payload, protectedHeader } = await jose.jwtVerify(valid.logout_token, jwks, {
    issuer: ISS, audience: CLIENT_ID, algorithms: ['ES256'], typ: 'logout+jwt',
  });
  assert.equal(protectedHeader.kid, 'k1');
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.sid, sid);
  assert.ok(payload.jti);
  assert.deepEqual(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
  assert.equal(payload.nonce, undefined);

  const withNonce = await send('with_nonce');
  assert.ok(withNonce.claims.nonce);
  await verifySig(withNonce.logout_token);

  const noEvents = await send('no_events');
  assert.equal(noEvents.claims.events, undefined);
  await verifySig(noEvents.logout_token);

  const badSig = await send('bad_signature');
  assert.equal(badSig.claims.sid, sid);
  await assert.rejects(verifySig(badSig.logout_token), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });

  const wrongAud = await send('wrong_aud');
  assert.equal(wrongAud.claims.aud, 'someone-else');
  await verifySig(wrongAud.logout_token);

  const anon = await send('no_sub_no_sid');
  assert.equal(anon.claims.sub, undefined);
  assert.equal(anon.claims.sid, undefined);
  await verifySig(anon.logout_token);

  const expired = await send('expired');
  assert.ok(expired.claims.iat <= Math.floor(Date.now() / 1000) - 3590);
  await verifySig(expired.logout_token);

  const unknown = await control('backchannel', { client_id: 'nobody', sub: 'alice', sid });
  assert.equal(unknown.status, 404);
});

test('rotate: new key k2 signs, k1 stays published, the session survives', async () => {
  const r = await control('rotate', {});
  assert.equal(r.status, 200);
  assert.equal(r.json.signing_kid, 'k2');
  assert.deepEqual(r.json.published_kids, ['k2', 'k1']);
  const k = await (await fetch(`${ISS}/jwks`)).json();
  assert.deepEqual(k.keys.map((x) => x.kid), ['k2', 'k1']);

  const after = await signIn('ignored', { jar: alice.jar });
  assert.equal(after.interactions, 0, 'provider session kept across the rebuild');
  assert.equal(after.header.kid, 'k2');
  await jose.jwtVerify(after.idToken, jwks, { issuer: ISS, audience: CLIENT_ID });
  await verifySig(alice.idToken); // a token signed by k1 still verifies

  const bc = await control('backchannel', { client_id: CLIENT_ID, sub: 'alice', sid: alice.claims.sid });
  assert.equal(jose.decodeProtectedHeader(bc.json.logout_token).kid, 'k2');
});

test('RP-initiated logout sends a real back-channel logout and redirects back', async () => {
  const { jar } = alice;
  const fresh = await signIn('ignored', { jar });
  const before = received.length;
  const params = new URLSearchParams({
    id_token_hint: fresh.idToken,
    post_logout_redirect_uri: `${RP}/logged-out`,
    state: 'bye',
  });
  const page = await jar.fetch(`${ISS}/session/end?${params}`);
  assert.equal(page.status, 200);
  const html = await page.text();
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
  assert.ok(xsrf, html);

  const confirm = await jar.fetch(`${ISS}/session/end/confirm`, {
    method: 'POST',
    body: new URLSearchParams({ xsrf, logout: 'yes' }),
  });
  assert.equal(confirm.status, 303);
  assert.equal(location(confirm), `${RP}/logged-out?state=bye`);

  assert.equal(received.length, before + 1, 'one back-channel logout received');
  const got = received.at(-1);
  const { payload, protectedHeader } = await jose.jwtVerify(got.logout_token, jwks, {
    issuer: ISS, audience: CLIENT_ID, algorithms: ['ES256'],
  });
  assert.equal(protectedHeader.kid, 'k2');
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.sid, alice.claims.sid);
  assert.deepEqual(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });

  const { json } = await control('sessions?account=alice');
  assert.ok(!json.sessions.some((s) => s.sids.includes(alice.claims.sid)), 'session gone');

  const again = await authorize('alice', { jar });
  assert.equal(again.interactions, 2, 'must sign in again');
});

test('stdout carried only the ready line', () => {
  // oidc-provider notices and our logs must have gone to stderr
  assert.equal(idpStdout, `IDP_READY ${JSON.stringify({ issuer: ISS })}\n`);
  assert.match(idpStderr, /oidc-provider WARNING/);
});
