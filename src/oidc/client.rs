//! The provider's client, built from the (cached) discovery documents, and the token requests
//! that need nothing but it: refresh and client credentials. Every token answer becomes
//! [`Tokens`] here, and every failure a [`GrantError`].

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
    EmptyAdditionalClaims, EndpointMaybeSet, EndpointNotSet, EndpointSet, ExtraTokenFields,
    IdTokenFields, RequestTokenError, RevocationUrl, StandardErrorResponse, StandardTokenResponse,
    TokenResponse as OidcTokenResponse,
};
use serde::{Deserialize, Serialize};

use super::discovery::Documents;
use super::error::{GrantError, map_request_error};
use super::scopes::{self, ScopeUse};
use crate::http::{HttpClient, HttpError};
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

    /// The client-credentials grant, asking for the `configured` scopes a service may have.
    pub async fn client_credentials(
        &self,
        http: &HttpClient,
        configured: &[String],
    ) -> Result<Tokens, GrantError> {
        let mut request = self
            .client
            .exchange_client_credentials()
            .map_err(|e| self.config_error(e))?;
        for scope in scopes::requested(configured, ScopeUse::Service) {
            request = request.add_scope(scope);
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
                (GrantError::BadResponse { url, reason, .. }, Some(refresh_token)) => {
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
        GrantError::bad_response(
            &self.docs.issuer,
            format!("the discovery document is unusable: {e}"),
        )
    }
}

/// The `refresh_token` of a JSON object, however broken the rest of it is.
fn refresh_token_in(body: &[u8]) -> Option<Secret> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = json.get("refresh_token")?.as_str()?;
    (!token.is_empty()).then(|| Secret::new(token))
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
}
