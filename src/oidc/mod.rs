//! OpenID Connect: discovery, grants, the loopback listener.
pub mod client;
pub mod device;
pub mod discovery;
pub mod federation;
pub mod http;
pub mod loopback;
