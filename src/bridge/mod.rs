//! The Nix-daemon bridge: a small root service that puts a user's live access token into
//! the daemon's netrc, so that substitution through `nix-daemon` sees the login without the
//! user being in `trusted-users` (which is as good as root).
//!
//! - [`protocol`]: the wire format, shared by both sides.
//! - [`server`] (`bridge serve`), with [`config`] (root's own file), [`caller`] (who is on
//!   the other end of the socket, and may they), [`verify`] and [`keys`] (is the token the
//!   issuer's), [`record`] (who put which entry).
//! - [`client`]: what the commands use to hand a token over, take it back, and ask.
//!
//! The daemon has one netrc entry per host: on a machine with several users the last
//! hand-over wins.

pub mod caller;
pub mod client;
pub mod config;
pub mod keys;
pub mod protocol;
pub mod record;
pub mod server;
pub mod verify;

/// Where the packaged socket unit listens.
pub const DEFAULT_SOCKET: &str = "/run/nix-cache-login/bridge.sock";
