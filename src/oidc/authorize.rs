//! The authorization code grant with PKCE (S256): the URL the browser opens, and the code
//! exchange once the provider sent the browser back to the loopback listener.

use anyhow::{Context, Result};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
};
use url::Url;

use super::client::{OidcClient, Provider, Tokens};
use super::error::GrantError;
use super::loopback;
use super::scopes::{self, ScopeUse};
use crate::http::HttpClient;

/// One authorization request in flight: what the browser opens, and what the answer is checked
/// against (`state`, `nonce`, the PKCE verifier).
pub struct Authorization {
    client: OidcClient,
    url: Url,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

impl Authorization {
    /// A new request with fresh `state`, `nonce` and PKCE verifier, for the answer to come
    /// back to `redirect_uri`.
    pub fn new(provider: &Provider, redirect_uri: String, scopes: &[String]) -> Result<Self> {
        let client = provider
            .client
            .clone()
            .set_redirect_uri(RedirectUrl::new(redirect_uri).context("bad redirect URI")?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in scopes::requested(scopes, ScopeUse::UserLogin) {
            request = request.add_scope(scope);
        }
        let (url, state, nonce) = request.url();
        Ok(Authorization {
            client,
            url,
            state,
            nonce,
            verifier,
        })
    }

    /// The URL to open in the browser.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The `state` the callback must carry back.
    pub fn state(&self) -> &str {
        self.state.secret()
    }

    /// Exchanges the code from the callback for tokens. Returns them with the nonce the ID
    /// token must carry.
    pub async fn exchange(
        self,
        provider: &Provider,
        http: &HttpClient,
        code: loopback::AuthorizationCode,
    ) -> Result<(Tokens, Nonce)> {
        let exchange = self
            .client
            .exchange_code(AuthorizationCode::new(code.expose().to_string()))
            .context("the provider's discovery document has no token endpoint")?
            .set_pkce_verifier(self.verifier)
            .request_async(http)
            .await;
        let tokens: Result<Tokens, GrantError> = provider.tokens(exchange);
        Ok((tokens?, self.nonce))
    }
}
