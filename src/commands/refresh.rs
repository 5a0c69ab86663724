//! `refresh`: a new access token from the stored refresh token, no browser.

use std::time::Duration;

use anyhow::Result;

use super::{Ctx, describe_expiry, session_from_tokens};
use crate::cli::RefreshArgs;
use crate::clock;
use crate::exit::LoginNeeded;
use crate::oidc::http::HttpClient;
use crate::token_store::{LockedStore, Session};

pub async fn run(ctx: &Ctx, args: &RefreshArgs) -> Result<()> {
    // Held from reading the refresh token until the rotated one is saved: a provider that
    // rotates refresh tokens ends the session when a spent one is used again. A run that
    // waited here reads the token its predecessor saved.
    let locked = ctx.store.lock()?;
    let session = load_session(ctx, &locked)?;
    if let Some(command) = session.grant.rerun_command() {
        return Err(LoginNeeded::with_command(
            format!("the stored token came from `{command}`, which has no refresh token"),
            command,
        )
        .into());
    }
    let (session, renewed) = refresh_if_needed(ctx, &locked, session, args.min_valid).await?;
    if !renewed {
        tracing::info!("access token still valid; nothing to do");
        return Ok(());
    }
    eprintln!(
        "Refreshed the token for {}: {}",
        ctx.config.cache_hosts.join(", "),
        describe_expiry(&session)
    );
    Ok(())
}

/// The stored session; none is a reason to log in.
pub(super) fn load_session(ctx: &Ctx, locked: &LockedStore<'_>) -> Result<Session> {
    Ok(locked.load()?.ok_or_else(|| {
        LoginNeeded::new(format!(
            "no stored session for {}",
            ctx.config.cache_hosts[0]
        ))
    })?)
}

/// Refreshes a user's `session` unless its access token stays valid for `min_valid` (and
/// the netrc has it); saves the result and writes the netrc. Returns the current session
/// and whether a new token was fetched. `locked` must be the lock `session` was read under.
pub(super) async fn refresh_if_needed(
    ctx: &Ctx,
    locked: &LockedStore<'_>,
    session: Session,
    min_valid: Option<Duration>,
) -> Result<(Session, bool)> {
    if ctx.still_valid(&session, min_valid) {
        return Ok((session, false));
    }
    let refresh_token = session
        .refresh_token
        .clone()
        .ok_or_else(|| LoginNeeded::new("the stored session has no refresh token"))?;
    let now = clock::now();
    if let Some(exp) = session.refresh_token_expires_at.filter(|exp| *exp <= now) {
        return Err(LoginNeeded::new(format!(
            "the refresh token expired at {}",
            clock::format_utc(exp)
        ))
        .into());
    }
    ctx.check_writable()?;

    let http = HttpClient::new()?;
    let result = ctx
        .token_request(&http, None, async |provider| {
            provider.refresh(&http, &refresh_token).await
        })
        .await;
    let (_, tokens) = match result {
        Ok(ok) => ok,
        Err(e) => {
            let refused = e
                .downcast_ref::<crate::oidc::client::GrantError>()
                .and_then(|g| g.oauth_error())
                .is_some_and(|code| code == "invalid_grant");
            if refused {
                return Err(LoginNeeded::new(format!(
                    "the provider no longer accepts the refresh token (expired, revoked or session ended): {e}"
                ))
                .into());
            }
            if let Some(rotated) = e
                .downcast_ref::<crate::oidc::client::GrantError>()
                .and_then(|g| g.rotated_refresh_token())
            {
                // The old refresh token may be spent: without the new one the session is lost.
                let mut kept = session.clone();
                kept.refresh_token = Some(rotated.clone());
                kept.refresh_token_expires_at =
                    crate::jwt::decode_claims(rotated.expose()).and_then(|c| c.exp);
                locked.save(&kept)?;
                return Err(e.context(format!(
                    "kept the new refresh token in {}",
                    ctx.store.path().display()
                )));
            }
            return Err(e);
        }
    };
    let session = session_from_tokens(&ctx.config, session.grant, tokens, Some(&session));
    ctx.commit(locked, &session, true)?;
    Ok((session, true))
}
