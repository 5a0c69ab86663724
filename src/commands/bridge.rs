//! `bridge serve` and `bridge status`: thin shells over `crate::bridge`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::bridge::protocol::EntryStatus;
use crate::bridge::{self, client, server};
use crate::cli::{BridgeServeArgs, BridgeStatusArgs, Cli};
use crate::clock;
use crate::config::{self, Environment};
use crate::exit::{ConfigError, Silent};

pub fn serve(cli: &Cli, args: &BridgeServeArgs, env: &dyn Environment) -> Result<()> {
    if cli.profile.is_some() {
        return Err(ConfigError::invalid("--profile does not apply to `bridge serve`").into());
    }
    // The bridge reads only its own root-owned file, never $NIX_CACHE_LOGIN_CONFIG.
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(bridge::config::DEFAULT_CONFIG));
    let config = bridge::config::load(&path)?;
    let listener = server::Listener::open(&args.socket, env)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(server::serve(config, listener, env))
}

#[derive(Serialize)]
struct Report<'a> {
    socket: String,
    /// On a shared machine the daemon has one entry per host: the last login wins.
    note: &'static str,
    entries: &'a [EntryStatus],
}

pub fn status(cli: &Cli, args: &BridgeStatusArgs, env: &dyn Environment) -> Result<()> {
    let socket = match &args.socket {
        Some(s) => s.clone(),
        None => configured_socket(cli, env)?,
    };
    let entries = client::status(&socket, None)?;
    let now = clock::now();
    if args.json {
        let report = Report {
            socket: socket.display().to_string(),
            note: "one entry per host in the daemon's netrc: the last login wins",
            entries: &entries,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "Nix daemon's netrc (through the bridge at {}):",
            socket.display()
        );
        for entry in &entries {
            println!("  {}", client::describe_entry(entry, now));
        }
        println!("  (one entry per host: on a shared machine the last login wins)");
    }
    if entries.iter().all(|e| client::holds_yours(e, now)) {
        Ok(())
    } else {
        Err(Silent(1).into())
    }
}

/// The socket the config's `daemon_bridge` names (a missing or broken config is no error
/// here: the default socket is asked then).
fn configured_socket(cli: &Cli, env: &dyn Environment) -> Result<PathBuf> {
    let setting = config::load(cli.config.as_deref(), cli.profile.as_deref(), env)
        .map(|c| c.daemon_bridge)
        .unwrap_or_default();
    setting.socket().with_context(|| match setting {
        client::DaemonBridge::Off => "daemon_bridge is false in the config".to_string(),
        _ => format!(
            "no daemon bridge here: {} does not exist",
            Path::new(bridge::DEFAULT_SOCKET).display()
        ),
    })
}
