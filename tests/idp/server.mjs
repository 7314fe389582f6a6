// Test-only OpenID Connect provider for Beffroi's integration and browser tests.
// Built on oidc-provider 9; can misbehave on demand through the /__test/ control API
// (see README.md). Never expose this to anything but 127.0.0.1.
//
// stdout carries exactly one line: `IDP_READY {"issuer":"http://127.0.0.1:PORT"}`.
// Everything else (oidc-provider notices and warnings, our logs) goes to stderr.

import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { createHmac, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';

// oidc-provider prints its NOTICE lines with console.info (stdout): keep stdout clean.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

const { default: Provider } = await import('oidc-provider');
const jose = await import('jose');

const HOST = process.env.IDP_HOST || '127.0.0.1';
const REQUESTED_PORT = Number.parseInt(process.env.IDP_PORT || '0', 10);

const log = (...args) => console.error('[idp]', ...args);
const now = () => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

let kidCounter = 0;
const newKey = (kid) => ({
  ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
  kid,
  use: 'sig',
  alg: 'ES256',
});
/** The public JWK exactly as oidc-provider serves it on /jwks (same members, same order). */
const publicJwk = (k) => ({ kty: k.kty, use: k.use, kid: k.kid, alg: k.alg, crv: k.crv, x: k.x, y: k.y });

/** Private signing keys, first one signs. All are published on /jwks. */
const keys = [newKey(`k${++kidCounter}`)];
/** Never published: used by the `unknown_kid` misbehaviour. */
const unknownKey = newKey('k-unknown');

const COOKIE_KEYS = [randomUUID(), randomUUID()];

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

const USERS = {
  alice: { name: 'Alice Martin', given_name: 'Alice', family_name: 'Martin', email: 'alice@example.test', groups: ['admins', 'staff'] },
  bob: { name: 'Bob Durand', given_name: 'Bob', family_name: 'Durand', email: 'bob@example.test', groups: ['staff'] },
  carol: { name: 'Carol Petit', given_name: 'Carol', family_name: 'Petit', email: 'carol@example.test', groups: ['auditors', 'staff'] },
  mallory: { name: 'Mallory', email: 'mallory@evil.example', groups: ['staff'] },
  // ProConnect style: no name / family_name / groups, but usual_name, uid, siret, idp_id.
  'pc-user': {
    given_name: 'Jeanne',
    usual_name: 'Dupont',
    email: 'jeanne.dupont@interieur.gouv.fr',
    uid: 'pc-123',
    siret: '11000201100044',
    idp_id: 'fia1v2',
  },
};

function claimsFor(sub) {
  const known = USERS[sub];
  if (known) return { sub, email_verified: true, ...known };
  return { sub, name: sub, email: `${sub}@example.test`, email_verified: true, groups: [] };
}

// ---------------------------------------------------------------------------
// Storage shared by every Provider instance (survives /__test/rotate rebuilds)
// ---------------------------------------------------------------------------

/** client_id -> client metadata (snake_case), registered through /__test/clients */
const clients = new Map();
/** `${model}:${id}` -> { payload, expiresAt } */
const store = new Map();

const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);

class TestAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  static live(key) {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  async upsert(id, payload, expiresIn) {
    if (this.model === 'Client') {
      clients.set(id, payload);
      return;
    }
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(this.key(id), { payload, expiresAt });
  }

  async find(id) {
    if (this.model === 'Client') {
      const metadata = clients.get(id);
      return metadata ? structuredClone(metadata) : undefined;
    }
    return TestAdapter.live(this.key(id));
  }

