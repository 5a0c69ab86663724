//! Token requests that present a CI job's own JWT instead of a stored secret.
//!
//! - JWT Authorization Grant, RFC 7523 §2.1 (Keycloak 26.6);
//! - token exchange, RFC 8693 (providers that take external tokens that way);
//! - client credentials with the JWT as client assertion, RFC 7523 §2.2 (Keycloak 26.6
//!   federated client authentication, Entra workload identity federation).
//!
//! `oauth2` models none of the first two, so they are built here and sent through the same
//! HTTP client; their answers go through [`Provider::tokens`] like every other grant's, so
//! errors read the same and no body is ever shown.

use oauth2::{AsyncHttpClient, AuthType, RequestTokenError};

use super::client::{OAuthErrorResponse, Provider, TokenResponse, Tokens};
use super::error::GrantError;
use super::scopes::{self, ScopeUse};
use crate::ci::SubjectTokenType;
use crate::http::{HttpClient, HttpError};
use crate::secret::Secret;

pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Which federated request to make with the job's token.
#[derive(Debug, Clone, Copy)]
pub enum FederatedGrant<'a> {
    JwtBearer,
    TokenExchange {
        subject_token_type: SubjectTokenType,
        audience: Option<&'a str>,
    },
    ClientAssertion,
}

impl Provider {
    /// Presents `job_token` to the token endpoint as `grant` says. `secret` authenticates the
    /// client for the jwt-bearer and token-exchange grants of a confidential client; the
    /// client-assertion grant is authenticated by the job's token alone. `configured` are the
    /// config's scopes (a machine's: no user-only ones are sent).
    pub async fn federated(
        &self,
        http: &HttpClient,
        grant: FederatedGrant<'_>,
        job_token: &Secret,
        secret: Option<&Secret>,
        configured: &[String],
    ) -> Result<Tokens, GrantError> {
        let token_url = self.token_url();
        let scope = scopes::requested(configured, ScopeUse::Service)
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let mut params: Vec<(&str, &str)> = match grant {
            FederatedGrant::JwtBearer => vec![
                ("grant_type", JWT_BEARER_GRANT),
                ("assertion", job_token.expose()),
            ],
            FederatedGrant::TokenExchange {
                subject_token_type,
                audience,
            } => {
                let mut p = vec![
                    ("grant_type", TOKEN_EXCHANGE_GRANT),
                    ("subject_token", job_token.expose()),
                    ("subject_token_type", subject_token_type.urn()),
                    ("requested_token_type", ACCESS_TOKEN_TYPE),
                ];
                if let Some(audience) = audience {
                    p.push(("audience", audience));
                }
                p
            }
            FederatedGrant::ClientAssertion => vec![
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER_ASSERTION),
                ("client_assertion", job_token.expose()),
            ],
        };
        if !scope.is_empty() {
            params.push(("scope", &scope));
        }
        let client_id = self.client.client_id().as_str();
        let basic = match (grant, secret, self.client.auth_type()) {
            (FederatedGrant::ClientAssertion, _, _) | (_, None, _) => {
                params.push(("client_id", client_id));
                None
            }
            (_, Some(secret), AuthType::RequestBody) => {
                params.push(("client_id", client_id));
                params.push(("client_secret", secret.expose()));
                None
            }
            (_, Some(secret), _) => Some(basic_credentials(client_id, secret)),
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(&token_url)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        if let Some(basic) = basic {
            request = request.header(http::header::AUTHORIZATION, basic);
        }
        let request = request.body(body.into_bytes()).map_err(|e| {
            GrantError::bad_response(&token_url, format!("cannot build the request: {e}"))
        })?;
        tracing::debug!(grant = ?grant_name(grant), "POST {token_url}");
        self.tokens(token_response(http.call(request).await))
    }
}

fn grant_name(grant: FederatedGrant<'_>) -> &'static str {
    match grant {
        FederatedGrant::JwtBearer => "jwt-bearer",
        FederatedGrant::TokenExchange { .. } => "token-exchange",
        FederatedGrant::ClientAssertion => "client-assertion",
    }
}

/// RFC 6749 §2.3.1: id and secret are form-encoded before they are joined.
fn basic_credentials(client_id: &str, secret: &Secret) -> String {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(client_id), enc(secret.expose()));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// An answer of the token endpoint as `oauth2` would read it: 200 is a token response,
/// anything else (the HTTP client lets through only OAuth error bodies) an error response.
fn token_response(
    answer: Result<oauth2::HttpResponse, HttpError>,
) -> Result<TokenResponse, RequestTokenError<HttpError, OAuthErrorResponse>> {
    let answer = answer.map_err(RequestTokenError::Request)?;
    let body = answer.body().as_slice();
    if answer.status() != http::StatusCode::OK {
        let error: OAuthErrorResponse = serde_json::from_slice(body).map_err(|_| {
            RequestTokenError::Other(format!(
                "Unexpected response status code: {}",
                answer.status().as_u16()
            ))
        })?;
        return Err(RequestTokenError::ServerResponse(error));
    }
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body))
        .map_err(|e| RequestTokenError::Parse(e, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Result<oauth2::HttpResponse, HttpError> {
        Ok(http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap())
    }

    #[test]
    fn a_token_answer_is_read() {
        let t = token_response(answer(
            200,
            r#"{"access_token":"at","token_type":"Bearer","expires_in":60,"issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}"#,
        ))
        .unwrap();
        assert_eq!(Tokens::from(t).access_token.expose(), "at");
    }

    #[test]
    fn an_oauth_error_is_a_refusal() {
        let e = token_response(answer(
            400,
            r#"{"error":"invalid_grant","error_description":"aud mismatch"}"#,
        ))
        .unwrap_err();
        assert!(matches!(e, RequestTokenError::ServerResponse(_)));
    }

    #[test]
    fn a_broken_success_is_a_parse_error() {
        let e = token_response(answer(200, r#"{"token_type":"Bearer"}"#)).unwrap_err();
        assert!(matches!(e, RequestTokenError::Parse(..)));
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        let b = basic_credentials("a b", &Secret::new("p:w"));
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(raw).unwrap(), "a+b:p%3Aw");
    }
}
