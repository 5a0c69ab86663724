//! `ci`: a CI job logs in with its platform's own OIDC token; no secret is stored.

use anyhow::Result;

use super::describe_expiry;
use crate::ci::{Overrides, Settings};
use crate::cli::CiArgs;
use crate::session::{Renewal, Sessions};

pub async fn run(sessions: &Sessions<'_>, args: &CiArgs) -> Result<()> {
    let flags = Overrides {
        source: args.source.as_deref(),
        grant: args.grant.as_deref(),
        audience: args.audience.as_deref(),
    };
    let config = sessions.config();
    let env = sessions.env();
    let settings = Settings::resolve(&flags, &|var| env.var(var), &config.ci, &config.source)?;
    match sessions.ci(&settings, args.min_valid).await? {
        Renewal::StillValid(_) => tracing::info!("access token still valid; nothing to do"),
        Renewal::Renewed(session) => eprintln!(
            "Wrote a CI token ({}, {}) for {}: {}",
            settings.source,
            settings.grant,
            config.cache_hosts.join(", "),
            describe_expiry(&session)
        ),
    }
    Ok(())
}
