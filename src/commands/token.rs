//! `token`: a valid access token on stdout, for scripts (`curl -u x:$(nix-cache-login token)`).
//! The netrc gets the same token, so Nix and the script agree.

use std::io::Write;

use anyhow::{Context, Result};

use super::{Ctx, ci, refresh, service_account};
use crate::cli::TokenArgs;
use crate::config::ProcessEnvironment;
use crate::exit::LoginNeeded;
use crate::token_store::Grant;

pub async fn run(ctx: &Ctx, args: &TokenArgs) -> Result<()> {
    let locked = ctx.store.lock()?;
    let session = refresh::load_session(ctx, &locked)?;
    let (session, renewed) = if session.grant == Grant::ClientCredentials {
        // The grant takes the store's lock itself.
        drop(locked);
        service_account::obtain(ctx, Some(args.min_valid)).await?
    } else if session.grant == Grant::Ci {
        // The same CI login again, as it was run; it takes the store's lock itself.
        let settings = session.ci.clone().ok_or_else(|| {
            LoginNeeded::with_command("the stored CI session does not say how it was made", "ci")
        })?;
        drop(locked);
        ci::obtain(ctx, &settings, Some(args.min_valid), &ProcessEnvironment).await?
    } else {
        refresh::refresh_if_needed(ctx, &locked, session, Some(args.min_valid)).await?
    };
    if renewed {
        tracing::info!("fetched a new access token");
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", session.access_token.expose())
        .and_then(|()| stdout.flush())
        .context("cannot write the token to stdout")
}
