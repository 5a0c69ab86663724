//! `doctor`: runs the checks of `crate::doctor` and prints their report.

use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::{Cli, DoctorArgs};
use crate::config::Environment;
use crate::doctor::{self, Target};
use crate::exit::{self, Silent};

pub fn run(cli: &Cli, args: &DoctorArgs, env: &dyn Environment) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let target = Target {
        config: cli.config.as_deref(),
        profile: cli.profile.as_deref(),
    };
    let report = doctor::examine(&target, env, &runtime);
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
