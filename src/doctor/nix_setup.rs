//! The lines Nix needs to use the netrc and the cache, for the Nix found on this machine
//! (cppnix, Lix, Determinate; with or without a daemon): what `init` prints.

use std::path::{Path, PathBuf};

use super::nix::{self, DETERMINATE_CONFIG};
use super::system::{User, run_tool};
use crate::config::{Config, Environment};

/// The Nix of this machine, as far as the lines to add depend on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// cppnix or Lix (the same `netrc-file` setting; Lix refuses a missing file).
    NixConf {
        lix: bool,
    },
    Determinate,
    /// No `nix` in PATH.
    Unknown,
}

pub struct NixSetup {
    pub flavor: Flavor,
    /// Downloads go through the daemon (multi-user install).
    pub daemon: bool,
    pub system_conf: PathBuf,
    pub user_conf: Option<PathBuf>,
}

impl NixSetup {
    pub fn detect(env: &dyn Environment) -> NixSetup {
        let version = run_tool("nix", &["--version"]).unwrap_or_default();
        let flavor = if env.system_path(Path::new(DETERMINATE_CONFIG)).exists()
            || version.contains("Determinate")
        {
            Flavor::Determinate
        } else if version.is_empty() {
            Flavor::Unknown
        } else {
            Flavor::NixConf {
                lix: version.to_ascii_lowercase().contains("lix"),
            }
        };
        let user = User::current().ok();
        NixSetup {
            flavor,
            daemon: nix::store_use(None, env, user.as_ref()).daemon,
            system_conf: nix::system_conf_file(env),
            user_conf: nix::user_conf_file(env),
        }
    }
}

/// The exact lines to add for the Nix found here, and where.
pub fn advice(nix: &NixSetup, config: &Config) -> String {
    let netrc = config.netrc_path.display();
    let host = &config.cache_hosts[0];
    let substituter = format!(
        "  extra-substituters = https://{host}\n  extra-trusted-public-keys = <the cache's public key, from its operator>"
    );
    match &nix.flavor {
        Flavor::Determinate => format!(
            "Determinate Nix: add the netrc to {DETERMINATE_CONFIG}:\n\n  \
             {{\"authentication\":{{\"additionalNetrcSources\":[\"{netrc}\"]}}}}\n\n\
             and the cache to /etc/nix/nix.custom.conf:\n\n{substituter}\n\n\
             then `sudo systemctl restart determinate-nixd`. It reads the netrc only when it \
             starts: restart it after each refresh, or `nix-cache-login doctor` says when it \
             missed a new token."
        ),
        Flavor::NixConf { lix } => {
            let (file, who) = if nix.daemon {
                (
                    nix.system_conf.display().to_string(),
                    "the daemon does the downloads and reads only this file for users not in \
                     trusted-users; restart nix-daemon after editing it",
                )
            } else {
                (
                    nix.user_conf
                        .as_ref()
                        .unwrap_or(&nix.system_conf)
                        .display()
                        .to_string(),
                    "no daemon here: Nix downloads with your own settings",
                )
            };
            let lix_note = if *lix {
                format!("\n(Lix refuses a netrc-file that does not exist; {netrc} is there now.)")
            } else {
                String::new()
            };
            format!("Add to {file} ({who}):\n\n  netrc-file = {netrc}\n{substituter}\n{lix_note}")
        }
        Flavor::Unknown => format!(
            "No `nix` in PATH. Once Nix is installed, point it at the netrc: `netrc-file = {netrc}` \
             in the nix.conf its daemon reads (/etc/nix/nix.conf), or for Determinate Nix list \
             it in additionalNetrcSources of {DETERMINATE_CONFIG}; and add the cache:\n\n{substituter}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, tests::FakeEnv};

    fn config() -> Config {
        let text = "issuer='https://sso'\nclient_id='nix'\ncache_host='cache.example.com'\nnetrc_path='/home/a/.config/nix/netrc'\n";
        config::parse(text, Path::new("/c"), None, &FakeEnv::default()).unwrap()
    }

    fn nix(flavor: Flavor, daemon: bool) -> NixSetup {
        NixSetup {
            flavor,
            daemon,
            system_conf: "/etc/nix/nix.conf".into(),
            user_conf: Some("/home/a/.config/nix/nix.conf".into()),
        }
    }

    #[test]
    fn a_daemon_gets_the_lines_in_the_system_file() {
        let text = advice(&nix(Flavor::NixConf { lix: false }, true), &config());
        assert!(text.starts_with("Add to /etc/nix/nix.conf"), "{text}");
        assert!(
            text.contains("  netrc-file = /home/a/.config/nix/netrc\n"),
            "{text}"
        );
        assert!(
            text.contains("extra-substituters = https://cache.example.com"),
            "{text}"
        );
        assert!(text.contains("restart nix-daemon"), "{text}");
        let single = advice(&nix(Flavor::NixConf { lix: true }, false), &config());
        assert!(
            single.starts_with("Add to /home/a/.config/nix/nix.conf"),
            "{single}"
        );
        assert!(single.contains("Lix refuses"), "{single}");
    }

    #[test]
    fn determinate_gets_its_config_json() {
        let text = advice(&nix(Flavor::Determinate, true), &config());
        assert!(
            text.contains(
                r#"{"authentication":{"additionalNetrcSources":["/home/a/.config/nix/netrc"]}}"#
            ),
            "{text}"
        );
        assert!(text.contains("restart determinate-nixd"), "{text}");
        assert!(!text.contains("netrc-file ="), "{text}");
    }
}
