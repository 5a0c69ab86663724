//! `login`: Authorization Code + PKCE (S256) in the user's browser, back to a loopback
//! listener on 127.0.0.1, with `state` and `nonce` checked; or, where no browser can be
//! used (SSH, headless), the device flow. Either way the ID token is validated.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use openidconnect::Nonce;

use super::describe_expiry;
use crate::cli::LoginArgs;
use crate::config::Config;
use crate::exit::ConfigError;
use crate::http::HttpClient;
use crate::oidc::authorize::Authorization;
use crate::oidc::client::{Provider, Tokens};
use crate::oidc::device::{self, DeviceAuthorization};
use crate::oidc::discovery::Jwks;
use crate::oidc::endpoints;
use crate::oidc::flow::{self, Flow};
use crate::oidc::id_token;
use crate::oidc::loopback::{CallbackError, CallbackListener, IssParameter};
use crate::session::{Grant, IfNetrcFails, Sessions};
use crate::untrusted;

pub async fn run(sessions: &Sessions<'_>, args: &LoginArgs) -> Result<()> {
    let config = sessions.config();
    sessions.check_writable()?;
    let http = sessions.http()?;
    let mut provider = sessions.provider(&http, Jwks::Needed, None).await?;
    if args.device && provider.device_authorization_url().is_none() && provider.docs.from_cache {
        // The cached document may predate the provider enabling the device flow.
        let docs = sessions.discovery(&http).fetch(Jwks::Needed).await?;
        provider = Provider::new(docs, &config.client_id, None)?;
    }

    let choice = flow::choose(
        args.asked_flow(),
        provider.device_authorization_url().is_some(),
        sessions.env(),
    )
    .map_err(|reason| ConfigError::invalid(format!("{}: {reason}", config.issuer_str())))?;
    eprintln!("Using the {} flow: {}.", choice.flow.name(), choice.why);

    let (grant, tokens, nonce) = match choice.flow {
        Flow::Browser => match browser_login(config, &http, &provider, args, choice.may_fall_back)
            .await?
        {
            BrowserLogin::Done(tokens, nonce) => (Grant::AuthorizationCode, *tokens, Some(nonce)),
            BrowserLogin::NoBrowser => {
                let tokens = device_login(config, &http, &provider, args.timeout).await?;
                (Grant::DeviceCode, tokens, None)
            }
        },
        Flow::Device => {
            let tokens = device_login(config, &http, &provider, args.timeout).await?;
            (Grant::DeviceCode, tokens, None)
        }
    };
    let username = id_token::validate(
        &sessions.discovery(&http),
        &config.client_id,
        &mut provider,
        &tokens,
        nonce.as_ref(),
    )
    .await?;

    let locked = sessions.lock()?;
    let session = sessions.start(grant, tokens, username);
    sessions.commit(&locked, &session, IfNetrcFails::RestoreStore)?;
    eprintln!(
        "Logged in{} to {}: {}",
        session
            .username
            .as_deref()
            .map(|u| format!(" as {}", untrusted::clean(u)))
            .unwrap_or_default(),
        config.cache_hosts.join(", "),
        describe_expiry(&session)
    );
    Ok(())
}

enum BrowserLogin {
    Done(Box<Tokens>, Nonce),
    /// No browser could be opened, and the device flow may take over.
    NoBrowser,
}

