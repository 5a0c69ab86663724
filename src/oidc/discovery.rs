//! The provider's discovery document and JWKS, cached on disk.
//!
//! A timer runs `refresh` every few minutes; fetching the discovery document each time
//! would triple its cost. So the document (and the JWKS, which only `login` needs) is kept
//! under `$XDG_CACHE_HOME/nix-cache-login/` for as long as the provider's `Cache-Control`
//! allows (a day by default), and a warm `refresh` costs exactly one request.
//!
//! Some providers send both documents with `Cache-Control: no-store`. Obeying that would
//! double the cost of every refresh, and nothing is gained: a token request that fails in a
//! way a stale document explains rediscovers and retries, and an ID token signed with an
//! unknown key refetches the JWKS. So each document is kept at least
//! [`DEFAULT_MIN_MAX_AGE`] (`$NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL` seconds; 0 obeys the
//! provider), whatever the headers say.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::http::{HttpClient, describe_reqwest_error, read_body, strip_query};
use crate::clock;
use crate::fsutil;

const DEFAULT_MAX_AGE: i64 = 86_400;
/// The floor on how long a fetched document is kept, in seconds.
pub const ENV_DISCOVERY_MIN_TTL: &str = "NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL";
pub const DEFAULT_MIN_MAX_AGE: i64 = 3600;
/// However long a provider says a document may be kept, look again after a week.
const MAX_MAX_AGE: i64 = 7 * 86_400;

/// The raw documents as fetched, with when they were fetched and may be used until.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Documents {
    pub issuer: String,
    pub discovery: serde_json::Value,
    pub fetched_at: i64,
    pub expires_at: i64,
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub jwks_expires_at: i64,
    /// Not stored: whether this came from the cache (a failure may then be staleness).
    #[serde(skip)]
    pub from_cache: bool,
}

impl Documents {
    pub fn endpoint(&self, name: &str) -> Option<&str> {
        self.discovery.get(name).and_then(|v| v.as_str())
    }
}

/// Where the documents for `issuer` are cached; `None` when no cache directory is known.
pub fn cache_path(cache_home: Option<&Path>, issuer: &str) -> Option<PathBuf> {
    cache_home.map(|dir| {
        dir.join("nix-cache-login").join(format!(
            "discovery-{:016x}.json",
            fsutil::name_hash([issuer])
        ))
    })
}

pub struct Discovery<'a> {
    pub http: &'a HttpClient,
    pub issuer: &'a str,
    pub cache: Option<PathBuf>,
}

