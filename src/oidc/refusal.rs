//! What a refused token request means, for providers as deployed rather than as RFC 6749
//! writes them: a dead refresh token may come back as a bare `400` with an empty body, and
//! wrong client credentials as a bare `403` instead of `401 invalid_client`.

use super::client::GrantError;

/// The OAuth error that means the request itself was malformed: a bug of ours (or of the
/// provider), not the end of the grant, so no new login is asked for.
const INVALID_REQUEST: &str = "invalid_request";
/// The client, not the grant, was refused (RFC 6749 5.2).
const INVALID_CLIENT: &str = "invalid_client";

impl GrantError {
    /// The HTTP status of an answer that was neither a success nor an OAuth error.
    fn bare_status(&self) -> Option<u16> {
        match self {
            GrantError::Transport(e) => e.status,
            GrantError::BadResponse { reason, .. } => reason
                .strip_prefix("HTTP ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|code| code.parse().ok()),
            GrantError::Refused { .. } | GrantError::Incomplete { .. } => None,
        }
    }

    /// For a refresh request: what the provider said when its answer means the refresh grant
    /// is over, so that only a new login helps. That is any `400` (RFC 6749 5.2 answers
    /// every grant error with 400, but deployed providers send it bare too) and any OAuth
    /// error, except `invalid_request` (a malformed request) and `invalid_client`.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::http::HttpError;

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
        };
        assert!(bad.ends_refresh_grant().is_some());
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
}
