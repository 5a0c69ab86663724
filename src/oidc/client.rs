//! The OIDC client: built from the (cached) discovery documents, it makes the token,
//! revocation and device requests through `openidconnect`, and turns their failures into
//! errors that name the URL and the provider's own `error` and `error_description`.

use std::time::Duration;

use anyhow::{Context, Result};
use oauth2::TokenResponse as _;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthType, ClientId, ClientSecret, DeviceAuthorizationUrl,
    EmptyAdditionalClaims, EndpointMaybeSet, EndpointNotSet, EndpointSet, ErrorResponse,
    ExtraTokenFields, IdTokenFields, RequestTokenError, RevocationUrl, StandardErrorResponse,
    StandardTokenResponse, TokenResponse as OidcTokenResponse,
};
use serde::{Deserialize, Serialize};

use super::discovery::Documents;
use super::http::{HttpClient, HttpError};
use crate::secret::Secret;

/// Endpoints that `CoreProviderMetadata` does not model but this tool uses.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraProviderMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<RevocationUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
}
impl AdditionalProviderMetadata for ExtraProviderMetadata {}

pub type ProviderMetadata = openidconnect::ProviderMetadata<
    ExtraProviderMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Keycloak says how long the refresh token lives, outside the standard.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct KeycloakTokenFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
}
impl ExtraTokenFields for KeycloakTokenFields {}

pub type TokenResponse = StandardTokenResponse<
    IdTokenFields<
        EmptyAdditionalClaims,
        KeycloakTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

pub type OAuthErrorResponse = StandardErrorResponse<CoreErrorResponseType>;

/// The client as built from discovery; the device and revocation endpoints are set only by
/// the flows that use them (the type records which are set).
pub type OidcClientWith<Device = EndpointNotSet, Revocation = EndpointNotSet> =
    openidconnect::Client<
        EmptyAdditionalClaims,
        CoreAuthDisplay,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJsonWebKey,
        CoreAuthPrompt,
        OAuthErrorResponse,
        TokenResponse,
        CoreTokenIntrospectionResponse,
        CoreRevocableToken,
        CoreRevocationErrorResponse,
        EndpointSet,
        Device,
        EndpointNotSet,
        Revocation,
        EndpointMaybeSet,
        EndpointMaybeSet,
    >;
pub type OidcClient = OidcClientWith;
pub type RevokingClient = OidcClientWith<EndpointNotSet, EndpointSet>;

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
    BadResponse { url: String, reason: String },
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
        Some(d) => format!(
            " ({})",
            d.chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect::<String>()
        ),
        None => String::new(),
    }
}

impl GrantError {
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
            GrantError::BadResponse { reason, .. } => {
                reason.starts_with("HTTP 404") || reason.starts_with("HTTP 405")
            }
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

/// The tokens of one successful token response, with what the store needs to know.
pub struct Tokens {
    pub access_token: Secret,
    pub expires_in: Option<Duration>,
    pub refresh_token: Option<Secret>,
    pub refresh_expires_in: Option<u64>,
    pub id_token: Option<Secret>,
    pub response: TokenResponse,
}

impl From<TokenResponse> for Tokens {
    fn from(response: TokenResponse) -> Tokens {
        Tokens {
            access_token: Secret::new(response.access_token().secret().clone()),
            expires_in: response.expires_in(),
            refresh_token: response
                .refresh_token()
                .map(|t| Secret::new(t.secret().clone())),
            refresh_expires_in: response.extra_fields().extra_fields().refresh_expires_in,
            id_token: response.id_token().map(|t| Secret::new(t.to_string())),
            response,
        }
    }
}

pub struct Provider {
    pub docs: Documents,
    pub metadata: ProviderMetadata,
    pub client: OidcClient,
}

impl Provider {
    pub fn new(docs: Documents, client_id: &str, secret: Option<&Secret>) -> Result<Provider> {
        let mut metadata: ProviderMetadata = serde_json::from_value(docs.discovery.clone())
            .map_err(|e| {
                anyhow::anyhow!(
                    "the discovery document of {} is not valid: {e}",
                    docs.issuer
                )
            })?;
        if let Some(jwks) = &docs.jwks {
            let jwks: CoreJsonWebKeySet = serde_json::from_value(jwks.clone())
                .with_context(|| format!("the JWKS of {} is not valid", docs.issuer))?;
            metadata = metadata.set_jwks(jwks);
        }
        let auth_type = choose_auth_type(metadata.token_endpoint_auth_methods_supported());
        let client = OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(client_id.to_string()),
            secret.map(|s| ClientSecret::new(s.expose().to_string())),
        )
        .set_auth_type(auth_type);
        Ok(Provider {
            docs,
            metadata,
            client,
        })
    }

