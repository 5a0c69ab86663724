//! `doctor`: why Nix still gets 401. Checks every link from the config to the cache, in the
//! order a request travels them, and says for each broken one what to do. It changes
//! nothing: no token is requested, no file written, no cache filled.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Ctx;
use crate::cli::{Cli, DoctorArgs};
use crate::clock;
use crate::config::{self, Config, Environment};
use crate::doctor::cache::{self, Answer, Credentials};
use crate::doctor::netrc_file;
use crate::doctor::nix::{self, FileSettings, Settings, StoreUse};
use crate::doctor::system::{CurlVersion, User};
use crate::doctor::token::TokenFacts;
use crate::doctor::{Check, Report};
use crate::exit::{self, Silent};
use crate::netrc::{self, Netrc};
use crate::oidc::http::{HttpClient, describe_reqwest_error};
use crate::token_store::{Grant, Session};

/// A negative-cache TTL up to this long costs a user who just logged in little.
const SHORT_NEGATIVE_TTL: u64 = 60;

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
    /// The config and the commands to suggest, or why there is none.
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
            Some(s) if s.grant == Grant::ClientCredentials => {
                self.commands.named("service-account")
            }
            Some(s) if self.can_refresh(s) => self.commands.named("refresh"),
            _ => self.login_command(config),
        }
    }

    fn can_refresh(&self, session: &Session) -> bool {
        session.grant != Grant::ClientCredentials
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
        let kind = match session.grant {
            Grant::AuthorizationCode => "browser login",
            Grant::DeviceCode => "device login",
            Grant::ClientCredentials => "service account",
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
            (_, Grant::ClientCredentials) => "no refresh token (service account)".to_string(),
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
        let env = self.env;
        let files = nix::read_client(env);
        let system = nix::read_system(env);
        let (client, asked) = match nix::ask_nix() {
            Ok((settings, command)) => (settings, format!("as `{command}` reports it")),
            Err(e) => (
                files.settings.clone(),
                format!("from the nix.conf files; `nix` could not say: {e}"),
            ),
        };
        let view = NixView::new(env, client, asked, files, system, self.user.as_ref());
        let tool_netrc = self
            .ctx
            .as_ref()
            .ok()
            .map(|c| c.config.netrc_path.as_path());
        let mut checks = Vec::new();
        if !view.files.problems.is_empty() {
            checks.push(Check::warn(
                "nix-conf",
                view.files.problems.join("\n"),
                "correct these lines: Nix stops at them, or ignores the rest of the file",
            ));
        }
        checks.push(self.nix_netrc_check(&view, tool_netrc));
        checks.push(self.daemon_check(&view, tool_netrc));
        checks.push(self.negative_cache_check(&view));
        checks
    }

    fn nix_netrc_check(&self, view: &NixView, tool_netrc: Option<&Path>) -> Check {
        let (nix_netrc, origin) = view.client_netrc();
        let reads = format!(
            "Nix reads {} ({origin}; {})",
            nix_netrc.display(),
            view.asked
        );
        let Some(tool_netrc) = tool_netrc else {
            return Check::skip("nix-netrc", format!("{reads}; no config to compare with"));
        };
        if nix::canonical(&nix_netrc) == nix::canonical(tool_netrc) {
            return Check::ok(
                "nix-netrc",
                format!("{reads}, the file nix-cache-login writes"),
            );
        }
        match determinate_sources() {
            Some(Ok(sources)) => {
                if sources
                    .iter()
                    .any(|s| nix::canonical(s) == nix::canonical(tool_netrc))
                {
                    return Check::ok(
                        "nix-netrc",
                        format!(
                            "{reads}; Determinate Nix merges {} into it (additionalNetrcSources in {})",
                            tool_netrc.display(),
                            nix::DETERMINATE_CONFIG
                        ),
                    );
                }
                Check::fail(
                    "nix-netrc",
                    format!(
                        "{reads}, but nix-cache-login writes {}, which is not among Determinate's additionalNetrcSources",
                        tool_netrc.display()
                    ),
                    format!(
                        "add \"{}\" to authentication.additionalNetrcSources in {} and restart determinate-nixd",
                        tool_netrc.display(),
                        nix::DETERMINATE_CONFIG
                    ),
                )
            }
            Some(Err(e)) => Check::fail(
                "nix-netrc",
                format!(
                    "{reads}, but nix-cache-login writes {}; {}: {e:#}",
                    tool_netrc.display(),
                    nix::DETERMINATE_CONFIG
                ),
                format!(
                    "correct {} and list \"{}\" in authentication.additionalNetrcSources",
                    nix::DETERMINATE_CONFIG,
                    tool_netrc.display()
                ),
            ),
            None => {
                let conf = view.conf_to_edit();
                Check::fail(
                    "nix-netrc",
                    format!(
                        "{reads}, but nix-cache-login writes {}",
                        tool_netrc.display()
                    ),
                    format!(
                        "add `netrc-file = {}` to {}, or set netrc_path = \"{}\" in {}",
                        tool_netrc.display(),
                        conf.display(),
                        nix_netrc.display(),
                        self.config_source()
                    ),
                )
            }
        }
    }

    fn config_source(&self) -> String {
        match &self.ctx {
            Ok(ctx) => ctx.config.source.display().to_string(),
            Err(_) => "the config".to_string(),
        }
    }

    fn daemon_check(&self, view: &NixView, tool_netrc: Option<&Path>) -> Check {
        let store = &view.store;
        if !store.daemon {
            return Check::ok(
                "nix-daemon",
                format!(
                    "no daemon ({}): Nix downloads with its own settings",
                    store.why
                ),
            );
        }
        let Some(user) = &self.user else {
            return Check::warn(
                "nix-daemon",
                format!(
                    "the daemon downloads ({}), and who runs doctor is unknown",
                    store.why
                ),
                "run `id` to see why it fails",
            );
        };
        if let Some(entry) = &view.trusted {
            let why = if user.uid == 0 {
                "root always is".to_string()
            } else {
                format!("{entry} in trusted-users")
            };
            return Check::ok(
                "nix-daemon",
                format!(
                    "the daemon downloads ({}); {} is a trusted user ({why}), so the daemon takes the client's netrc-file",
                    store.why, user.name
                ),
            );
        }
        let daemon_netrc = view
            .system
            .settings
            .get("netrc-file")
            .map(PathBuf::from)
            .unwrap_or_else(|| nix::default_netrc(view.env));
        let system_conf = nix::system_conf_file(view.env);
        let takes_ours = tool_netrc.is_some_and(|t| {
            nix::canonical(t) == nix::canonical(&daemon_netrc)
                || matches!(determinate_sources(), Some(Ok(s)) if s.iter().any(|s| nix::canonical(s) == nix::canonical(t)))
        });
        let ignored = format!(
            "the daemon downloads ({}) and ignores {}'s netrc-file, as {} is not in trusted-users; it reads {}",
            store.why,
            user.name,
            user.name,
            daemon_netrc.display()
        );
        if takes_ours {
            return Check::ok(
                "nix-daemon",
                format!("{ignored}, the file nix-cache-login writes"),
            );
        }
        let tool = tool_netrc
            .map(|t| t.display().to_string())
            .unwrap_or_else(|| "the tool's netrc".to_string());
        Check::fail(
            "nix-daemon",
            ignored,
            format!(
                "set `netrc-file = {tool}` in {} and restart the daemon (on NixOS, the \
                 nix-cache-login module does this), or add {} to trusted-users there (which \
                 makes {} as powerful as root for Nix)",
                system_conf.display(),
                user.name,
                user.name
            ),
        )
    }

    fn negative_cache_check(&self, view: &NixView) -> Check {
        let settings = view.download_settings();
        let name = "narinfo-cache-negative-ttl";
        let value = settings.get(name);
        let ttl = match value.map(str::parse::<u64>) {
            None => nix::DEFAULT_NEGATIVE_TTL,
            Some(Ok(ttl)) => ttl,
            Some(Err(_)) => {
                return Check::warn(
                    "negative-cache",
                    format!(
                        "{name} is {:?}, not a number of seconds",
                        value.unwrap_or("")
                    ),
                    format!("set `{name} = 0` in {}", view.conf_to_edit().display()),
                );
            }
        };
        let whose = if view.store.daemon {
            "the daemon's "
        } else {
            ""
        };
        if ttl <= SHORT_NEGATIVE_TTL {
            return Check::ok(
                "negative-cache",
                format!("{whose}{name} is {ttl} s: a fixed login takes effect at once"),
            );
        }
        let default = if ttl == nix::DEFAULT_NEGATIVE_TTL {
            " (Nix's default)"
        } else {
            ""
        };
        let sqlite = if view.store.daemon {
            PathBuf::from(nix::DAEMON_NARINFO_CACHE)
        } else {
            self.env
                .cache_home()
                .map(|dir| nix::narinfo_cache(&dir))
                .unwrap_or_else(|| PathBuf::from("~/.cache/nix/binary-cache-v6.sqlite"))
        };
        Check::warn(
            "negative-cache",
            format!(
                "{whose}{name} is {ttl} s{default}: a path that got a 401 counts as missing for \
                 up to {}, even after a successful login",
                describe_seconds(ttl)
            ),
            format!(
                "set `{name} = 0` in {}; to forget the failures now, remove {}",
                view.conf_to_edit().display(),
                sqlite.display()
            ),
        )
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

/// Nix's settings from both sides of the daemon socket.
struct NixView<'a> {
    env: &'a dyn Environment,
    /// The client's settings, from `nix` itself when it answered.
    client: Settings,
    /// How `client` was learned.
    asked: String,
    /// The client's settings as the files say (for where a setting was made).
    files: FileSettings,
    /// The system nix.conf alone: what the daemon reads.
    system: FileSettings,
    store: StoreUse,
    /// The `trusted-users` entry that makes the user trusted by the daemon.
    trusted: Option<String>,
}

impl<'a> NixView<'a> {
    fn new(
        env: &'a dyn Environment,
        client: Settings,
        asked: String,
        files: FileSettings,
        system: FileSettings,
        user: Option<&User>,
    ) -> Self {
        let store = nix::store_use(client.get("store"), env, user);
        // Trust is the daemon's to grant: only the system file counts.
        let trusted_users = system.settings.get("trusted-users").unwrap_or("root");
        let trusted = user.and_then(|u| nix::trusted_by(u, trusted_users));
        NixView {
            env,
            client,
            asked,
            files,
            system,
            store,
            trusted,
        }
    }

    /// The settings the downloads run with: the daemon takes the client's only from a
    /// trusted user.
    fn download_settings(&self) -> &Settings {
        if self.store.daemon && self.trusted.is_none() {
            &self.system.settings
        } else {
            &self.client
        }
    }

    /// The client's netrc-file and where it was set.
    fn client_netrc(&self) -> (PathBuf, String) {
        let default = nix::default_netrc(self.env);
        let value = self
            .client
            .get("netrc-file")
            .map(PathBuf::from)
            .unwrap_or_else(|| default.clone());
        let origin = match self.files.settings.get("netrc-file") {
            Some(v) if Path::new(v) == value => {
                format!(
                    "set in {}",
                    self.files.settings.origin("netrc-file").unwrap_or("?")
                )
            }
            _ if value == default => "Nix's default".to_string(),
            _ => "set outside the nix.conf files doctor knows".to_string(),
        };
        (value, origin)
    }

    /// Where a setting for this user's downloads belongs: the system file when the daemon
    /// would ignore the user's, else the user's own nix.conf.
    fn conf_to_edit(&self) -> PathBuf {
        if self.store.daemon && self.trusted.is_none() {
            return nix::system_conf_file(self.env);
        }
        nix::user_conf_file(self.env).unwrap_or_else(|| nix::system_conf_file(self.env))
    }
}

/// Determinate Nix's additional netrc files; `None` when it is not installed.
fn determinate_sources() -> Option<Result<Vec<PathBuf>>> {
    let path = Path::new(nix::DETERMINATE_CONFIG);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(e).context("cannot read it")),
    };
    Some(nix::determinate_netrc_sources(&text))
}

fn describe_seconds(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        _ if secs.is_multiple_of(3600) => format!("{} h", secs / 3600),
        _ => format!("{} min", secs / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn seconds_read_naturally() {
        assert_eq!(describe_seconds(3600), "1 h");
        assert_eq!(describe_seconds(7200), "2 h");
        assert_eq!(describe_seconds(600), "10 min");
        assert_eq!(describe_seconds(90), "90 s");
    }

    #[test]
    fn status_marks_are_stable() {
        assert_eq!(
            serde_json::to_value(Status::Fail).unwrap(),
            serde_json::json!("fail")
        );
    }
}
