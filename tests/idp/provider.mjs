// Test OpenID provider for the nix-cache-login integration tests.
//
// A real oidc-provider (v9) instance, served over HTTPS on 127.0.0.1 only.
// Everything is configured through environment variables (see README.md in
// this folder); `--port N` on the command line overrides IDP_PORT.
//
// Once listening it prints exactly one line starting with `READY ` to stdout:
//   READY https://127.0.0.1:PORT
// (or http:// with IDP_HTTP=1, for the demo: a real browser then needs no test CA)
// (oidc-provider itself may print NOTICE lines to stdout before that).

import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import process from 'node:process';

import Provider, { errors } from 'oidc-provider';

import { env, envInt, envBool, die } from './env.mjs';
import { federationClients, setupFederation } from './federation.mjs';
import { superviseServer } from './service.mjs';

// ---------------------------------------------------------------- settings

function argValue(flag) {
  const i = process.argv.indexOf(flag);
  if (i === -1) return undefined;
  const value = process.argv[i + 1];
  if (value === undefined) die(`${flag} needs a value`);
  return value;
}

const HOST = '127.0.0.1';
const PORT = argValue('--port') !== undefined ? Number.parseInt(argValue('--port'), 10) : envInt('IDP_PORT', 0);
const TLS_CERT = env('IDP_TLS_CERT', argValue('--cert'));
const TLS_KEY = env('IDP_TLS_KEY', argValue('--key'));
// Plain HTTP on loopback (the demo, so the user's own browser shows no certificate warning).
const PLAIN_HTTP = envBool('IDP_HTTP', false);
if (!PLAIN_HTTP && (!TLS_CERT || !TLS_KEY)) {
  die('IDP_TLS_CERT and IDP_TLS_KEY (PEM file paths) are required (or IDP_HTTP=1)');
}

// Optional path prefix for the issuer, e.g. "/realms/test" -> https://127.0.0.1:PORT/realms/test
let ISSUER_PATH = env('IDP_ISSUER_PATH', '');
if (ISSUER_PATH && !ISSUER_PATH.startsWith('/')) ISSUER_PATH = `/${ISSUER_PATH}`;
ISSUER_PATH = ISSUER_PATH.replace(/\/+$/, '');

const PUBLIC_CLIENT_ID = env('IDP_PUBLIC_CLIENT_ID', 'nix-cache-login');
const SERVER_CLIENT_ID = env('IDP_SERVER_CLIENT_ID', 'nix-cache-server');
const SERVER_POST_CLIENT_ID = `${SERVER_CLIENT_ID}-post`;
const SERVER_CLIENT_SECRET = env('IDP_SERVER_CLIENT_SECRET', 'nix-cache-server-secret');

const RESOURCE = env('IDP_RESOURCE', 'https://cache.test');
const RESOURCE_SCOPE = env('IDP_RESOURCE_SCOPE', 'nix-cache');
const ACCESS_TOKEN_FORMAT = env('IDP_ACCESS_TOKEN_FORMAT', 'jwt');
if (!['jwt', 'opaque'].includes(ACCESS_TOKEN_FORMAT)) die('IDP_ACCESS_TOKEN_FORMAT must be jwt or opaque');

const TTL = {
  AccessToken: envInt('IDP_ACCESS_TOKEN_TTL', 60),
  AuthorizationCode: envInt('IDP_AUTHORIZATION_CODE_TTL', 60),
  ClientCredentials: envInt('IDP_CLIENT_CREDENTIALS_TTL', 60),
  DeviceCode: envInt('IDP_DEVICE_CODE_TTL', 300),
  Grant: envInt('IDP_GRANT_TTL', 3600),
  IdToken: envInt('IDP_ID_TOKEN_TTL', 60),
  Interaction: envInt('IDP_INTERACTION_TTL', 300),
  RefreshToken: envInt('IDP_REFRESH_TOKEN_TTL', 600),
  Session: envInt('IDP_SESSION_TTL', 600),
};
for (const [name, value] of Object.entries(TTL)) {
  if (value < 1) die(`TTL for ${name} must be at least 1 second`);
}

const ISSUE_REFRESH_TOKEN = envBool('IDP_ISSUE_REFRESH_TOKEN', true);
const ROTATE_REFRESH_TOKEN = envBool('IDP_ROTATE_REFRESH_TOKEN', true);
// false: refresh tokens outlive the browser session (like offline tokens)
const EXPIRES_WITH_SESSION = envBool('IDP_EXPIRES_WITH_SESSION', false);
// oidc-provider 9 sends no `interval` in the device authorization response (clients
// then default to 5 s) and never answers slow_down; we add both (RFC 8628 3.2, 3.5).
const DEVICE_POLL_INTERVAL = envInt('IDP_DEVICE_POLL_INTERVAL', 1);
const DEVICE_ENFORCE_INTERVAL = envBool('IDP_DEVICE_ENFORCE_INTERVAL', true);
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

