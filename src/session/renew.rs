//! "Valid for at least D, or renew it."

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::Sessions;
use super::client_secret::{self, SecretUse};
use super::commit::IfNetrcFails;
use super::grant::{Grant, GrantRequest};
use super::tokens::{ObtainError, session_from_tokens};
use crate::clock;
use crate::exit::{ConfigError, LoginNeeded, NextStep};
use crate::token_store::{LockedStore, Session};
use crate::untrusted;

/// The session after a renewal was asked for.
#[derive(Debug)]
pub enum Renewal {
    /// Its access token stays valid long enough (and the netrc has it): nothing was fetched.
    StillValid(Session),
    /// A new access token was fetched and committed.
    Renewed(Session),
}

impl Renewal {
    pub fn session(&self) -> &Session {
        match self {
            Renewal::StillValid(s) | Renewal::Renewed(s) => s,
        }
    }
}

impl Sessions<'_> {
    /// The stored session, renewed the way its grant allows unless its access token stays
    /// valid for `min_valid`. Takes the store's lock.
    pub async fn ensure_valid(&self, min_valid: Option<Duration>) -> Result<Renewal> {
        let locked = self.lock()?;
        let session = self.current(&locked)?;
        match session.grant {
            Grant::AuthorizationCode | Grant::DeviceCode => {
                self.refresh(&locked, session, min_valid).await
            }
            Grant::ClientCredentials => {
                // The grant takes the store's lock itself.
                drop(locked);
                self.service_account(min_valid).await
            }
            Grant::Ci => {
                // The same CI login again, as it was run; it takes the store's lock itself.
                let settings = session.ci.clone().ok_or_else(|| {
                    LoginNeeded::with_step(
                        "the stored CI session does not say how it was made",
                        NextStep::Ci,
                    )
                })?;
                drop(locked);
                self.ci(&settings, min_valid).await
            }
        }
    }

    /// Refreshes a user's `session` unless its access token stays valid for `min_valid` (and
    /// the netrc has it); commits the result. `locked` must be the lock `session` was read
    /// under: it is held until the rotated refresh token is saved, because a provider that
    /// rotates refresh tokens ends the session when a spent one is used again.
    pub async fn refresh(
        &self,
        locked: &LockedStore<'_>,
        session: Session,
        min_valid: Option<Duration>,
    ) -> Result<Renewal> {
        if self.still_valid(&session, min_valid) {
            return Ok(Renewal::StillValid(session));
        }
        let again = session.grant.start_step();
        let refresh_token = session.refresh_token.clone().ok_or_else(|| {
            LoginNeeded::with_step("the stored session has no refresh token", again)
        })?;
        let now = clock::now();
        if let Some(exp) = session.refresh_token_expires_at.filter(|exp| *exp <= now) {
            return Err(LoginNeeded::with_step(
                format!("the refresh token expired at {}", clock::format_utc(exp)),
                again,
            )
            .into());
        }
        self.check_writable()?;

        let http = self.http()?;
        let request = GrantRequest::Refresh {
            refresh_token: &refresh_token,
        };
        let tokens = match self.obtain(&http, &request).await {
            Ok(tokens) => tokens,
            Err(ObtainError::Grant(e)) if e.ends_refresh_grant().is_some() => {
                let said = e.ends_refresh_grant().expect("checked above");
                return Err(LoginNeeded::with_step(
                    format!(
                        "the provider no longer accepts the refresh token (expired, revoked or session ended): {said}"
                    ),
                    again,
                )
                .into());
            }
            Err(ObtainError::Grant(e)) if e.rotated_refresh_token().is_some() => {
                // The old refresh token may be spent: without the new one the session is lost.
                let rotated = e.rotated_refresh_token().expect("checked above");
                let mut kept = session.clone();
                kept.refresh_token = Some(rotated.clone());
                kept.refresh_token_expires_at =
                    crate::jwt::decode_claims(rotated.expose()).and_then(|c| c.exp);
                locked.save(&kept)?;
                return Err(anyhow::Error::from(e).context(format!(
                    "kept the new refresh token in {}",
                    self.store.path().display()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let session = session_from_tokens(&self.config, session.grant, tokens, Some(&session));
        self.commit(locked, &session, IfNetrcFails::KeepStore)?;
        Ok(Renewal::Renewed(session))
    }

    /// Runs the client-credentials grant unless the stored service-account token stays valid
    /// for `min_valid` (and the netrc has it); commits the result. Takes the store's lock.
    pub async fn service_account(&self, min_valid: Option<Duration>) -> Result<Renewal> {
        let secret_file = self.config.client_secret_file.as_deref().ok_or_else(|| {
            ConfigError::invalid(format!(
                "{}: client_secret_file: missing (required for service-account)",
                self.config.source.display()
            ))
        })?;
        let secret = client_secret::read(secret_file, SecretUse::Required)?
            .expect("a required secret is there or an error");

        let locked = self.lock()?;
        // A corrupt or foreign store is simply replaced: this grant needs nothing from it.
        let previous = locked.load().ok().flatten();
        if let Some(session) = previous.filter(|s| s.grant == Grant::ClientCredentials)
            && self.still_valid(&session, min_valid)
        {
            return Ok(Renewal::StillValid(session));
        }
        self.check_writable()?;

        let http = self.http()?;
        let request = GrantRequest::ClientCredentials { secret: &secret };
        let tokens = self
            .obtain(&http, &request)
            .await
            .map_err(|e| refused_credentials(e, &self.config.client_id, secret_file))?;
        let session = session_from_tokens(&self.config, Grant::ClientCredentials, tokens, None);
        self.commit(&locked, &session, IfNetrcFails::RestoreStore)?;
        Ok(Renewal::Renewed(session))
    }

    /// `--min-valid`: when the stored access token stays valid that long (and the netrc
    /// has it), there is nothing to do.
    pub(super) fn still_valid(&self, session: &Session, min_valid: Option<Duration>) -> bool {
        let Some(min_valid) = min_valid else {
            return false;
        };
        let remaining = session
            .access_token_remaining(clock::now())
            .unwrap_or(i64::MIN);
        remaining >= min_valid.as_secs() as i64 && self.netrc.holds(&session.access_token)
    }
}

/// Names a refusal of the client's credentials as one, whether the provider said
/// `invalid_client` or only answered 401 or 403 with no body.
fn refused_credentials(e: ObtainError, client_id: &str, secret_file: &Path) -> anyhow::Error {
    match e {
        ObtainError::Grant(e) if e.refuses_client_credentials() => {
            anyhow::Error::from(e).context(format!(
                "the provider refused the client credentials (client_id {:?}, secret from {})",
                untrusted::clean(client_id),
                secret_file.display()
            ))
        }
        e => e.into(),
    }
}
