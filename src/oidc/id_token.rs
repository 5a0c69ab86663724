//! ID token validation: signature by the provider's JWKS (fetched again once when a cached key
//! set does not verify it: the provider may have rotated its keys), issuer, audience, expiry
//! and, for the browser flow, the nonce.

use anyhow::Result;
use openidconnect::{ClaimsVerificationError, Nonce, NonceVerifier, TokenResponse as _};

use super::client::{Provider, Tokens};
use super::discovery::Discovery;

/// Validates the ID token and returns the user's name from it. The browser flow must have one
/// carrying its `nonce`; the device flow has no nonce, and a provider may send no ID token
/// there. `provider` is rebuilt with the new keys when they had to be fetched again.
pub async fn validate(
    discovery: &Discovery<'_>,
    client_id: &str,
    provider: &mut Provider,
    tokens: &Tokens,
    nonce: Option<&Nonce>,
) -> Result<Option<String>> {
    if tokens.response.id_token().is_none() && nonce.is_none() {
        return Ok(None);
    }
    let verify = |provider: &Provider| match nonce {
        Some(nonce) => verify(provider, tokens, nonce),
        None => verify(provider, tokens, |_: Option<&Nonce>| Ok(())),
    };
    match verify(provider) {
        Err(VerifyFailure::Signature) if provider.docs.from_cache => {
            tracing::info!("ID token signature did not verify with the cached JWKS; refetching");
            discovery.refresh_jwks(&mut provider.docs).await?;
            let docs = provider.docs.clone();
            *provider = Provider::new(docs, client_id, None)?;
            verify(provider).map_err(VerifyFailure::into_error)
        }
        other => other.map_err(VerifyFailure::into_error),
    }
}

enum VerifyFailure {
    Signature,
    Other(String),
}

impl VerifyFailure {
    fn into_error(self) -> anyhow::Error {
        match self {
            VerifyFailure::Signature => {
                anyhow::anyhow!("the ID token's signature does not verify with the provider's keys")
            }
            VerifyFailure::Other(m) => anyhow::anyhow!("the ID token is not valid: {m}"),
        }
    }
}

/// Checks the ID token and returns the user's preferred name.
fn verify(
    provider: &Provider,
    tokens: &Tokens,
    nonce: impl NonceVerifier,
) -> Result<Option<String>, VerifyFailure> {
    let Some(id_token) = tokens.response.id_token() else {
        return Err(VerifyFailure::Other(
            "the provider sent no ID token (is `openid` among the scopes?)".into(),
        ));
    };
    match id_token.claims(&provider.client.id_token_verifier(), nonce) {
        Ok(claims) => Ok(claims
            .preferred_username()
            .map(|u| u.to_string())
            .or_else(|| claims.email().map(|e| e.to_string()))
            .or_else(|| Some(claims.subject().to_string()))),
        Err(ClaimsVerificationError::SignatureVerification(_)) => Err(VerifyFailure::Signature),
        Err(e) => Err(VerifyFailure::Other(e.to_string())),
    }
}