impl Discovery<'_> {
    /// The documents, from the cache when fresh, else from the provider. `with_jwks`: also
    /// make sure the JWKS is there (for ID token validation).
    pub async fn get(&self, with_jwks: bool) -> Result<Documents> {
        let now = clock::now();
        if let Some(cached) = self.read_cache() {
            let jwks_ok = !with_jwks || (cached.jwks.is_some() && cached.jwks_expires_at > now);
            if cached.issuer == self.issuer && cached.expires_at > now && jwks_ok {
                tracing::debug!("using cached discovery document");
                return Ok(Documents {
                    from_cache: true,
                    ..cached
                });
            }
        }
        self.fetch(with_jwks).await
    }

    /// Fetches afresh (and re-caches), ignoring the cache.
    pub async fn fetch(&self, with_jwks: bool) -> Result<Documents> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let (discovery, max_age) = self.get_json(&url).await?;
        let advertised = discovery
            .get("issuer")
            .and_then(|v| v.as_str())
            .with_context(|| format!("{url}: the discovery document has no issuer"))?;
        // OIDC Discovery 4.3: the issuer must be exactly the one asked for. A mismatch means a
        // misconfiguration or an impostor; either way no token may be sent there.
        if advertised.trim_end_matches('/') != self.issuer.trim_end_matches('/') {
            bail!(
                "{url}: the provider says its issuer is {advertised:?}, but the config says {:?}",
                self.issuer
            );
        }
        let now = clock::now();
        let mut docs = Documents {
            issuer: self.issuer.to_string(),
            discovery,
            fetched_at: now,
            expires_at: now + max_age,
            jwks: None,
            jwks_expires_at: 0,
            from_cache: false,
        };
        if with_jwks {
            self.fetch_jwks(&mut docs).await?;
        }
        self.write_cache(&docs);
        Ok(docs)
    }

    /// Fetches the JWKS again (after a key rotation) and re-caches.
    pub async fn refresh_jwks(&self, docs: &mut Documents) -> Result<()> {
        self.fetch_jwks(docs).await?;
        docs.from_cache = false;
        self.write_cache(docs);
        Ok(())
    }

    async fn fetch_jwks(&self, docs: &mut Documents) -> Result<()> {
        let jwks_uri = docs
            .endpoint("jwks_uri")
            .with_context(|| format!("the discovery document of {} has no jwks_uri", self.issuer))?
            .to_string();
        let (jwks, max_age) = self.get_json(&jwks_uri).await?;
        docs.jwks = Some(jwks);
        docs.jwks_expires_at = clock::now() + max_age;
        Ok(())
    }

    async fn get_json(&self, url: &str) -> Result<(serde_json::Value, i64)> {
        tracing::debug!("GET {}", strip_query(url));
        let response = self
            .http
            .reqwest()
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", strip_query(url), describe_reqwest_error(&e)))?;
        let status = response.status();
        if !status.is_success() {
            bail!("{}: HTTP {status}", strip_query(url));
        }
        let max_age = max_age(response.headers()).max(min_max_age()?);
        let body = read_body(url, response).await?;
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| anyhow::anyhow!("{}: not valid JSON ({e})", strip_query(url)))?;
        if !json.is_object() {
            bail!("{}: expected a JSON object", strip_query(url));
        }
        Ok((json, max_age))
    }

    fn read_cache(&self) -> Option<Documents> {
        let path = self.cache.as_ref()?;
        let bytes = fsutil::read_if_exists(path).ok()??;
        // A damaged cache is only a missed shortcut.
        serde_json::from_slice(&bytes).ok()
    }

    fn write_cache(&self, docs: &Documents) {
        let Some(path) = &self.cache else { return };
        let result = serde_json::to_vec(docs)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| fsutil::write_atomic(path, &bytes));
        if let Err(e) = result {
            tracing::warn!("cannot cache the discovery document: {e:#}");
        }
    }
}

/// The floor on a document's lifetime: `$NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL`, or an hour.
fn min_max_age() -> Result<i64> {
    match std::env::var(ENV_DISCOVERY_MIN_TTL) {
        Ok(v) if !v.is_empty() => v
            .parse::<u32>()
            .map(|secs| i64::from(secs).min(MAX_MAX_AGE))
            .map_err(|_| {
                crate::exit::ConfigError(format!(
                    "${ENV_DISCOVERY_MIN_TTL} must be a whole number of seconds, got {v:?}"
                ))
                .into()
            }),
        _ => Ok(DEFAULT_MIN_MAX_AGE),
    }
}

/// Seconds the response may be reused, from `Cache-Control`.
fn max_age(headers: &reqwest::header::HeaderMap) -> i64 {
    let Some(value) = headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
    else {
        return DEFAULT_MAX_AGE;
    };
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return 0;
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n.trim_matches('"').parse::<i64>().ok();
        }
    }
    age.unwrap_or(DEFAULT_MAX_AGE).clamp(0, MAX_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{CACHE_CONTROL, HeaderMap, HeaderValue};

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn cache_control() {
        assert_eq!(max_age(&HeaderMap::new()), DEFAULT_MAX_AGE);
        assert_eq!(max_age(&headers("public, max-age=3600")), 3600);
        assert_eq!(max_age(&headers("no-store")), 0);
        assert_eq!(max_age(&headers("max-age=0, no-cache")), 0);
        assert_eq!(max_age(&headers("max-age=99999999")), MAX_MAX_AGE);
        assert_eq!(max_age(&headers("max-age=bogus")), DEFAULT_MAX_AGE);
    }

    #[test]
    fn cache_paths_differ_by_issuer() {
        let a = cache_path(Some(Path::new("/c")), "https://a").unwrap();
        let b = cache_path(Some(Path::new("/c")), "https://b").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("/c/nix-cache-login"));
        assert_eq!(cache_path(None, "https://a"), None);
    }
}
