// A stand-in for a CI platform's OIDC issuer (GitHub Actions' token.actions.githubusercontent.com),
// for the nix-cache-login `ci` tests. It is the one stand-in of the suite: GitHub and GitLab
// cannot be reached from the test machine.
//
// It follows GitHub's documented ID-token request protocol:
//   GET <ACTIONS_ID_TOKEN_REQUEST_URL>&audience=AUD
//   Authorization: bearer <ACTIONS_ID_TOKEN_REQUEST_TOKEN>
//   -> 200 {"count": N, "value": "<JWT>"}
// where the request URL is https://HOST/_apis/distributedtask/hubs/build/plans/P/jobs/J/idtoken?api-version=2.0
// (printed as `request_url` on the READY line), and publishes an OIDC discovery document and
// JWKS at its issuer. Tokens are RS256, signed with a key made at start, with GitHub's
// claims: iss, sub `repo:ORG/REPO:ref:REF`, aud (the requested audience, default
// `https://github.com/ORG`), repository, repository_owner, ref, ref_type, sha, workflow,
// job_workflow_ref, run_id, actor, event_name, jti, iat, nbf, exp (CI_TOKEN_TTL, 300 s).
//
// Once listening it prints one line:  READY <issuer> <request_url>
// and logs one line per request (never a token) to CI_REQUEST_LOG or stderr:
//   <ISO time> <METHOD> <path> <status>
//
// Environment:
//   CI_TLS_CERT, CI_TLS_KEY  PEM server certificate and key (required)
//   CI_REQUEST_TOKEN         the bearer the job must present (required)
//   CI_REPOSITORY            ORG/REPO of the job (default acme/app)
//   CI_REF                   the job's ref (default refs/heads/main)
//   CI_TOKEN_TTL             seconds a token lives (default 300)
//   CI_REQUEST_LOG           request log file (default stderr)
//   CI_EXIT_ON_STDIN_EOF     1: exit when stdin closes (the harness pipes it)
//
// Test-only endpoints (not GitHub's): POST /test/mode {"mode": "..."} sets how the token
// endpoint answers: ok, slow (after 30 s), error (HTTP 500), malformed ({"value": 42}), not-jwt ({"value": "<not a JWT>"}), huge (a
// 2 MiB answer), expired (a token whose exp has passed). POST /test/job {"repository",
// "ref"} changes the job's identity. GET /test/mint?audience=A[&ttl=S] signs a token
// directly (for sources that read a file or variable, as GitLab's id_tokens: do).

import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import process from 'node:process';

import { env, envInt, die } from './env.mjs';
import { serveRequests, superviseServer } from './service.mjs';

const HOST = '127.0.0.1';
const TLS_CERT = env('CI_TLS_CERT', undefined);
const TLS_KEY = env('CI_TLS_KEY', undefined);
if (!TLS_CERT || !TLS_KEY) die('CI_TLS_CERT and CI_TLS_KEY are required');
const REQUEST_TOKEN = env('CI_REQUEST_TOKEN', undefined);
if (!REQUEST_TOKEN) die('CI_REQUEST_TOKEN is required');
const TOKEN_TTL = envInt('CI_TOKEN_TTL', 300);
const job = {
  repository: env('CI_REPOSITORY', 'acme/app'),
  ref: env('CI_REF', 'refs/heads/main'),
};
const REQUEST_PATH = '/_apis/distributedtask/hubs/build/plans/1b2c/jobs/3d4e/idtoken';
const MODES = ['ok', 'slow', 'error', 'malformed', 'not-jwt', 'huge', 'expired'];
let mode = 'ok';

const REQUEST_LOG = env('CI_REQUEST_LOG', undefined);
const logFd = REQUEST_LOG ? fs.openSync(REQUEST_LOG, 'a', 0o600) : undefined;
function logRequest(method, path, status) {
  const safePath = path.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c)).slice(0, 300);
  const line = `${new Date().toISOString()} ${method} ${safePath} ${status}\n`;
  if (logFd !== undefined) fs.writeSync(logFd, line);
  else process.stderr.write(`ci-issuer request: ${line}`);
}

// openssl, not generateKeyPairSync: see provider.mjs (a Node 20 deadlock on JWK export).
const privateKey = crypto.createPrivateKey(
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  }),
);
const kid = crypto.randomBytes(8).toString('hex');
const publicJwk = { ...crypto.createPublicKey(privateKey).export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };

let issuer;

