//! `logout`: revoke at the provider (RFC 7009), then remove the netrc entries and the stored
//! tokens, whatever the provider said.

use anyhow::Result;

use crate::clock;
use crate::oidc::revoke::{AccessRevocation, Revocation};
use crate::session::{Ended, Sessions};

pub async fn run(sessions: &Sessions<'_>) -> Result<()> {
    let locked = sessions.lock()?;
    // A corrupt store cannot be revoked, but must still go.
    let session = match locked.load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: {e:#}");
            None
        }
    };

    let revocation = match &session {
        Some(session) => sessions.revoke(session).await.map(|revocation| {
            match revocation {
                Revocation::NotAsked => eprintln!(
                    "A CI session has no refresh token; its access token ends at its expiry."
                ),
                Revocation::NoEndpoint => eprintln!(
                    "The provider {} offers no revocation endpoint; the tokens stay valid until they expire.",
                    sessions.config().issuer_str()
                ),
                Revocation::Revoked {
                    access: AccessRevocation::Unsupported,
                    ..
                } => {
                    let until = session
                        .access_token_expires_at
                        .map(|exp| format!(" until {}", clock::format_utc(exp)))
                        .unwrap_or_default();
                    eprintln!(
                        "The provider cannot revoke the access token itself; it stays valid{until}."
                    );
                }
                Revocation::Revoked {
                    access: AccessRevocation::Revoked,
                    ..
                } => {}
            }
        }),
        None => Ok(()),
    };

    match (&session, sessions.end(&locked)?) {
        (None, Ended::NothingThere) => eprintln!("Not logged in; nothing to remove."),
        _ => eprintln!(
            "Removed the netrc entry for {} and the stored tokens.",
            sessions.config().cache_hosts.join(", ")
        ),
    }
    revocation.map_err(|e| {
        e.context("revocation failed: the tokens stay valid at the provider until they expire")
    })
}
