//! `doctor`: why Nix still gets 401. Checks every link from the config to the cache, in the
//! order a request travels them, and says for each broken one what to do. It changes
//! nothing: no token is requested, no file written, no cache filled.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::Ctx;
use crate::cli::{Cli, DoctorArgs};
use crate::clock;
use crate::config::{self, Config, Environment};
use crate::doctor::cache::{self, Answer, Credentials};
use crate::doctor::netrc_file;
use crate::doctor::nix_checks::{self, Tool};
use crate::doctor::system::{CurlVersion, User};
use crate::doctor::token::TokenFacts;
use crate::doctor::{Check, Report};
use crate::exit::{self, Silent};
use crate::netrc::{self, Netrc};
use crate::oidc::http::{HttpClient, describe_reqwest_error};
use crate::token_store::Session;

pub fn run(cli: &Cli, args: &DoctorArgs, env: &dyn Environment) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = Report::new(Doctor::new(cli, env, &runtime).checks());
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.to_text()
    };
    // A reader that stops early (`| head`) is no reason to panic; the exit code still tells.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if report.ok {
        Ok(())
    } else {
        Err(Silent(exit::FAILURE).into())
    }
}

/// The netrc's bytes and parse; `Ok(None)` when it does not exist.
type NetrcRead = Result<Option<(Vec<u8>, Netrc)>, String>;

/// What the checks share: the facts gathered once.
struct Doctor<'a> {
    env: &'a dyn Environment,
    runtime: &'a tokio::runtime::Runtime,
    /// The config and its token store, or why there are none.
    ctx: Result<Ctx, String>,
    commands: Commands,
    user: Option<User>,
    http: Result<HttpClient, String>,
    now: i64,
}

/// The commands a fix names, with the `--config`/`--profile` the user gave.
struct Commands {
    flags: String,
}

impl Commands {
    fn named(&self, sub: &str) -> String {
        format!("nix-cache-login {sub}{}", self.flags)
    }
}

impl<'a> Doctor<'a> {
    fn new(cli: &Cli, env: &'a dyn Environment, runtime: &'a tokio::runtime::Runtime) -> Self {
        let ctx = config::load(cli.config.as_deref(), cli.profile.as_deref(), env)
            .map_err(|e| e.to_string())
            .and_then(|config| Ctx::new(config, env).map_err(|e| format!("{e:#}")));
        let mut flags = String::new();
        if let Some(path) = &cli.config {
            flags.push_str(&format!(" --config {}", path.display()));
        }
        if let Some(profile) = &cli.profile {
            flags.push_str(&format!(" --profile {profile}"));
        }
        Doctor {
            env,
            runtime,
            ctx,
            commands: Commands { flags },
            user: User::current()
                .inspect_err(|e| tracing::warn!("cannot tell who runs doctor: {e:#}"))
                .ok(),
            http: HttpClient::new().map_err(|e| format!("{e:#}")),
            now: clock::now(),
        }
    }

    fn checks(&self) -> Vec<Check> {
        let mut checks = vec![self.config_check()];
        let Ok(ctx) = &self.ctx else {
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
            checks.push(Check::skip("cache", "needs a valid config"));
            return checks;
        };
        let config = &ctx.config;
        let netrc = self.read_netrc(&config.netrc_path);
        checks.extend(self.provider_checks(config));
        let session = ctx.store.peek();
        checks.push(self.session_check(ctx, &session));
        let session = session.ok().flatten();
        checks.push(netrc_file::check_file(
            &config.netrc_path,
            self.user.as_ref(),
            &self.login_command(config),
        ));
        checks.extend(self.entry_checks(config, &netrc, session.as_ref()));
        checks.push(match &netrc {
            Ok(Some((bytes, _))) => netrc_file::check_limits(bytes, CurlVersion::installed()),
            _ => Check::skip(netrc_file::LIMITS_CHECK, "no netrc to measure"),
        });
        checks.extend(self.nix_checks());
        checks.extend(self.cache_checks(config, &netrc, session.as_ref()));
        checks
    }

