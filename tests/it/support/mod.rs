//! Test harness shared by the integration tests: a real OpenID provider (`tests/idp`,
//! oidc-provider 9 on Node) served over HTTPS with a throwaway CA, a headless-chromium
//! BROWSER hook that plays the user, and a sandboxed environment to run the CLI in.
//!
//! Each test module of this binary uses it as `crate::support`:
//!
//! ```ignore
//! use crate::support::{BrowserMode, Idp, IdpOptions, TestEnv};
//!
//! let idp = Idp::start(IdpOptions::default());
//! let env = TestEnv::new(&idp).with_browser(BrowserMode::Approve);
//! let out = env.cli(&["login"]);
//! assert!(out.status.success(), "{}", crate::support::describe(&out));
//! ```
//!
//! Everything binds 127.0.0.1 only, everything has a time limit, and every process
//! started here is stopped on drop (process groups, so chromium goes too).
//! Needs `node` (20+), `npm ci` done in tests/idp (done on first use if missing, under a
//! file lock), `/usr/bin/chromium`, and the `openssl` and `curl` command-line tools.

pub mod browser;
pub mod cache;
pub mod certs;
pub mod ci_issuer;
pub mod cli;
pub mod daemon;
pub mod fault;
pub mod hostile;
pub mod http;
pub mod idp;
pub mod nix;
pub mod proc;
pub mod proxy;

pub use browser::{BrowserHook, BrowserMode};
pub use cache::CacheServer;
pub use certs::TestCa;
pub use cli::{CliConfig, TestEnv, assert_ok, describe};
pub use http::{CallbackServer, jwt_claims, pkce_pair, random_token};
pub use idp::{AccessTokenFormat, Idp, IdpOptions};
pub use nix::NixLab;

use std::path::PathBuf;

/// The crate root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/idp`: the Node project with the provider and the browser hook.
pub fn idp_dir() -> PathBuf {
    repo_root().join("tests").join("idp")
}

/// The CLI binary built for the integration tests.
pub fn cli_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nix-cache-login"))
}

/// A loopback port that was free a moment ago: nothing listens on it, so a connection is
/// refused, until something (a server started next) binds it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("the bound address")
        .port()
}
