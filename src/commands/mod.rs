//! One module per subcommand: orchestration and output only. The work is done by the session
//! layer (`crate::session`), the protocol (`crate::oidc`) and the checks (`crate::doctor`);
//! no command calls another.

mod bridge;
mod ci;
mod completions;
mod doctor;
mod init;
mod login;
mod logout;
mod refresh;
mod service_account;
mod status;
mod token;

use anyhow::{Context, Result};

use crate::bridge::client::BridgeSink;
use crate::cli::{BridgeCommand, Cli, Command, LoginArgs};
use crate::clock;
use crate::config::{self, Config, Environment, ProcessEnvironment};
use crate::session::Sessions;
use crate::token_store::Session;

/// Runs the command the user asked for.
pub fn run(cli: &Cli) -> Result<()> {
    let env = ProcessEnvironment;
    // doctor reports a broken config as one of its checks instead of stopping at it.
    if let Some(Command::Doctor(args)) = &cli.command {
        return doctor::run(cli, args, &env);
    }
    // Packaging runs these at build time, where there is no config.
    match &cli.command {
        Some(Command::Completions(args)) => return completions::completions(args),
        Some(Command::Man) => return completions::man(),
        // The bridge has its own config; its status works without one.
        Some(Command::Bridge(BridgeCommand::Serve(args))) => {
            return bridge::serve(cli, args, &env);
        }
        Some(Command::Bridge(BridgeCommand::Status(args))) => {
            return bridge::status(cli, args, &env);
        }
        // init writes the config the others load.
        Some(Command::Init(args)) => {
            let config = match block_on(init::run(cli, args, &env))? {
                init::AfterInit::Done => return Ok(()),
                init::AfterInit::LogIn(config) => config,
            };
            let sessions = sessions_for(*config, &env)?;
            return block_on(login::run(&sessions, &LoginArgs::default()));
        }
        _ => {}
    }
    let config = config::load(cli.config.as_deref(), cli.profile.as_deref(), &env)?;
    tracing::debug!(config = %config.source.display(), "loaded config");
    let sessions = sessions_for(config, &env)?;
    match cli.subcommand() {
        Command::Status(args) => status::run(&sessions, &args),
        Command::Login(args) => block_on(login::run(&sessions, &args)),
        Command::Refresh(args) => block_on(refresh::run(&sessions, &args)),
        Command::ServiceAccount(args) => block_on(service_account::run(&sessions, &args)),
        Command::Ci(args) => block_on(ci::run(&sessions, &args)),
        Command::Logout => block_on(logout::run(&sessions)),
        Command::Token(args) => block_on(token::run(&sessions, &args)),
        Command::Doctor(_) => unreachable!("doctor runs before the config is loaded"),
        Command::Completions(_) | Command::Man | Command::Init(_) | Command::Bridge(_) => {
            unreachable!("completions, man, init and bridge run before the config is loaded")
        }
    }
}

/// The config's sessions, with the daemon bridge as a further sink when the config uses one.
fn sessions_for(config: Config, env: &dyn Environment) -> Result<Sessions<'_>> {
    let daemon_bridge = BridgeSink::for_config(&config);
    let mut sessions = Sessions::new(config, env)?;
    if let Some(sink) = daemon_bridge {
        sessions.add_sink(Box::new(sink));
    }
    Ok(sessions)
}

/// One thread is plenty for one request at a time, and starts faster than a pool.
pub(crate) fn block_on<T, F: std::future::Future<Output = Result<T>>>(future: F) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}

/// `valid until 2026-02-25 19:16:40 UTC (in 5 min)`, for the line a command ends with.
fn describe_expiry(session: &Session) -> String {
    match session.access_token_expires_at {
        Some(exp) => format!(
            "valid until {} ({})",
            clock::format_utc(exp),
            clock::relative(exp, clock::now())
        ),
        None => "expiry unknown".to_string(),
    }
}
