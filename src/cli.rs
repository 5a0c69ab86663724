//! Command-line interface: clap types only, no behaviour.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failure (network, provider error, file system)
  2  usage or configuration error
  3  a new `nix-cache-login login` is needed (no session, or it expired or was revoked)";

/// Log in to an OIDC-protected Nix binary cache and keep a valid token in the netrc Nix reads.
#[derive(Debug, Parser)]
#[command(name = "nix-cache-login", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Config file (default: $NIX_CACHE_LOGIN_CONFIG, then
    /// $XDG_CONFIG_HOME/nix-cache-login/config.toml, then /etc/nix-cache-login/config.toml)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Use the [profiles.NAME] table of the config, on top of its top-level keys
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// More output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG works too
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Log in through the browser (Authorization Code + PKCE), or with a code entered on
    /// another device (device flow, chosen by itself without a usable browser); the default
    /// command
    Login(LoginArgs),
    /// Get a new access token with the stored refresh token, without a browser
    Refresh(RefreshArgs),
    /// Get an access token with the client-credentials grant (servers, timers)
    ServiceAccount(RefreshArgs),
    /// Log a CI job in with its platform's own OIDC token (GitHub Actions, GitLab CI, a
    /// token file or variable): no stored secret
    #[command(after_help = CI_HELP)]
    Ci(CiArgs),
    /// Show what is stored and when it expires (no network)
    Status(StatusArgs),
    /// Revoke the tokens at the provider and remove the netrc entry and stored tokens
    Logout,
    /// Print a valid access token on stdout, refreshing it first when it is about to expire
    Token(TokenArgs),
    /// First run: check the issuer, write the config, print the lines Nix needs, offer to
    /// log in
    Init(InitArgs),
    /// Print a shell completion script on stdout
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout
    Man,
    /// Check everything between the config and the cache and say how to fix what is broken
    #[command(after_help = DOCTOR_EXIT)]
    Doctor(DoctorArgs),
    /// The Nix-daemon bridge: a root service that puts users' tokens into the daemon's netrc
    #[command(subcommand)]
    Bridge(BridgeCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum BridgeCommand {
    /// Run the bridge (as root): --config names the bridge's config (default
    /// /etc/nix-cache-login/bridge.toml); systemd socket activation or --socket
    Serve(BridgeServeArgs),
    /// Ask the bridge what the daemon's netrc holds for you, and until when
    Status(BridgeStatusArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BridgeServeArgs {
    /// Listen here when systemd passes no socket (LISTEN_FDS)
    #[arg(long, value_name = "PATH", default_value = crate::bridge::DEFAULT_SOCKET)]
    pub socket: std::path::PathBuf,
}

#[derive(Debug, Clone, Args, Default)]
pub struct BridgeStatusArgs {
    /// The bridge's socket (default: the config's daemon_bridge, else the default socket)
    #[arg(long, value_name = "PATH")]
    pub socket: Option<std::path::PathBuf>,

    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Only print the login URL; do not open a browser
    #[arg(long, conflicts_with = "device")]
    pub no_browser: bool,

    /// Use the browser flow even where no browser seems usable
    #[arg(long, conflicts_with = "device")]
    pub browser: bool,

    /// Use the device flow: open a URL on any device and enter a code (SSH, headless)
    #[arg(long)]
    pub device: bool,

    /// Give up when the login is not completed within this time
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl LoginArgs {
    /// The flow the flags ask for; `--device` before `--browser` before `--no-browser`.
    pub fn asked_flow(&self) -> crate::oidc::flow::Asked {
        use crate::oidc::flow::Asked;
        match (self.device, self.browser, self.no_browser) {
            (true, _, _) => Asked::Device,
            (_, true, _) => Asked::Browser,
            (_, _, true) => Asked::NoBrowser,
            _ => Asked::Unsaid,
        }
    }
}

#[derive(Debug, Clone, Args, Default)]
pub struct InitArgs {
    /// The OIDC issuer URL (asked for on a terminal when missing)
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,

    /// The OIDC client ID (asked for on a terminal when missing)
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,

    /// The cache's host name, optionally with :port (asked for on a terminal when missing)
    #[arg(long, value_name = "HOST")]
    pub cache_host: Option<String>,

    /// Replace a config file that exists
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args, Default)]
pub struct RefreshArgs {
    /// Do nothing when the current access token stays valid at least this long (e.g. 15m)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub min_valid: Option<Duration>,
}

const CI_HELP: &str = "\
Each setting may also come from the environment (NIX_CACHE_LOGIN_CI_SOURCE, _GRANT,
_AUDIENCE) or the config's [ci] table; a flag wins, then the environment, then the file.
CI tokens live 5 to 10 minutes: run `ci --min-valid 4m` again before each long step.";

#[derive(Debug, Clone, Args, Default)]
pub struct CiArgs {
    /// Where the job's token comes from: github-actions, gitlab, file:PATH, env:VAR
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,

    /// How it becomes the cache's token: jwt-bearer, token-exchange, client-assertion,
    /// direct (the job's token itself goes into the netrc)
    #[arg(long, value_name = "GRANT")]
    pub grant: Option<String>,

    /// The audience to ask the CI platform for (and to expect in the job's token)
    #[arg(long, value_name = "AUDIENCE")]
    pub audience: Option<String>,

    /// Do nothing when the current access token stays valid at least this long (e.g. 4m)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub min_valid: Option<Duration>,
}

const DOCTOR_EXIT: &str = "\
Exit codes:
  0  no check failed (warnings and skipped checks do not fail)
  1  at least one check failed

Network: asks the issuer for its discovery document and the cache for /nix-cache-info
with the netrc's credentials, as Nix would. Changes nothing, and never prints a token.";

#[derive(Debug, Clone, Args, Default)]
pub struct DoctorArgs {
    /// Print one JSON object (every check with name, status, detail, fix) instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Refresh first when the access token expires within this time
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub min_valid: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args, Default)]
pub struct StatusArgs {
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
}

/// `login` without flags (the command line's defaults), for a login no flags were given to:
/// no subcommand, or `init`'s offer.
impl Default for LoginArgs {
    fn default() -> Self {
        LoginArgs {
            no_browser: false,
            browser: false,
            device: false,
            timeout: Duration::from_secs(300),
        }
    }
}

impl Cli {
    /// The subcommand to run: `login` when none is given.
    pub fn subcommand(&self) -> Command {
        match &self.command {
            Some(c) => c.clone(),
            None => Command::Login(LoginArgs::default()),
        }
    }
}

/// Parses durations like `90`, `90s`, `15m`, `2h`, `1d`, `1h30m`.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => {
                return Err(format!(
                    "invalid duration {input:?}: unknown unit {c:?} (use s, m, h, d)"
                ));
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("invalid duration {input:?}: a number must come before {c:?}"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {input:?} is too large"))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "invalid duration {input:?}: a unit must follow {number}"
        ));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn login_defaults_are_the_command_lines() {
        let cli = Cli::try_parse_from(["nix-cache-login", "login"]).unwrap();
        let Some(Command::Login(parsed)) = cli.command else {
            panic!("not login")
        };
        assert_eq!(parsed.timeout, LoginArgs::default().timeout);
    }

    #[test]
    fn no_subcommand_means_login() {
        let cli = Cli::try_parse_from(["nix-cache-login"]).unwrap();
        assert!(matches!(cli.subcommand(), Command::Login(_)));
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "nix-cache-login",
            "status",
            "--json",
            "--config",
            "/x",
            "-vv",
        ])
        .unwrap();
        assert_eq!(cli.verbose, 2);
        assert_eq!(cli.config.as_deref(), Some(std::path::Path::new("/x")));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172800));
        assert!(parse_duration("15x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("15m3").is_err());
        assert!(parse_duration("").is_err());
    }
}
