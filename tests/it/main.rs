//! The integration tests: one binary, so that the harness in `support/` compiles once.
//! One module per area; each runs the real binary against real peers (see `support`).

mod support;

mod bridge;
mod ci;
mod concurrency;
mod config_cli;
mod device_and_token;
mod doctor;
mod faults;
mod flows;
mod harness_smoke;
mod hostile;
mod init;
mod kill;
mod loopback_hostile;
mod netrc_concurrency;
mod netrc_props;
mod nix_e2e;
mod providers;
mod proxy;
mod secrets;
