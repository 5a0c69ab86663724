//! OpenID Connect and OAuth 2.0, the protocol side: what is sent to the provider and how its
//! answers are checked. Nothing here reads the config, the token store or the netrc; the
//! session layer (`crate::session`) does that and calls in here.

pub mod authorize;
pub mod client;
pub mod device;
pub mod discovery;
pub mod endpoints;
pub mod error;
pub mod federation;
pub mod flow;
pub mod id_token;
pub mod loopback;
pub mod revoke;
pub mod scopes;
