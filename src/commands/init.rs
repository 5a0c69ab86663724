//! `init`: the first run. Asks for what is missing (on a terminal), checks the issuer's
//! discovery document before anything is written, writes the config (0600, never over an
//! existing one unless `--force`), prints the lines the Nix found here needs, and offers to
//! log in.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Ctx;
use crate::cli::{Cli, InitArgs, LoginArgs};
use crate::config::{self, Config, ENV_CONFIG, Environment};
use crate::doctor::nix::{self, DETERMINATE_CONFIG};
use crate::doctor::system::{User, run_tool};
use crate::exit::ConfigError;
use crate::fsutil;
use crate::oidc::discovery::Discovery;
use crate::oidc::http::HttpClient;

/// One answer `init` needs: the flag that gives it, and how to ask for it.
struct Question {
    flag: &'static str,
    prompt: &'static str,
}

const ISSUER: Question = Question {
    flag: "--issuer",
    prompt: "Issuer URL (Keycloak: https://HOST/realms/REALM)",
};
const CLIENT_ID: Question = Question {
    flag: "--client-id",
    prompt: "Client ID",
};
const CACHE_HOST: Question = Question {
    flag: "--cache-host",
    prompt: "Cache host (as in the substituter URL, e.g. cache.example.com)",
};

pub async fn run(cli: &Cli, args: &InitArgs, env: &dyn Environment) -> Result<()> {
    let path = destination(cli.config.as_deref(), env)?;
    if path.exists() && !args.force {
        return Err(ConfigError(format!(
            "{} exists; not overwriting it (check it with `nix-cache-login doctor`, or run init with --force to replace it)",
            path.display()
        ))
        .into());
    }
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let answers = Answers::gather(args, terminal)?;
    let text = answers.to_toml();
    // Every check the config loader makes, before the network and before any write.
    let config = config::parse(&text, &path, None, env)?;

    let http = HttpClient::new()?;
    let discovery = Discovery {
        http: &http,
        issuer: config.issuer_str(),
        cache: None,
    };
    discovery.fetch(false).await.with_context(|| {
        format!(
            "{} does not answer as an OpenID provider; nothing was written",
            config.issuer_str()
        )
    })?;
    eprintln!("The provider {} answers.", config.issuer_str());

    write_new(&path, text.as_bytes(), args.force)?;
    eprintln!("Wrote {}.", path.display());
    // Lix and Determinate refuse a netrc-file that does not exist: make an empty one now.
    if !config.netrc_path.exists() {
        fsutil::write_atomic(&config.netrc_path, b"")
            .with_context(|| format!("cannot create {}", config.netrc_path.display()))?;
    }
    println!("{}", nix_advice(&NixHere::detect(env), &config));

    if terminal && ask_yes("Log in now?")? {
        let ctx = Ctx::new(config, env)?;
        return super::login::run(
            &ctx,
            &LoginArgs {
                timeout: std::time::Duration::from_secs(300),
                ..LoginArgs::default()
            },
        )
        .await;
    }
    eprintln!("Next: run `nix-cache-login{} login`.", config_flag(cli));
    Ok(())
}

/// Where the config goes: `--config`, `$NIX_CACHE_LOGIN_CONFIG`, or the user's.
fn destination(explicit: Option<&Path>, env: &dyn Environment) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = env.var(ENV_CONFIG) {
        return Ok(PathBuf::from(path));
    }
    env.config_home()
        .map(|dir| dir.join("nix-cache-login/config.toml"))
        .ok_or_else(|| {
            ConfigError(
                "neither $XDG_CONFIG_HOME nor $HOME is set: name the config file with --config"
                    .into(),
            )
            .into()
        })
}

fn config_flag(cli: &Cli) -> String {
    cli.config
        .as_ref()
        .map(|p| format!(" --config {}", p.display()))
        .unwrap_or_default()
}

struct Answers {
    issuer: String,
    client_id: String,
    cache_host: String,
}

impl Answers {
    /// The flags' values; what is missing is asked for on a terminal, and without one it is
    /// a usage error naming every missing flag.
    fn gather(args: &InitArgs, terminal: bool) -> Result<Answers> {
        let given = [
            (&ISSUER, args.issuer.clone()),
            (&CLIENT_ID, args.client_id.clone()),
            (&CACHE_HOST, args.cache_host.clone()),
        ];
        let missing: Vec<&str> = given
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(q, _)| q.flag)
            .collect();
        if !missing.is_empty() && !terminal {
            return Err(ConfigError(format!(
                "init: missing {} (no terminal to ask on)",
                missing.join(", ")
            ))
            .into());
        }
        let mut values = Vec::new();
        for (question, value) in given {
            values.push(match value {
                Some(v) => v,
                None => ask(question.prompt)?,
            });
        }
        let [issuer, client_id, cache_host]: [String; 3] =
            values.try_into().expect("three answers");
        Ok(Answers {
            issuer,
            client_id,
            cache_host,
        })
    }

    fn to_toml(&self) -> String {
        let mut table = toml::Table::new();
        for (key, value) in [
            ("issuer", &self.issuer),
            ("client_id", &self.client_id),
            ("cache_host", &self.cache_host),
        ] {
            table.insert(key.into(), toml::Value::String(value.clone()));
        }
        format!(
            "# Written by `nix-cache-login init`; every key is in the README.\n{}",
            toml::to_string(&table).expect("strings serialize")
        )
    }
}

