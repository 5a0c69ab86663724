//! OpenID Connect: discovery, grants, the loopback listener.
pub mod client;
pub mod device;
pub mod discovery;
pub mod http;
pub mod loopback;
mod refusal;
