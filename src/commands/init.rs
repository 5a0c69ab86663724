//! `init`: the first run. Asks for what is missing (on a terminal), checks the issuer's
//! discovery document before anything is written, writes the config (0600, never over an
//! existing one unless `--force`), prints the lines the Nix found here needs, and offers to
//! log in (which `commands::run` then starts: commands do not call each other).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result};

use crate::cli::{Cli, InitArgs};
use crate::config::{self, Config, Environment, IfExists};
use crate::doctor::nix_setup::{self, NixSetup};
use crate::exit::ConfigError;
use crate::http::HttpClient;
use crate::session::{self, NetrcSink};
use crate::untrusted;

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

/// What the user wants after the config is written.
pub enum AfterInit {
    Done,
    /// Log in now, with the config just written.
    LogIn(Box<Config>),
}

pub async fn run(cli: &Cli, args: &InitArgs, env: &dyn Environment) -> Result<AfterInit> {
    let path = config::new_config_path(cli.config.as_deref(), env)?;
    if path.exists() && !args.force {
        return Err(ConfigError::invalid(format!(
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

    let http = HttpClient::new(env)?;
    session::check_issuer_answers(&http, &config)
        .await
        .with_context(|| {
            format!(
                "{} does not answer as an OpenID provider; nothing was written",
                untrusted::clean(config.issuer_str())
            )
        })?;
    eprintln!(
        "The provider {} answers.",
        untrusted::clean(config.issuer_str())
    );

    let if_exists = if args.force {
        IfExists::Replace
    } else {
        IfExists::Keep
    };
    config::write_new(&path, &text, if_exists)?;
    eprintln!("Wrote {}.", path.display());
    // Lix and Determinate refuse a netrc-file that does not exist: make an empty one now.
    if NetrcSink::for_config(&config).create_if_missing()? {
        eprintln!("Created an empty netrc {}.", config.netrc_path.display());
    }
    println!("{}", nix_setup::advice(&NixSetup::detect(env), &config));

    if terminal && ask_yes("Log in now?")? {
        return Ok(AfterInit::LogIn(Box::new(config)));
    }
    eprintln!("Next: run `nix-cache-login{} login`.", config_flag(cli));
    Ok(AfterInit::Done)
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
            return Err(ConfigError::invalid(format!(
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
        config::render_new(&self.issuer, &self.client_id, &self.cache_host)
    }
}

fn ask(prompt: &str) -> Result<String> {
    loop {
        eprint!("{prompt}: ");
        std::io::stderr().flush().ok();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            return Err(ConfigError::invalid("init: no answer (end of input)").into());
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

#[cfg(test)]
mod tests {
    use super::*;

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
