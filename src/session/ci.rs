//! `ci`: a CI job's own OIDC token made into the cache's token, stored and committed like
//! every other session.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use super::Sessions;
use super::client_secret::{self, SecretUse};
use super::commit::IfNetrcFails;
use super::grant::{Grant, GrantRequest};
use super::renew::Renewal;
use super::tokens::session_from_tokens;
use crate::ci::job_token::{JobToken, clean};
use crate::ci::{self, CiGrant, Settings};
use crate::clock;
use crate::oidc::federation::FederatedGrant;
use crate::token_store::Session;

impl Sessions<'_> {
    /// Runs the CI login `settings` describe unless the stored CI token (from the same
    /// settings) stays valid for `min_valid` and the netrc has it; commits the result. Takes
    /// the store's lock. Every error names the source and the grant.
    pub async fn ci(&self, settings: &Settings, min_valid: Option<Duration>) -> Result<Renewal> {
        self.ci_login(settings, min_valid)
            .await
            .with_context(|| format!("ci (source {}, grant {})", settings.source, settings.grant))
    }

    async fn ci_login(&self, settings: &Settings, min_valid: Option<Duration>) -> Result<Renewal> {
        let locked = self.lock()?;
        // A corrupt or foreign store is simply replaced: this grant needs nothing from it.
        let previous = locked.load().ok().flatten();
        if let Some(session) =
            previous.filter(|s| s.grant == Grant::Ci && s.ci.as_ref() == Some(settings))
            && self.still_valid(&session, min_valid)
        {
            return Ok(Renewal::StillValid(session));
        }
        self.check_writable()?;

        let http = self.http()?;
        let audience = settings.audience.as_deref();
        let job = ci::source::fetch(&settings.source, audience, &http, self.env).await?;
        job.check_usable(audience).map_err(|m| anyhow!(m))?;
        tracing::info!("CI token of {}", job.describe());

        let mut session = match federated(&settings.grant) {
            None => self.direct_session(job)?,
            Some(grant) => {
                let secret = match (&self.config.client_secret_file, grant) {
                    (_, FederatedGrant::ClientAssertion) | (None, _) => None,
                    (Some(path), _) => client_secret::read(path, SecretUse::Required)?,
                };
                let request = GrantRequest::Federated {
                    grant,
                    job_token: &job.value,
                    secret: secret.as_ref(),
                };
                let tokens = self.obtain(&http, &request).await?;
                let mut session = session_from_tokens(&self.config, Grant::Ci, tokens, None);
                if session.subject.is_none() {
                    session.subject = job.claims.sub.as_deref().map(clean);
                }
                session
            }
        };
        session.ci = Some(settings.clone());
        self.commit(&locked, &session, IfNetrcFails::RestoreStore)?;
        Ok(Renewal::Renewed(session))
    }

    /// `direct`: the job's token is the cache's token. The config's `issuer` names the CI
    /// issuer the cache trusts; a token from another issuer is not written.
    fn direct_session(&self, job: JobToken) -> Result<Session> {
        let iss = job.claims.iss.as_deref().unwrap_or("");
        if iss.trim_end_matches('/') != self.config.issuer_str() {
            return Err(anyhow!(
                "the CI token was issued by {}, but the config's issuer (the issuer the cache trusts) is {}",
                clean(iss),
                self.config.issuer_str()
            ));
        }
        let mut session = Session::new(&self.config, Grant::Ci, job.value, clock::now());
        session.access_token_expires_at = job.claims.exp;
        session.subject = job.claims.sub.as_deref().map(clean);
        Ok(session)
    }
}

/// The token request of a grant that has one; `None` for `direct`.
fn federated(grant: &CiGrant) -> Option<FederatedGrant<'_>> {
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
