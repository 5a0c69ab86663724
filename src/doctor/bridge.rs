//! `daemon-bridge`: does the Nix daemon's netrc hold this user's token? Asked of the bridge
//! (a local socket); the token itself is never seen.

use std::path::{Path, PathBuf};

use super::run::Doctor;
use super::{Check, determinate};
use crate::bridge::client::{self, DaemonBridge};
use crate::bridge::protocol::{EntryStatus, Holder};
use crate::bridge::{self, DEFAULT_SOCKET};
use crate::config::{Config, Environment};
use crate::token_store::Session;

pub const BRIDGE_CHECK: &str = "daemon-bridge";
const BRIDGE_CONFIG: &str = bridge::config::DEFAULT_CONFIG;

impl Doctor<'_> {
    pub(super) fn bridge_checks(&self, config: &Config, session: Option<&Session>) -> Vec<Check> {
        let config_file = config.source.display();
        let socket = match (&config.daemon_bridge, config.daemon_bridge.socket()) {
            // Nothing to check is nothing wrong: the nix-daemon check says whether the daemon
            // reads the user's netrc.
            (DaemonBridge::Off, _) => {
                return vec![Check::ok(
                    BRIDGE_CHECK,
                    format!("daemon_bridge = false in {config_file}"),
                )];
            }
            (_, None) => {
                return vec![Check::ok(
                    BRIDGE_CHECK,
                    format!(
                        "no daemon bridge on this machine ({DEFAULT_SOCKET} does not exist): a multi-user Nix daemon sees the token only if you are in trusted-users"
                    ),
                )];
            }
            (_, Some(socket)) => socket,
        };
        let entries = match client::status(&socket, None) {
            Ok(entries) => entries,
            Err(e) => {
                return vec![Check::fail(
                    BRIDGE_CHECK,
                    format!("{e:#}"),
                    format!(
                        "start the bridge (systemctl start nix-cache-login-bridge.socket) or ask root to allow you in {BRIDGE_CONFIG}; or set daemon_bridge = false in {config_file}"
                    ),
                )];
            }
        };
        let mut checks: Vec<Check> = config
            .cache_hosts
            .iter()
            .map(|host| {
                let entry = entries.iter().find(|e| e.host.eq_ignore_ascii_case(host));
                self.daemon_entry_check(config, session, host, entry)
                    .for_host(host)
            })
            .collect();
        checks.extend(determinate_check(self.env));
        checks
    }

    fn daemon_entry_check(
        &self,
        config: &Config,
        session: Option<&Session>,
        host: &str,
        entry: Option<&EntryStatus>,
    ) -> Check {
        let renew = self.renew_command(config, session);
        let Some(entry) = entry else {
            return Check::fail(
                BRIDGE_CHECK,
                format!("the bridge does not serve {host}"),
                format!("ask root to add {host} to cache_hosts in {BRIDGE_CONFIG}"),
            );
        };
        let line = client::describe_entry(entry, self.now);
        match entry.holder {
            _ if client::holds_yours(entry, self.now) => Check::ok(BRIDGE_CHECK, line),
            Holder::Caller => Check::fail(
                BRIDGE_CHECK,
                line,
                format!("run `{renew}` (it hands the new token to the daemon)"),
            ),
            Holder::OtherUser => Check::warn(
                BRIDGE_CHECK,
                line,
                format!("run `{renew}` to make the daemon use yours"),
            ),
            Holder::Unrecorded | Holder::Nobody => Check::fail(
                BRIDGE_CHECK,
                format!("{line}: the Nix daemon will not authenticate to {host}"),
                format!(
                    "run `{}` (it hands the token to the daemon)",
                    self.login_command(config)
                ),
            ),
        }
    }
}

/// Under Determinate Nix the bridge's netrc reaches the daemon only as one of its
/// additionalNetrcSources, and only as it was when determinate-nixd started.
fn determinate_check(env: &dyn Environment) -> Option<Check> {
    let sources = determinate::sources(env)?;
    let netrc = bridge_netrc(env);
    if determinate::merges(&sources, &netrc) {
        return determinate::restart_check(env, &netrc, true);
    }
    Some(Check::warn(
        BRIDGE_CHECK,
        format!(
            "Determinate Nix: the bridge writes {}, which is not among its additionalNetrcSources: the daemon does not send that token",
            netrc.display()
        ),
        determinate::add_source_fix(&netrc),
    ))
}

/// The netrc the bridge writes: its config's `netrc_path` when the config is there and
/// root's (as the bridge itself requires), else the bridge's default.
fn bridge_netrc(env: &dyn Environment) -> PathBuf {
    let path = env.system_path(Path::new(BRIDGE_CONFIG));
    bridge::config::load(&path)
        .map(|config| config.netrc_path)
        .unwrap_or_else(|_| PathBuf::from(bridge::config::DEFAULT_NETRC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::doctor::determinate::tests::{BOOT, FakeRoot};

    #[test]
    fn under_determinate_the_bridge_netrc_must_be_a_source_read_since_its_change() {
        let root = FakeRoot::new();
        assert!(
            determinate_check(&root).is_none(),
            "no Determinate, no claim"
        );

        // The bridge's config names its netrc; Determinate lists another file.
        let netrc = root.netrc(BOOT + 500);
        root.write(
            BRIDGE_CONFIG,
            &format!(
                "issuer = 'https://sso.example'\nclient_id = 'nix'\ncache_hosts = ['cache']\nnetrc_path = '{}'\n",
                netrc.display()
            ),
        );
        let root = root.with_determinate(Path::new("/elsewhere/netrc"));
        let check = determinate_check(&root).unwrap();
        assert_eq!(check.status, Status::Warn, "{check:?}");
        assert!(check.detail.contains("not among"), "{}", check.detail);
        assert!(check.fix.unwrap().contains("additionalNetrcSources"));
        // Only root's config is believed; run as another user, the default stands.
        if bridge_netrc(&root) != netrc {
            assert_eq!(
                bridge_netrc(&root),
                Path::new(bridge::config::DEFAULT_NETRC)
            );
            return;
        }

        // Listed, but changed after the daemon started: the restart rule speaks.
        let root = root.with_determinate(&netrc);
        root.process(812, "determinate-nixd", 100);
        let check = determinate_check(&root).unwrap();
        assert_eq!(check.name, determinate::CHECK, "{check:?}");
        assert_eq!(check.status, Status::Warn, "{check:?}");
        assert!(
            check.detail.contains("only when it starts"),
            "{}",
            check.detail
        );
    }
}
