//! `token`: a valid access token on stdout, for scripts (`curl -u x:$(nix-cache-login token)`).
//! The netrc gets the same token, so Nix and the script agree.

use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::TokenArgs;
use crate::session::{Renewal, Sessions};

pub async fn run(sessions: &Sessions<'_>, args: &TokenArgs) -> Result<()> {
    let renewal = sessions.ensure_valid(Some(args.min_valid)).await?;
    if let Renewal::Renewed(_) = renewal {
        tracing::info!("fetched a new access token");
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", renewal.session().access_token.expose())
        .and_then(|()| stdout.flush())
        .context("cannot write the token to stdout")
}
