//! The proof: `GET /nix-cache-info` with the credentials Nix would send.
//!
//! Nix (through curl) sends the netrc entry of the cache's host name as Basic auth,
//! `base64(login:password)`, on the first request. Doing the same shows whether the cache
//! takes what is in the netrc, whatever the other checks say.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, HeaderValue, LOCATION};

use crate::http::{HttpClient, describe_reqwest_error};
use crate::netrc;

/// The login and password of the netrc entry, as bytes: they go on the wire as they are.
pub struct Credentials {
    pub login: Vec<u8>,
    pub password: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The cache answered with this HTTP status.
    Status {
        url: String,
        status: u16,
        location: Option<String>,
    },
    /// No answer; the errors of every URL tried.
    Unreachable { errors: Vec<String> },
}

/// Asks `https://<cache_host>/nix-cache-info`; for a host that is this machine, plain
/// http as well when https gets no answer (test and development caches).
pub async fn probe(
    http: &HttpClient,
    cache_host: &str,
    credentials: Option<&Credentials>,
) -> Answer {
    let mut schemes = vec!["https"];
    if is_loopback(netrc::machine_name(cache_host)) {
        schemes.push("http");
    }
    let mut errors = Vec::new();
    for scheme in schemes {
        let url = format!("{scheme}://{cache_host}/nix-cache-info");
        let mut request = http.reqwest().get(&url);
        if let Some(c) = credentials {
            request = request.header(AUTHORIZATION, basic_auth(c));
        }
        match request.send().await {
            Ok(response) => {
                return Answer::Status {
                    url,
                    status: response.status().as_u16(),
                    location: response
                        .headers()
                        .get(LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                };
            }
            Err(e) => errors.push(format!("{url}: {}", describe_reqwest_error(&e))),
        }
    }
    Answer::Unreachable { errors }
}

fn basic_auth(c: &Credentials) -> HeaderValue {
    let mut pair = c.login.clone();
    pair.push(b':');
    pair.extend_from_slice(&c.password);
    let mut value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(pair)))
        .expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

/// A cache host that is this machine: the only kind doctor may talk to over plain http.
pub fn is_loopback(machine: &str) -> bool {
    machine.eq_ignore_ascii_case("localhost")
        || machine.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_login_colon_password() {
        let c = Credentials {
            login: b"nix-cache-login".to_vec(),
            password: b"tok".to_vec(),
        };
        let v = basic_auth(&c);
        assert!(v.is_sensitive());
        assert_eq!(
            v.to_str().unwrap(),
            format!("Basic {}", STANDARD.encode("nix-cache-login:tok"))
        );
    }

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1", "localhost", "::1", "127.1.2.3", "LOCALHOST"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["cache.example.com", "10.0.0.1", "localhost.example.com"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