const REQUEST_LOG = env('IDP_REQUEST_LOG', undefined);
// Send the discovery document and the JWKS with `Cache-Control: no-store`, as some deployed
// providers do (oidc-provider itself allows caching them).
const DISCOVERY_NO_STORE = envBool('IDP_DISCOVERY_NO_STORE', false);

// CI federation (federation.mjs): the CI issuer whose job tokens are accepted, the `aud`
// they must have and the one repository allowed. Off unless IDP_CI_ISSUER is set.
const CI_FEDERATION = {
  issuer: env('IDP_CI_ISSUER', undefined),
  audience: env('IDP_CI_AUDIENCE', 'https://cache.test'),
  repository: env('IDP_CI_REPOSITORY', 'acme/app'),
  caFile: env('IDP_CI_CA_FILE', undefined),
};

// ---------------------------------------------------------------- request log

let requestLogFd;
if (REQUEST_LOG) {
  try {
    requestLogFd = fs.openSync(REQUEST_LOG, 'a', 0o600);
  } catch (err) {
    die(`cannot open IDP_REQUEST_LOG ${REQUEST_LOG}: ${err.message}`);
  }
}

// One line per HTTP request: "<iso time> <METHOD> <path> <status> [grant_type=...] [client_id=...]".
// Never the query string, headers or body values other than grant_type and client_id.
function logRequest(method, path, status, extra = {}) {
  const fields = Object.entries(extra)
    .filter(([, v]) => typeof v === 'string' && /^[A-Za-z0-9:._-]{1,100}$/.test(v))
    .map(([k, v]) => ` ${k}=${v}`)
    .join('');
  const line = `${new Date().toISOString()} ${method} ${path} ${status}${fields}\n`;
  if (requestLogFd !== undefined) {
    fs.writeSync(requestLogFd, line);
  } else {
    process.stderr.write(`request: ${line}`);
  }
}

// ---------------------------------------------------------------- keys

// A fresh RS256 signing key on every start (ID tokens and JWT access tokens), made by the
// openssl command rather than crypto.generateKeyPairSync: on Node 20, a key from
// generateKeyPairSync can deadlock the process when the garbage collector destroys the
// key-generation job while the key is being exported as a JWK (seen here: about 1 start in
// 50 with four starting at once hung forever in ~KeyGenJob -> uv_mutex_lock, under
// KeyObjectHandle::ExportJWK). A key parsed from PEM has no such job.
const privateKey = crypto.createPrivateKey(
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  }),
);
const publicKey = crypto.createPublicKey(privateKey);
const signingJwk = {
  ...privateKey.export({ format: 'jwk' }),
  kid: crypto.randomBytes(8).toString('hex'),
  alg: 'RS256',
  use: 'sig',
};

// ---------------------------------------------------------------- accounts

// devInteractions accepts any login name (and ignores the password); every login
// name is an account whose `sub` is the login name itself.
function accountClaims(accountId) {
  return {
    sub: accountId,
    preferred_username: accountId,
    name: `Test User ${accountId}`,
    email: `${accountId}@example.test`,
    email_verified: true,
  };
}

async function findAccount(_ctx, id) {
  if (typeof id !== 'string' || id.length === 0) return undefined;
  return {
    accountId: id,
    async claims() {
      return accountClaims(id);
    },
  };
}

// ---------------------------------------------------------------- provider

