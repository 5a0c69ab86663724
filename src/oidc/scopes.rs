//! Which of the configured scopes a request sends.

use openidconnect::Scope;

/// Asks for a refresh token that outlives the provider's SSO session (an offline token).
pub const OFFLINE_ACCESS: &str = "offline_access";
const OPENID: &str = "openid";

/// Who the tokens are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeUse {
    /// A user's login (authorization code, device flow): `openidconnect` sends `openid` itself,
    /// so it is not added a second time.
    UserLogin,
    /// Client credentials: `openid` asks for an ID token and `offline_access` for a refresh
    /// token, neither of which this grant yields, and some providers refuse them.
    Service,
}

/// The scopes to add to a request of `usage`, in their configured order.
pub fn requested(configured: &[String], usage: ScopeUse) -> Vec<Scope> {
    let dropped: &[&str] = match usage {
        ScopeUse::UserLogin => &[OPENID],
        ScopeUse::Service => &[OPENID, OFFLINE_ACCESS],
    };
    configured
        .iter()
        .filter(|s| !dropped.contains(&s.as_str()))
        .map(|s| Scope::new(s.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(scopes: Vec<Scope>) -> Vec<String> {
        scopes.into_iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn openid_is_never_sent_twice_and_services_ask_for_no_user_scopes() {
        let configured: Vec<String> = ["openid", "offline_access", "profile"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            names(requested(&configured, ScopeUse::UserLogin)),
            ["offline_access", "profile"]
        );
        assert_eq!(
            names(requested(&configured, ScopeUse::Service)),
            ["profile"]
        );
    }
}