async fn browser_login(
    config: &Config,
    http: &HttpClient,
    provider: &Provider,
    args: &LoginArgs,
    may_fall_back: bool,
) -> Result<BrowserLogin> {
    let iss = if endpoints::requires_iss_in_callback(&provider.docs.discovery) {
        IssParameter::Required
    } else {
        IssParameter::Optional
    };
    let listener = CallbackListener::bind(config.callback_port)
        .await?
        .with_label(config.cache_hosts.join(", "))
        .expecting_issuer(config.issuer_str(), iss);
    let redirect_uri = listener.redirect_uri();
    let authorization = Authorization::new(provider, redirect_uri.clone(), &config.scopes)?;
    let url = authorization.url();

    let opened = if args.no_browser {
        Ok(())
    } else {
        webbrowser::open(url.as_str())
    };
    if let Err(e) = &opened
        && may_fall_back
    {
        eprintln!("Could not open a browser ({e}); using the device flow instead.");
        return Ok(BrowserLogin::NoBrowser);
    }
    eprintln!(
        "Log in to {} in your browser:\n\n  {url}\n",
        config.issuer_str()
    );
    if args.no_browser {
        eprintln!("(--no-browser: open the URL above yourself)");
    } else if let Err(e) = opened {
        eprintln!("Could not open a browser ({e}); open the URL above yourself.");
    }
    eprintln!(
        "Waiting for the login to complete (up to {} s)...",
        args.timeout.as_secs()
    );

    let code = listener
        .wait(authorization.state(), args.timeout)
        .await
        .map_err(|e| with_redirect_hint(e, config, &redirect_uri))?;
    let (tokens, nonce) = authorization.exchange(provider, http, code).await?;
    Ok(BrowserLogin::Done(Box::new(tokens), nonce))
}

/// A login that times out is often a redirect URI the provider refused: the browser then
/// shows the provider's error page and no callback ever comes. Say what to do about that.
fn with_redirect_hint(e: CallbackError, config: &Config, redirect_uri: &str) -> anyhow::Error {
    if !matches!(e, CallbackError::TimedOut(_)) {
        return e.into();
    }
    let source = config.source.display();
    let hint = if config.callback_port == 0 {
        format!(
            "if the browser stopped at an error page of the provider (invalid redirect_uri), it \
             matches redirect URIs exactly, port included: register \
             http://127.0.0.1:PORT/callback there with a fixed PORT and set callback_port = PORT \
             in {source}"
        )
    } else {
        format!(
            "if the browser stopped at an error page of the provider (invalid redirect_uri), \
             register {redirect_uri} there exactly as written (callback_port in {source})"
        )
    };
    anyhow::anyhow!("{e}; {hint}")
}

async fn device_login(
    config: &Config,
    http: &HttpClient,
    provider: &Provider,
    timeout: Duration,
) -> Result<Tokens> {
    let authorization = device::authorize(provider, http, &config.scopes).await?;
    show_user_code(config, &authorization);
    eprintln!(
        "Waiting for the login to be approved (up to {} s)...",
        timeout.min(authorization.expires_in()).as_secs()
    );
    match tokio::time::timeout(timeout, device::poll(provider, http, &authorization)).await {
        Ok(tokens) => Ok(tokens?),
        Err(_) => anyhow::bail!(
            "the login was not approved within {} seconds; run the login again and approve it in the browser",
            timeout.as_secs()
        ),
    }
}

/// Tells the user where to go and what to type; stdout stays empty. All three come from the
/// provider, so they are shown cleaned (the QR code encodes the link, it does not print it).
fn show_user_code(config: &Config, authorization: &DeviceAuthorization) {
    eprintln!(
        "To log in to {}, open this page in a browser on any device and enter the code:\n\n  {}\n  code: {}\n",
        config.issuer_str(),
        untrusted::clean(authorization.verification_uri()),
        untrusted::clean(authorization.user_code())
    );
    if let Some(complete) = authorization.verification_uri_complete() {
        eprintln!(
            "Or open this link, which has the code in it:\n\n  {}\n",
            untrusted::clean(complete)
        );
        if std::io::stderr().is_terminal()
            && let Some(qr) = qr_code(complete)
        {
            eprintln!("{qr}");
        }
    }
}

/// The URL as a QR code of half-height block characters, for a phone's camera. Drawn
/// light-on-dark like `qrencode -t UTF8`: most terminals have a dark background.
fn qr_code(url: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::L).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_code_renders() {
        let qr = qr_code("https://idp.example/device?user_code=ABCD-EFGH").unwrap();
        assert!(qr.lines().count() > 10);
    }
}
