//! `cache`, the proof: `GET /nix-cache-info` with the credentials Nix would send, and what
//! its answer means.
//!
//! Nix (through curl) sends the netrc entry of the cache's host name as Basic auth,
//! `base64(login:password)`, on the first request. Doing the same shows whether the cache
//! takes what is in the netrc, whatever the other checks say.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, HeaderValue, LOCATION};

use super::Check;
use super::netrc_entry::NetrcRead;
use super::run::Doctor;
use super::token::TokenFacts;
use crate::config::Config;
use crate::http::{self, HttpClient};
use crate::netrc;
use crate::token_store::Session;

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
    if http::is_loopback(netrc::machine_name(cache_host)) {
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
            Err(e) => errors.push(format!("{url}: {}", http.describe_error(&e))),
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

impl Doctor<'_> {
    /// The proof, per cache host: what the cache says to the netrc's credentials.
    pub(super) fn cache_checks(
        &self,
        config: &Config,
        netrc: &NetrcRead,
        session: Option<&Session>,
    ) -> Vec<Check> {
        let http = match &self.http {
            Ok(http) => http,
            Err(e) => return vec![Check::skip("cache", format!("no HTTP client: {e}"))],
        };
        config
            .cache_hosts
            .iter()
            .map(|host| {
                let machine = netrc::machine_name(host);
                let credentials = match netrc {
                    Ok(Some((_, file))) => file.get(machine).and_then(|e| {
                        e.password.map(|password| Credentials {
                            login: e.login.unwrap_or_default(),
                            password,
                        })
                    }),
                    _ => None,
                };
                let answer = self
                    .runtime
                    .block_on(probe(http, host, credentials.as_ref()));
                self.cache_check(config, host, credentials.as_ref(), session, answer)
                    .for_host(host)
            })
            .collect()
    }

    fn cache_check(
        &self,
        config: &Config,
        host: &str,
        credentials: Option<&Credentials>,
        session: Option<&Session>,
        answer: Answer,
    ) -> Check {
        let (url, status, location) = match answer {
            Answer::Unreachable { errors } => {
                return Check::fail(
                    "cache",
                    format!("cannot reach the cache: {}", errors.join("; ")),
                    format!(
                        "check cache_host {host:?} in {} (the host and port of the substituter \
                         URL), the network and proxy, and that Nix trusts its certificate \
                         (NIX_SSL_CERT_FILE)",
                        config.source.display()
                    ),
                );
            }
            Answer::Status {
                url,
                status,
                location,
            } => (url, status, location),
        };
        let facts = credentials.map(|c| TokenFacts::of(&c.password));
        let (why_403, ask_401) = forbidden_costs(status);
        match (status, &facts) {
            (200, Some(_)) => Check::ok(
                "cache",
                format!("{url}: HTTP 200 with the netrc's credentials"),
            ),
            (200, None) => Check::ok(
                "cache",
                format!("{url}: HTTP 200 without credentials (the cache is public)"),
            ),
            (401 | 403, None) => Check::fail(
                "cache",
                format!(
                    "{url}: HTTP {status}: the cache wants credentials, and the netrc has none for {}{why_403}",
                    netrc::machine_name(host)
                ),
                format!("run `{}`{ask_401}", self.login_command(config)),
            ),
            (401 | 403, Some(facts)) if facts.expired(self.now) => Check::fail(
                "cache",
                format!(
                    "{url}: HTTP {status}: the cache refuses the netrc's token, which {}{why_403}",
                    facts.expiry(self.now)
                ),
                format!("run `{}`{ask_401}", self.renew_command(config, session)),
            ),
            (401 | 403, Some(facts)) => Check::fail(
                "cache",
                format!(
                    "{url}: HTTP {status}: the cache refuses the netrc's token ({}){why_403}",
                    facts.describe(self.now)
                ),
                format!(
                    "the token has not expired: check that the cache accepts tokens of issuer \
                     {} with {} (ask its operator, or add the audience in the provider){}{ask_401}",
                    config.issuer_str(),
                    facts.audience(),
                    facts.audience_advice()
                ),
            ),
            (300..=399, _) => Check::warn(
                "cache",
                format!(
                    "{url}: HTTP {status}, a redirect to {}; Nix follows it, doctor does not",
                    location.as_deref().unwrap_or("nowhere")
                ),
                "set cache_host to the host the cache really answers on",
            ),
            (404, _) => Check::fail(
                "cache",
                format!("{url}: HTTP 404: no binary cache there"),
                format!("check cache_host {host:?} in {}", config.source.display()),
            ),
            _ => Check::fail(
                "cache",
                format!("{url}: HTTP {status}"),
                "the cache has a problem of its own: try again later, or ask its operator",
            ),
        }
    }
}

/// What a 403 costs that a 401 does not, for the detail and the fix of the cache check;
/// empty for any other status. Nix counts a 403 on a narinfo as "not found" and caches that
/// like a 404, while a 401 is an error it reports (NixOS/nix http-binary-cache-store.cc).
fn forbidden_costs(status: u16) -> (&'static str, &'static str) {
    if status != 403 {
        return ("", "");
    }
    (
        "; a 403 is worse than a 401 here: Nix takes a 403 on a narinfo for \"this path is not \
         in the cache\" and remembers that for narinfo-cache-negative-ttl (an hour by default), \
         so paths stay missing after a good login, while a 401 is an error Nix reports",
        "; and ask the cache's operator to answer 401, not 403, to a bad or missing token",
    )
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
}