fn ask(prompt: &str) -> Result<String> {
    loop {
        eprint!("{prompt}: ");
        std::io::stderr().flush().ok();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            return Err(ConfigError("init: no answer (end of input)".into()).into());
        }
        let answer = line.trim();
        if !answer.is_empty() {
            return Ok(answer.to_string());
        }
    }
}

fn ask_yes(prompt: &str) -> Result<bool> {
    eprint!("{prompt} [Y/n] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "" | "y" | "yes"
    ))
}

/// Writes `contents` to `path`, 0600. Without `replace`, an existing file is never replaced,
/// not even one that appeared since the check: the file is linked into place, which fails
/// when the name is taken.
fn write_new(path: &Path, contents: &[u8], replace: bool) -> Result<()> {
    if replace {
        return fsutil::write_atomic(path, contents);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let draft = dir.join(format!(
        ".{}.init.{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("config"),
        std::process::id()
    ));
    fsutil::write_atomic(&draft, contents)?;
    let linked = std::fs::hard_link(&draft, path);
    let _ = std::fs::remove_file(&draft);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(ConfigError(format!(
            "{} appeared meanwhile; not overwriting it",
            path.display()
        ))
        .into()),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// The Nix of this machine, as far as the lines to add depend on it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Flavor {
    /// cppnix or Lix (the same `netrc-file` setting; Lix refuses a missing file).
    NixConf {
        lix: bool,
    },
    Determinate,
    /// No `nix` in PATH.
    Unknown,
}

struct NixHere {
    flavor: Flavor,
    /// Downloads go through the daemon (multi-user install).
    daemon: bool,
    system_conf: PathBuf,
    user_conf: Option<PathBuf>,
}

impl NixHere {
    fn detect(env: &dyn Environment) -> NixHere {
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
        NixHere {
            flavor,
            daemon: nix::store_use(None, env, user.as_ref()).daemon,
            system_conf: nix::system_conf_file(env),
            user_conf: nix::user_conf_file(env),
        }
    }
}

/// The exact lines to add for the Nix found here, and where.
fn nix_advice(nix: &NixHere, config: &Config) -> String {
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
    use crate::config::tests::FakeEnv;

    fn config() -> Config {
        let text = "issuer='https://sso'\nclient_id='nix'\ncache_host='cache.example.com'\nnetrc_path='/home/a/.config/nix/netrc'\n";
        config::parse(text, Path::new("/c"), None, &FakeEnv::default()).unwrap()
    }

    fn nix(flavor: Flavor, daemon: bool) -> NixHere {
        NixHere {
            flavor,
            daemon,
            system_conf: "/etc/nix/nix.conf".into(),
            user_conf: Some("/home/a/.config/nix/nix.conf".into()),
        }
    }

    #[test]
    fn a_daemon_gets_the_lines_in_the_system_file() {
        let text = nix_advice(&nix(Flavor::NixConf { lix: false }, true), &config());
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
        let single = nix_advice(&nix(Flavor::NixConf { lix: true }, false), &config());
        assert!(
            single.starts_with("Add to /home/a/.config/nix/nix.conf"),
            "{single}"
        );
        assert!(single.contains("Lix refuses"), "{single}");
    }

    #[test]
    fn determinate_gets_its_config_json() {
        let text = nix_advice(&nix(Flavor::Determinate, true), &config());
        assert!(
            text.contains(
                r#"{"authentication":{"additionalNetrcSources":["/home/a/.config/nix/netrc"]}}"#
            ),
            "{text}"
        );
        assert!(text.contains("restart determinate-nixd"), "{text}");
        assert!(!text.contains("netrc-file ="), "{text}");
    }

    #[test]
    fn answers_are_quoted_as_toml() {
        let answers = Answers {
            issuer: "https://sso/realms/a\"b".into(),
            client_id: "id".into(),
            cache_host: "c".into(),
        };
        let text = answers.to_toml();
        let table: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(table["issuer"].as_str(), Some("https://sso/realms/a\"b"));
    }

    #[test]
    fn missing_flags_without_a_terminal_are_a_usage_error() {
        let args = InitArgs {
            issuer: Some("https://sso".into()),
            ..InitArgs::default()
        };
        let e = Answers::gather(&args, false).err().unwrap();
        assert_eq!(crate::exit::code_for(&e), crate::exit::USAGE);
        assert_eq!(
            e.to_string(),
            "init: missing --client-id, --cache-host (no terminal to ask on)"
        );
    }
}
