//! Token answers into sessions: the request (with one retry when a cached discovery document
//! is stale), and what the answer changes in the stored session.

use anyhow::Result;

use super::Sessions;
use super::grant::{Grant, GrantRequest};
use crate::clock;
use crate::config::Config;
use crate::jwt;
use crate::oidc::client::{Provider, Tokens};
use crate::oidc::discovery::Jwks;
use crate::oidc::error::GrantError;
use crate::token_store::Session;

/// Why [`Sessions::obtain`] got no tokens: the provider's answer, kept typed so that callers
/// can tell a refused grant from the rest, or anything before it (discovery).
#[derive(Debug)]
pub enum ObtainError {
    Grant(GrantError),
    Other(anyhow::Error),
}

impl From<ObtainError> for anyhow::Error {
    fn from(e: ObtainError) -> anyhow::Error {
        match e {
            ObtainError::Grant(e) => e.into(),
            ObtainError::Other(e) => e,
        }
    }
}

impl From<GrantError> for ObtainError {
    fn from(e: GrantError) -> ObtainError {
        ObtainError::Grant(e)
    }
}

impl From<anyhow::Error> for ObtainError {
    fn from(e: anyhow::Error) -> ObtainError {
        ObtainError::Other(e)
    }
}

impl Sessions<'_> {
    /// Makes the token request `grant`. When it fails in a way that a stale cached discovery
    /// document explains (endpoint moved or gone, so no token can have been spent), rediscovers
    /// once and tries again.
    pub async fn obtain(
        &self,
        http: &crate::http::HttpClient,
        grant: &GrantRequest<'_>,
    ) -> Result<Tokens, ObtainError> {
        let secret = grant.client_secret();
        let provider = self.provider(http, Jwks::NotNeeded, secret).await?;
        match grant.send(&provider, http, &self.config).await {
            Ok(tokens) => Ok(tokens),
            Err(e) if provider.docs.from_cache && e.may_be_stale_endpoint() => {
                tracing::info!(
                    "token request failed with a cached discovery document; rediscovering"
                );
                let docs = self.discovery(http).fetch(Jwks::NotNeeded).await?;
                let provider = Provider::new(docs, &self.config.client_id, secret)?;
                Ok(grant.send(&provider, http, &self.config).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A new session of `grant` from the tokens of an interactive login; `username` (from the
    /// validated ID token) where the access token names nobody.
    pub fn start(&self, grant: Grant, tokens: Tokens, username: Option<String>) -> Session {
        let mut session = session_from_tokens(&self.config, grant, tokens, None);
        if session.username.is_none() {
            session.username = username;
        }
        session
    }
}

/// Updates `session` (or starts one) from a token response.
pub(super) fn session_from_tokens(
    config: &Config,
    grant: Grant,
    tokens: Tokens,
    previous: Option<&Session>,
) -> Session {
    let now = clock::now();
    let access_claims = jwt::decode_claims(tokens.access_token.expose());
    let mut session = match previous {
        Some(p) if p.grant == grant => Session {
            grant,
            access_token: tokens.access_token.clone(),
            obtained_at: now,
            ..p.clone()
        },
        _ => Session::new(config, grant, tokens.access_token.clone(), now),
    };
    session.access_token_expires_at = tokens
        .expires_in
        .map(|d| now + d.as_secs() as i64)
        .or_else(|| access_claims.as_ref().and_then(|c| c.exp));
    if let Some(rt) = tokens.refresh_token {
        // Keycloak: refresh_expires_in 0 means an offline token with no fixed end.
        session.refresh_token_expires_at = match tokens.refresh_expires_in {
            Some(0) => None,
            Some(secs) => Some(now + secs as i64),
            None => jwt::decode_claims(rt.expose()).and_then(|c| c.exp),
        };
        session.refresh_token = Some(rt);
    }
    if let Some(id) = tokens.id_token {
        session.id_token = Some(id);
    }
    if let Some(claims) = access_claims {
        session.subject = claims.sub.clone().or(session.subject);
        session.username = claims.who().map(str::to_string).or(session.username);
    }
    session
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::FakeEnv;
    use crate::config::{self, Config};
    use crate::oidc::client::TokenResponse;
    use base64::Engine;

    fn config() -> Config {
        let text = "issuer='https://sso'\nclient_id='nix'\ncache_host='c'\nnetrc_path='/n'\n";
        config::parse(text, std::path::Path::new("/c"), None, &FakeEnv::default()).unwrap()
    }

    fn tokens(json: serde_json::Value) -> Tokens {
        let response: TokenResponse = serde_json::from_value(json).unwrap();
        Tokens::from(response)
    }

    fn jwt_with_exp(exp: i64) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64("{}"), b64(&format!("{{\"exp\":{exp}}}")))
    }

    #[test]
    fn keycloak_refresh_expires_in_sets_refresh_expiry() {
        let t = tokens(serde_json::json!({
            "access_token": "a", "token_type": "Bearer", "expires_in": 300,
            "refresh_token": "r", "refresh_expires_in": 1800
        }));
        let s = session_from_tokens(&config(), Grant::AuthorizationCode, t, None);
        let now = clock::now();
        assert!((s.access_token_expires_at.unwrap() - (now + 300)).abs() <= 2);
        assert!((s.refresh_token_expires_at.unwrap() - (now + 1800)).abs() <= 2);
    }

    #[test]
    fn offline_token_has_no_fixed_end() {
        let t = tokens(serde_json::json!({
            "access_token": "a", "token_type": "Bearer",
            "refresh_token": jwt_with_exp(1), "refresh_expires_in": 0
        }));
        let s = session_from_tokens(&config(), Grant::AuthorizationCode, t, None);
        assert_eq!(s.refresh_token_expires_at, None);
    }

    #[test]
    fn expiry_falls_back_to_jwt_exp() {
        let t = tokens(serde_json::json!({
            "access_token": jwt_with_exp(2_000_000_000), "token_type": "Bearer",
            "refresh_token": jwt_with_exp(2_000_000_100)
        }));
        let s = session_from_tokens(&config(), Grant::AuthorizationCode, t, None);
        assert_eq!(s.access_token_expires_at, Some(2_000_000_000));
        assert_eq!(s.refresh_token_expires_at, Some(2_000_000_100));
    }

    #[test]
    fn a_refresh_without_new_refresh_token_keeps_the_old_one() {
        let first = tokens(serde_json::json!({
            "access_token": "a1", "token_type": "Bearer", "refresh_token": "r1"
        }));
        let s1 = session_from_tokens(&config(), Grant::AuthorizationCode, first, None);
        let second = tokens(serde_json::json!({"access_token": "a2", "token_type": "Bearer"}));
        let s2 = session_from_tokens(&config(), Grant::AuthorizationCode, second, Some(&s1));
        assert_eq!(s2.access_token.expose(), "a2");
        assert_eq!(s2.refresh_token.as_ref().unwrap().expose(), "r1");
    }
}
