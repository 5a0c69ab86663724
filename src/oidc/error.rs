//! How a request to the provider fails, told without anything that could be a token.
//!
//! And what a refusal means, for providers as deployed rather than as RFC 6749 writes them:
//! a dead refresh token may come back as a bare `400` with an empty body, and wrong client
//! credentials as a bare `403` instead of `401 invalid_client`.

use openidconnect::{ErrorResponse, RequestTokenError, StandardErrorResponse};

use crate::http::HttpError;
use crate::secret::Secret;
use crate::untrusted;

/// The OAuth error that means the request itself was malformed: a bug of ours (or of the
/// provider), not the end of the grant, so no new login is asked for.
const INVALID_REQUEST: &str = "invalid_request";
/// The client, not the grant, was refused (RFC 6749 5.2).
const INVALID_CLIENT: &str = "invalid_client";

/// A failed request to the provider.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The provider answered with an OAuth error.
    #[error("{url}: the provider refused: {error}{}", describe(.description))]
    Refused {
        url: String,
        error: String,
        description: Option<String>,
    },
    #[error(transparent)]
    Transport(#[from] HttpError),
    /// The answer was not a usable token response. Its body is never shown: it may hold
    /// tokens.
    #[error("{url}: unexpected response from the provider: {reason}")]
    BadResponse {
        url: String,
        reason: String,
        /// The HTTP status, when the answer was a non-success one.
        status: Option<u16>,
    },
    /// A success answer that is not a usable token response but holds a new refresh
    /// token: the provider may have spent the old one, so the new one must be kept.
    #[error("{url}: unexpected response from the provider: {reason}")]
    Incomplete {
        url: String,
        reason: String,
        refresh_token: Secret,
    },
}

fn describe(description: &Option<String>) -> String {
    match description {
        Some(d) => format!(" ({})", untrusted::clean(d)),
        None => String::new(),
    }
}

impl GrantError {
    /// An answer that is not what the protocol says, without a status worth keeping.
    pub fn bad_response(url: impl Into<String>, reason: impl Into<String>) -> GrantError {
        GrantError::BadResponse {
            url: url.into(),
            reason: reason.into(),
            status: None,
        }
    }

    /// The OAuth error code, if the provider sent one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            GrantError::Refused { error, .. } => Some(error),
            _ => None,
        }
    }

    /// True when the request evidently never reached a working endpoint, so a stale
    /// discovery document could explain it and one retry with a fresh one is safe (no
    /// refresh token can have been spent).
    pub fn may_be_stale_endpoint(&self) -> bool {
        match self {
            GrantError::Transport(e) => e.is_connect || matches!(e.status, Some(404 | 405)),
            GrantError::BadResponse { status, .. } => matches!(status, Some(404 | 405)),
            GrantError::Refused { .. } | GrantError::Incomplete { .. } => false,
        }
    }

    /// The HTTP status of an answer that was neither a success nor an OAuth error.
    fn bare_status(&self) -> Option<u16> {
        match self {
            GrantError::Transport(e) => e.status,
            GrantError::BadResponse { status, .. } => *status,
            GrantError::Refused { .. } | GrantError::Incomplete { .. } => None,
        }
    }

    /// For a refresh request: what the provider said, when its answer means the refresh
    /// grant is over and only a new login helps. That is any OAuth error but
    /// `invalid_request` (a malformed request) and `invalid_client` (the client, not the
    /// grant), and a bare `400` (RFC 6749 5.2 answers every grant error with 400; deployed
    /// providers send it without a body too). A 5xx is never one: `http` reports it as a
    /// server failure even when worded as an OAuth error.
    pub fn ends_refresh_grant(&self) -> Option<String> {
        match self {
            GrantError::Refused { error, .. }
                if error != INVALID_REQUEST && error != INVALID_CLIENT =>
            {
                Some(self.to_string())
            }
            _ if self.bare_status() == Some(400) => {
                Some(format!("{self} (no OAuth error in the answer)"))
            }
            _ => None,
        }
    }

    /// Whether the provider refused the client's credentials: `invalid_client`, or a bare
    /// `401` or `403` (some providers answer wrong credentials with 403 and no body).
    pub fn refuses_client_credentials(&self) -> bool {
        self.oauth_error() == Some(INVALID_CLIENT) || matches!(self.bare_status(), Some(401 | 403))
    }

    /// The refresh token of an answer that was otherwise unusable.
    pub fn rotated_refresh_token(&self) -> Option<&Secret> {
        match self {
            GrantError::Incomplete { refresh_token, .. } => Some(refresh_token),
            _ => None,
        }
    }
}

