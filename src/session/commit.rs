//! Commit: the store, then the netrc, then any further sink.

use anyhow::Result;

use super::Sessions;
use super::sink::TokenSink;
use crate::token_store::{LockedStore, Session};

/// What becomes of the saved store when the netrc cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfNetrcFails {
    /// Put the store back as it was: the session before is still good (a new login, a new
    /// service-account token), and store and netrc keep agreeing.
    RestoreStore,
    /// Keep the new store: a refresh whose old refresh token the provider has already spent,
    /// so the new one is the only one left.
    KeepStore,
}

impl Sessions<'_> {
    /// Saves `session` under `locked`, then writes its access token to the netrc, then tells
    /// the further sinks. A netrc failure undoes the save unless `if_netrc_fails` says to keep
    /// it; a further sink's failure undoes nothing (the store and the netrc are right) but is
    /// the command's error, so that the user learns that, say, the Nix daemon lacks the token.
    pub fn commit(
        &self,
        locked: &LockedStore<'_>,
        session: &Session,
        if_netrc_fails: IfNetrcFails,
    ) -> Result<()> {
        let before = locked.snapshot()?;
        locked.save(session)?;
        if let Err(e) = self.netrc.publish(session) {
            match if_netrc_fails {
                IfNetrcFails::KeepStore => {
                    return Err(e.context(format!(
                        "the new refresh token was kept in {}; run `{}` once the netrc can be written",
                        self.store.path().display(),
                        crate::exit::NextStep::Refresh
                    )));
                }
                IfNetrcFails::RestoreStore => {
                    if let Err(restore) = locked.restore(before) {
                        tracing::warn!("cannot restore the token store: {restore:#}");
                    }
                    return Err(e);
                }
            }
        }
        tell_every_sink(&self.sinks, |sink| sink.publish(session))
    }
}

/// Runs `tell` on every sink even when one fails; the first failure is the result, later
/// ones are warnings.
pub(super) fn tell_every_sink<T>(
    sinks: &[Box<dyn TokenSink + '_>],
    tell: impl Fn(&dyn TokenSink) -> Result<T>,
) -> Result<()> {
    let mut first = None;
    for sink in sinks {
        if let Err(e) = tell(sink.as_ref()) {
            if first.is_none() {
                first = Some(e);
            } else {
                crate::exit::warn(&format!("cannot update the {}: {e:#}", sink.describe()));
            }
        }
    }
    first.map_or(Ok(()), Err)
}