function b64url(value) {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

function sign(audience, ttl) {
  const now = Math.floor(Date.now() / 1000);
  const owner = job.repository.split('/')[0];
  const claims = {
    jti: crypto.randomUUID(),
    sub: `repo:${job.repository}:ref:${job.ref}`,
    aud: audience || `https://github.com/${owner}`,
    ref: job.ref,
    sha: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    repository: job.repository,
    repository_owner: owner,
    run_id: '4242',
    run_number: '7',
    run_attempt: '1',
    actor: 'octocat',
    workflow: 'build',
    event_name: 'push',
    ref_type: 'branch',
    job_workflow_ref: `${job.repository}/.github/workflows/build.yml@${job.ref}`,
    iss: issuer,
    nbf: now - 5,
    iat: now - 5,
    exp: now + ttl,
  };
  const head = b64url({ typ: 'JWT', alg: 'RS256', x5t: kid, kid });
  const body = b64url(claims);
  const signature = crypto.sign('RSA-SHA256', Buffer.from(`${head}.${body}`), privateKey).toString('base64url');
  return `${head}.${body}.${signature}`;
}

function send(req, res, path, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(text);
  logRequest(req.method, path, status);
}

function readJson(req) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size <= 8192) chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
      } catch {
        resolve({});
      }
    });
  });
}

// GitHub's ID-token endpoint.
function idToken(req, res, url) {
  const [scheme, value] = (req.headers.authorization || '').split(' ');
  if (scheme?.toLowerCase() !== 'bearer' || value !== REQUEST_TOKEN) {
    return send(req, res, url.pathname, 401, { message: 'Bad credentials' });
  }
  if (url.searchParams.get('api-version') !== '2.0') {
    return send(req, res, url.pathname, 400, { message: 'api-version missing' });
  }
  const audience = url.searchParams.get('audience') || undefined;
  switch (mode) {
    case 'slow':
      setTimeout(() => send(req, res, url.pathname, 200, { count: 1, value: sign(audience, TOKEN_TTL) }), 30_000);
      return undefined;
    case 'error':
      return send(req, res, url.pathname, 500, '<html>Internal Server Error</html>');
    case 'malformed':
      return send(req, res, url.pathname, 200, { count: 1, value: 42 });
    case 'not-jwt':
      return send(req, res, url.pathname, 200, { count: 1, value: '\u001b]0;owned\u0007 not a token' });
    case 'huge':
      return send(req, res, url.pathname, 200, { count: 1, value: 'x'.repeat(2 * 1024 * 1024) });
    case 'expired':
      return send(req, res, url.pathname, 200, { count: 1, value: sign(audience, -60) });
    default:
      return send(req, res, url.pathname, 200, { count: 1, value: sign(audience, TOKEN_TTL) });
  }
}

async function handle(req, res) {
  const url = new URL(req.url || '/', issuer);
  const path = url.pathname;
  if (req.method === 'GET' && path === '/.well-known/openid-configuration') {
    return send(req, res, path, 200, {
      issuer,
      jwks_uri: `${issuer}/.well-known/jwks`,
      subject_types_supported: ['public', 'pairwise'],
      response_types_supported: ['id_token'],
      claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'ref', 'repository', 'repository_owner', 'run_id', 'actor', 'workflow', 'event_name', 'ref_type', 'job_workflow_ref'],
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid'],
    }, { 'cache-control': 'max-age=3600' });
  }
  if (req.method === 'GET' && path === '/.well-known/jwks') {
    return send(req, res, path, 200, { keys: [publicJwk] }, { 'cache-control': 'max-age=3600' });
  }
  if (req.method === 'GET' && path === REQUEST_PATH) return idToken(req, res, url);
  if (req.method === 'POST' && path === '/test/mode') {
    const body = await readJson(req);
    if (!MODES.includes(body.mode)) return send(req, res, path, 400, { error: `mode must be one of ${MODES.join(', ')}` });
    mode = body.mode;
    return send(req, res, path, 200, { mode });
  }
  if (req.method === 'POST' && path === '/test/job') {
    const body = await readJson(req);
    if (typeof body.repository === 'string') job.repository = body.repository;
    if (typeof body.ref === 'string') job.ref = body.ref;
    return send(req, res, path, 200, job);
  }
  if (req.method === 'GET' && path === '/test/mint') {
    const ttl = Number.parseInt(url.searchParams.get('ttl') || `${TOKEN_TTL}`, 10);
    return send(req, res, path, 200, { value: sign(url.searchParams.get('audience') || undefined, ttl) });
  }
  return send(req, res, path, 404, { message: 'Not Found' });
}

const server = https.createServer({ cert: fs.readFileSync(TLS_CERT), key: fs.readFileSync(TLS_KEY) });
serveRequests(server, handle);
superviseServer(server, 'CI_EXIT_ON_STDIN_EOF');
server.listen(0, HOST, () => {
  issuer = `https://${HOST}:${server.address().port}`;
  process.stdout.write(`READY ${issuer} ${issuer}${REQUEST_PATH}?api-version=2.0\n`);
});
