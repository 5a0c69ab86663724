//! The device authorization grant (RFC 8628): the provider hands out a user code, the user
//! approves it in a browser on any device, and this tool polls the token endpoint until
//! then. For SSH sessions and machines without a browser.

use std::time::Duration;

use openidconnect::{
    DeviceAuthorizationResponse, DeviceCodeErrorResponseType, EmptyExtraDeviceAuthorizationFields,
    RequestTokenError,
};

use super::client::{Provider, Tokens};
use super::error::{GrantError, map_request_error};
use super::scopes::{self, ScopeUse};
use crate::exit::NextStep;
use crate::http::HttpClient;

/// Why the device flow ended without tokens.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("the provider's discovery document has no device_authorization_endpoint")]
    Unsupported,
    #[error("the login was denied at the provider (access_denied)")]
    Denied,
    #[error(
        "the code expired before the login was approved; run `{}` again",
        NextStep::Login
    )]
    Expired,
    #[error(transparent)]
    Grant(#[from] GrantError),
}

/// The provider's answer to the device authorization request: what the user must see.
pub struct DeviceAuthorization {
    response: DeviceAuthorizationResponse<EmptyExtraDeviceAuthorizationFields>,
}

impl DeviceAuthorization {
    /// Where the user goes to enter the code.
    pub fn verification_uri(&self) -> &str {
        self.response.verification_uri().as_str()
    }

    /// The same page with the code filled in, when the provider offers one.
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.response
            .verification_uri_complete()
            .map(|u| u.secret().as_str())
    }

    pub fn user_code(&self) -> &str {
        self.response.user_code().secret()
    }

    /// How long the code can be approved.
    pub fn expires_in(&self) -> Duration {
        self.response.expires_in()
    }
}

/// Asks the provider for a device code and a user code.
pub async fn authorize(
    provider: &Provider,
    http: &HttpClient,
    scopes: &[String],
) -> Result<DeviceAuthorization, DeviceError> {
    let url = provider
        .device_authorization_url()
        .ok_or(DeviceError::Unsupported)?
        .clone();
    let client = provider
        .client
        .clone()
        .set_device_authorization_url(url.clone());
    let mut request = client.exchange_device_code();
    for scope in scopes::requested(scopes, ScopeUse::UserLogin) {
        request = request.add_scope(scope);
    }
    let response = request
        .request_async(http)
        .await
        .map_err(|e| map_request_error(e, url.as_str()))?;
    Ok(DeviceAuthorization { response })
}

/// Polls the token endpoint until the user approved or denied the code, or it expired.
/// The wait honours the provider's `interval` and adds 5 s on every `slow_down`; a
/// network failure while polling backs off and retries (RFC 8628 3.5).
pub async fn poll(
    provider: &Provider,
    http: &HttpClient,
    authorization: &DeviceAuthorization,
) -> Result<Tokens, DeviceError> {
    let request = provider
        .client
        .exchange_device_access_token(&authorization.response)
        .map_err(|e| {
            GrantError::bad_response(
                &provider.docs.issuer,
                format!("the discovery document is unusable: {e}"),
            )
        })?;
    // `None`: poll until the code expires; the caller bounds the wait with --timeout.
    let result = request.request_async(http, tokio::time::sleep, None).await;
    match result {
        Ok(response) => Ok(Tokens::from(response)),
        Err(RequestTokenError::ServerResponse(e))
            if *e.error() == DeviceCodeErrorResponseType::AccessDenied =>
        {
            Err(DeviceError::Denied)
        }
        Err(RequestTokenError::ServerResponse(e))
            if *e.error() == DeviceCodeErrorResponseType::ExpiredToken =>
        {
            Err(DeviceError::Expired)
        }
        Err(e) => Err(map_request_error(e, &provider.token_url()).into()),
    }
}
