//! `status`: what is stored and when it expires. No network.

use anyhow::Result;
use serde::Serialize;

use crate::bridge::client as bridge_client;
use crate::bridge::protocol::EntryStatus;
use crate::cli::StatusArgs;
use crate::clock;
use crate::config::Config;
use crate::exit::{self, NextStep, Silent};
use crate::jwt;
use crate::netrc;
use crate::session::Sessions;
use crate::session::grant::Renewal;
use crate::session::next::next_step;
use crate::session::state::TokenState;
use crate::token_store::{Grant, OFFLINE_TOKEN_END, Session};
use crate::untrusted;

#[derive(Debug, Serialize)]
struct Report {
    config: String,
    profile: Option<String>,
    issuer: String,
    client_id: String,
    netrc_path: String,
    token_store: String,
    hosts: Vec<HostReport>,
    state: TokenState,
    login_needed: bool,
    /// What gets a valid token again (not serialized: `login_needed` says it for scripts).
    #[serde(skip)]
    next: NextStep,
    grant: Option<Grant>,
    /// A `ci` session: where the job's token came from and how it was used.
    ci: Option<CiReport>,
    subject: Option<String>,
    username: Option<String>,
    access_token: Option<TokenReport>,
    refresh_token: Option<TokenReport>,
    /// What the Nix daemon's netrc holds for this user, when a daemon bridge is in use.
    daemon: Option<DaemonReport>,
    error: Option<String>,
    /// The exit code that `error` calls for (1: a file that cannot be read, which a login
    /// would not mend; 3: a corrupt store, which it would).
    #[serde(skip)]
    error_exit: Option<u8>,
}

