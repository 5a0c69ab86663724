//! Exit codes and the errors that choose them.
//!
//! Everything else is an `anyhow::Error` and exits 1; a command signals "usage/config" or
//! "log in again" by putting one of these errors somewhere in the chain.

use std::process::ExitCode;

pub const SUCCESS: u8 = 0;
pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const LOGIN_NEEDED: u8 = 3;

/// The configuration (or a file it names) is missing or wrong: exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub problem: ConfigProblem,
    pub message: String,
}

/// What is wrong with the configuration, for callers that advise differently (`doctor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigProblem {
    /// No config file where one was looked for (or where `--config` or the variable pointed).
    NotFound,
    /// The config, a file it names or an argument is wrong.
    Invalid,
}

impl ConfigError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ConfigError {
            problem: ConfigProblem::Invalid,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ConfigError {
            problem: ConfigProblem::NotFound,
            message: message.into(),
        }
    }
}

/// The command that gets the user a valid token again. Which one applies is decided in one
/// place, `session::next::next_step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Login,
    Refresh,
    ServiceAccount,
    Ci,
}

impl NextStep {
    /// The subcommand's name.
    pub fn subcommand(self) -> &'static str {
        match self {
            NextStep::Login => "login",
            NextStep::Refresh => "refresh",
            NextStep::ServiceAccount => "service-account",
            NextStep::Ci => "ci",
        }
    }
}

impl std::fmt::Display for NextStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nix-cache-login {}", self.subcommand())
    }
}

/// No usable session: the user must run `nix-cache-login login` (or, for a server's session,
/// `service-account`). Exit 3.
#[derive(Debug, thiserror::Error)]
#[error("{reason}; run `{next}`")]
pub struct LoginNeeded {
    pub reason: String,
    pub next: NextStep,
}

impl LoginNeeded {
    pub fn new(reason: impl Into<String>) -> Self {
        LoginNeeded::with_step(reason, NextStep::Login)
    }

    /// The way back is another command than `login`.
    pub fn with_step(reason: impl Into<String>, next: NextStep) -> Self {
        LoginNeeded {
            reason: reason.into(),
            next,
        }
    }
}

/// A command finished but its outcome is not success (e.g. `status` of an expired token).
#[derive(Debug, thiserror::Error)]
#[error("exit {0}")]
pub struct Silent(pub u8);

pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(Silent(code)) = cause.downcast_ref::<Silent>() {
            return *code;
        }
        if cause.is::<LoginNeeded>() {
            return LOGIN_NEEDED;
        }
        if cause.is::<ConfigError>() {
            return USAGE;
        }
    }
    FAILURE
}

/// A problem that does not stop the run: logged, and shown on stderr.
pub fn warn(message: &str) {
    tracing::warn!("{message}");
    eprintln!("warning: {message}");
}

pub fn to_exit_code(code: u8) -> ExitCode {
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_are_found_through_context() {
        let e = Err::<(), _>(LoginNeeded::new("no stored session"))
            .context("refresh")
            .unwrap_err();
        assert_eq!(code_for(&e), LOGIN_NEEDED);
        let e = Err::<(), _>(ConfigError::invalid("bad"))
            .context("x")
            .unwrap_err();
        assert_eq!(code_for(&e), USAGE);
        assert_eq!(code_for(&anyhow::anyhow!("boom")), FAILURE);
        assert_eq!(code_for(&Silent(3).into()), 3);
    }
}
