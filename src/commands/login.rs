//! `login`: Authorization Code + PKCE (S256) in the user's browser, back to a loopback
//! listener on 127.0.0.1, with `state` and `nonce` checked and the ID token validated.

use anyhow::{Context, Result};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, CsrfToken, Nonce, PkceCodeChallenge, RedirectUrl,
    Scope, TokenResponse as _,
};

use super::{Ctx, describe_expiry, session_from_tokens};
use crate::cli::LoginArgs;
use crate::oidc::client::{Provider, Tokens};
use crate::oidc::http::HttpClient;
use crate::oidc::loopback::CallbackListener;
use crate::token_store::Grant;

pub async fn run(ctx: &Ctx, args: &LoginArgs) -> Result<()> {
    ctx.check_writable()?;
    let http = HttpClient::new()?;
    let mut provider = ctx.provider(&http, true, None).await?;

    let listener = CallbackListener::bind(ctx.config.callback_port)
        .await?
        .with_label(ctx.config.cache_hosts.join(", "));
    let redirect_uri = listener.redirect_uri();
    let client = provider
        .client
        .clone()
        .set_redirect_uri(RedirectUrl::new(redirect_uri.clone()).context("bad redirect URI")?);

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    // openidconnect always sends `openid` itself.
    for scope in ctx.config.scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state, nonce) = request.url();

    eprintln!(
        "Log in to {} in your browser:\n\n  {url}\n",
        ctx.config.issuer_str()
    );
    if args.no_browser {
        eprintln!("(--no-browser: open the URL above yourself)");
    } else if let Err(e) = webbrowser::open(url.as_str()) {
        eprintln!("Could not open a browser ({e}); open the URL above yourself.");
    }
    eprintln!(
        "Waiting for the login to complete (up to {} s)...",
        args.timeout.as_secs()
    );

    let code = listener.wait(state.secret(), args.timeout).await?;
    let exchange = client
        .exchange_code(AuthorizationCode::new(code.expose().to_string()))
        .context("the provider's discovery document has no token endpoint")?
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await;
    let tokens = provider.tokens(exchange)?;

    let username = match verify_id_token(&provider, &tokens, &nonce) {
        Err(VerifyFailure::Signature) if provider.docs.from_cache => {
            // The provider may have rotated its keys since the JWKS was cached.
            tracing::info!("ID token signature did not verify with the cached JWKS; refetching");
            ctx.discovery(&http)
                .refresh_jwks(&mut provider.docs)
                .await?;
            provider = Provider::new(provider.docs, &ctx.config.client_id, None)?;
            verify_id_token(&provider, &tokens, &nonce).map_err(VerifyFailure::into_error)?
        }
        other => other.map_err(VerifyFailure::into_error)?,
    };

    let locked = ctx.store.lock()?;
    let mut session = session_from_tokens(&ctx.config, Grant::AuthorizationCode, tokens, None);
    if session.username.is_none() {
        session.username = username;
    }
    ctx.commit(&locked, &session, false)?;
    eprintln!(
        "Logged in{} to {}: {}",
        session
            .username
            .as_deref()
            .map(|u| format!(" as {u}"))
            .unwrap_or_default(),
        ctx.config.cache_hosts.join(", "),
        describe_expiry(&session)
    );
    Ok(())
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

/// Checks the ID token (signature by JWKS, issuer, audience, expiry, nonce) and returns the
/// user's preferred name.
fn verify_id_token(
    provider: &Provider,
    tokens: &Tokens,
    nonce: &Nonce,
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
