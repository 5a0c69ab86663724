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
    revocation.map_err(|e| {
        e.context("revocation failed: the tokens stay valid at the provider until they expire")
    })
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
    let client = provider.client.clone().set_revocation_url(url.clone());
    // The refresh token first: revoking it ends the grant, which is what logging out means.
    if let Some(rt) = &session.refresh_token {
        send_revocation(
            &client,
            &http,
            &url,
            RefreshToken::new(rt.expose().to_string()).into(),
        )
        .await?;
    }
    let access = AccessToken::new(session.access_token.expose().to_string());
    match send_revocation(&client, &http, &url, access.into()).await {
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

async fn send_revocation(
    client: &RevokingClient,
    http: &HttpClient,
    url: &RevocationUrl,
    token: CoreRevocableToken,
) -> Result<(), GrantError> {
    let request = client
        .revoke_token(token)
        .map_err(|e| GrantError::BadResponse {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    request
        .request_async(http)
        .await
        .map_err(|e| map_request_error(e, url.as_str()))
}
