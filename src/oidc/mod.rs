//! OpenID Connect: discovery, grants, the loopback listener.
