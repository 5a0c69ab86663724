//! The order of the checks, and the facts they share.

use std::path::Path;

use super::nix_checks::{self, Tool};
use super::system::CurlVersion;
use super::system::User;
use super::{Check, Report, bridge, netrc_file};
use crate::clock;
use crate::config::{self, Environment};
use crate::exit::{ConfigError, ConfigProblem, NextStep};
use crate::http::HttpClient;
use crate::session::Sessions;
use crate::session::next::{next_step, start_step};
use crate::token_store::Session;

/// What `doctor` was asked to look at: the `--config` and `--profile` the user gave.
pub struct Target<'a> {
    pub config: Option<&'a Path>,
    pub profile: Option<&'a str>,
}

/// Runs every check, in the order a request travels the links.
pub fn examine(
    target: &Target<'_>,
    env: &dyn Environment,
    runtime: &tokio::runtime::Runtime,
) -> Report {
    Report::new(Doctor::new(target, env, runtime).checks())
}

/// Why there is no config to check against.
pub(super) struct ConfigFailure {
    pub problem: Option<ConfigProblem>,
    pub message: String,
}

/// What the checks share: the facts gathered once.
pub(super) struct Doctor<'a> {
    pub env: &'a dyn Environment,
    pub runtime: &'a tokio::runtime::Runtime,
    /// The config and its session, or why there are none.
    pub sessions: Result<Sessions<'a>, ConfigFailure>,
    pub commands: Commands,
    pub user: Option<User>,
    pub http: Result<HttpClient, String>,
    pub now: i64,
}

/// The commands a fix names, with the `--config`/`--profile` the user gave.
pub(super) struct Commands {
    flags: String,
}

impl Commands {
    pub fn named(&self, step: NextStep) -> String {
        format!("{step}{}", self.flags)
    }
}

impl<'a> Doctor<'a> {
    fn new(
        target: &Target<'_>,
        env: &'a dyn Environment,
        runtime: &'a tokio::runtime::Runtime,
    ) -> Self {
        let sessions = config::load(target.config, target.profile, env)
            .map_err(anyhow::Error::from)
            .and_then(|config| Sessions::new(config, env))
            .map_err(|e| ConfigFailure {
                problem: e.downcast_ref::<ConfigError>().map(|c| c.problem),
                message: format!("{e:#}"),
            });
        let mut flags = String::new();
        if let Some(path) = target.config {
            flags.push_str(&format!(" --config {}", path.display()));
        }
        if let Some(profile) = target.profile {
            flags.push_str(&format!(" --profile {profile}"));
        }
        Doctor {
            env,
            runtime,
            sessions,
            commands: Commands { flags },
            user: User::current()
                .inspect_err(|e| tracing::warn!("cannot tell who runs doctor: {e:#}"))
                .ok(),
            http: HttpClient::new(env).map_err(|e| format!("{e:#}")),
            now: clock::now(),
        }
    }

    fn checks(&self) -> Vec<Check> {
        let mut checks = vec![self.config_check()];
        let Ok(sessions) = &self.sessions else {
            for name in [
                "issuer",
                "discovery",
                "session",
                netrc_file::FILE_CHECK,
                "netrc-entry",
                netrc_file::LIMITS_CHECK,
            ] {
                checks.push(Check::skip(name, "needs a valid config"));
            }
            checks.extend(self.nix_checks());
            checks.push(Check::skip(bridge::BRIDGE_CHECK, "needs a valid config"));
            checks.push(Check::skip("cache", "needs a valid config"));
            return checks;
        };
        let config = sessions.config();
        let netrc = self.read_netrc(&config.netrc_path);
        checks.extend(self.provider_checks(config));
        let session = sessions.peek();
        checks.push(self.session_check(sessions, &session));
        let session = session.ok().flatten();
        checks.extend(self.ci_check(config, session.as_ref()));
        checks.push(netrc_file::check_file(
            &config.netrc_path,
            self.user.as_ref(),
            &self.login_command(config),
        ));
        checks.extend(self.entry_checks(config, &netrc, session.as_ref()));
        checks.push(match &netrc {
            Ok(Some((bytes, _))) => {
                netrc_file::check_limits(bytes, CurlVersion::installed(self.env))
            }
            _ => Check::skip(netrc_file::LIMITS_CHECK, "no netrc to measure"),
        });
        checks.extend(self.nix_checks());
        checks.extend(self.bridge_checks(config, session.as_ref()));
        checks.extend(self.cache_checks(config, &netrc, session.as_ref()));
        checks
    }

    fn config_check(&self) -> Check {
        match &self.sessions {
            Ok(sessions) => {
                let c = sessions.config();
                let profile = c
                    .profile
                    .as_deref()
                    .map(|p| format!(" (profile {p})"))
                    .unwrap_or_default();
                Check::ok(
                    "config",
                    format!(
                        "{}{profile}: issuer {}, cache {}, netrc {}",
                        c.source.display(),
                        c.issuer_str(),
                        c.cache_hosts.join(", "),
                        c.netrc_path.display()
                    ),
                )
            }
            Err(ConfigFailure {
                problem: Some(ConfigProblem::NotFound),
                message,
            }) => Check::fail(
                "config",
                message,
                "run `nix-cache-login init --issuer URL --client-id ID --cache-host HOST`, \
                 which checks the issuer and writes $XDG_CONFIG_HOME/nix-cache-login/config.toml \
                 (or name a config with --config)",
            ),
            Err(ConfigFailure { message, .. }) => Check::fail(
                "config",
                message,
                "correct the config where the message points",
            ),
        }
    }

    /// The command that starts a session: `login`, or `service-account` for a config with a
    /// client secret.
    pub fn login_command(&self, config: &config::Config) -> String {
        self.commands.named(start_step(config))
    }

    /// What gets a new access token for this session.
    pub fn renew_command(&self, config: &config::Config, session: Option<&Session>) -> String {
        self.commands.named(next_step(config, session, self.now))
    }

    /// Which netrc Nix reads, whether the daemon takes it, and the negative cache.
    fn nix_checks(&self) -> Vec<Check> {
        let tool = self.sessions.as_ref().ok().map(|sessions| Tool {
            netrc: &sessions.config().netrc_path,
            config: &sessions.config().source,
        });
        nix_checks::checks(self.env, self.user.as_ref(), tool.as_ref())
    }
}
