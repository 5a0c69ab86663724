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
    /// it; a further sink's failure is a warning.
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
        for sink in &self.sinks {
            if let Err(e) = sink.publish(session) {
                crate::exit::warn(&format!("cannot update the {}: {e:#}", sink.describe()));
            }
        }
        Ok(())
    }
}
