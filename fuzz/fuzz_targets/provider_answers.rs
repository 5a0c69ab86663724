//! What a provider answers, parsed as the flows parse it: a discovery document (the first
//! byte even) or a token endpoint's success answer (odd). Either it is taken, with every
//! endpoint https and an access token curl reads as one netrc word, or it is refused with one
//! clean, bounded line; never a panic (overflow checks are on).

#![no_main]

use libfuzzer_sys::fuzz_target;
use nix_cache_login::clock;
use nix_cache_login::netrc;
use nix_cache_login::oidc::client::Provider;
use nix_cache_login::oidc::discovery::{self, Documents};

const ISSUER: &str = "https://sso.example/realms/r";
const URL: &str = "https://sso.example/realms/r/.well-known/openid-configuration";

fn documents(discovery: serde_json::Value) -> Documents {
    Documents {
        issuer: ISSUER.to_string(),
        discovery,
        fetched_at: 0,
        expires_at: 0,
        jwks: None,
        jwks_expires_at: 0,
        from_cache: false,
    }
}

/// One line, no control character, not longer than cleaned provider text allows.
fn assert_one_clean_line(message: &str) {
    assert!(
        !message.chars().any(char::is_control),
        "control character in {message:?}"
    );
    assert!(message.len() <= 4096, "{} bytes: {message:?}", message.len());
}

fn discovery_document(body: &[u8]) {
    // Bytes that are not JSON at all are serde's to refuse, and the HTTP layer's to report.
    let Ok(document) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let provider = discovery::check_document(URL, ISSUER, &document)
        .and_then(|()| Provider::new(documents(document), "nix", None));
    match provider {
        Ok(provider) => {
            let token_url = provider.token_url();
            assert!(token_url.starts_with("https://"), "{token_url}");
            if let Some(url) = provider.revocation_url() {
                assert_eq!(url.url().scheme(), "https");
            }
        }
        Err(e) => assert_one_clean_line(&format!("{e:#}")),
    }
}

fn token_answer(body: &[u8]) {
    let healthy = serde_json::json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{ISSUER}/auth"),
        "token_endpoint": format!("{ISSUER}/token"),
        "jwks_uri": format!("{ISSUER}/certs"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let provider = Provider::new(documents(healthy), "nix", None).expect("a healthy document");
    match provider.parse_token_answer(body) {
        Ok(tokens) => {
            assert!(netrc::is_plain_word(tokens.access_token.expose()));
            let now = clock::now();
            let at = clock::after(now, tokens.expires_in.map_or(0, |d| d.as_secs()));
            assert!(at >= now && at <= now + clock::MAX_LIFETIME_SECS as i64);
            let _ = clock::after(now, tokens.refresh_expires_in.unwrap_or(0));
        }
        Err(e) => assert_one_clean_line(&e.to_string()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    if selector % 2 == 0 {
        discovery_document(body);
    } else {
        token_answer(body);
    }
});
