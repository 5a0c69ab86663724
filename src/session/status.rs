//! What `status` reports of a config's session: the stored session and the netrc's entries,
//! read without the lock and without the network. The command prints it (and asks the
//! daemon bridge); the facts are gathered here, beside [`TokenState`].

use serde::Serialize;

use super::Sessions;
use super::next::next_step;
use super::state::TokenState;
use crate::clock;
use crate::exit::{self, NextStep};
use crate::jwt;
use crate::netrc;
use crate::token_store::{Grant, Session};
use crate::untrusted;

/// The session's facts, in the order `status --json` shows them.
#[derive(Debug, Serialize)]
pub struct SessionStatus {
    pub config: String,
    pub profile: Option<String>,
    pub issuer: String,
    pub client_id: String,
    pub netrc_path: String,
    pub token_store: String,
    pub hosts: Vec<HostStatus>,
    pub state: TokenState,
    pub login_needed: bool,
    /// What gets a valid token again (not serialized: `login_needed` says it for scripts).
    #[serde(skip)]
    pub next: NextStep,
    pub grant: Option<Grant>,
    /// A `ci` session: where the job's token came from and how it was used.
    pub ci: Option<CiStatus>,
    pub subject: Option<String>,
    pub username: Option<String>,
    pub access_token: Option<TokenStatus>,
    pub refresh_token: Option<TokenStatus>,
    /// Why the store or the netrc could not be read (the first of them).
    #[serde(skip)]
    pub problem: Option<Problem>,
}

/// A file that could not be read, and the exit code it calls for (1: a file that cannot be
/// read, which a login would not mend; 3: a corrupt store, which it would).
#[derive(Debug)]
pub struct Problem {
    pub message: String,
    pub exit: u8,
}

#[derive(Debug, Serialize)]
pub struct HostStatus {
    pub host: String,
    pub machine: String,
    pub netrc_entry: bool,
    /// The netrc holds the token of the stored session.
    pub matches_store: bool,
}

#[derive(Debug, Serialize)]
pub struct CiStatus {
    pub source: String,
    pub grant: String,
    pub audience: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TokenStatus {
    /// "jwt" or "opaque"
    pub format: &'static str,
    pub expires_at: Option<String>,
    pub expires_in_seconds: Option<i64>,
    /// No fixed end, but the provider ends it once unused for its idle timeout (offline).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ends_when_idle: bool,
}

/// The facts of `sessions`' session at `now`.
pub fn status(sessions: &Sessions<'_>, now: i64) -> SessionStatus {
    let config = sessions.config();
    let mut error: Option<(String, u8)> = None;
    let session = match sessions.peek() {
        Ok(s) => s,
        Err(e) => {
            error = Some((format!("{e:#}"), exit::code_for(&e)));
            None
        }
    };
    let netrc_file = match netrc::read(&config.netrc_path) {
        Ok(f) => f,
        Err(e) => {
            error.get_or_insert((format!("{e:#}"), exit::code_for(&e)));
            None
        }
    };
    let mut netrc_token: Option<Vec<u8>> = None;
    let hosts = config
        .cache_hosts
        .iter()
        .map(|host| {
            let machine = netrc::machine_name(host).to_string();
            let password = netrc_file
                .as_ref()
                .and_then(|f| f.get(&machine))
                .and_then(|e| e.password);
            let matches_store = match (&password, &session) {
                (Some(p), Some(s)) => p.as_slice() == s.access_token.expose().as_bytes(),
                _ => false,
            };
            if netrc_token.is_none() {
                netrc_token.clone_from(&password);
            }
            HostStatus {
                host: host.clone(),
                machine,
                netrc_entry: password.is_some(),
                matches_store,
            }
        })
        .collect();

    // What Nix sends is the netrc's token; the store's expiry speaks for it when they agree.
    let netrc_token = netrc_token.and_then(|t| String::from_utf8(t).ok());
    let access_token = netrc_token
        .as_deref()
        .map(|t| describe_access(t, session.as_ref(), now))
        .or_else(|| {
            session
                .as_ref()
                .map(|s| describe_access(s.access_token.expose(), Some(s), now))
        });
    let refresh_token = session.as_ref().and_then(|s| {
        s.refresh_token.as_ref().map(|_| TokenStatus {
            format: if s
                .refresh_token
                .as_ref()
                .and_then(|t| jwt::decode_claims(t.expose()))
                .is_some()
            {
                "jwt"
            } else {
                "opaque"
            },
            expires_at: s.refresh_token_expires_at.map(clock::format_rfc3339),
            expires_in_seconds: s.refresh_token_expires_at.map(|e| e.saturating_sub(now)),
            ends_when_idle: s.refresh_token_ends_when_idle,
        })
    });

    let state = TokenState::of(
        netrc_token.is_some(),
        access_token
            .as_ref()
            .and_then(|a| a.expires_in_seconds)
            .map(|secs| now.saturating_add(secs)),
        now,
    );
    let next = next_step(config, session.as_ref(), now);
    let claims = netrc_token.as_deref().and_then(jwt::decode_claims);
    SessionStatus {
        config: config.source.display().to_string(),
        profile: config.profile.clone(),
        issuer: config.issuer_str().to_string(),
        client_id: config.client_id.clone(),
        netrc_path: config.netrc_path.display().to_string(),
        token_store: sessions.store().path().display().to_string(),
        hosts,
        state,
        login_needed: state != TokenState::Valid && next == NextStep::Login,
        next,
        grant: session.as_ref().map(|s| s.grant),
        ci: session
            .as_ref()
            .and_then(|s| s.ci.as_ref())
            .map(|ci| CiStatus {
                source: ci.source.to_string(),
                grant: ci.grant.to_string(),
                audience: ci.audience.clone(),
            }),
        // Names from the provider's tokens: cleaned for the terminal and for JSON alike.
        subject: session
            .as_ref()
            .and_then(|s| s.subject.clone())
            .or_else(|| claims.as_ref().and_then(|c| c.sub.clone()))
            .map(|s| untrusted::clean(&s)),
        username: session
            .as_ref()
            .and_then(|s| s.username.clone())
            .or_else(|| claims.as_ref().and_then(|c| c.who().map(str::to_string)))
            .map(|s| untrusted::clean(&s)),
        access_token,
        refresh_token,
        problem: error.map(|(message, exit)| Problem { message, exit }),
    }
}

fn describe_access(token: &str, session: Option<&Session>, now: i64) -> TokenStatus {
    let claims = jwt::decode_claims(token);
    let exp = claims.as_ref().and_then(|c| c.exp).or_else(|| {
        session
            .filter(|s| s.access_token.expose() == token)
            .and_then(|s| s.access_token_expires_at)
    });
    TokenStatus {
        format: if claims.is_some() { "jwt" } else { "opaque" },
        expires_at: exp.map(clock::format_rfc3339),
        expires_in_seconds: exp.map(|e| e.saturating_sub(now)),
        ends_when_idle: false,
    }
}

impl SessionStatus {
    /// A file could not be read that a login would not mend.
    pub fn is_broken(&self) -> bool {
        self.problem
            .as_ref()
            .is_some_and(|p| p.exit == exit::FAILURE)
    }
}
