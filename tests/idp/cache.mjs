// A token-protected Nix binary cache for the nix-cache-login end-to-end tests and demo.
//
// Serves a directory made by `nix copy --to file://DIR` over plain HTTP on 127.0.0.1 only,
// and answers every request with 401 unless it carries `Authorization: Basic` whose
// password is an access token of the test provider: an RS256 JWT whose signature checks
// out against the provider's JWKS (from its discovery document), with the provider's
// `iss`, an `aud` that is the cache's resource, and an `exp` in the future. That is what a
// real token-gated cache in front of Keycloak does; Nix sends the netrc entry of the
// cache's host as that Basic auth.
//
// Once listening it prints exactly one line starting with `READY ` to stdout:
//   READY http://127.0.0.1:PORT
// and logs one line per request (never a token) to CACHE_REQUEST_LOG or stderr:
//   <ISO time> <METHOD> <path> <status> auth=<none|basic|other>[ sub=<sub>][ why=<reason>]
//
// Environment (see README.md in this folder):
//   CACHE_DIR              the binary cache directory (required)
//   CACHE_ISSUER           the provider's issuer URL (required)
//   CACHE_CA_FILE          PEM CA to trust for an https issuer (the test CA)
//   CACHE_AUDIENCE         the `aud` a token must have (default https://cache.test)
//   CACHE_PORT             port (default 0: any free one)
//   CACHE_LEEWAY           seconds of clock leeway for exp/nbf (default 0)
//   CACHE_REQUEST_LOG      file for the request log (default stderr)
//   CACHE_REFUSE_STATUS    the status for a missing or refused token: 401 (default), or 403
//                          as some deployed caches answer (which Nix takes for "absent")
//   CACHE_EXIT_ON_STDIN_EOF  1: exit when stdin closes (the harness pipes it)

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import process from 'node:process';

import { env, envInt, die } from './env.mjs';
import { serveRequests, superviseServer } from './service.mjs';

const HOST = '127.0.0.1';
const PORT = envInt('CACHE_PORT', 0);
const LEEWAY = envInt('CACHE_LEEWAY', 0);
const AUDIENCE = env('CACHE_AUDIENCE', 'https://cache.test');
const REFUSE_STATUS = envInt('CACHE_REFUSE_STATUS', 401);
if (![401, 403].includes(REFUSE_STATUS)) die('CACHE_REFUSE_STATUS must be 401 or 403');
const ISSUER = env('CACHE_ISSUER', undefined);
if (!ISSUER) die('CACHE_ISSUER (the provider issuer URL) is required');
const CA_FILE = env('CACHE_CA_FILE', undefined);
const CA = CA_FILE ? fs.readFileSync(CA_FILE) : undefined;
let ROOT = env('CACHE_DIR', undefined);
if (!ROOT) die('CACHE_DIR (a directory made by `nix copy --to file://DIR`) is required');
try {
  ROOT = fs.realpathSync(ROOT);
} catch (err) {
  die(`CACHE_DIR ${ROOT}: ${err.message}`);
}
if (!fs.existsSync(path.join(ROOT, 'nix-cache-info'))) {
  die(`CACHE_DIR ${ROOT} has no nix-cache-info: not a binary cache`);
}

// ---------------------------------------------------------------- request log

const REQUEST_LOG = env('CACHE_REQUEST_LOG', undefined);
let logFd;
if (REQUEST_LOG) {
  try {
    logFd = fs.openSync(REQUEST_LOG, 'a', 0o600);
  } catch (err) {
    die(`cannot open CACHE_REQUEST_LOG ${REQUEST_LOG}: ${err.message}`);
  }
}

function logRequest(method, urlPath, status, fields) {
  const extra = Object.entries(fields)
    .filter(([, v]) => typeof v === 'string' && /^[A-Za-z0-9:@._-]{1,100}$/.test(v))
    .map(([k, v]) => ` ${k}=${v}`)
    .join('');
  // The path is printable ASCII only (narinfo and nar names are); anything else is escaped.
  const safePath = urlPath.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c)).slice(0, 300);
  const line = `${new Date().toISOString()} ${method} ${safePath} ${status}${extra}\n`;
  if (logFd !== undefined) fs.writeSync(logFd, line);
  else process.stderr.write(`cache request: ${line}`);
}

// ---------------------------------------------------------------- JWKS

