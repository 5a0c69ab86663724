//! Where the tokens of a session live between runs.
//!
//! One JSON file per issuer + client id + cache host(s) under
//! `$XDG_STATE_HOME/nix-cache-login/`, mode 0600, replaced atomically. Every change goes
//! through a [`LockedStore`], so that a refresh token is never read by two runs at once: a
//! provider that rotates refresh tokens treats a second use of a spent one as theft and ends
//! the session.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Environment};
use crate::exit::{ConfigError, LoginNeeded};
use crate::fs::{self, FileLock};
use crate::secret::Secret;
pub use crate::session::grant::Grant;

const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub version: u32,
    pub issuer: String,
    pub client_id: String,
    pub cache_hosts: Vec<String>,
    pub grant: Grant,
    pub access_token: Secret,
    /// Unix seconds; from `expires_in`, else the JWT's `exp`.
    pub access_token_expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// Unix seconds; from Keycloak's `refresh_expires_in`, else the refresh JWT's `exp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Unix seconds when the access token was obtained.
    pub obtained_at: i64,
    /// A `ci` session: where the job's token came from and how it was used, so that
    /// `token` can do the same again and `status` can say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<crate::ci::Settings>,
}

impl Session {
    pub fn new(config: &Config, grant: Grant, access_token: Secret, obtained_at: i64) -> Self {
        Session {
            version: FORMAT_VERSION,
            issuer: config.issuer_str().to_string(),
            client_id: config.client_id.clone(),
            cache_hosts: config.cache_hosts.clone(),
            grant,
            access_token,
            access_token_expires_at: None,
            refresh_token: None,
            refresh_token_expires_at: None,
            id_token: None,
            subject: None,
            username: None,
            obtained_at,
            ci: None,
        }
    }

    /// Seconds the access token stays valid after `now` (negative: expired); `None` when its
    /// expiry is unknown.
    pub fn access_token_remaining(&self, now: i64) -> Option<i64> {
        self.access_token_expires_at.map(|exp| exp - now)
    }
}

/// The store file for one config (and profile).
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
}

impl TokenStore {
    pub fn for_config(config: &Config, env: &dyn Environment) -> Result<TokenStore> {
        let dir = env.state_home().ok_or_else(|| {
            ConfigError::invalid(
                "cannot place the token store: neither $XDG_STATE_HOME nor $HOME is set",
            )
        })?;
        Ok(TokenStore::at(
            dir.join("nix-cache-login").join(file_name(config)),
        ))
    }

    pub fn at(path: PathBuf) -> TokenStore {
        TokenStore { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads without locking: for `status`, which only looks.
    pub fn peek(&self) -> Result<Option<Session>> {
        read_session(&self.path)
    }

    /// Takes the store's lock; reads and writes go through the returned handle.
    pub fn lock(&self) -> Result<LockedStore<'_>> {
        let lock = fs::lock_for(&self.path)?;
        Ok(LockedStore {
            store: self,
            _lock: lock,
        })
    }

    /// Fails when the store's directory cannot be written (before a token is spent).
    pub fn check_writable(&self) -> Result<()> {
        fs::check_writable(&self.path)
    }
}

/// The store with its lock held.
pub struct LockedStore<'a> {
    store: &'a TokenStore,
    _lock: FileLock,
}

impl LockedStore<'_> {
    pub fn load(&self) -> Result<Option<Session>> {
        read_session(&self.store.path)
    }

    pub fn save(&self, session: &Session) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(session).context("cannot encode the session")?;
        json.push(b'\n');
        fs::write_atomic(&self.store.path, &json)
            .with_context(|| format!("cannot save the token store {}", self.store.path.display()))
    }

    /// The file's bytes as they are now (`None`: no file), for [`LockedStore::restore`].
    pub fn snapshot(&self) -> Result<Option<Vec<u8>>> {
        fs::read_if_exists(&self.store.path)
    }

    /// Puts back what [`LockedStore::snapshot`] saw.
    pub fn restore(&self, snapshot: Option<Vec<u8>>) -> Result<()> {
        match snapshot {
            Some(bytes) => fs::write_atomic(&self.store.path, &bytes),
            None => self.remove().map(drop),
        }
    }

    /// Deletes the stored session; true when there was one.
    pub fn remove(&self) -> Result<bool> {
        match std::fs::remove_file(&self.store.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| {
                format!(
                    "cannot remove the token store {}",
                    self.store.path.display()
                )
            }),
        }
    }
}

