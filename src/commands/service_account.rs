//! `service-account`: the client-credentials grant, for servers and their timers.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::{Ctx, describe_expiry, session_from_tokens};
use crate::cli::RefreshArgs;
use crate::config::Config;
use crate::exit::ConfigError;
use crate::oidc::http::HttpClient;
use crate::secret::Secret;
use crate::token_store::{Grant, Session};

/// Scopes that only make sense for a user: `openid` asks for an ID token and
/// `offline_access` for a refresh token, neither of which client credentials yield.
const USER_ONLY_SCOPES: [&str; 2] = ["openid", "offline_access"];

pub async fn run(ctx: &Ctx, args: &RefreshArgs) -> Result<()> {
    let (session, renewed) = obtain(ctx, args.min_valid).await?;
    if !renewed {
        tracing::info!("access token still valid; nothing to do");
        return Ok(());
    }
    eprintln!(
        "Wrote a service-account token for {}: {}",
        ctx.config.cache_hosts.join(", "),
        describe_expiry(&session)
    );
    Ok(())
}

/// Runs the client-credentials grant unless the stored service-account token stays valid
/// for `min_valid` (and the netrc has it); saves the result and writes the netrc. Returns
/// the current session and whether a new token was fetched.
pub(super) async fn obtain(ctx: &Ctx, min_valid: Option<Duration>) -> Result<(Session, bool)> {
    let secret_file = ctx.config.client_secret_file.as_deref().ok_or_else(|| {
        ConfigError(format!(
            "{}: client_secret_file: missing (required for service-account)",
            ctx.config.source.display()
        ))
    })?;
    let secret = read_secret(secret_file)?;

    let locked = ctx.store.lock()?;
    // A corrupt or foreign store is simply replaced: this grant needs nothing from it.
    let previous = locked.load().ok().flatten();
    if let Some(session) = previous.filter(|s| s.grant == Grant::ClientCredentials)
        && ctx.still_valid(&session, min_valid)
    {
        return Ok((session, false));
    }
    ctx.check_writable()?;

    let scopes = machine_scopes(&ctx.config);
    let http = HttpClient::new()?;
    let (_, tokens) = ctx
        .token_request(&http, Some(&secret), async |provider| {
            provider.client_credentials(&http, &scopes).await
        })
        .await?;
    let session = session_from_tokens(&ctx.config, Grant::ClientCredentials, tokens, None);
    ctx.commit(&locked, &session, false)?;
    Ok((session, true))
}

/// The configured scopes a machine's grant can be given (no user-only ones).
pub(super) fn machine_scopes(config: &Config) -> Vec<String> {
    config
        .scopes
        .iter()
        .filter(|s| !USER_ONLY_SCOPES.contains(&s.as_str()))
        .cloned()
        .collect()
}

/// Reads the client secret; the file must exist, be readable and hold a non-empty secret.
pub(super) fn read_secret(path: &Path) -> Result<Secret> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigError(format!(
            "cannot read client_secret_file {}: {e}",
            path.display()
        ))
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigError(format!(
            "client_secret_file {} is not UTF-8",
            path.display()
        ))
    })?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.trim().is_empty() {
        return Err(ConfigError(format!("client_secret_file {} is empty", path.display())).into());
    }
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        let warning = format!(
            "client_secret_file {} is readable by group or others (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
        tracing::warn!("{warning}");
        eprintln!("warning: {warning}");
    }
    Ok(Secret::new(secret))
}
