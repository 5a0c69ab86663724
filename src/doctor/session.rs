//! `session`: what the token store holds, and whether it still lasts.

use anyhow::Result;

use super::Check;
use super::run::Doctor;
use crate::clock;
use crate::exit::NextStep;
use crate::session::Sessions;
use crate::session::next::can_refresh;
use crate::session::state::TokenState;
use crate::token_store::{Grant, Session};

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
        let kind = session.grant.describe();
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
            (_, Grant::ClientCredentials) => "no refresh token (service account)".to_string(),
            (Some(_), _) => format!(
                "refresh token until {}",
                when(session.refresh_token_expires_at)
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
