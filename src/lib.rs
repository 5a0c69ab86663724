//! nix-cache-login: keeps a valid OIDC access token for a Nix binary cache in the netrc file
//! that Nix reads. The binary (`main.rs`) is a thin shell over this library so that tests can
//! reach the pure parts.

pub mod bridge;
pub mod ci;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod doctor;
pub mod exit;
pub mod fs;
pub mod http;
pub mod jwt;
pub mod netrc;
pub mod oidc;
pub mod secret;
pub mod session;
pub mod token_store;
pub mod untrusted;