  #findBy(field, value) {
    const prefix = `${this.model}:`;
    for (const key of store.keys()) {
      if (!key.startsWith(prefix)) continue;
      const payload = TestAdapter.live(key);
      if (payload && payload[field] === value) return payload;
    }
    return undefined;
  }

  async findByUid(uid) {
    return this.#findBy('uid', uid);
  }

  async findByUserCode(userCode) {
    return this.#findBy('userCode', userCode);
  }

  async consume(id) {
    const payload = TestAdapter.live(this.key(id));
    if (payload) payload.consumed = now();
  }

  async destroy(id) {
    if (this.model === 'Client') {
      clients.delete(id);
      return;
    }
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const [key, entry] of store) {
      const model = key.slice(0, key.indexOf(':'));
      if (GRANTABLE.has(model) && entry.payload?.grantId === grantId) store.delete(key);
    }
  }
}

// ---------------------------------------------------------------------------
// Outgoing HTTP without certificate verification nor SSRF protection (tests only)
// ---------------------------------------------------------------------------

function insecureRequest(url, { method = 'GET', headers = {}, body, signal, timeoutMs = 5000 } = {}) {
  const target = new URL(url);
  const mod = target.protocol === 'https:' ? https : http;
  const plainHeaders = Object.fromEntries(new Headers(headers));
  let payload;
  if (body instanceof URLSearchParams) {
    payload = Buffer.from(body.toString());
    plainHeaders['content-type'] ??= 'application/x-www-form-urlencoded';
  } else if (typeof body === 'string') {
    payload = Buffer.from(body);
  } else if (body != null) {
    payload = Buffer.from(body);
  }
  if (payload) plainHeaders['content-length'] = String(payload.length);

  return new Promise((resolve, reject) => {
    const req = mod.request(target, {
      method,
      headers: plainHeaders,
      rejectUnauthorized: false, // the RP under test uses a self-signed certificate
      signal,
      timeout: timeoutMs,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** `fetch` replacement handed to oidc-provider (back-channel logout to https://127.0.0.1). */
async function providerFetch(url, options = {}) {
  const { status, headers, body } = await insecureRequest(url, options);
  const responseHeaders = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    for (const v of [].concat(value)) responseHeaders.append(name, v);
  }
  const nullBody = [101, 103, 204, 205, 304].includes(status);
  return new Response(nullBody ? null : body, { status, headers: responseHeaders });
}

// ---------------------------------------------------------------------------
// JWT helpers for the misbehaviours
// ---------------------------------------------------------------------------

const b64 = (data) => Buffer.from(data).toString('base64url');
const b64json = (obj) => b64(JSON.stringify(obj));

function decodeJwt(jwt) {
  const [h, p, s] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url')),
    payload: JSON.parse(Buffer.from(p, 'base64url')),
    signature: s,
  };
}

async function signEs256(privateJwk, header, payload) {
  const key = await jose.importJWK(privateJwk, 'ES256');
  return new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ ...header, alg: 'ES256', kid: privateJwk.kid })
    .sign(key);
}

function flipSignatureByte(jwt) {
  const [h, p, s] = jwt.split('.');
  const sig = Buffer.from(s, 'base64url');
  sig[0] ^= 0xff;
  return `${h}.${p}.${sig.toString('base64url')}`;
}

/**
 * The provider's current public key in the form used as the HMAC secret:
 * 'pem' = SPKI PEM text as node's crypto exports it (64-column lines, trailing newline);
 * 'jwk' = the key's JSON text exactly as served on /jwks.
 */
function hmacSecretFromPublicKey(form) {
  const pub = publicJwk(keys[0]);
  if (form === 'jwk') return Buffer.from(JSON.stringify(pub));
  return Buffer.from(createPublicKey({ key: pub, format: 'jwk' }).export({ type: 'spki', format: 'pem' }));
}

function signHs256WithPublicKey(header, payload, form) {
  const input = `${b64json({ ...header, alg: 'HS256' })}.${b64json(payload)}`;
  const mac = createHmac('sha256', hmacSecretFromPublicKey(form)).update(input).digest();
  return `${input}.${b64(mac)}`;
}

function algNone(header, payload) {
  const { kid, ...rest } = header; // eslint-disable-line no-unused-vars
  return `${b64json({ ...rest, alg: 'none' })}.${b64json(payload)}.`;
}

/** How each /token misbehaviour changes the ID token claims (null = claims untouched). */
const ID_TOKEN_CLAIM_CHANGES = {
  wrong_iss: (c) => ({ ...c, iss: 'http://evil.example' }),
  wrong_aud: (c) => ({ ...c, aud: 'someone-else' }),
  multi_aud_no_azp: (c) => {
    const { azp, ...rest } = c; // eslint-disable-line no-unused-vars
    return { ...rest, aud: [audOf(c), 'other-client'] };
  },
  multi_aud_wrong_azp: (c) => ({ ...c, aud: [audOf(c), 'other-client'], azp: 'other-client' }),
  expired: (c) => ({ ...c, iat: now() - 1200, exp: now() - 600 }),
  iat_future: (c) => ({ ...c, iat: now() + 3600, exp: now() + 7200 }),
  nonce_mismatch: (c) => ({ ...c, nonce: 'wrong' }),
  nonce_missing: (c) => {
    const { nonce, ...rest } = c; // eslint-disable-line no-unused-vars
    return rest;
  },
  other_client: (c) => ({ ...c, aud: 'other-client', azp: 'other-client' }),
  no_sub: (c) => {
    const { sub, ...rest } = c; // eslint-disable-line no-unused-vars
    return rest;
  },
};
const SIGNATURE_MODES = ['bad_signature', 'alg_none', 'hs256_public_key', 'unknown_kid'];
const TOKEN_MODES = [...Object.keys(ID_TOKEN_CLAIM_CHANGES), ...SIGNATURE_MODES, 'sub_mismatch_userinfo'];

function audOf(claims) {
  return Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
}

/** Re-issue `jwt` with its claims changed by `change` and signed as `signing` says. */
async function reissue(jwt, { change = (c) => c, signing = 'normal', hmacKeyForm = 'pem' } = {}) {
  const { header, payload } = decodeJwt(jwt);
  const claims = change(payload);
  switch (signing) {
    case 'normal':
      return signEs256(keys[0], header, claims);
    case 'bad_signature':
      return flipSignatureByte(await signEs256(keys[0], header, claims));
    case 'alg_none':
      return algNone(header, claims);
    case 'hs256_public_key':
      return signHs256WithPublicKey(header, claims, hmacKeyForm);
    case 'unknown_kid':
      return signEs256(unknownKey, header, claims);
    default:
      throw new Error(`unknown signing ${signing}`);
  }
}

// ---------------------------------------------------------------------------
// Test state
// ---------------------------------------------------------------------------

const state = {
  /** pending ID token misbehaviours: client_id (or '*' for any client) -> { mode, once, hmacKeyForm } */
  misbehave: new Map(),
  jwksDown: false,
  slowMs: 0,
  /** access tokens whose /me answer gets sub "someone-else" */
  userinfoSubMismatch: new Set(),
  /** last misbehaviour applied, for debugging */
  lastApplied: null,
};

async function misbehaveMiddleware(ctx, next) {
  await next();

  const clientId = ctx.oidc?.client?.clientId;
  const slot = state.misbehave.has(clientId) ? clientId : '*';
  if (ctx.path === '/token' && ctx.method === 'POST' && ctx.status === 200
      && state.misbehave.has(slot) && ctx.body && typeof ctx.body === 'object' && ctx.body.id_token) {
    const { mode, once, hmacKeyForm } = state.misbehave.get(slot);
    if (once) state.misbehave.delete(slot);
    const body = { ...ctx.body };
    if (mode === 'sub_mismatch_userinfo') {
      if (body.access_token) state.userinfoSubMismatch.add(body.access_token);
    } else if (SIGNATURE_MODES.includes(mode)) {
      body.id_token = await reissue(body.id_token, { signing: mode, hmacKeyForm });
    } else {
      body.id_token = await reissue(body.id_token, { change: ID_TOKEN_CLAIM_CHANGES[mode] });
    }
    ctx.body = body;
    ctx.set('x-test-misbehaved', mode);
    state.lastApplied = { mode, client_id: clientId, at: new Date().toISOString() };
    log(`misbehaved on /token for ${clientId}: ${mode}`);
  }

  if (ctx.path === '/me' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object'
      && state.userinfoSubMismatch.size) {
    const auth = ctx.get('authorization');
    const token = /^bearer /i.test(auth) ? auth.slice(7).trim() : ctx.oidc?.params?.access_token;
    if (token && state.userinfoSubMismatch.has(token)) {
      ctx.body = { ...ctx.body, sub: 'someone-else' };
      ctx.set('x-test-misbehaved', 'sub_mismatch_userinfo');
      log('misbehaved on /me: sub_mismatch_userinfo');
    }
  }
}

// ---------------------------------------------------------------------------
// Provider (rebuilt on key rotation; sessions, grants and codes live in `store`)
// ---------------------------------------------------------------------------

let issuer;
let provider;
let providerCallback;

const CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'usual_name', 'uid', 'siret', 'idp_id'],
  email: ['email', 'email_verified'],
  groups: ['groups'],
};

