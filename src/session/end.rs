//! The end of a session: revocation at the provider, then removal here.

use anyhow::Result;

use super::Sessions;
use super::client_secret::{self, SecretUse};
use super::commit::tell_every_sink;
use super::grant::Grant;
use super::sink::TokenSink;
use crate::oidc::discovery::Jwks;
use crate::oidc::revoke::{self, Revocable, Revocation};
use crate::token_store::{LockedStore, Session};

/// What [`Sessions::end`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The netrc entries or the stored session (or both) were there and are gone.
    Removed,
    NothingThere,
}

impl Sessions<'_> {
    /// Revokes `session`'s tokens at the provider (RFC 7009).
    pub async fn revoke(&self, session: &Session) -> Result<Revocation> {
        // Revoking a CI session's token would need the job's token again (client assertion),
        // and `direct` wrote the CI platform's own token, which no provider here issued.
        if session.grant == Grant::Ci {
            return Ok(Revocation::NotAsked);
        }
        // Only a confidential client authenticates; a public (PKCE) client sending a secret
        // would be refused.
        let secret = match (&self.config.client_secret_file, session.grant) {
            (Some(path), Grant::ClientCredentials) => {
                client_secret::read(path, SecretUse::IfReadable)?
            }
            (
                _,
                Grant::AuthorizationCode | Grant::DeviceCode | Grant::ClientCredentials | Grant::Ci,
            ) => None,
        };
        let http = self.http()?;
        let provider = self
            .provider(&http, Jwks::NotNeeded, secret.as_ref())
            .await?;
        let tokens = Revocable {
            refresh_token: session.refresh_token.as_ref(),
            access_token: &session.access_token,
        };
        let revocation = revoke::revoke(
            &provider,
            &http,
            &self.config.client_id,
            secret.as_ref(),
            tokens,
        )
        .await?;
        if let Revocation::Revoked { url, .. } = &revocation {
            tracing::info!("revoked the tokens at {url}");
        }
        Ok(revocation)
    }

    /// Removes the netrc entries, tells the further sinks, and deletes the stored session,
    /// under `locked`, whatever the provider said. A further sink's failure is the result,
    /// after everything else is removed.
    pub fn end(&self, locked: &LockedStore<'_>) -> Result<Ended> {
        let removed_entries = self.netrc.withdraw()?;
        let sinks = tell_every_sink(&self.sinks, |sink| sink.withdraw());
        let removed_store = locked.remove()?;
        sinks?;
        Ok(if removed_entries || removed_store {
            Ended::Removed
        } else {
            Ended::NothingThere
        })
    }
}