function getJson(url) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) {
      reject(new Error(`refusing to fetch ${u.origin}: loopback only`));
      return;
    }
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(u, { ca: CA, timeout: 10_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
          return;
        }
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          reject(new Error(`GET ${url}: ${err.message}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
  });
}

let jwksUri;
let keys = new Map(); // kid -> KeyObject
let lastFetch = 0;

async function fetchKeys() {
  if (!jwksUri) {
    const discovery = await getJson(`${ISSUER.replace(/\/+$/, '')}/.well-known/openid-configuration`);
    if (discovery.issuer !== ISSUER) {
      throw new Error(`discovery says issuer ${discovery.issuer}, expected ${ISSUER}`);
    }
    jwksUri = discovery.jwks_uri;
  }
  const jwks = await getJson(jwksUri);
  const next = new Map();
  for (const jwk of jwks.keys || []) {
    if (jwk.kty !== 'RSA' || (jwk.use && jwk.use !== 'sig') || !jwk.kid) continue;
    next.set(jwk.kid, crypto.createPublicKey({ key: jwk, format: 'jwk' }));
  }
  keys = next;
  lastFetch = Date.now();
}

// A kid we do not know: the provider may have rotated; look again, at most every 10 s.
async function keyFor(kid) {
  if (!keys.has(kid) && Date.now() - lastFetch > 10_000) {
    try {
      await fetchKeys();
    } catch (err) {
      process.stderr.write(`cache: JWKS refresh failed: ${err.message}\n`);
    }
  }
  return keys.get(kid);
}

// ---------------------------------------------------------------- token check

function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

// Returns { ok: true, sub } or { ok: false, why }.
async function checkAuthorization(header) {
  if (!header) return { ok: false, auth: 'none', why: 'no-authorization' };
  const [scheme, value, ...rest] = header.trim().split(/\s+/);
  if (scheme.toLowerCase() !== 'basic' || !value || rest.length) {
    return { ok: false, auth: 'other', why: 'not-basic' };
  }
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return { ok: false, auth: 'basic', why: 'no-password' };
  const token = decoded.slice(colon + 1);
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, auth: 'basic', why: 'not-a-jwt' };
  let head;
  let claims;
  try {
    head = b64urlJson(parts[0]);
    claims = b64urlJson(parts[1]);
  } catch {
    return { ok: false, auth: 'basic', why: 'not-a-jwt' };
  }
  if (head.alg !== 'RS256') return { ok: false, auth: 'basic', why: 'wrong-alg' };
  const signature = Buffer.from(parts[2], 'base64url');
  // base64url decoding ignores stray trailing bits: accept only the one canonical spelling.
  if (signature.toString('base64url') !== parts[2]) {
    return { ok: false, auth: 'basic', why: 'bad-signature' };
  }
  const key = await keyFor(head.kid);
  if (!key) return { ok: false, auth: 'basic', why: 'unknown-kid' };
  const good = crypto.verify(
    'RSA-SHA256',
    Buffer.from(`${parts[0]}.${parts[1]}`),
    key,
    signature,
  );
  if (!good) return { ok: false, auth: 'basic', why: 'bad-signature' };
  const now = Math.floor(Date.now() / 1000);
  if (claims.iss !== ISSUER) return { ok: false, auth: 'basic', why: 'wrong-iss' };
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(AUDIENCE)) return { ok: false, auth: 'basic', why: 'wrong-aud' };
  if (typeof claims.exp !== 'number') return { ok: false, auth: 'basic', why: 'no-exp' };
  if (claims.exp + LEEWAY <= now) return { ok: false, auth: 'basic', why: 'expired' };
  if (typeof claims.nbf === 'number' && claims.nbf - LEEWAY > now) {
    return { ok: false, auth: 'basic', why: 'not-yet-valid' };
  }
  return { ok: true, auth: 'basic', sub: String(claims.sub ?? '') };
}

// ---------------------------------------------------------------- files

const TYPES = {
  '.narinfo': 'text/x-nix-narinfo',
  '.nar': 'application/x-nix-nar',
  '.ls': 'application/json',
};

// The file for a request path inside ROOT, or undefined (no `..`, no symlinks out).
function fileFor(urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.split('/').some((s) => s === '..')) return undefined;
  const full = path.join(ROOT, decoded);
  let real;
  try {
    real = fs.realpathSync(full);
  } catch {
    return undefined;
  }
  if (!real.startsWith(`${ROOT}/`)) return undefined;
  try {
    if (!fs.statSync(real).isFile()) return undefined;
  } catch {
    return undefined;
  }
  return real;
}

async function handle(req, res) {
  const urlPath = (req.url || '/').split('?')[0];
  const method = req.method || 'GET';
  const fields = {};
  // Each line is written before the answer goes out, so a client that has its answer
  // finds its request in the log.
  const finish = (status, body, headers = {}) => {
    logRequest(method, urlPath, status, fields);
    res.writeHead(status, { 'content-type': 'text/plain', 'cache-control': 'no-store', ...headers });
    res.end(method === 'HEAD' ? undefined : body);
  };

  const verdict = await checkAuthorization(req.headers.authorization);
  fields.auth = verdict.auth;
  if (!verdict.ok) {
    fields.why = verdict.why;
    if (REFUSE_STATUS === 403) return finish(403, 'forbidden\n', {});
    return finish(401, 'unauthorized\n', { 'www-authenticate': 'Basic realm="nix-cache"' });
  }
  fields.sub = verdict.sub;
  if (method !== 'GET' && method !== 'HEAD') {
    fields.why = 'read-only';
    return finish(405, 'read-only cache\n', { allow: 'GET, HEAD' });
  }
  const file = fileFor(urlPath);
  if (!file) return finish(404, 'not found\n');
  const stat = fs.statSync(file);
  logRequest(method, urlPath, 200, fields);
  res.writeHead(200, {
    'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
    'content-length': stat.size,
    'cache-control': 'no-store',
  });
  if (method === 'HEAD') {
    res.end();
    return undefined;
  }
  const stream = fs.createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
  return undefined;
}

// ---------------------------------------------------------------- server

const server = http.createServer();
serveRequests(server, handle);
superviseServer(server, 'CACHE_EXIT_ON_STDIN_EOF');

try {
  await fetchKeys();
} catch (err) {
  die(`cannot load the provider's keys from ${ISSUER}: ${err.message}`);
}

server.listen(PORT, HOST, () => {
  process.stdout.write(`READY http://${HOST}:${server.address().port}\n`);
});