const resourceServerInfo = {
  scope: RESOURCE_SCOPE,
  audience: RESOURCE,
  accessTokenFormat: ACCESS_TOKEN_FORMAT,
  ...(ACCESS_TOKEN_FORMAT === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
};

const configuration = {
  responseTypes: ['code'],
  clients: [
    {
      client_id: PUBLIC_CLIENT_ID,
      client_name: 'nix-cache-login (test)',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      // RFC 8252: oidc-provider accepts these loopback URIs on any port for native clients.
      redirect_uris: ['http://127.0.0.1/callback', 'http://[::1]/callback', 'http://localhost/callback'],
      response_types: ['code'],
      grant_types: [
        'authorization_code',
        'refresh_token',
        'urn:ietf:params:oauth:grant-type:device_code',
      ],
    },
    {
      client_id: SERVER_CLIENT_ID,
      client_name: 'nix-cache-login server (test, basic auth)',
      client_secret: SERVER_CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [],
      response_types: [],
      grant_types: ['client_credentials'],
    },
    {
      client_id: SERVER_POST_CLIENT_ID,
      client_name: 'nix-cache-login server (test, post auth)',
      client_secret: SERVER_CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_post',
      redirect_uris: [],
      response_types: [],
      grant_types: ['client_credentials'],
    },
    ...federationClients(CI_FEDERATION),
  ],
  jwks: { keys: [signingJwk] },
  cookies: {
    keys: [crypto.randomBytes(32).toString('hex')],
  },
  findAccount,
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
  },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Requests that name no resource get the cache as their resource, so their
      // access tokens are JWTs for it.
      async defaultResource(_ctx, _client, oneOf) {
        if (oneOf) return oneOf;
        return RESOURCE;
      },
      // At the token endpoint, without this an authorization code / device code /
      // refresh token with scope `openid` yields an opaque userinfo-only token.
      async useGrantedResource() {
        return true;
      },
      async getResourceServerInfo(_ctx, resourceIndicator) {
        if (resourceIndicator === RESOURCE) return resourceServerInfo;
        throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
      },
    },
  },
  async extraTokenClaims(_ctx, token) {
    if (token.kind === 'ClientCredentials') {
      return { preferred_username: `service-account-${token.clientId}` };
    }
    if (token.accountId) {
      return { preferred_username: token.accountId };
    }
    return undefined;
  },
  async issueRefreshToken(_ctx, client) {
    return ISSUE_REFRESH_TOKEN && client.grantTypeAllowed('refresh_token');
  },
  async expiresWithSession() {
    return EXPIRES_WITH_SESSION;
  },
  rotateRefreshToken: ROTATE_REFRESH_TOKEN,
  ttl: {
    AccessToken: TTL.AccessToken,
    AuthorizationCode: TTL.AuthorizationCode,
    ClientCredentials: TTL.ClientCredentials,
    DeviceCode: TTL.DeviceCode,
    Grant: TTL.Grant,
    IdToken: TTL.IdToken,
    Interaction: TTL.Interaction,
    RefreshToken: TTL.RefreshToken,
    Session: TTL.Session,
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    ctx.body = `<!DOCTYPE html><html><head><title>oops! something went wrong</title></head><body>
<h1>oops! something went wrong</h1>
${Object.entries(out).map(([k, v]) => `<pre id="${esc(k)}"><strong>${esc(k)}</strong>: ${esc(v)}</pre>`).join('\n')}
</body></html>`;
  },
};

// The host name in the issuer (and every endpoint); it listens on 127.0.0.1 whatever it is.
// The proxy tests give a name that only their proxy resolves.
const PUBLIC_HOST = env('IDP_PUBLIC_HOST', HOST);
const BASE = () => `${PLAIN_HTTP ? 'http' : 'https'}://${PUBLIC_HOST}:${server.address().port}`;
let provider;

// The JWT access tokens are not stored by oidc-provider, and its introspection and
// revocation endpoints refuse JWTs ("unsupported_token_type"). For the tests we
// remember what was issued, so /test/introspect can say whether a JWT access token
// is still backed by a live grant (the way a resource server that checks with the
// IdP would see it).
const issuedJwt = new Map(); // jti -> { grantId, exp }

function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

async function introspectJwt(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return { active: false };
  let header;
  let payload;
  try {
    header = b64urlJson(parts[0]);
    payload = b64urlJson(parts[1]);
  } catch {
    return { active: false };
  }
  if (header.alg !== 'RS256' || header.kid !== signingJwk.kid) return { active: false };
  const ok = crypto.verify(
    'RSA-SHA256',
    Buffer.from(`${parts[0]}.${parts[1]}`),
    publicKey,
    Buffer.from(parts[2], 'base64url'),
  );
  if (!ok) return { active: false };
  const now = Math.floor(Date.now() / 1000);
  if (typeof payload.exp !== 'number' || payload.exp <= now) return { active: false };
  if (payload.iss !== provider.issuer) return { active: false };
  const record = issuedJwt.get(payload.jti);
  if (!record) return { active: false };
  if (record.grantId) {
    const grant = await provider.Grant.find(record.grantId);
    if (!grant) return { active: false };
  }
  return { ...payload, active: true, token_type: 'Bearer' };
}

function checkBasicAuth(req) {
  const header = req.headers.authorization || '';
  const [scheme, value] = header.split(' ');
  if (scheme?.toLowerCase() !== 'basic' || !value) return false;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i === -1) return false;
  const id = decodeURIComponent(decoded.slice(0, i));
  const secret = decodeURIComponent(decoded.slice(i + 1));
  return [SERVER_CLIENT_ID, SERVER_POST_CLIENT_ID].includes(id) && secret === SERVER_CLIENT_SECRET;
}

