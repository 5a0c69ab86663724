//! `service-account`: the client-credentials grant, for servers and their timers.

use anyhow::Result;

use super::describe_expiry;
use crate::cli::RefreshArgs;
use crate::session::{Renewal, Sessions};

pub async fn run(sessions: &Sessions<'_>, args: &RefreshArgs) -> Result<()> {
    match sessions.service_account(args.min_valid).await? {
        Renewal::StillValid(_) => tracing::info!("access token still valid; nothing to do"),
        Renewal::Renewed(session) => eprintln!(
            "Wrote a service-account token for {}: {}",
            sessions.config().cache_hosts.join(", "),
            describe_expiry(&session)
        ),
    }
    Ok(())
}
