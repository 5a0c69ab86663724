//! Token revocation (RFC 7009).

use openidconnect::core::CoreRevocableToken;
use openidconnect::{AccessToken, RefreshToken, RevocationUrl};

use super::client::{Provider, RevokingClient};
use super::error::{GrantError, map_request_error};
use crate::http::HttpClient;
use crate::secret::Secret;
use crate::untrusted;

/// The tokens of a session, as far as revocation is concerned.
pub struct Revocable<'a> {
    pub refresh_token: Option<&'a Secret>,
    pub access_token: &'a Secret,
}

/// What the provider did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Nothing was asked of the provider: the session has no refresh token and its access
    /// token lives minutes (a CI job's), or no provider issued it (`ci --grant direct`).
    NotAsked,
    /// The provider has no revocation endpoint: the tokens stay valid until they expire.
    NoEndpoint,
    /// The refresh token (if any) is revoked; `access` says what became of the access token.
    Revoked {
        url: String,
        access: AccessRevocation,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessRevocation {
    Revoked,
    /// RFC 7009 2.2.1: the provider does not revoke access tokens (self-contained JWTs usually
    /// cannot be). With the grant gone it cannot be renewed, and it ends at its expiry.
    Unsupported,
}

/// Why the tokens could not be revoked.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// Some providers make the revocation endpoint demand client authentication from every
    /// client, against RFC 7009 2.1, and so answer a public client 401 (`invalid_client`, or
    /// no body at all). Nothing on this side can change that: it is named as what it is.
    #[error(
        "{url} refuses to revoke tokens for the public client {client_id:?} ({cause}): the \
         provider demands client authentication at its revocation endpoint, which RFC 7009 2.1 \
         does not allow for public clients; only its end-session or an administrator can end \
         the session"
    )]
    PublicClientRefused {
        url: String,
        client_id: String,
        cause: GrantError,
    },
}

/// Revokes the refresh token first (which ends the grant: what logging out means), then the
/// access token. Only a confidential client sends `secret`: a public (PKCE) client sending one
/// would be refused.
pub async fn revoke(
    provider: &Provider,
    http: &HttpClient,
    client_id: &str,
    secret: Option<&Secret>,
    tokens: Revocable<'_>,
) -> Result<Revocation, RevokeError> {
    let Some(url) = provider.revocation_url().cloned() else {
        return Ok(Revocation::NoEndpoint);
    };
    let revoker = Revoker {
        client: provider.client.clone().set_revocation_url(url.clone()),
        http,
        url: &url,
        client_id,
        secret,
    };
    if let Some(rt) = tokens.refresh_token {
        revoker
            .send(RefreshToken::new(rt.expose().to_string()).into())
            .await
            .map_err(|e| revoker.refusal(e))?;
    }
    let access = AccessToken::new(tokens.access_token.expose().to_string());
    let access = match revoker.send(access.into()).await {
        Ok(()) => AccessRevocation::Revoked,
        Err(e) if e.oauth_error() == Some("unsupported_token_type") => {
            AccessRevocation::Unsupported
        }
        Err(e) => return Err(revoker.refusal(e)),
    };
    Ok(Revocation::Revoked {
        url: url.to_string(),
        access,
    })
}

struct Revoker<'a> {
    client: RevokingClient,
    http: &'a HttpClient,
    url: &'a RevocationUrl,
    client_id: &'a str,
    secret: Option<&'a Secret>,
}

impl Revoker<'_> {
    /// `e`, named as the provider refusing a public client where it is that.
    fn refusal(&self, e: GrantError) -> RevokeError {
        if self.secret.is_some() || !e.refuses_client_credentials() {
            return e.into();
        }
        RevokeError::PublicClientRefused {
            url: self.url.to_string(),
            client_id: untrusted::clean(self.client_id),
            cause: e,
        }
    }

    async fn send(&self, token: CoreRevocableToken) -> Result<(), GrantError> {
        if self.url.url().scheme() == "http" {
            return self.send_plain_http(token).await;
        }
        let request = self
            .client
            .revoke_token(token)
            .map_err(|e| GrantError::bad_response(self.url.as_str(), e.to_string()))?;
        request
            .request_async(self.http)
            .await
            .map_err(|e| map_request_error(e, self.url.as_str()))
    }

    /// The same RFC 7009 request for a plain-http issuer, which the config allows only on
    /// loopback hosts (local test providers) and the oauth2 crate refuses outright.
    async fn send_plain_http(&self, token: CoreRevocableToken) -> Result<(), GrantError> {
        let (value, hint) = match &token {
            CoreRevocableToken::RefreshToken(t) => (t.secret(), "refresh_token"),
            CoreRevocableToken::AccessToken(t) => (t.secret(), "access_token"),
            _ => unreachable!("only access and refresh tokens are revoked"),
        };
        let mut form = vec![("token", value.as_str()), ("token_type_hint", hint)];
        let mut request = self.http.reqwest().post(self.url.as_str());
        match self.secret {
            Some(secret) => request = request.basic_auth(self.client_id, Some(secret.expose())),
            None => form.push(("client_id", self.client_id)),
        }
        let url = self.url.to_string();
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| GrantError::bad_response(&url, self.http.describe_error(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        match body.get("error").and_then(|e| e.as_str()) {
            Some(error) => Err(GrantError::Refused {
                url,
                error: error.to_string(),
                description: body
                    .get("error_description")
                    .and_then(|d| d.as_str())
                    .map(str::to_string),
            }),
            None => Err(GrantError::BadResponse {
                url,
                reason: format!("HTTP {status}"),
                status: Some(status.as_u16()),
            }),
        }
    }
}