fn read_session(path: &Path) -> Result<Option<Session>> {
    let Some(bytes) = fs::read_if_exists(path)? else {
        return Ok(None);
    };
    // A damaged store cannot be repaired; a new login writes a fresh one.
    let session: Session = serde_json::from_slice(&bytes).map_err(|e| {
        LoginNeeded::new(format!(
            "the token store {} is corrupt ({}, line {})",
            path.display(),
            classify(&e),
            e.line()
        ))
    })?;
    if session.version != FORMAT_VERSION {
        return Err(LoginNeeded::new(format!(
            "the token store {} has format version {}, this tool writes {}",
            path.display(),
            session.version,
            FORMAT_VERSION
        ))
        .into());
    }
    Ok(Some(session))
}

// serde_json's message may quote the offending input, which could be part of a token.
fn classify(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "not valid JSON",
        Category::Data => "unexpected content",
        Category::Eof => "truncated",
    }
}

/// `<first host>-<hash>.json`: readable at a glance, and distinct for every issuer, client
/// and set of hosts (and for every profile, since profiles differ in one of those).
fn file_name(config: &Config) -> String {
    // A profile gets a store of its own even where it shares issuer, client and hosts with
    // another (it may ask for other scopes); no profile adds nothing, keeping older names.
    let profile = config.profile.as_deref().map(|p| format!("profile:{p}"));
    let hash = fs::name_hash(
        [config.issuer_str(), &config.client_id]
            .into_iter()
            .chain(config.cache_hosts.iter().map(String::as_str))
            .chain(profile.as_deref()),
    );
    let host: String = config.cache_hosts[0]
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{host}-{hash:016x}.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::FakeEnv;
    use std::os::unix::fs::PermissionsExt;

    fn config(issuer: &str, hosts: &[&str]) -> Config {
        let text = format!(
            "issuer = {issuer:?}\nclient_id = 'nix'\ncache_hosts = {hosts:?}\nnetrc_path = '/tmp/n'\n"
        );
        crate::config::parse(&text, Path::new("/c"), None, &FakeEnv::default()).unwrap()
    }

    fn session(cfg: &Config) -> Session {
        let mut s = Session::new(cfg, Grant::AuthorizationCode, Secret::new("at"), 100);
        s.refresh_token = Some(Secret::new("rt"));
        s.access_token_expires_at = Some(400);
        s
    }

    #[test]
    fn file_names_differ_by_issuer_client_and_host() {
        let a = file_name(&config("https://a", &["h"]));
        assert!(a.starts_with("h-") && a.ends_with(".json"), "{a}");
        assert_ne!(a, file_name(&config("https://b", &["h"])));
        assert_ne!(a, file_name(&config("https://a", &["h2"])));
        assert_eq!(a, file_name(&config("https://a/", &["h"])));
        assert!(file_name(&config("https://a", &["[::1]:80"])).starts_with("___1__80-"));
        let mut profiled = config("https://a", &["h"]);
        profiled.profile = Some("staging".into());
        assert_ne!(a, file_name(&profiled));
    }

    #[test]
    fn save_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::at(dir.path().join("state/s.json"));
        let cfg = config("https://a", &["h"]);
        let locked = store.lock().unwrap();
        assert_eq!(locked.load().unwrap(), None);
        locked.save(&session(&cfg)).unwrap();
        assert_eq!(locked.load().unwrap(), Some(session(&cfg)));
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert!(locked.remove().unwrap());
        assert!(!locked.remove().unwrap());
    }

    #[test]
    fn corrupt_store_means_login_again_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, b"{\"access_token\": \"eyJsecret").unwrap();
        let err = TokenStore::at(path).peek().unwrap_err();
        assert_eq!(crate::exit::code_for(&err), crate::exit::LOGIN_NEEDED);
        let msg = format!("{err:#}");
        assert!(
            msg.contains("corrupt") && !msg.contains("eyJsecret"),
            "{msg}"
        );
    }

    #[test]
    fn debug_of_a_session_hides_tokens() {
        let s = session(&config("https://a", &["h"]));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("\"at\"") && !dbg.contains("\"rt\""), "{dbg}");
    }
}