function readBody(req, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// Test-only endpoints, outside oidc-provider's router.
async function testEndpoint(req, res, path) {
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
    logRequest(req.method, path, status);
  };
  if (path === '/test/health' && req.method === 'GET') {
    return send(200, { ok: true, issuer: provider.issuer });
  }
  if (path === '/test/introspect' && req.method === 'POST') {
    if (!checkBasicAuth(req)) return send(401, { error: 'invalid_client' });
    const body = new URLSearchParams(await readBody(req));
    const token = body.get('token');
    if (!token) return send(400, { error: 'invalid_request', error_description: 'token missing' });
    return send(200, await introspectJwt(token));
  }
  return send(404, { error: 'not_found' });
}

const server = PLAIN_HTTP
  ? http.createServer()
  : https.createServer({
    cert: fs.readFileSync(TLS_CERT),
    key: fs.readFileSync(TLS_KEY),
  });

server.listen(PORT, HOST, () => {
  const issuer = `${BASE()}${ISSUER_PATH}`;
  provider = new Provider(issuer, configuration);

  provider.on('access_token.issued', (token) => {
    issuedJwt.set(token.jti, { grantId: token.grantId, exp: token.exp });
  });
  provider.on('client_credentials.issued', (token) => {
    issuedJwt.set(token.jti, { grantId: undefined, exp: token.exp });
  });
  // Server-side errors are worth seeing in the test output.
  provider.on('server_error', (_ctx, err) => {
    process.stderr.write(`provider: server_error: ${err?.stack || err}\n`);
  });

  provider.use(async (ctx, next) => {
    try {
      await next();
    } finally {
      const extra = {};
      const grantType = ctx.oidc?.params?.grant_type;
      if (grantType) extra.grant_type = grantType;
      const clientId = ctx.oidc?.client?.clientId;
      if (clientId) extra.client_id = clientId;
      const error = ctx.status >= 400 && ctx.body && typeof ctx.body === 'object' ? ctx.body.error : undefined;
      if (error) extra.error = error;
      logRequest(ctx.method, ctx.path, ctx.status, extra);
    }
  });

  provider.use(async (ctx, next) => {
    await next();
    if (DISCOVERY_NO_STORE && ['/.well-known/openid-configuration', '/jwks'].includes(ctx.path)) {
      ctx.set('cache-control', 'no-store');
    }
  });

  // Device flow: add `interval`, and answer slow_down to a pending poll that comes
  // sooner than `interval` seconds (less 250 ms of slack) after the previous one.
  const lastPoll = new Map(); // sha256(device_code) -> ms
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.method !== 'POST') return;
    if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      ctx.body = { ...ctx.body, interval: DEVICE_POLL_INTERVAL };
      return;
    }
    const deviceCode = ctx.oidc?.params?.device_code;
    if (ctx.path === '/token' && ctx.oidc?.params?.grant_type === DEVICE_GRANT && typeof deviceCode === 'string') {
      const key = crypto.createHash('sha256').update(deviceCode).digest('hex');
      const now = Date.now();
      const previous = lastPoll.get(key);
      lastPoll.set(key, now);
      if (
        DEVICE_ENFORCE_INTERVAL
        && previous !== undefined
        && now - previous < DEVICE_POLL_INTERVAL * 1000 - 250
        && ctx.status === 400
        && ctx.body?.error === 'authorization_pending'
      ) {
        ctx.body = {
          error: 'slow_down',
          error_description: `poll at most every ${DEVICE_POLL_INTERVAL} s`,
        };
      }
    }
  });

  // After the request log middleware, so that its refusals are logged too.
  setupFederation(provider, CI_FEDERATION, { errors, resource: RESOURCE, resourceServerInfo });

  const providerCallback = provider.callback();
  server.on('request', (req, res) => {
    const path = (req.url || '/').split('?')[0];
    if (path.startsWith('/test/')) {
      testEndpoint(req, res, path).catch((err) => {
        process.stderr.write(`provider: test endpoint error: ${err?.stack || err}\n`);
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
      return;
    }
    if (ISSUER_PATH && !(path === ISSUER_PATH || path.startsWith(`${ISSUER_PATH}/`))) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      logRequest(req.method, path, 404);
      return;
    }
    if (ISSUER_PATH) {
      // oidc-provider routes relative to its mount path.
      req.originalUrl = req.url;
      req.url = req.url.slice(ISSUER_PATH.length) || '/';
    }
    providerCallback(req, res);
  });

  process.stdout.write(`READY ${issuer}\n`);
});

superviseServer(server, 'IDP_EXIT_ON_STDIN_EOF');
