//! `logout`: revoke at the provider (RFC 7009), then remove the netrc entries and the stored
//! tokens, whatever the provider said.

use anyhow::{Context, Result};
use openidconnect::core::CoreRevocableToken;
use openidconnect::{AccessToken, RefreshToken};

use super::Ctx;
use crate::netrc;
use crate::oidc::client::map_request_error;
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
    // The refresh token first: revoking it usually ends the whole grant.
    let mut tokens = Vec::new();
    if let Some(rt) = &session.refresh_token {
        tokens.push(CoreRevocableToken::from(RefreshToken::new(
            rt.expose().to_string(),
        )));
    }
    tokens.push(CoreRevocableToken::from(AccessToken::new(
        session.access_token.expose().to_string(),
    )));
    for token in tokens {
        let request = client
            .revoke_token(token)
            .context("cannot build the revocation request")?;
        request
            .request_async(&http)
            .await
            .map_err(|e| map_request_error(e, url.as_str()))?;
    }
    tracing::info!("revoked the tokens at {}", url.as_str());
    Ok(())
}
