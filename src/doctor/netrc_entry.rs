//! `netrc-entry`: per cache host, the netrc has its entry, with a token that still lasts.

use std::path::Path;

use super::Check;
use super::run::Doctor;
use super::token::TokenFacts;
use crate::config::Config;
use crate::netrc::{self, Netrc};
use crate::token_store::Session;

/// The netrc's bytes and parse; `Ok(None)` when it does not exist.
pub(super) type NetrcRead = Result<Option<(Vec<u8>, Netrc)>, String>;

impl Doctor<'_> {
    pub(super) fn read_netrc(&self, path: &Path) -> NetrcRead {
        match std::fs::read(path) {
            Ok(bytes) => {
                let parsed = Netrc::parse(&bytes);
                Ok(Some((bytes, parsed)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Per cache host: the netrc has its machine entry, with a token that still lasts.
    pub(super) fn entry_checks(
        &self,
        config: &Config,
        netrc: &NetrcRead,
        session: Option<&Session>,
    ) -> Vec<Check> {
        let path = config.netrc_path.display();
        config
            .cache_hosts
            .iter()
            .map(|host| {
                let machine = netrc::machine_name(host);
                let check = match netrc {
                    Err(e) => Check::skip("netrc-entry", e.clone()),
                    Ok(None) => Check::skip("netrc-entry", format!("{path} does not exist")),
                    Ok(Some((_, file))) => match file.get(machine) {
                        Some(entry) if entry.password.is_some() => {
                            self.entry_check(config, machine, &entry, session)
                        }
                        _ => Check::fail(
                            "netrc-entry",
                            format!("{path} has no `machine {machine}` entry with a password"),
                            format!("run `{}`", self.login_command(config)),
                        ),
                    },
                };
                check.for_host(host)
            })
            .collect()
    }

    fn entry_check(
        &self,
        config: &Config,
        machine: &str,
        entry: &netrc::Entry,
        session: Option<&Session>,
    ) -> Check {
        let password = entry.password.as_deref().unwrap_or_default();
        let facts = TokenFacts::of(password);
        let detail = format!("machine {machine}: {}", facts.describe(self.now));
        let renew = self.renew_command(config, session);
        if facts.expired(self.now) {
            return Check::fail(
                "netrc-entry",
                format!("{detail}: Nix sends an expired token"),
                format!("run `{renew}`"),
            );
        }
        if entry.login.is_none() {
            return Check::warn(
                "netrc-entry",
                format!("{detail}; the entry has no login, which some curl versions ignore"),
                format!("run `{renew}`: it writes a login beside the token"),
            );
        }
        match session {
            Some(s) if s.access_token.expose().as_bytes() != password => Check::warn(
                "netrc-entry",
                format!("{detail}; not the stored session's token (written by something else?)"),
                format!("run `{renew}`"),
            ),
            _ => Check::ok("netrc-entry", detail),
        }
    }
}
