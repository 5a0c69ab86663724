//! The endpoints a discovery document names, checked once, where the document is read, before
//! anything is sent to any of them.
//!
//! The config checks only the issuer's scheme; the document could still send the refresh
//! token (to the revocation endpoint) or the client secret (Basic auth at the token endpoint)
//! in the clear. So every endpoint must be https, unless the issuer itself is a plain-http
//! loopback issuer (a local test provider), and then only on a loopback host too.

use std::net::IpAddr;

use url::{Host, Url};

use crate::untrusted;

/// Longer than this is no endpoint URL but an attempt to fill error lines and memory.
pub const MAX_URL_LEN: usize = 2048;

/// Why a discovery document's endpoint is refused.
#[derive(Debug, thiserror::Error)]
#[error("{issuer}: the discovery document's {key} {problem}; nothing is sent to it")]
pub struct EndpointError {
    pub issuer: String,
    pub key: String,
    pub problem: String,
}

/// Whether a key of a discovery document names an endpoint the tool may talk to.
fn is_endpoint(key: &str) -> bool {
    key.ends_with("_endpoint") || key == "jwks_uri"
}

/// Checks every endpoint of `document` (the discovery JSON of `issuer`).
pub fn check(document: &serde_json::Value, issuer: &str) -> Result<(), EndpointError> {
    let plain_http_ok = Url::parse(issuer)
        .is_ok_and(|url| url.scheme() == "http" && url.host().is_some_and(|h| is_loopback(&h)));
    let Some(fields) = document.as_object() else {
        return Ok(());
    };
    for (key, value) in fields.iter().filter(|(key, _)| is_endpoint(key)) {
        let refuse = |problem: String| EndpointError {
            issuer: issuer.to_string(),
            key: untrusted::clean(key),
            problem,
        };
        let text = value
            .as_str()
            .ok_or_else(|| refuse("is not a string".into()))?;
        if text.len() > MAX_URL_LEN {
            return Err(refuse(format!(
                "is {} bytes long (at most {MAX_URL_LEN})",
                text.len()
            )));
        }
        let shown = untrusted::clean(text);
        let url = Url::parse(text).map_err(|_| refuse(format!("{shown:?} is not a URL")))?;
        match url.scheme() {
            "https" => {}
            "http" if plain_http_ok && url.host().is_some_and(|h| is_loopback(&h)) => {}
            _ => return Err(refuse(format!("{shown} is not https"))),
        }
    }
    Ok(())
}

/// RFC 9207: a provider that says it sends `iss` in the authorization response must send it.
pub fn requires_iss_in_callback(document: &serde_json::Value) -> bool {
    document
        .get("authorization_response_iss_parameter_supported")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HTTPS: &str = "https://sso.example/realms/r";

    fn doc(key: &str, value: serde_json::Value) -> serde_json::Value {
        json!({
            "issuer": HTTPS,
            "authorization_endpoint": "https://sso.example/auth",
            "token_endpoint": "https://sso.example/token",
            "service_documentation": "http://docs.example/",
            key: value,
        })
    }

    #[test]
    fn every_endpoint_of_an_https_issuer_must_be_https() {
        assert!(check(&doc("jwks_uri", json!("https://sso.example/certs")), HTTPS).is_ok());
        for key in [
            "authorization_endpoint",
            "token_endpoint",
            "device_authorization_endpoint",
            "revocation_endpoint",
            "jwks_uri",
            "userinfo_endpoint",
            "end_session_endpoint",
            "introspection_endpoint",
        ] {
            for url in ["http://sso.example/x", "http://127.0.0.1/x", "ftp://sso/x"] {
                let e = check(&doc(key, json!(url)), HTTPS).unwrap_err().to_string();
                assert!(
                    e.contains(key) && e.contains(url) && e.contains(HTTPS),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn a_loopback_http_issuer_may_use_loopback_http_endpoints_only() {
        let issuer = "http://127.0.0.1:8080";
        assert!(
            check(
                &doc("revocation_endpoint", json!("http://127.0.0.1:8080/r")),
                issuer
            )
            .is_ok()
        );
        assert!(
            check(
                &doc("revocation_endpoint", json!("http://localhost:9/r")),
                issuer
            )
            .is_ok()
        );
        let e = check(
            &doc("revocation_endpoint", json!("http://sso.example/r")),
            issuer,
        );
        assert!(e.unwrap_err().to_string().contains("revocation_endpoint"));
    }

    #[test]
    fn hostile_values_are_refused_in_one_clean_bounded_line() {
        let long = format!("https://sso.example/{}", "a".repeat(65_536));
        for value in [
            json!(long),
            json!(42),
            json!({"nested": "https://x"}),
            json!("not a url \u{1b}[2J"),
            json!("http://sso.example/\u{1b}]0;owned\u{7}"),
        ] {
            let e = check(&doc("token_endpoint", value.clone()), HTTPS).unwrap_err();
            let text = e.to_string();
            assert!(text.len() < 1024, "{value}: {} bytes", text.len());
            assert!(!text.chars().any(char::is_control), "{text:?}");
            assert!(text.contains("token_endpoint"), "{text}");
        }
        let key = "x\u{1b}[2J_endpoint";
        let e = check(&doc(key, json!("http://a/")), HTTPS).unwrap_err();
        assert!(!e.to_string().chars().any(char::is_control));
    }

    #[test]
    fn iss_requirement_is_read_from_the_document() {
        assert!(requires_iss_in_callback(
            &json!({"authorization_response_iss_parameter_supported": true})
        ));
        assert!(!requires_iss_in_callback(
            &json!({"authorization_response_iss_parameter_supported": "yes"})
        ));
        assert!(!requires_iss_in_callback(&json!({})));
    }
}
