//! `daemon-bridge`: does the Nix daemon's netrc hold this user's token? Asked of the bridge
//! (a local socket); the token itself is never seen.

use super::Check;
use super::run::Doctor;
use crate::bridge::DEFAULT_SOCKET;
use crate::bridge::client::{self, DaemonBridge};
use crate::bridge::protocol::{EntryStatus, Holder};
use crate::config::Config;
use crate::token_store::Session;

pub const BRIDGE_CHECK: &str = "daemon-bridge";
/// Where Determinate Nix keeps its settings; its daemon reads extra netrc files only at start.
const DETERMINATE_CONFIG: &str = "/etc/determinate/config.json";
const BRIDGE_CONFIG: &str = "/etc/nix-cache-login/bridge.toml";

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
        if std::path::Path::new(DETERMINATE_CONFIG).exists() {
            checks.push(Check::warn(
                BRIDGE_CHECK,
                "Determinate Nix: determinate-nixd reads additionalNetrcSources only when it starts (DeterminateSystems/determinate#183)",
                "list the bridge's netrc_path in additionalNetrcSources and restart determinate-nixd after the first hand-over",
            ));
        }
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