    pub fn token_url(&self) -> String {
        self.metadata
            .token_endpoint()
            .map(|u| u.to_string())
            .unwrap_or_else(|| format!("{} (no token_endpoint)", self.docs.issuer))
    }

    pub fn revocation_url(&self) -> Option<&RevocationUrl> {
        self.metadata
            .additional_metadata()
            .revocation_endpoint
            .as_ref()
    }

    pub fn device_authorization_url(&self) -> Option<&DeviceAuthorizationUrl> {
        self.metadata
            .additional_metadata()
            .device_authorization_endpoint
            .as_ref()
    }

    pub async fn refresh(
        &self,
        http: &HttpClient,
        refresh_token: &Secret,
    ) -> Result<Tokens, GrantError> {
        let token = openidconnect::RefreshToken::new(refresh_token.expose().to_string());
        let request = self
            .client
            .exchange_refresh_token(&token)
            .map_err(|e| self.config_error(e))?;
        let response = request.request_async(http).await;
        self.tokens(response)
    }

    pub async fn client_credentials(
        &self,
        http: &HttpClient,
        scopes: &[String],
    ) -> Result<Tokens, GrantError> {
        let mut request = self
            .client
            .exchange_client_credentials()
            .map_err(|e| self.config_error(e))?;
        for scope in scopes {
            request = request.add_scope(openidconnect::Scope::new(scope.clone()));
        }
        let response = request.request_async(http).await;
        self.tokens(response)
    }

    /// Maps a token endpoint result; the body of a bad response is never shown.
    pub fn tokens(
        &self,
        result: Result<TokenResponse, RequestTokenError<HttpError, OAuthErrorResponse>>,
    ) -> Result<Tokens, GrantError> {
        result.map(Tokens::from).map_err(|e| {
            let rotated = match &e {
                RequestTokenError::Parse(_, body) => refresh_token_in(body),
                _ => None,
            };
            match (map_request_error(e, &self.token_url()), rotated) {
                (GrantError::BadResponse { url, reason }, Some(refresh_token)) => {
                    GrantError::Incomplete {
                        url,
                        reason,
                        refresh_token,
                    }
                }
                (e, _) => e,
            }
        })
    }

    fn config_error(&self, e: openidconnect::ConfigurationError) -> GrantError {
        GrantError::BadResponse {
            url: self.docs.issuer.clone(),
            reason: format!("the discovery document is unusable: {e}"),
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
        RequestTokenError::Parse(e, body) => GrantError::BadResponse {
            url: url.to_string(),
            reason: parse_failure(&e, &body),
        },
        RequestTokenError::Other(reason) => GrantError::BadResponse {
            url: url.to_string(),
            reason: scrub(&reason),
        },
    }
}

/// The `refresh_token` of a JSON object, however broken the rest of it is.
fn refresh_token_in(body: &[u8]) -> Option<Secret> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = json.get("refresh_token")?.as_str()?;
    (!token.is_empty()).then(|| Secret::new(token))
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
        None => reason.chars().take(200).collect(),
    }
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

fn choose_auth_type(supported: Option<&Vec<CoreClientAuthMethod>>) -> AuthType {
    match supported {
        // RFC 8414: when absent, client_secret_basic is the default.
        None => AuthType::BasicAuth,
        Some(methods) if methods.contains(&CoreClientAuthMethod::ClientSecretBasic) => {
            AuthType::BasicAuth
        }
        Some(methods) if methods.contains(&CoreClientAuthMethod::ClientSecretPost) => {
            AuthType::RequestBody
        }
        Some(_) => AuthType::BasicAuth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_type_prefers_basic() {
        use CoreClientAuthMethod::{ClientSecretBasic, ClientSecretPost};
        assert!(matches!(choose_auth_type(None), AuthType::BasicAuth));
        assert!(matches!(
            choose_auth_type(Some(&vec![ClientSecretPost, ClientSecretBasic])),
            AuthType::BasicAuth
        ));
        assert!(matches!(
            choose_auth_type(Some(&vec![ClientSecretPost])),
            AuthType::RequestBody
        ));
    }

    #[test]
    fn a_refresh_token_is_found_in_an_unusable_answer() {
        let found = refresh_token_in(br#"{"token_type":"Bearer","refresh_token":"r2"}"#);
        assert_eq!(found.as_ref().map(Secret::expose), Some("r2"));
        assert!(refresh_token_in(br#"{"refresh_token":""}"#).is_none());
        assert!(refresh_token_in(br#"{"refresh_token":7}"#).is_none());
        assert!(refresh_token_in(br#"{"refresh_token":"r2""#).is_none());
    }

    #[test]
    fn scrub_keeps_status_only() {
        assert_eq!(
            scrub("Unexpected response status code: 500 Internal Server Error body: secret"),
            "HTTP 500"
        );
    }
}
