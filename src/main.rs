use std::process::ExitCode;

use clap::Parser;
use nix_cache_login::cli::Cli;
use nix_cache_login::{commands, exit};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match commands::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit::code_for(&err);
            if !err.is::<exit::Silent>() {
                // `{:#}` puts the whole context chain on one line.
                eprintln!("error: {err:#}");
            }
            exit::to_exit_code(code)
        }
    }
}

/// `-v` info, `-vv` debug, `-vvv` trace for this crate; libraries stay at warn unless
/// `RUST_LOG` asks for more.
fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let default = format!("warn,nix_cache_login={level}");
    // `Targets` reads RUST_LOG's `target=level` directives without pulling in a regex engine.
    let filter: Targets = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => spec.parse().unwrap_or_else(|e| {
            eprintln!("warning: ignoring RUST_LOG ({e})");
            default.parse().expect("the default filter parses")
        }),
        _ => default.parse().expect("the default filter parses"),
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .without_time(),
        )
        .with(filter)
        .init();
}