    fn config_check(&self) -> Check {
        match &self.ctx {
            Ok(ctx) => {
                let c = &ctx.config;
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
            Err(e) if e.contains("no config file found") || e.contains("does not exist") => {
                Check::fail(
                    "config",
                    e,
                    "write $XDG_CONFIG_HOME/nix-cache-login/config.toml (or \
                     /etc/nix-cache-login/config.toml) with issuer, client_id and cache_host, \
                     or name one with --config",
                )
            }
            Err(e) => Check::fail("config", e, "correct the config where the message points"),
        }
    }

    /// `login`, or `service-account` for a config with a client secret.
    fn login_command(&self, config: &Config) -> String {
        if config.client_secret_file.is_some() {
            self.commands.named("service-account")
        } else {
            self.commands.named("login")
        }
    }

    /// What gets a new access token for this session.
    fn renew_command(&self, config: &Config, session: Option<&Session>) -> String {
        match session {
            Some(s) if s.grant.rerun_command().is_some() => self
                .commands
                .named(s.grant.rerun_command().unwrap_or("login")),
            Some(s) if self.can_refresh(s) => self.commands.named("refresh"),
            _ => self.login_command(config),
        }
    }

    fn can_refresh(&self, session: &Session) -> bool {
        session.grant.rerun_command().is_none()
            && session.refresh_token.is_some()
            && session
                .refresh_token_expires_at
                .is_none_or(|exp| exp > self.now)
    }

    /// `issuer`: the discovery document answers; `discovery`: it names the configured issuer.
    fn provider_checks(&self, config: &Config) -> Vec<Check> {
        let http = match &self.http {
            Ok(http) => http,
            Err(e) => {
                return vec![
                    Check::fail("issuer", e, "correct the environment the message names"),
                    Check::skip("discovery", "no HTTP client"),
                ];
            }
        };
        let issuer = config.issuer_str();
        let url = format!("{issuer}/.well-known/openid-configuration");
        let fetched = self.runtime.block_on(async {
            let response = http
                .reqwest()
                .get(&url)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| format!("cannot reach {url}: {}", describe_reqwest_error(&e)))?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("{url} answered HTTP {status}"));
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| format!("{url}: {}", describe_reqwest_error(&e)))?;
            serde_json::from_slice::<serde_json::Value>(&body)
                .map_err(|e| format!("{url} did not answer JSON: {e}"))
        });
        let document = match fetched {
            Ok(document) => document,
            Err(detail) => {
                let fix = format!(
                    "check issuer in {} (for Keycloak: https://HOST/realms/REALM), the network \
                     and proxy ($HTTPS_PROXY), and that a private CA is in SSL_CERT_FILE",
                    config.source.display()
                );
                return vec![
                    Check::fail("issuer", detail, fix),
                    Check::skip("discovery", "the issuer did not answer"),
                ];
            }
        };
        let reached = Check::ok("issuer", format!("{url} answers"));
        let discovery = match document.get("issuer").and_then(|v| v.as_str()) {
            None => Check::fail(
                "discovery",
                format!("{url} has no issuer: not an OpenID provider's discovery document"),
                format!("check issuer in {}", config.source.display()),
            ),
            Some(advertised) if advertised.trim_end_matches('/') != issuer => Check::fail(
                "discovery",
                format!(
                    "the provider calls itself {advertised}, but the config says {issuer}; \
                     no token is requested from a provider that answers for another issuer"
                ),
                format!(
                    "if {advertised} is the provider you mean, set issuer = \"{advertised}\" in {}",
                    config.source.display()
                ),
            ),
            Some(_) => Check::ok(
                "discovery",
                format!("the provider confirms issuer {issuer}"),
            ),
        };
        vec![reached, discovery]
    }

    fn session_check(&self, ctx: &Ctx, session: &Result<Option<Session>>) -> Check {
        let store = ctx.store.path().display();
        let login = self.login_command(&ctx.config);
        let session = match session {
            Ok(Some(session)) => session,
            Ok(None) => {
                return Check::fail(
                    "session",
                    format!("no stored session ({store})"),
                    format!("run `{login}`"),
                );
            }
            Err(e) => {
                return Check::fail(
                    "session",
                    format!("cannot use the token store {store}: {e:#}"),
                    format!("run `{login}`"),
                );
            }
        };
        let kind = match &session.ci {
            Some(ci) => format!("CI job ({}, grant {})", ci.source, ci.grant),
            None => session.grant.describe().to_string(),
        };
        let who = session
            .username
            .as_deref()
            .or(session.subject.as_deref())
            .map(|w| format!(" as {w}"))
            .unwrap_or_default();
        let when = |exp: Option<i64>| match exp {
            Some(exp) => format!(
                "{} ({})",
                clock::format_utc(exp),
                clock::relative(exp, self.now)
            ),
            None => "no known end".to_string(),
        };
        let access = session.access_token_expires_at;
        let refresh = match (&session.refresh_token, session.grant) {
            (_, grant) if grant.rerun_command().is_some() => {
                format!("no refresh token ({})", grant.describe())
            }
            (Some(_), _) => format!(
                "refresh token until {}",
                when(session.refresh_token_expires_at)
            ),
            (None, _) => "no refresh token".to_string(),
        };
        let detail = format!(
            "{kind}{who}; access token until {}; {refresh}",
            when(access)
        );
        let expired = access.is_some_and(|exp| exp <= self.now);
        if !expired {
            Check::ok("session", detail)
        } else if self.can_refresh(session) {
            Check::warn(
                "session",
                detail,
                format!(
                    "run `{}` (a timer should do this before the token expires)",
                    self.commands.named("refresh")
                ),
            )
        } else {
            Check::fail(
                "session",
                detail,
                format!("run `{}`", self.renew_command(&ctx.config, Some(session))),
            )
        }
    }

    fn read_netrc(&self, path: &Path) -> NetrcRead {
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
    fn entry_checks(
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

    /// Which netrc Nix reads, whether the daemon takes it, and the negative cache.
    fn nix_checks(&self) -> Vec<Check> {
        let tool = self.ctx.as_ref().ok().map(|ctx| Tool {
            netrc: &ctx.config.netrc_path,
            config: &ctx.config.source,
        });
        nix_checks::checks(self.env, self.user.as_ref(), tool.as_ref())
    }

    /// The proof, per cache host: what the cache says to the netrc's credentials.
    fn cache_checks(
        &self,
        config: &Config,
        netrc: &NetrcRead,
        session: Option<&Session>,
    ) -> Vec<Check> {
        let http = match &self.http {
            Ok(http) => http,
            Err(e) => return vec![Check::skip("cache", format!("no HTTP client: {e}"))],
        };
        config
            .cache_hosts
            .iter()
            .map(|host| {
                let machine = netrc::machine_name(host);
                let credentials = match netrc {
                    Ok(Some((_, file))) => file.get(machine).and_then(|e| {
                        e.password.map(|password| Credentials {
                            login: e.login.unwrap_or_default(),
                            password,
                        })
                    }),
                    _ => None,
                };
                let answer = self
                    .runtime
                    .block_on(cache::probe(http, host, credentials.as_ref()));
                self.cache_check(config, host, credentials.as_ref(), session, answer)
                    .for_host(host)
            })
            .collect()
    }

    fn cache_check(
        &self,
        config: &Config,
        host: &str,
        credentials: Option<&Credentials>,
        session: Option<&Session>,
        answer: Answer,
    ) -> Check {
        let (url, status, location) = match answer {
            Answer::Unreachable { errors } => {
                return Check::fail(
                    "cache",
                    format!("cannot reach the cache: {}", errors.join("; ")),
                    format!(
                        "check cache_host {host:?} in {} (the host and port of the substituter \
                         URL), the network and proxy, and that Nix trusts its certificate \
                         (NIX_SSL_CERT_FILE)",
                        config.source.display()
                    ),
                );
            }
            Answer::Status {
                url,
                status,
                location,
            } => (url, status, location),
        };
        let facts = credentials.map(|c| TokenFacts::of(&c.password));
        match (status, &facts) {
            (200, Some(_)) => Check::ok(
                "cache",
                format!("{url}: HTTP 200 with the netrc's credentials"),
            ),
            (200, None) => Check::ok(
                "cache",
                format!("{url}: HTTP 200 without credentials (the cache is public)"),
            ),
            (401 | 403, None) => Check::fail(
                "cache",
                format!(
                    "{url}: HTTP {status}: the cache wants credentials, and the netrc has none for {}",
                    netrc::machine_name(host)
                ),
                format!("run `{}`", self.login_command(config)),
            ),
            (401 | 403, Some(facts)) if facts.expired(self.now) => Check::fail(
                "cache",
                format!(
                    "{url}: HTTP {status}: the cache refuses the netrc's token, which {}",
                    facts.expiry(self.now)
                ),
                format!("run `{}`", self.renew_command(config, session)),
            ),
            (401 | 403, Some(facts)) => Check::fail(
                "cache",
                format!(
                    "{url}: HTTP {status}: the cache refuses the netrc's token ({})",
                    facts.describe(self.now)
                ),
                format!(
                    "the token has not expired: check that the cache accepts tokens of issuer \
                     {} with {} (ask its operator, or add the audience in the provider)",
                    config.issuer_str(),
                    facts.audience()
                ),
            ),
            (300..=399, _) => Check::warn(
                "cache",
                format!(
                    "{url}: HTTP {status}, a redirect to {}; Nix follows it, doctor does not",
                    location.as_deref().unwrap_or("nowhere")
                ),
                "set cache_host to the host the cache really answers on",
            ),
            (404, _) => Check::fail(
                "cache",
                format!("{url}: HTTP 404: no binary cache there"),
                format!("check cache_host {host:?} in {}", config.source.display()),
            ),
            _ => Check::fail(
                "cache",
                format!("{url}: HTTP {status}"),
                "the cache has a problem of its own: try again later, or ask its operator",
            ),
        }
    }
}
