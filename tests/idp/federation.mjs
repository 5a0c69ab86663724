// CI federation for the test provider: a CI job's own OIDC token (from ci-issuer.mjs, the
// GitHub stand-in) becomes an access token for the cache, three ways:
//
// - the JWT Authorization Grant, RFC 7523 §2.1 (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
//   `assertion=JWT`), registered with oidc-provider's registerGrantType;
// - token exchange, RFC 8693 (`subject_token`, `subject_token_type` id_token or jwt,
//   `requested_token_type` access_token, optional `audience`), registered the same way;
// - client credentials with the job's token as `client_assertion` (RFC 7523 §2.2, the way
//   Keycloak 26.6 "federated client authentication" and Entra workload identity federation
//   do it). oidc-provider cannot do this itself: its private_key_jwt requires the
//   assertion's `iss` and `sub` to be the client_id and checks it against keys registered
//   for the client, while a CI token's `iss` is the CI platform and its `sub` the job
//   (lib/shared/client_auth.js, jwt_client_auth.js), and it has no hook for another client
//   authentication method. So a middleware in front of the token endpoint verifies the
//   federated assertion and, when it holds, hands the request on as the federated client's
//   ordinary client_secret_basic authentication (a secret known only to this process);
//   the grant itself is then oidc-provider's own client_credentials.
//
// Every CI token is verified with jose against the CI issuer's JWKS (from its discovery
// document), its `iss`, its `aud` (IDP_CI_AUDIENCE), its `exp` (no leeway), and a claim
// policy: `repository` must be IDP_CI_REPOSITORY. A refusal says which check failed.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as querystring from 'node:querystring';

import { createLocalJWKSet, decodeJwt, errors as joseErrors, jwtVerify } from 'jose';

export const CI_CLIENT_ID = 'nix-cache-ci';
export const CI_FEDERATED_CLIENT_ID = 'nix-cache-ci-federated';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const SUBJECT_TOKEN_TYPES = ['urn:ietf:params:oauth:token-type:id_token', 'urn:ietf:params:oauth:token-type:jwt'];

// Known only to this process: the middleware uses it to pass a verified federated
// assertion on as ordinary client authentication.
const FEDERATED_SECRET = crypto.randomBytes(32).toString('base64url');

// The clients CI federation adds (empty without a CI issuer).
export function federationClients(settings) {
  if (!settings.issuer) return [];
  return [
    {
      client_id: CI_CLIENT_ID,
      client_name: 'nix-cache-login CI (jwt-bearer, token-exchange)',
      token_endpoint_auth_method: 'none',
      redirect_uris: [],
      response_types: [],
      grant_types: [JWT_BEARER, TOKEN_EXCHANGE],
    },
    {
      client_id: CI_FEDERATED_CLIENT_ID,
      client_name: 'nix-cache-login CI (federated client assertion)',
      client_secret: FEDERATED_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [],
      response_types: [],
      grant_types: ['client_credentials'],
    },
  ];
}

