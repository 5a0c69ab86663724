//! `session`: what the token store holds, and whether it still lasts.

use anyhow::Result;

use super::Check;
use super::run::Doctor;
use crate::clock;
use crate::exit::NextStep;
use crate::oidc::scopes::OFFLINE_ACCESS;
use crate::session::Sessions;
use crate::session::grant::Renewal;
use crate::session::next::can_refresh;
use crate::session::state::TokenState;
use crate::token_store::Session;

impl Doctor<'_> {
    pub(super) fn session_check(
        &self,
        sessions: &Sessions<'_>,
        session: &Result<Option<Session>>,
    ) -> Check {
        let store = sessions.store().path().display();
        let login = self.login_command(sessions.config());
        let session = match session {
            Ok(Some(session)) => session,
            Ok(None) => {
                return Check::fail(
                    "session",
                    format!("no stored session ({store})"),
                    format!("run `{login}`"),
                );
            }
            Err(e) => {
                return Check::fail(
                    "session",
                    format!("cannot use the token store {store}: {e:#}"),
                    format!("run `{login}`"),
                );
            }
        };
        let kind = match &session.ci {
            Some(ci) => format!("CI job ({}, grant {})", ci.source, ci.grant),
            None => session.grant.describe().to_string(),
        };
        let who = session
            .username
            .as_deref()
            .or(session.subject.as_deref())
            .map(|w| format!(" as {w}"))
            .unwrap_or_default();
        let when = |exp: Option<i64>| match exp {
            Some(exp) => format!(
                "{} ({})",
                clock::format_utc(exp),
                clock::relative(exp, self.now)
            ),
            None => "no known end".to_string(),
        };
        let access = session.access_token_expires_at;
        let refresh = match (&session.refresh_token, session.grant) {
            (_, grant) if grant.renewal() == Renewal::RepeatGrant => {
                format!("no refresh token ({})", grant.describe())
            }
            // Keycloak's `refresh_expires_in: 0`: an offline token with no fixed maximum,
            // which still ends when left unused for the offline session idle timeout.
            (Some(_), _) if session.refresh_token_expires_at.is_none() => {
                "a refresh token with no fixed end (an offline token, Keycloak's \
                 refresh_expires_in 0: it still ends when unused for the offline session \
                 idle timeout, 30 days by default)"
                    .to_string()
            }
            (Some(_), _) => format!(
                "refresh token until {}{}",
                when(session.refresh_token_expires_at),
                offline_hint(&sessions.config().scopes)
            ),
            (None, _) => "no refresh token".to_string(),
        };
        let detail = format!(
            "{kind}{who}; access token until {}; {refresh}",
            when(access)
        );
        if TokenState::of(true, access, self.now) != TokenState::Expired {
            Check::ok("session", detail)
        } else if can_refresh(session, self.now) {
            Check::warn(
                "session",
                detail,
                format!(
                    "run `{}` (a timer should do this before the token expires)",
                    self.commands.named(NextStep::Refresh)
                ),
            )
        } else {
            Check::fail(
                "session",
                detail,
                format!(
                    "run `{}`",
                    self.renew_command(sessions.config(), Some(session))
                ),
            )
        }
    }
}

/// A refresh token with a fixed end ends the session then; `offline_access` asks for one
/// that outlives the provider's SSO session (Keycloak: an offline token, when the realm
/// gives the user the offline_access role).
fn offline_hint(scopes: &[String]) -> &'static str {
    if scopes.iter().any(|s| s == OFFLINE_ACCESS) {
        ""
    } else {
        " (add \"offline_access\" to scopes for one that outlives the SSO session, where the \
         provider allows it)"
    }
}
