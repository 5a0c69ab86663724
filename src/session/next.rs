//! Which command gets the user a valid token again: the one rule that `status`, `doctor` and
//! every "log in again" error follow.

use crate::config::Config;
use crate::exit::NextStep;
use crate::token_store::Session;

use super::grant::Renewal;

/// Whether `session` can be renewed by `refresh` at `now`: a user's session with a refresh
/// token that has not expired.
pub fn can_refresh(session: &Session, now: i64) -> bool {
    session.grant.renewal() == Renewal::RefreshToken
        && session.refresh_token.is_some()
        && session.refresh_token_expires_at.is_none_or(|exp| exp > now)
}

/// The command that starts a session for `config`: `service-account` where the config has a
/// client secret, `login` otherwise.
pub fn start_step(config: &Config) -> NextStep {
    if config.client_secret_file.is_some() {
        NextStep::ServiceAccount
    } else {
        NextStep::Login
    }
}

/// The command that gets a new access token for `session` (or for no session) at `now`.
pub fn next_step(config: &Config, session: Option<&Session>, now: i64) -> NextStep {
    match session {
        Some(s) if can_refresh(s, now) => NextStep::Refresh,
        Some(s) if s.grant.renewal() == Renewal::RepeatGrant => s.grant.start_step(),
        _ => start_step(config),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::FakeEnv;
    use crate::secret::Secret;
    use crate::token_store::Grant;

    fn config(extra: &str) -> Config {
        let text = format!(
            "issuer='https://sso'\nclient_id='nix'\ncache_host='c'\nnetrc_path='/n'\n{extra}"
        );
        crate::config::parse(&text, std::path::Path::new("/c"), None, &FakeEnv::default()).unwrap()
    }

    #[test]
    fn the_next_step_follows_the_grant_then_the_config() {
        let user = config("");
        let service = config("client_secret_file='/s'\n");
        assert_eq!(next_step(&user, None, 0), NextStep::Login);
        assert_eq!(next_step(&service, None, 0), NextStep::ServiceAccount);

        let mut s = Session::new(&user, Grant::AuthorizationCode, Secret::new("a"), 0);
        assert_eq!(next_step(&user, Some(&s), 10), NextStep::Login);
        s.refresh_token = Some(Secret::new("r"));
        assert_eq!(next_step(&user, Some(&s), 10), NextStep::Refresh);
        s.refresh_token_expires_at = Some(10);
        assert!(!can_refresh(&s, 10));
        assert_eq!(next_step(&user, Some(&s), 10), NextStep::Login);

        let cc = Session::new(&service, Grant::ClientCredentials, Secret::new("a"), 0);
        assert!(!can_refresh(&cc, 0));
        assert_eq!(next_step(&user, Some(&cc), 0), NextStep::ServiceAccount);
    }
}
