//! `refresh`: a new access token from the stored refresh token, no browser.

use anyhow::Result;

use super::describe_expiry;
use crate::cli::RefreshArgs;
use crate::exit::LoginNeeded;
use crate::session::grant::Renewal as HowRenewed;
use crate::session::{Renewal, Sessions};

pub async fn run(sessions: &Sessions<'_>, args: &RefreshArgs) -> Result<()> {
    // Held from reading the refresh token until the rotated one is saved. A run that waited
    // here reads the token its predecessor saved.
    let locked = sessions.lock()?;
    let session = sessions.current(&locked)?;
    if session.grant.renewal() != HowRenewed::RefreshToken {
        let again = session.grant.start_step();
        return Err(LoginNeeded::with_step(
            format!(
                "the stored token came from `{}`, which has no refresh token",
                again.subcommand()
            ),
            again,
        )
        .into());
    }
    match sessions.refresh(&locked, session, args.min_valid).await? {
        Renewal::StillValid(_) => tracing::info!("access token still valid; nothing to do"),
        Renewal::Renewed(session) => eprintln!(
            "Refreshed the token for {}: {}",
            sessions.config().cache_hosts.join(", "),
            describe_expiry(&session)
        ),
    }
    Ok(())
}
