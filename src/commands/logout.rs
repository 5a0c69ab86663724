//! `logout`: revoke at the provider (RFC 7009), then remove the netrc entries and the stored
//! tokens, whatever the provider said.

use anyhow::{Context, Result};
use openidconnect::core::CoreRevocableToken;
use openidconnect::{AccessToken, RefreshToken, RevocationUrl};

use super::Ctx;
use crate::clock;
use crate::netrc;
use crate::oidc::client::{GrantError, RevokingClient, map_request_error};
use crate::oidc::http::HttpClient;
use crate::secret::Secret;
use crate::token_store::{Grant, Session};

pub async fn run(ctx: &Ctx) -> Result<()> {
    let locked = ctx.store.lock()?;
    // A corrupt store cannot be revoked, but must still go.
    let session = match locked.load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: {e:#}");
            None
        }
    };

    let revocation = match &session {
        Some(session) => revoke(ctx, session).await,
        None => Ok(()),
    };

    let removed_entries = netrc::update(&ctx.config.netrc_path, |file| {
        for host in &ctx.config.cache_hosts {
            file.remove(netrc::machine_name(host));
        }
        Ok(())
    })
    .with_context(|| {
        format!(
            "cannot update the netrc {}",
            ctx.config.netrc_path.display()
        )
    })?;
    let removed_store = locked.remove()?;

    match (&session, removed_entries || removed_store) {
        (None, false) => eprintln!("Not logged in; nothing to remove."),
        _ => eprintln!(
            "Removed the netrc entry for {} and the stored tokens.",
            ctx.config.cache_hosts.join(", ")
        ),
    }
    let daemon = ctx.take_back_from_daemon();
    if let (Err(_), Err(e)) = (&revocation, &daemon) {
        eprintln!("error: {e:#}");
    }
    revocation.map_err(|e| {
        e.context("revocation failed: the tokens stay valid at the provider until they expire")
    })?;
    daemon
}

async fn revoke(ctx: &Ctx, session: &Session) -> Result<()> {
    // Only a confidential client authenticates; a public (PKCE) client sending a secret
    // would be refused.
    let secret = match &ctx.config.client_secret_file {
        Some(path) if session.grant == Grant::ClientCredentials => std::fs::read_to_string(path)
            .ok()
            .map(|s| Secret::new(s.trim_end_matches(['\n', '\r']))),
        _ => None,
    };
    let http = HttpClient::new()?;
    let provider = ctx.provider(&http, false, secret.as_ref()).await?;
    let Some(url) = provider.revocation_url().cloned() else {
        eprintln!(
            "The provider {} offers no revocation endpoint; the tokens stay valid until they expire.",
            ctx.config.issuer_str()
        );
        return Ok(());
    };
    let revoker = Revoker {
        client: provider.client.clone().set_revocation_url(url.clone()),
        http: &http,
        url: &url,
        client_id: &ctx.config.client_id,
        secret: secret.as_ref(),
    };
    // The refresh token first: revoking it ends the grant, which is what logging out means.
    if let Some(rt) = &session.refresh_token {
        revoker
            .send(RefreshToken::new(rt.expose().to_string()).into())
            .await?;
    }
    let access = AccessToken::new(session.access_token.expose().to_string());
    match revoker.send(access.into()).await {
        Ok(()) => {}
        // RFC 7009 2.2.1: a provider may refuse to revoke a token type; self-contained JWT
        // access tokens usually cannot be. With the grant gone it cannot be renewed, and it
        // ends at its expiry; that is not a failed logout.
        Err(e) if e.oauth_error() == Some("unsupported_token_type") => {
            let until = session
                .access_token_expires_at
                .map(|exp| format!(" until {}", clock::format_utc(exp)))
                .unwrap_or_default();
            eprintln!("The provider cannot revoke the access token itself; it stays valid{until}.");
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!("revoked the tokens at {}", url.as_str());
    Ok(())
}

struct Revoker<'a> {
    client: RevokingClient,
    http: &'a HttpClient,
    url: &'a RevocationUrl,
    client_id: &'a str,
    secret: Option<&'a Secret>,
}

impl Revoker<'_> {
    async fn send(&self, token: CoreRevocableToken) -> Result<(), GrantError> {
        if self.url.url().scheme() == "http" {
            return self.send_plain_http(token).await;
        }
        let request = self
            .client
            .revoke_token(token)
            .map_err(|e| GrantError::BadResponse {
                url: self.url.to_string(),
                reason: e.to_string(),
            })?;
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
            .map_err(|e| GrantError::BadResponse {
                url: url.clone(),
                reason: crate::oidc::http::describe_reqwest_error(&e),
            })?;
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
            }),
        }
    }
}
