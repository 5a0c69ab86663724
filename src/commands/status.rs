//! `status`: what is stored and when it expires. No network.

use anyhow::Result;
use serde::Serialize;

use crate::bridge::client as bridge_client;
use crate::bridge::protocol::EntryStatus;
use crate::cli::StatusArgs;
use crate::clock;
use crate::config::Config;
use crate::exit::{self, NextStep, Silent};
use crate::session::Sessions;
use crate::session::grant::Renewal;
use crate::session::state::TokenState;
use crate::session::status::{SessionStatus, status};
use crate::token_store::OFFLINE_TOKEN_END;

/// What `status --json` prints: the session's facts, what the daemon's netrc holds, and
/// what could not be read.
#[derive(Debug, Serialize)]
struct Report {
    #[serde(flatten)]
    session: SessionStatus,
    /// What the Nix daemon's netrc holds for this user, when a daemon bridge is in use.
    daemon: Option<DaemonReport>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct DaemonReport {
    bridge: String,
    /// One entry per host in the daemon's netrc: on a shared machine the last login wins.
    entries: Vec<EntryStatus>,
    /// Why the bridge could not be asked.
    error: Option<String>,
}

pub fn run(sessions: &Sessions<'_>, args: &StatusArgs) -> Result<()> {
    let session = status(sessions, clock::now());
    let report = Report {
        daemon: daemon_report(sessions.config()),
        error: session.problem.as_ref().map(|p| p.message.clone()),
        session,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    let facts = &report.session;
    let code = match facts.state {
        // A file that cannot be read: whatever else is seen, something is wrong.
        _ if facts.is_broken() => exit::FAILURE,
        TokenState::Valid => exit::SUCCESS,
        _ if facts.login_needed => exit::LOGIN_NEEDED,
        _ => exit::FAILURE,
    };
    if code == exit::SUCCESS {
        Ok(())
    } else {
        Err(Silent(code).into())
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

fn print_text(report: &Report) {
    let r = &report.session;
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
    if let Some(d) = &report.daemon {
        println!("Nix daemon:    netrc through the bridge at {}", d.bridge);
        for entry in &d.entries {
            println!("  {}", bridge_client::describe_entry(entry, now));
        }
        if let Some(e) = &d.error {
            println!("  cannot ask the bridge: {e}");
        }
    }
    if let Some(e) = &report.error {
        println!("Problem:       {e}");
    }
    let verdict = match (r.state, r.next) {
        _ if r.is_broken() => "broken: see Problem above".to_string(),
        (TokenState::Valid, _) => "logged in".to_string(),
        (_, NextStep::Login) => format!("login needed: run `{}`", NextStep::Login),
        (_, next) => format!("expired: run `{next}`"),
    };
    println!("Status:        {verdict}");
}