pub fn map_request_error<RE, T>(e: RequestTokenError<RE, T>, url: &str) -> GrantError
where
    RE: std::error::Error + Into<GrantError> + 'static,
    T: ErrorResponse + 'static + ErrorParts,
{
    match e {
        RequestTokenError::ServerResponse(err) => GrantError::Refused {
            url: url.to_string(),
            error: err.code(),
            description: err.description(),
        },
        RequestTokenError::Request(e) => e.into(),
        RequestTokenError::Parse(e, body) => {
            GrantError::bad_response(url, parse_failure(&e, &body))
        }
        RequestTokenError::Other(reason) => GrantError::BadResponse {
            url: url.to_string(),
            reason: scrub(&reason),
            status: unexpected_status(&reason),
        },
    }
}

/// The error code and description of an OAuth error response, whatever its type.
pub trait ErrorParts {
    fn code(&self) -> String;
    fn description(&self) -> Option<String>;
}

impl<T: openidconnect::ErrorResponseType + std::fmt::Display> ErrorParts
    for StandardErrorResponse<T>
{
    fn code(&self) -> String {
        self.error().to_string()
    }
    fn description(&self) -> Option<String> {
        self.error_description().cloned()
    }
}

// oauth2 says "Other" for a non-2xx answer that is not an OAuth error: keep its status
// line, drop anything that echoes the body.
fn scrub(reason: &str) -> String {
    if let Some(rest) = reason.strip_prefix("Server returned empty error response") {
        return format!("empty error response{rest}");
    }
    match reason.find("Unexpected response status code:") {
        Some(_) => reason
            .split_once("code:")
            .map(|(_, code)| format!("HTTP {}", code.split_whitespace().next().unwrap_or("")))
            .unwrap_or_else(|| "unexpected status".into()),
        None => untrusted::clean(reason),
    }
}

/// The status of oauth2's "Unexpected response status code" message.
fn unexpected_status(reason: &str) -> Option<u16> {
    let (_, code) = reason.split_once("Unexpected response status code:")?;
    code.split_whitespace().next()?.parse().ok()
}

fn parse_failure(e: &serde_path_to_error::Error<serde_json::Error>, body: &[u8]) -> String {
    let inner = e.inner();
    if body.is_empty() {
        return "empty body".into();
    }
    // The field path and the kind of problem say enough; serde's message could quote a value.
    let path = e.path().to_string();
    let what = match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            "not valid JSON".to_string()
        }
        _ => {
            let msg = inner.to_string();
            if msg.starts_with("missing field") {
                msg.split(" at line").next().unwrap_or(&msg).to_string()
            } else {
                "unexpected content".to_string()
            }
        }
    };
    if path == "." || path.is_empty() {
        what
    } else {
        format!("{what} at {path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: &str) -> GrantError {
        GrantError::Refused {
            url: "https://sso/token".into(),
            error: code.into(),
            description: Some("why".into()),
        }
    }

    fn bare(status: u16) -> GrantError {
        GrantError::Transport(HttpError {
            url: "https://sso/token".into(),
            cause: format!("HTTP {status}"),
            is_connect: false,
            is_timeout: false,
            status: Some(status),
        })
    }

    #[test]
    fn a_refresh_refused_with_400_ends_the_grant() {
        for code in [
            "invalid_grant",
            "unauthorized_client",
            "invalid_scope",
            "x_custom",
        ] {
            let said = refused(code).ends_refresh_grant().expect(code);
            assert!(said.contains(code) && said.contains("why"), "{said}");
        }
        let said = bare(400).ends_refresh_grant().unwrap();
        assert!(
            said.contains("HTTP 400") && said.contains("no OAuth error"),
            "{said}"
        );
        let bad = GrantError::BadResponse {
            url: "u".into(),
            reason: "HTTP 400".into(),
            status: Some(400),
        };
        assert!(bad.ends_refresh_grant().is_some());
        // Without a status (an unusable 200), nothing says the grant is over.
        assert_eq!(
            GrantError::bad_response("u", "empty body").ends_refresh_grant(),
            None
        );
    }

    #[test]
    fn a_malformed_request_or_a_server_fault_does_not_end_the_grant() {
        assert_eq!(refused("invalid_request").ends_refresh_grant(), None);
        assert_eq!(refused("invalid_client").ends_refresh_grant(), None);
        for status in [401, 403, 404, 429, 500, 502, 503] {
            assert_eq!(bare(status).ends_refresh_grant(), None, "{status}");
        }
    }

    #[test]
    fn client_credentials_refusals_are_told_however_they_come() {
        assert!(refused("invalid_client").refuses_client_credentials());
        assert!(bare(401).refuses_client_credentials());
        assert!(bare(403).refuses_client_credentials());
        assert!(!bare(400).refuses_client_credentials());
        assert!(!bare(500).refuses_client_credentials());
        assert!(!refused("invalid_grant").refuses_client_credentials());
    }

    #[test]
    fn scrub_keeps_status_only() {
        assert_eq!(
            scrub("Unexpected response status code: 500 Internal Server Error body: secret"),
            "HTTP 500"
        );
        assert_eq!(
            unexpected_status("Unexpected response status code: 404 Not Found"),
            Some(404)
        );
        assert_eq!(unexpected_status("something else"), None);
    }
}
