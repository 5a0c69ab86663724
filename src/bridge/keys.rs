//! The issuer's signing keys, as the bridge keeps them: in memory for speed, and in its
//! state directory (through the discovery cache) so a restart costs no request. The JWKS is
//! fetched again when its cache time runs out, or once when a token names a key id that is
//! not in it (a key rotation), at most once a minute whatever callers send.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use openidconnect::core::CoreJsonWebKey;

use crate::clock;
use crate::http::HttpClient;
use crate::oidc::discovery::{Discovery, Documents, Jwks, MinTtl};

/// The least time between two fetches forced by an unknown key id.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// The most keys kept from a JWKS (providers publish two or three).
const MAX_KEYS: usize = 32;

pub struct KeyCache {
    issuer: String,
    cache_file: PathBuf,
    docs: Option<Documents>,
    keys: Arc<Vec<CoreJsonWebKey>>,
    last_forced_fetch: Option<Instant>,
}

impl KeyCache {
    pub fn new(issuer: &str, cache_file: PathBuf) -> KeyCache {
        KeyCache {
            issuer: issuer.to_string(),
            cache_file,
            docs: None,
            keys: Arc::new(Vec::new()),
            last_forced_fetch: None,
        }
    }

    fn discovery<'a>(&'a self, http: &'a HttpClient) -> Discovery<'a> {
        Discovery {
            http,
            issuer: &self.issuer,
            cache: Some(self.cache_file.clone()),
            // A key set sent with no-store is still kept an hour: a rotation is caught by
            // the refetch on an unknown key id.
            min_ttl: MinTtl::DEFAULT,
        }
    }

    /// The keys, fetched first when none are cached or the cache time has run out.
    pub async fn current(&mut self, http: &HttpClient) -> Result<Arc<Vec<CoreJsonWebKey>>> {
        let fresh = self
            .docs
            .as_ref()
            .is_some_and(|d| d.jwks.is_some() && d.jwks_expires_at > clock::now());
        if !fresh {
            let docs = self.discovery(http).get(Jwks::Needed).await?;
            self.install(docs)?;
        }
        Ok(Arc::clone(&self.keys))
    }

    /// After a token named an unknown key id: fetches the JWKS again unless that was done
    /// less than a minute ago. Returns the new keys, or `None` when it did not fetch.
    pub async fn refetch(&mut self, http: &HttpClient) -> Result<Option<Arc<Vec<CoreJsonWebKey>>>> {
        if self
            .last_forced_fetch
            .is_some_and(|t| t.elapsed() < MIN_REFETCH_INTERVAL)
        {
            return Ok(None);
        }
        self.last_forced_fetch = Some(Instant::now());
        let mut docs = match self.docs.take() {
            Some(d) => d,
            None => self.discovery(http).fetch(Jwks::Needed).await?,
        };
        let result = self.discovery(http).refresh_jwks(&mut docs).await;
        self.install(docs)?;
        result?;
        Ok(Some(Arc::clone(&self.keys)))
    }

    fn install(&mut self, docs: Documents) -> Result<()> {
        let jwks = docs
            .jwks
            .clone()
            .with_context(|| format!("{}: no JWKS was fetched", self.issuer))?;
        let keys = parse_keys(&jwks)
            .with_context(|| format!("the JWKS of {} is not a key set", self.issuer))?;
        self.keys = Arc::new(keys);
        self.docs = Some(docs);
        Ok(())
    }
}

/// The usable keys of a JWKS; keys of unknown types are skipped, as RFC 7517 5 asks.
fn parse_keys(jwks: &serde_json::Value) -> Result<Vec<CoreJsonWebKey>> {
    let keys = jwks
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .context("no \"keys\" array")?;
    Ok(keys
        .iter()
        .filter_map(|k| serde_json::from_value(k.clone()).ok())
        .take(MAX_KEYS)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_types_are_skipped() {
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": "sXch", "e": "AQAB"},
            {"kty": "weird", "kid": "b"},
            "not an object"
        ]});
        assert_eq!(parse_keys(&jwks).unwrap().len(), 1);
        assert!(parse_keys(&serde_json::json!({"nokeys": []})).is_err());
    }
}
