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
//! unknown key refetches the JWKS. So each document is kept at least [`MinTtl`] (an hour, or
//! `$NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL` seconds; 0 obeys the provider), whatever the headers
//! say.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::exit::ConfigError;
use crate::fs;
use crate::http::{HttpClient, HttpError, read_body, strip_query};

const DEFAULT_MAX_AGE: i64 = 86_400;
/// However long a provider says a document may be kept, look again after a week.
const MAX_MAX_AGE: i64 = 7 * 86_400;
pub const ENV_DISCOVERY_MIN_TTL: &str = "NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL";

/// How long a fetched document is kept at least, in seconds, whatever `Cache-Control` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinTtl(i64);

impl MinTtl {
    pub const DEFAULT: MinTtl = MinTtl(3600);

    /// From `$NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL` (unset or empty: an hour; 0: obey the
    /// provider), capped at a week.
    pub fn from_var(value: Option<&str>) -> Result<MinTtl, ConfigError> {
        match value.filter(|v| !v.is_empty()) {
            None => Ok(MinTtl::DEFAULT),
            Some(v) => v
                .parse::<u32>()
                .map(|secs| MinTtl(i64::from(secs).min(MAX_MAX_AGE)))
                .map_err(|_| {
                    ConfigError::invalid(format!(
                        "${ENV_DISCOVERY_MIN_TTL} must be a whole number of seconds, got {:?}",
                        crate::untrusted::clean(v)
                    ))
                }),
        }
    }

    /// How long a document the provider lets us keep `max_age` seconds is kept.
    fn apply(self, max_age: i64) -> i64 {
        max_age.max(self.0)
    }
}

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
        dir.join("nix-cache-login")
            .join(format!("discovery-{:016x}.json", fs::name_hash([issuer])))
    })
}

/// Whether the provider's key set (JWKS) must come with the discovery document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jwks {
    /// For ID token validation (`login`).
    Needed,
    /// A token request alone needs only the endpoints.
    NotNeeded,
}

pub struct Discovery<'a> {
    pub http: &'a HttpClient,
    pub issuer: &'a str,
    pub cache: Option<PathBuf>,
    pub min_ttl: MinTtl,
}

impl Discovery<'_> {
    /// The documents, from the cache when fresh, else from the provider.
    pub async fn get(&self, jwks: Jwks) -> Result<Documents> {
        let now = clock::now();
        if let Some(cached) = self.read_cache() {
            let jwks_ok = match jwks {
                Jwks::NotNeeded => true,
                Jwks::Needed => cached.jwks.is_some() && cached.jwks_expires_at > now,
            };
            if cached.issuer == self.issuer && cached.expires_at > now && jwks_ok {
                tracing::debug!("using cached discovery document");
                return Ok(Documents {
                    from_cache: true,
                    ..cached
                });
            }
        }
        self.fetch(jwks).await
    }

    /// Fetches afresh (and re-caches), ignoring the cache.
    pub async fn fetch(&self, jwks: Jwks) -> Result<Documents> {
        let url = well_known_url(self.issuer);
        let (discovery, max_age) = fetch_json(self.http, &url).await?;
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
            expires_at: now + self.min_ttl.apply(max_age),
            jwks: None,
            jwks_expires_at: 0,
            from_cache: false,
        };
        if jwks == Jwks::Needed {
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
        let (jwks, max_age) = fetch_json(self.http, &jwks_uri).await?;
        docs.jwks = Some(jwks);
        docs.jwks_expires_at = clock::now() + self.min_ttl.apply(max_age);
        Ok(())
    }

    fn read_cache(&self) -> Option<Documents> {
        let path = self.cache.as_ref()?;
        let bytes = fs::read_if_exists(path).ok()??;
        // A damaged cache is only a missed shortcut.
        serde_json::from_slice(&bytes).ok()
    }

    fn write_cache(&self, docs: &Documents) {
        let Some(path) = &self.cache else { return };
        let result = serde_json::to_vec(docs)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| fs::write_atomic(path, &bytes));
        if let Err(e) = result {
            tracing::warn!("cannot cache the discovery document: {e:#}");
        }
    }
}

/// Where `issuer` publishes its discovery document (OIDC Discovery 4).
pub fn well_known_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Why a provider's JSON document could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("{url}: HTTP {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    /// The body could not be read, or was larger than [`crate::http::MAX_BODY`].
    #[error(transparent)]
    Body(#[from] HttpError),
    #[error("{url}: not valid JSON ({detail})")]
    NotJson { url: String, detail: String },
    #[error("{url}: expected a JSON object")]
    NotObject { url: String },
}

/// GETs the JSON object at `url` (a discovery document or key set), with how many seconds it
/// may be reused. The one way this tool fetches a provider's documents, `doctor` included.
pub async fn fetch_json(
    http: &HttpClient,
    url: &str,
) -> Result<(serde_json::Value, i64), FetchError> {
    let shown = strip_query(url);
    tracing::debug!("GET {shown}");
    let response = http
        .reqwest()
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| FetchError::Unreachable {
            url: shown.clone(),
            cause: http.describe_error(&e),
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status { url: shown, status });
    }
    let max_age = max_age(response.headers());
    let body = read_body(url, response).await?;
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| FetchError::NotJson {
            url: shown.clone(),
            detail: e.to_string(),
        })?;
    if !json.is_object() {
        return Err(FetchError::NotObject { url: shown });
    }
    Ok((json, max_age))
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

    #[test]
    fn documents_are_kept_an_hour_unless_told_otherwise() {
        let floor = MinTtl::from_var(None).unwrap();
        assert_eq!(floor, MinTtl::DEFAULT);
        assert_eq!(floor.apply(max_age(&headers("no-store"))), 3600);
        assert_eq!(floor.apply(86_400), 86_400);
        assert_eq!(MinTtl::from_var(Some("")).unwrap(), MinTtl::DEFAULT);
        assert_eq!(MinTtl::from_var(Some("0")).unwrap().apply(0), 0);
        assert_eq!(MinTtl::from_var(Some("60")).unwrap().apply(10), 60);
        assert_eq!(
            MinTtl::from_var(Some("99999999")).unwrap().apply(0),
            MAX_MAX_AGE
        );
        for bad in ["-1", "1h", "3600 "] {
            let e = MinTtl::from_var(Some(bad)).unwrap_err();
            assert!(e.message.contains(ENV_DISCOVERY_MIN_TTL), "{e}");
            assert_eq!(e.problem, crate::exit::ConfigProblem::Invalid);
        }
    }
}