#[derive(Debug, Serialize)]
struct DaemonReport {
    bridge: String,
    /// One entry per host in the daemon's netrc: on a shared machine the last login wins.
    entries: Vec<EntryStatus>,
    /// Why the bridge could not be asked.
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct HostReport {
    host: String,
    machine: String,
    netrc_entry: bool,
    /// The netrc holds the token of the stored session.
    matches_store: bool,
}

#[derive(Debug, Serialize)]
struct CiReport {
    source: String,
    grant: String,
    audience: Option<String>,
}

#[derive(Debug, Serialize)]
struct TokenReport {
    /// "jwt" or "opaque"
    format: &'static str,
    expires_at: Option<String>,
    expires_in_seconds: Option<i64>,
    /// No fixed end, but the provider ends it once unused for its idle timeout (offline).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ends_when_idle: bool,
}

pub fn run(sessions: &Sessions<'_>, args: &StatusArgs) -> Result<()> {
    let report = build(sessions, clock::now());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    let code = match report.state {
        // A file that cannot be read: whatever else is seen, something is wrong.
        _ if report.error_exit == Some(exit::FAILURE) => exit::FAILURE,
        TokenState::Valid => exit::SUCCESS,
        _ if report.login_needed => exit::LOGIN_NEEDED,
        _ => exit::FAILURE,
    };
    if code == exit::SUCCESS {
        Ok(())
    } else {
        Err(Silent(code).into())
    }
}

fn build(sessions: &Sessions<'_>, now: i64) -> Report {
    let config = sessions.config();
    let mut error: Option<(String, u8)> = None;
    let session = match sessions.peek() {
        Ok(s) => s,
        Err(e) => {
            error = Some((format!("{e:#}"), exit::code_for(&e)));
            None
        }
    };
    let netrc_file = match netrc::read(&config.netrc_path) {
        Ok(f) => f,
        Err(e) => {
            error.get_or_insert((format!("{e:#}"), exit::code_for(&e)));
            None
        }
    };
    let mut netrc_token: Option<Vec<u8>> = None;
    let hosts = config
        .cache_hosts
        .iter()
        .map(|host| {
            let machine = netrc::machine_name(host).to_string();
            let password = netrc_file
                .as_ref()
                .and_then(|f| f.get(&machine))
                .and_then(|e| e.password);
            let matches_store = match (&password, &session) {
                (Some(p), Some(s)) => p.as_slice() == s.access_token.expose().as_bytes(),
                _ => false,
            };
            if netrc_token.is_none() {
                netrc_token.clone_from(&password);
            }
            HostReport {
                host: host.clone(),
                machine,
                netrc_entry: password.is_some(),
                matches_store,
            }
        })
        .collect();

    // What Nix sends is the netrc's token; the store's expiry speaks for it when they agree.
    let netrc_token = netrc_token.and_then(|t| String::from_utf8(t).ok());
    let access_token = netrc_token
        .as_deref()
        .map(|t| describe_access(t, session.as_ref(), now))
        .or_else(|| {
            session
                .as_ref()
                .map(|s| describe_access(s.access_token.expose(), Some(s), now))
        });
    let refresh_token = session.as_ref().and_then(|s| {
        s.refresh_token.as_ref().map(|_| TokenReport {
            format: if s
                .refresh_token
                .as_ref()
                .and_then(|t| jwt::decode_claims(t.expose()))
                .is_some()
            {
                "jwt"
            } else {
                "opaque"
            },
            expires_at: s.refresh_token_expires_at.map(clock::format_rfc3339),
            expires_in_seconds: s.refresh_token_expires_at.map(|e| e.saturating_sub(now)),
            ends_when_idle: s.refresh_token_ends_when_idle,
        })
    });

    let state = TokenState::of(
        netrc_token.is_some(),
        access_token
            .as_ref()
            .and_then(|a| a.expires_in_seconds)
            .map(|secs| now.saturating_add(secs)),
        now,
    );
    let next = next_step(config, session.as_ref(), now);
    let claims = netrc_token.as_deref().and_then(jwt::decode_claims);
    Report {
        config: config.source.display().to_string(),
        profile: config.profile.clone(),
        issuer: config.issuer_str().to_string(),
        client_id: config.client_id.clone(),
        netrc_path: config.netrc_path.display().to_string(),
        token_store: sessions.store().path().display().to_string(),
        hosts,
        state,
        login_needed: state != TokenState::Valid && next == NextStep::Login,
        next,
        grant: session.as_ref().map(|s| s.grant),
        ci: session
            .as_ref()
            .and_then(|s| s.ci.as_ref())
            .map(|ci| CiReport {
                source: ci.source.to_string(),
                grant: ci.grant.to_string(),
                audience: ci.audience.clone(),
            }),
        // Names from the provider's tokens: cleaned for the terminal and for JSON alike.
        subject: session
            .as_ref()
            .and_then(|s| s.subject.clone())
            .or_else(|| claims.as_ref().and_then(|c| c.sub.clone()))
            .map(|s| untrusted::clean(&s)),
        username: session
            .as_ref()
            .and_then(|s| s.username.clone())
            .or_else(|| claims.as_ref().and_then(|c| c.who().map(str::to_string)))
            .map(|s| untrusted::clean(&s)),
        access_token,
        refresh_token,
        daemon: daemon_report(config),
        error_exit: error.as_ref().map(|(_, code)| *code),
        error: error.map(|(message, _)| message),
    }
}

/// Asks the daemon bridge (a local socket, no network) what the daemon's netrc holds for
/// this user; never the token itself.
fn daemon_report(config: &Config) -> Option<DaemonReport> {
    let socket = config.daemon_bridge.socket()?;
    let (entries, error) = match bridge_client::status(&socket, None) {
        Ok(entries) => (entries, None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    Some(DaemonReport {
        bridge: socket.display().to_string(),
        entries,
        error,
    })
}

fn describe_access(token: &str, session: Option<&Session>, now: i64) -> TokenReport {
    let claims = jwt::decode_claims(token);
    let exp = claims.as_ref().and_then(|c| c.exp).or_else(|| {
        session
            .filter(|s| s.access_token.expose() == token)
            .and_then(|s| s.access_token_expires_at)
    });
    TokenReport {
        format: if claims.is_some() { "jwt" } else { "opaque" },
        expires_at: exp.map(clock::format_rfc3339),
        expires_in_seconds: exp.map(|e| e.saturating_sub(now)),
        ends_when_idle: false,
    }
}

fn print_text(r: &Report) {
    let now = clock::now();
    let when = |secs: Option<i64>| match secs {
        Some(s) => format!(
            "{} ({})",
            clock::format_utc(now.saturating_add(s)),
            clock::relative(now.saturating_add(s), now)
        ),
        None => "no expiry known".to_string(),
    };
    println!(
        "Config:        {}{}",
        r.config,
        r.profile
            .as_deref()
            .map(|p| format!(" (profile {p})"))
            .unwrap_or_default()
    );
    println!("Issuer:        {}", r.issuer);
    println!("Netrc:         {}", r.netrc_path);
    for h in &r.hosts {
        let entry = match (h.netrc_entry, h.matches_store) {
            (false, _) => "no entry",
            (true, true) => "entry present",
            (true, false) => "entry present (not the stored session's token)",
        };
        println!("  machine {:<20} {entry}", h.machine);
    }
    if let Some(ci) = &r.ci {
        println!(
            "CI login:      {}, grant {}{}",
            ci.source,
            ci.grant,
            ci.audience
                .as_deref()
                .map(|a| format!(", audience {a}"))
                .unwrap_or_default()
        );
    }
    if let Some(who) = r.username.as_deref().or(r.subject.as_deref()) {
        println!("User:          {who}");
    }
    match &r.access_token {
        Some(a) => println!(
            "Access token:  {} ({})",
            when(a.expires_in_seconds),
            a.format
        ),
        None => println!("Access token:  none"),
    }
    match &r.refresh_token {
        Some(t) if t.ends_when_idle => println!("Refresh token: {OFFLINE_TOKEN_END}"),
        Some(t) => println!("Refresh token: {}", when(t.expires_in_seconds)),
        None => match r.grant.filter(|g| g.renewal() == Renewal::RepeatGrant) {
            Some(grant) => println!(
                "Refresh token: none ({}: run `{}` again)",
                grant.describe(),
                grant.start_step().subcommand()
            ),
            None => println!("Refresh token: none"),
        },
    }
    println!("Token store:   {}", r.token_store);
    if let Some(d) = &r.daemon {
        println!("Nix daemon:    netrc through the bridge at {}", d.bridge);
        for entry in &d.entries {
            println!("  {}", bridge_client::describe_entry(entry, now));
        }
        if let Some(e) = &d.error {
            println!("  cannot ask the bridge: {e}");
        }
    }
    if let Some(e) = &r.error {
        println!("Problem:       {e}");
    }
    let verdict = match (r.state, r.next) {
        _ if r.error_exit == Some(exit::FAILURE) => "broken: see Problem above".to_string(),
        (TokenState::Valid, _) => "logged in".to_string(),
        (_, NextStep::Login) => format!("login needed: run `{}`", NextStep::Login),
        (_, next) => format!("expired: run `{next}`"),
    };
    println!("Status:        {verdict}");
}
