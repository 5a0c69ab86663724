//! Where a committed access token goes besides the token store.
//!
//! A sink is told of the new access token after every successful commit, and of its removal
//! when the session ends. The netrc that Nix reads is the first sink and the only one that can
//! fail a commit (see [`super::commit`]). A further sink (the daemon bridge, which hands the
//! token to a root service so that the Nix daemon can use it) is added with
//! [`Sessions::add_sink`](super::Sessions::add_sink): it is told after the netrc was written,
//! under the store lock. A failure of it undoes nothing, since the token in the store and the
//! netrc is valid whatever it says, but it is the command's error: the user must learn that the
//! Nix daemon will not see the token.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::netrc;
use crate::secret::Secret;
use crate::token_store::Session;

pub trait TokenSink {
    /// What the sink is, for messages: `netrc /home/u/.config/nix/netrc`.
    fn describe(&self) -> String;

    /// Makes `session`'s access token the one this sink hands out.
    fn publish(&self, session: &Session) -> Result<()>;

    /// Removes what [`TokenSink::publish`] put there; true when there was something.
    fn withdraw(&self) -> Result<bool>;
}

/// The netrc entries of the cache hosts.
pub struct NetrcSink {
    path: PathBuf,
    hosts: Vec<String>,
    login: String,
}

impl NetrcSink {
    pub fn for_config(config: &Config) -> NetrcSink {
        NetrcSink {
            path: config.netrc_path.clone(),
            hosts: config.cache_hosts.clone(),
            login: config.netrc_login.clone(),
        }
    }

    /// Creates the netrc, empty, when it does not exist (`init`: Lix and Determinate refuse a
    /// `netrc-file` that is not there). Returns whether it was created.
    pub fn create_if_missing(&self) -> Result<bool> {
        netrc::create_if_missing(&self.path)
            .with_context(|| format!("cannot create the netrc {}", self.path.display()))
    }

    /// True when every cache host's netrc entry holds `token`.
    pub fn holds(&self, token: &Secret) -> bool {
        let Ok(Some(file)) = netrc::read(&self.path) else {
            return false;
        };
        self.hosts.iter().all(|host| {
            file.get(netrc::machine_name(host))
                .and_then(|e| e.password)
                .is_some_and(|p| p == token.expose().as_bytes())
        })
    }

    fn context(&self) -> String {
        format!("cannot update the netrc {}", self.path.display())
    }
}

impl TokenSink for NetrcSink {
    fn describe(&self) -> String {
        format!("netrc {}", self.path.display())
    }

    fn publish(&self, session: &Session) -> Result<()> {
        let token = session.access_token.expose();
        // curl reads a netrc word by word; a token it would split, or read as a keyword, would
        // send Nix something else than the token.
        if !netrc::is_plain_word(token) {
            bail!(
                "the provider's access token ({} bytes) is not a single netrc word; not writing it to {}",
                token.len(),
                self.path.display()
            );
        }
        if let Some(warning) = netrc::long_token_warning(token) {
            crate::exit::warn(&warning);
        }
        netrc::update(&self.path, |file| {
            for host in &self.hosts {
                file.upsert(netrc::machine_name(host), &self.login, token);
            }
            Ok(())
        })
        .with_context(|| self.context())?;
        Ok(())
    }

    fn withdraw(&self) -> Result<bool> {
        netrc::update(&self.path, |file| {
            for host in &self.hosts {
                file.remove(netrc::machine_name(host));
            }
            Ok(())
        })
        .with_context(|| self.context())
    }
}
