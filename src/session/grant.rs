//! The grants: how a session's tokens are obtained, and how it is stored.
//!
//! A new grant (a CI job's jwt-bearer or token-exchange grant, a client assertion, or a
//! "direct" grant whose externally obtained JWT is itself the access token) is added here: a
//! [`Grant`] variant says how its sessions are stored, renewed and started again, a
//! [`GrantRequest`] variant what is sent to the token endpoint. Every `match` on them is
//! exhaustive, so the compiler names whatever else must decide about the new grant.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::exit::NextStep;
use crate::http::HttpClient;
use crate::oidc::client::{Provider, Tokens};
use crate::oidc::error::GrantError;
use crate::oidc::federation::FederatedGrant;
use crate::secret::Secret;

/// How the stored tokens were obtained (the token store's `grant` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    AuthorizationCode,
    DeviceCode,
    ClientCredentials,
    /// `ci`: a CI job's own OIDC token, exchanged at the provider (jwt-bearer, token
    /// exchange, client assertion) or used as it is (direct).
    Ci,
}

/// How a session gets a new access token without a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// With its refresh token (`refresh`).
    RefreshToken,
    /// By making the grant again with credentials the machine holds (`service-account`).
    RepeatGrant,
}

impl Grant {
    pub fn renewal(self) -> Renewal {
        match self {
            Grant::AuthorizationCode | Grant::DeviceCode => Renewal::RefreshToken,
            Grant::ClientCredentials | Grant::Ci => Renewal::RepeatGrant,
        }
    }

    /// The command that starts a session of this grant afresh.
    pub fn start_step(self) -> NextStep {
        match self {
            Grant::AuthorizationCode | Grant::DeviceCode => NextStep::Login,
            Grant::ClientCredentials => NextStep::ServiceAccount,
            Grant::Ci => NextStep::Ci,
        }
    }

    /// For people: `browser login`, `service account`.
    pub fn describe(self) -> &'static str {
        match self {
            Grant::AuthorizationCode => "browser login",
            Grant::DeviceCode => "device login",
            Grant::ClientCredentials => "service account",
            Grant::Ci => "CI job",
        }
    }
}

/// A token request the session layer makes on its own, without a person at a browser. (The
/// interactive grants, browser and device, are run by `commands::login` through
/// `oidc::authorize` and `oidc::device`; their tokens enter through `Sessions::start`.)
pub enum GrantRequest<'a> {
    /// A user's session renewed with its refresh token.
    Refresh { refresh_token: &'a Secret },
    /// A service's own credentials: `client_secret_file`.
    ClientCredentials { secret: &'a Secret },
    /// A CI job's own token presented as `grant` says (`ci`); `secret` for a confidential
    /// client of the jwt-bearer or token-exchange grant.
    Federated {
        grant: FederatedGrant<'a>,
        job_token: &'a Secret,
        secret: Option<&'a Secret>,
    },
}

impl GrantRequest<'_> {
    /// The client secret the request authenticates with; none for a public client.
    pub fn client_secret(&self) -> Option<&Secret> {
        match self {
            GrantRequest::Refresh { .. } => None,
            GrantRequest::ClientCredentials { secret } => Some(secret),
            GrantRequest::Federated { secret, .. } => *secret,
        }
    }

    /// Sends the request to `provider`'s token endpoint.
    pub async fn send(
        &self,
        provider: &Provider,
        http: &HttpClient,
        config: &Config,
    ) -> Result<Tokens, GrantError> {
        match self {
            GrantRequest::Refresh { refresh_token } => provider.refresh(http, refresh_token).await,
            GrantRequest::ClientCredentials { .. } => {
                provider.client_credentials(http, &config.scopes).await
            }
            GrantRequest::Federated {
                grant,
                job_token,
                secret,
            } => {
                provider
                    .federated(http, *grant, job_token, *secret, &config.scopes)
                    .await
            }
        }
    }
}