/** The end_session confirmation page (the default one imports web fonts from the Internet). */
async function logoutSource(ctx, form) {
  ctx.type = 'html';
  ctx.body = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign out (test IdP)</title></head>
<body><main><h1>Sign out from the test IdP?</h1>
${form}
<button id="logout-yes" autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button id="logout-no" type="submit" form="op.logoutForm">No, stay signed in</button>
</main></body></html>`;
}

function buildProvider() {
  const p = new Provider(issuer, {
    adapter: TestAdapter,
    jwks: { keys: keys.map((k) => ({ ...k })) },
    cookies: { keys: COOKIE_KEYS },
    pkce: { required: () => true },
    scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
    claims: CLAIMS,
    conformIdTokenClaims: false,
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'ES256',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource },
      backchannelLogout: { enabled: true },
      userinfo: { enabled: true },
      // Lets a client ask for signed UserInfo (userinfo_signed_response_alg), as ProConnect sends.
      jwtUserinfo: { enabled: true },
    },
    fetch: providerFetch,
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      ClientCredentials: 600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
      PreAuthorizedCode: 600,
      IdToken: 3600,
      RefreshToken: 86400,
      Interaction: 3600,
      Session: 86400,
      Grant: 86400,
    },
    findAccount: async (ctx, sub) => ({
      accountId: sub,
      claims: async () => claimsFor(sub),
    }),
  });

  // Always put `sid` in ID tokens, even for a client registered without
  // backchannel_logout_uri (oidc-provider only does it when one is set).
  p.Client.prototype.includeSid = () => true;

  p.use(misbehaveMiddleware);

  p.on('server_error', (ctx, err) => log('server_error', ctx.path, err));
  p.on('backchannel.error', (ctx, err, client, accountId, sid) => log('backchannel.error', client.clientId, accountId, sid, err.message));
  p.on('backchannel.success', (ctx, client, accountId, sid) => log('backchannel.success', client.clientId, accountId, sid));
  return p;
}

function installProvider() {
  provider = buildProvider();
  providerCallback = provider.callback();
}

// ---------------------------------------------------------------------------
// Control API (/__test/...)
// ---------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

const sendJson = (res, status, obj) => {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

async function registerClient(body) {
  const { client_id: clientId, client_secret: clientSecret, redirect_uris: redirectUris, ...extra } = body;
  if (typeof clientId !== 'string' || !clientId) throw new HttpError(400, 'client_id is required');
  if (typeof clientSecret !== 'string' || !clientSecret) throw new HttpError(400, 'client_secret is required');
  if (!Array.isArray(redirectUris) || !redirectUris.length) throw new HttpError(400, 'redirect_uris must be a non-empty array');

  const metadata = {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic', // client_secret_post is accepted too
    id_token_signed_response_alg: 'ES256',
    backchannel_logout_session_required: true,
    post_logout_redirect_uris: [],
    ...Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined && v !== null)),
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
  };
  try {
    await provider.Client.validate(metadata);
  } catch (err) {
    throw new HttpError(400, `invalid client metadata: ${err.error_description || err.message}`);
  }
  const replaced = clients.has(clientId);
  clients.set(clientId, metadata);
  log(`client ${replaced ? 'replaced' : 'registered'}: ${clientId}`);
  return { ok: true, replaced, client: metadata };
}

function setMisbehave(body) {
  const { mode, once = true, key_form: keyForm = 'pem', client_id: clientId } = body;
  if (clientId !== undefined && (typeof clientId !== 'string' || !clientId)) throw new HttpError(400, 'client_id must be a non-empty string');
  const slot = clientId ?? '*';
  if (mode === null || mode === undefined) {
    if (clientId === undefined) {
      state.misbehave.clear();
      state.userinfoSubMismatch.clear();
    } else {
      state.misbehave.delete(slot);
    }
    return { ok: true, misbehave: null };
  }
  if (!TOKEN_MODES.includes(mode)) throw new HttpError(400, `unknown mode ${JSON.stringify(mode)}; known: ${TOKEN_MODES.join(', ')}`);
  if (!['pem', 'jwk'].includes(keyForm)) throw new HttpError(400, 'key_form must be "pem" or "jwk"');
  state.misbehave.set(slot, { mode, once: once !== false, hmacKeyForm: keyForm });
  return { ok: true, misbehave: { mode, once: once !== false, key_form: keyForm, client_id: clientId ?? null } };
}

function rotate() {
  keys.unshift(newKey(`k${++kidCounter}`));
  installProvider();
  log(`rotated: ${keys.map((k) => k.kid).join(', ')}`);
  return { ok: true, signing_kid: keys[0].kid, published_kids: keys.map((k) => k.kid) };
}

const LOGOUT_MODES = ['with_nonce', 'no_events', 'bad_signature', 'wrong_aud', 'no_sub_no_sid', 'expired'];
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

async function backchannel(body) {
  const { client_id: clientId, sub, sid, mode } = body;
  const client = clients.get(clientId);
  if (!client) throw new HttpError(404, `unknown client ${clientId}`);
  if (!client.backchannel_logout_uri) throw new HttpError(400, `client ${clientId} has no backchannel_logout_uri`);
  if (mode != null && !LOGOUT_MODES.includes(mode)) throw new HttpError(400, `unknown mode ${JSON.stringify(mode)}; known: ${LOGOUT_MODES.join(', ')}`);

  const iat = mode === 'expired' ? now() - 3600 : now();
  let claims = {
    iss: issuer,
    aud: mode === 'wrong_aud' ? 'someone-else' : clientId,
    iat,
    exp: iat + 120,
    jti: randomUUID(),
    sub,
    sid,
    events: { [BACKCHANNEL_EVENT]: {} },
  };
  if (mode === 'with_nonce') claims.nonce = 'n-0S6_WzA2Mj';
  if (mode === 'no_events') delete claims.events;
  if (mode === 'no_sub_no_sid') {
    delete claims.sub;
    delete claims.sid;
  }
  claims = Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined));

  let logoutToken = await signEs256(keys[0], { typ: 'logout+jwt' }, claims);
  if (mode === 'bad_signature') logoutToken = flipSignatureByte(logoutToken);

  try {
    const res = await insecureRequest(client.backchannel_logout_uri, {
      method: 'POST',
      body: new URLSearchParams({ logout_token: logoutToken }),
    });
    log(`backchannel (${mode || 'valid'}) -> ${client.backchannel_logout_uri}: ${res.status}`);
    return { status: res.status, body: res.body.toString('utf8'), logout_token: logoutToken };
  } catch (err) {
    throw new HttpError(502, `POST ${client.backchannel_logout_uri} failed: ${err.message}`);
  }
}

function listSessions(query) {
  const sessions = [];
  for (const key of store.keys()) {
    if (!key.startsWith('Session:')) continue;
    const s = TestAdapter.live(key);
    if (!s || !s.accountId) continue;
    if (query.get('account') && s.accountId !== query.get('account')) continue;
    const perClient = Object.entries(s.authorizations || {}).map(([clientId, a]) => ({ client_id: clientId, sid: a.sid, grant_id: a.grantId }));
    sessions.push({
      id: s.jti,
      uid: s.uid,
      accountId: s.accountId,
      login_ts: s.loginTs,
      clients: perClient,
      sids: perClient.map((c) => c.sid),
    });
  }
  return { sessions };
}

function reset() {
  state.misbehave.clear();
  state.userinfoSubMismatch.clear();
  state.jwksDown = false;
  state.slowMs = 0;
  return { ok: true };
}

async function control(req, res, url) {
  const route = `${req.method} ${url.pathname}`;
  try {
    let result;
    switch (route) {
      case 'POST /__test/clients': result = await registerClient(await readJson(req)); break;
      case 'GET /__test/clients': result = { clients: [...clients.values()] }; break;
      case 'POST /__test/misbehave': result = setMisbehave(await readJson(req)); break;
      case 'POST /__test/rotate': result = rotate(); break;
      case 'POST /__test/jwks': {
        const { down } = await readJson(req);
        if (typeof down !== 'boolean') throw new HttpError(400, 'down must be a boolean');
        state.jwksDown = down;
        result = { ok: true, down };
        break;
      }
      case 'POST /__test/slow': {
        const { ms = 0 } = await readJson(req);
        if (!Number.isFinite(ms) || ms < 0) throw new HttpError(400, 'ms must be a non-negative number');
        state.slowMs = ms;
        result = { ok: true, ms };
        break;
      }
      case 'POST /__test/backchannel': result = await backchannel(await readJson(req)); break;
      case 'GET /__test/sessions': result = listSessions(url.searchParams); break;
      case 'POST /__test/reset': result = reset(); break;
      case 'GET /__test/state':
        result = {
          issuer,
          misbehave: Object.fromEntries(state.misbehave),
          last_applied: state.lastApplied,
          jwks_down: state.jwksDown,
          slow_ms: state.slowMs,
          signing_kid: keys[0].kid,
          published_kids: keys.map((k) => k.kid),
          clients: [...clients.keys()],
        };
        break;
      default: throw new HttpError(404, `no control route ${route}`);
    }
    sendJson(res, 200, result);
  } catch (err) {
    if (!(err instanceof HttpError)) log('control error', route, err);
    sendJson(res, err.status || 500, { error: err.message });
  }
}

// ---------------------------------------------------------------------------
// HTTP server
// ---------------------------------------------------------------------------

async function handle(req, res) {
  const url = new URL(req.url, 'http://placeholder');
  if (url.pathname.startsWith('/__test/')) {
    await control(req, res, url);
    return;
  }
  if (state.slowMs > 0) await new Promise((r) => { setTimeout(r, state.slowMs); });
  if (state.jwksDown && url.pathname === '/jwks') {
    sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'jwks is down (test control)' });
    return;
  }
  providerCallback(req, res);
}

async function freePort(host) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const port = REQUESTED_PORT || await freePort(HOST);
issuer = `http://${HOST}:${port}`;
installProvider();

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    log('unhandled', err);
    if (!res.headersSent) sendJson(res, 500, { error: 'internal test idp error' });
    else res.destroy();
  });
});
server.listen(port, HOST, () => {
  process.stdout.write(`IDP_READY ${JSON.stringify({ issuer })}\n`);
  log(`listening on ${issuer}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  });
}

// When the test harness asks for it, stop as soon as its end of our stdin closes: a provider
// shared by a whole test binary then never outlives that binary, even if it crashes.
if (process.env.IDP_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