function getJson(url, ca) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, timeout: 10_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
        try {
          return resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          return reject(new Error(`GET ${url}: ${err.message}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
  });
}

// Verifies CI tokens for one issuer, audience and repository.
class CiVerifier {
  constructor(settings) {
    this.settings = settings;
    this.ca = settings.caFile ? fs.readFileSync(settings.caFile) : undefined;
    this.keys = undefined;
    this.fetchedAt = 0;
  }

  async loadKeys() {
    const discovery = await getJson(`${this.settings.issuer}/.well-known/openid-configuration`, this.ca);
    if (discovery.issuer !== this.settings.issuer) throw new Error(`CI discovery names issuer ${discovery.issuer}`);
    this.keys = createLocalJWKSet(await getJson(discovery.jwks_uri, this.ca));
    this.fetchedAt = Date.now();
  }

  // The verified claims, or throws an Error whose message says which check failed.
  async verify(token, errors) {
    // oidc-provider keeps the description of invalid_grant generic ("grant request is
    // invalid"); the tests and the CLI's user want to read which check failed.
    const refuse = (why) => {
      const err = new errors.InvalidGrant(why);
      err.error_description = `CI token refused: ${why}`;
      return err;
    };
    if (typeof token !== 'string' || token.split('.').length !== 3) throw refuse('not a JWT');
    let unverified;
    try {
      unverified = decodeJwt(token);
    } catch {
      throw refuse('not a JWT');
    }
    if (unverified.iss !== this.settings.issuer) throw refuse(`issuer is not ${this.settings.issuer}`);
    if (!this.keys) await this.loadKeys();
    const options = {
      issuer: this.settings.issuer,
      audience: this.settings.audience,
      algorithms: ['RS256'],
      requiredClaims: ['exp', 'sub'],
    };
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, options));
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey && Date.now() - this.fetchedAt > 10_000) {
        await this.loadKeys();
        return this.verify(token, errors);
      }
      if (err instanceof joseErrors.JWTExpired) throw refuse('expired');
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'aud') {
        throw refuse(`audience is not ${this.settings.audience}`);
      }
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw refuse(`claim ${err.claim} is not valid`);
      throw refuse('signature does not verify against the CI issuer keys');
    }
    if (payload.repository !== this.settings.repository) {
      throw refuse(`repository ${String(payload.repository).replace(/[^\x21-\x7e]/g, '?').slice(0, 100)} is not allowed`);
    }
    return payload;
  }
}

// Registers the grants and the client-assertion middleware on `provider`. `issueFor`
// makes the access token: (ctx, claims, gty) -> token response body.
export function setupFederation(provider, settings, { errors, resource, resourceServerInfo }) {
  if (!settings.issuer) return;
  const verifier = new CiVerifier(settings);

  async function issue(ctx, claims, gty) {
    const { client } = ctx.oidc;
    const token = new provider.AccessToken({
      accountId: claims.sub,
      client,
      gty,
      scope: resourceServerInfo.scope,
      extra: { repository: claims.repository, ref: claims.ref },
    });
    token.resourceServer = new provider.ResourceServer(resource, resourceServerInfo);
    ctx.oidc.entity('AccessToken', token);
    const value = await token.save();
    return {
      access_token: value,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: token.scope,
    };
  }

  provider.registerGrantType(JWT_BEARER, async (ctx) => {
    const claims = await verifier.verify(ctx.oidc.params.assertion, errors);
    ctx.body = await issue(ctx, claims, 'jwt_bearer');
  }, ['assertion', 'scope']);

  provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
    const p = ctx.oidc.params;
    if (!SUBJECT_TOKEN_TYPES.includes(p.subject_token_type)) {
      throw new errors.InvalidRequest('subject_token_type must be id_token or jwt');
    }
    if (p.requested_token_type !== undefined && p.requested_token_type !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest('requested_token_type must be access_token');
    }
    if (p.audience !== undefined && p.audience !== resource) {
      throw new errors.InvalidTarget(`audience must be ${resource}`);
    }
    const claims = await verifier.verify(p.subject_token, errors);
    ctx.body = { ...(await issue(ctx, claims, 'token_exchange')), issued_token_type: ACCESS_TOKEN_TYPE };
  }, ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope']);

  // Federated client authentication in front of the token endpoint (see the top).
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== '/token' || !ctx.is('application/x-www-form-urlencoded')) {
      return next();
    }
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    const params = querystring.parse(raw);
    // The body is read: oidc-provider takes it from here.
    ctx.request.body = raw;
    if (params.client_assertion_type !== ASSERTION_TYPE || typeof params.client_assertion !== 'string') {
      return next();
    }
    let iss;
    try {
      ({ iss } = decodeJwt(params.client_assertion));
    } catch {
      return next();
    }
    if (iss !== settings.issuer) return next();
    if (params.client_id !== undefined && params.client_id !== CI_FEDERATED_CLIENT_ID) {
      ctx.status = 401;
      ctx.body = { error: 'invalid_client', error_description: `client ${params.client_id} does not accept CI assertions` };
      return undefined;
    }
    try {
      await verifier.verify(params.client_assertion, errors);
    } catch (err) {
      ctx.status = 401;
      ctx.body = { error: 'invalid_client', error_description: err.error_description || err.message };
      return undefined;
    }
    const { client_assertion: _a, client_assertion_type: _t, client_id: _c, ...rest } = params;
    ctx.request.body = querystring.stringify(rest);
    const basic = Buffer.from(`${CI_FEDERATED_CLIENT_ID}:${FEDERATED_SECRET}`).toString('base64');
    ctx.req.headers.authorization = `Basic ${basic}`;
    return next();
  });
}
