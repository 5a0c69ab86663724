//! `ci`: a CI job logs in with its platform's own OIDC token; no secret is stored.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use super::{Ctx, describe_expiry, service_account, session_from_tokens};
use crate::ci::{self, CiGrant, Settings, job_token::JobToken};
use crate::cli::CiArgs;
use crate::clock;
use crate::config::{Environment, ProcessEnvironment};
use crate::oidc::federation::FederatedGrant;
use crate::oidc::http::HttpClient;
use crate::token_store::{Grant, Session};

pub async fn run(ctx: &Ctx, args: &CiArgs) -> Result<()> {
    let env = ProcessEnvironment;
    let flags = ci::Overrides {
        source: args.source.as_deref(),
        grant: args.grant.as_deref(),
        audience: args.audience.as_deref(),
    };
    let settings = Settings::resolve(
        &flags,
        &|var| env.var(var),
        &ctx.config.ci,
        &ctx.config.source,
    )?;
    let (session, renewed) = obtain(ctx, &settings, args.min_valid, &env).await?;
    if !renewed {
        tracing::info!("access token still valid; nothing to do");
        return Ok(());
    }
    eprintln!(
        "Wrote a CI token ({}, {}) for {}: {}",
        settings.source,
        settings.grant,
        ctx.config.cache_hosts.join(", "),
        describe_expiry(&session)
    );
    Ok(())
}

/// Runs the CI login `settings` describe unless the stored CI token (from the same
/// settings) stays valid for `min_valid` and the netrc has it; saves the result and writes
/// the netrc. Returns the current session and whether a new token was fetched. Every error
/// names the source and the grant.
pub(super) async fn obtain(
    ctx: &Ctx,
    settings: &Settings,
    min_valid: Option<Duration>,
    env: &dyn Environment,
) -> Result<(Session, bool)> {
    login(ctx, settings, min_valid, env)
        .await
        .with_context(|| format!("ci (source {}, grant {})", settings.source, settings.grant))
}

async fn login(
    ctx: &Ctx,
    settings: &Settings,
    min_valid: Option<Duration>,
    env: &dyn Environment,
) -> Result<(Session, bool)> {
    let locked = ctx.store.lock()?;
    // A corrupt or foreign store is simply replaced: this grant needs nothing from it.
    let previous = locked.load().ok().flatten();
    if let Some(session) =
        previous.filter(|s| s.grant == Grant::Ci && s.ci.as_ref() == Some(settings))
        && ctx.still_valid(&session, min_valid)
    {
        return Ok((session, false));
    }
    ctx.check_writable()?;

    let http = HttpClient::new()?;
    let job = ci::source::fetch(&settings.source, settings.audience.as_deref(), &http, env).await?;
    job.check_usable(settings.audience.as_deref())
        .map_err(|m| anyhow!(m))?;
    tracing::info!("CI token of {}", job.describe());

    let mut session = match federated_grant(&settings.grant) {
        None => direct_session(ctx, job)?,
        Some(grant) => {
            let secret = ctx
                .config
                .client_secret_file
                .as_deref()
                .filter(|_| !matches!(grant, FederatedGrant::ClientAssertion))
                .map(service_account::read_secret)
                .transpose()?;
            let scopes = service_account::machine_scopes(&ctx.config);
            let (_, tokens) = ctx
                .token_request(&http, secret.as_ref(), async |provider| {
                    provider
                        .federated(&http, grant, &job.value, secret.as_ref(), &scopes)
                        .await
                })
                .await?;
            let mut session = session_from_tokens(&ctx.config, Grant::Ci, tokens, None);
            if session.subject.is_none() {
                session.subject = job.claims.sub.as_deref().map(ci::job_token::clean);
            }
            session
        }
    };
    session.ci = Some(settings.clone());
    ctx.commit(&locked, &session, false)?;
    Ok((session, true))
}

/// The token request of a grant that has one; `None` for `direct`.
fn federated_grant(grant: &CiGrant) -> Option<FederatedGrant<'_>> {
    match grant {
        CiGrant::JwtBearer => Some(FederatedGrant::JwtBearer),
        CiGrant::TokenExchange {
            subject_token_type,
            audience,
        } => Some(FederatedGrant::TokenExchange {
            subject_token_type: *subject_token_type,
            audience: audience.as_deref(),
        }),
        CiGrant::ClientAssertion => Some(FederatedGrant::ClientAssertion),
        CiGrant::Direct => None,
    }
}

/// `direct`: the job's token is the cache's token. The config's `issuer` names the CI
/// issuer the cache trusts; a token from another issuer is not written.
fn direct_session(ctx: &Ctx, job: JobToken) -> Result<Session> {
    let iss = job.claims.iss.as_deref().unwrap_or("");
    if iss.trim_end_matches('/') != ctx.config.issuer_str() {
        return Err(anyhow!(
            "the CI token was issued by {}, but the config's issuer (the issuer the cache trusts) is {}",
            ci::job_token::clean(iss),
            ctx.config.issuer_str()
        ));
    }
    let mut session = Session::new(&ctx.config, Grant::Ci, job.value, clock::now());
    session.access_token_expires_at = job.claims.exp;
    session.subject = job.claims.sub.as_deref().map(ci::job_token::clean);
    Ok(session)
}
