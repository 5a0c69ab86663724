//! How a request to the provider fails, told without anything that could be a token.

use openidconnect::{ErrorResponse, RequestTokenError, StandardErrorResponse};

use crate::http::HttpError;
use crate::secret::Secret;
use crate::untrusted;

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
