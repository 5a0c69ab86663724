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
#[error("{0}")]
pub struct ConfigError(pub String);

/// No usable session: the user must run `nix-cache-login login` (or, for a server's session,
/// `service-account`). Exit 3.
#[derive(Debug, thiserror::Error)]
#[error("{reason}; run `nix-cache-login {command}`")]
pub struct LoginNeeded {
    pub reason: String,
    pub command: &'static str,
}

impl LoginNeeded {
    pub fn new(reason: impl Into<String>) -> Self {
        LoginNeeded {
            reason: reason.into(),
            command: "login",
        }
    }

    /// The way back is another command than `login`.
    pub fn with_command(reason: impl Into<String>, command: &'static str) -> Self {
        LoginNeeded {
            reason: reason.into(),
            command,
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
        let e = Err::<(), _>(ConfigError("bad".into()))
            .context("x")
            .unwrap_err();
        assert_eq!(code_for(&e), USAGE);
        assert_eq!(code_for(&anyhow::anyhow!("boom")), FAILURE);
        assert_eq!(code_for(&Silent(3).into()), 3);
    }
}
