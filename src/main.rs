use std::process::ExitCode;

use clap::Parser;
use nix_cache_login::cli::Cli;
use nix_cache_login::{commands, exit};
use tracing_subscriber::EnvFilter;

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
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ => {
            let level = match verbose {
                0 => "warn",
                1 => "info",
                2 => "debug",
                _ => "trace",
            };
            EnvFilter::new(format!("warn,nix_cache_login={level}"))
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}
