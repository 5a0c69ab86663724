//! `issuer` and `discovery`: the provider answers, and for the configured issuer.

use super::Check;
use super::run::Doctor;
use crate::config::Config;
use crate::oidc::discovery::{self, FetchError};

impl Doctor<'_> {
    /// `issuer`: the discovery document answers; `discovery`: it names the configured issuer.
    pub(super) fn provider_checks(&self, config: &Config) -> Vec<Check> {
        let http = match &self.http {
            Ok(http) => http,
            Err(e) => {
                return vec![
                    Check::fail("issuer", e, "correct the environment the message names"),
                    Check::skip("discovery", "no HTTP client"),
                ];
            }
        };
        let issuer = config.issuer_str();
        let url = discovery::well_known_url(issuer);
        let fetched = self
            .runtime
            .block_on(discovery::fetch_json(http, &url))
            .map(|(document, _)| document)
            .map_err(|e| match e {
                FetchError::Unreachable { url, cause } => format!("cannot reach {url}: {cause}"),
                FetchError::Status { url, status } => format!("{url} answered HTTP {status}"),
                FetchError::NotJson { url, detail } => {
                    format!("{url} did not answer JSON: {detail}")
                }
                other => other.to_string(),
            });
        let document = match fetched {
            Ok(document) => document,
            Err(detail) => {
                let fix = format!(
                    "check issuer in {} (for Keycloak: https://HOST/realms/REALM), the network \
                     and proxy ($HTTPS_PROXY), and that a private CA is in SSL_CERT_FILE",
                    config.source.display()
                );
                return vec![
                    Check::fail("issuer", detail, fix),
                    Check::skip("discovery", "the issuer did not answer"),
                ];
            }
        };
        let reached = Check::ok("issuer", format!("{url} answers"));
        let discovery = match document.get("issuer").and_then(|v| v.as_str()) {
            None => Check::fail(
                "discovery",
                format!("{url} has no issuer: not an OpenID provider's discovery document"),
                format!("check issuer in {}", config.source.display()),
            ),
            Some(advertised) if advertised.trim_end_matches('/') != issuer => Check::fail(
                "discovery",
                format!(
                    "the provider calls itself {advertised}, but the config says {issuer}; \
                     no token is requested from a provider that answers for another issuer"
                ),
                format!(
                    "if {advertised} is the provider you mean, set issuer = \"{advertised}\" in {}",
                    config.source.display()
                ),
            ),
            Some(_) => Check::ok(
                "discovery",
                format!("the provider confirms issuer {issuer}"),
            ),
        };
        vec![reached, discovery]
    }
}
