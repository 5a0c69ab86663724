//! The bridge's own config (`/etc/nix-cache-login/bridge.toml`): root's, never a caller's.
//!
//! It decides whose tokens reach the daemon, so a file that someone other than root could
//! have written is refused, as is one in a directory others may write to (they could swap
//! it).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::verify::Policy;
use crate::config::{
    MAX_CONFIG_BYTES, check_cache_host, check_issuer, check_netrc_login, toml_error,
};
use crate::exit::ConfigError;
use crate::fs::read_guard;

pub const DEFAULT_CONFIG: &str = "/etc/nix-cache-login/bridge.toml";
pub const DEFAULT_NETRC: &str = "/etc/nix/netrc";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/nix-cache-login-bridge";
/// Access tokens live minutes to hours; a day is generous, and a longer one is more likely
/// a mistake or a stolen long-lived credential than a login.
const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    issuer: Option<String>,
    client_id: Option<String>,
    audience: Option<String>,
    cache_hosts: Option<Vec<String>>,
    netrc_path: Option<PathBuf>,
    allowed_users: Option<Vec<String>>,
    allowed_groups: Option<Vec<String>>,
    state_dir: Option<PathBuf>,
    netrc_login: Option<String>,
    max_token_lifetime: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub source: PathBuf,
    pub policy: Policy,
    /// Lower-cased, as requests are.
    pub cache_hosts: Vec<String>,
    pub netrc_path: PathBuf,
    pub allowed_users: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub state_dir: PathBuf,
    pub netrc_login: String,
}

impl BridgeConfig {
    /// The served host that `host` (already lower-cased) names, if any.
    pub fn served_host(&self, host: &str) -> Option<&str> {
        self.cache_hosts
            .iter()
            .find(|h| h.as_str() == host)
            .map(String::as_str)
    }
}

/// Reads the config at `path`, refusing one that is not root's alone.
pub fn load(path: &Path) -> Result<BridgeConfig, ConfigError> {
    let fail = |msg: String| ConfigError::invalid(format!("{}: {msg}", path.display()));
    let meta =
        fs::metadata(path).map_err(|e| fail(format!("cannot read the bridge config: {e}")))?;
    check_owner(&meta, "file").map_err(fail)?;
    let dir_meta = fs::metadata(crate::fs::parent_of(path))
        .map_err(|e| fail(format!("cannot inspect its directory: {e}")))?;
    check_owner(&dir_meta, "directory").map_err(fail)?;
    // Root's file is still read as any file is: a FIFO or a device put there is refused.
    let bytes = read_guard::read_regular(path, MAX_CONFIG_BYTES)
        .map_err(|e| ConfigError::invalid(format!("{e:#}")))?
        .ok_or_else(|| fail("cannot read: it is gone".into()))?;
    let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8".into()))?;
    parse(&text, path)
}

/// Owned by root, not writable by group or others (a sticky directory such as /tmp is not
/// enough: another user could still have put the file there).
fn check_owner(meta: &fs::Metadata, what: &str) -> Result<(), String> {
    if meta.uid() != 0 {
        return Err(format!(
            "the bridge config's {what} is owned by uid {}, not root; refusing it",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "the bridge config's {what} is writable by group or others (mode {:o}); refusing it",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

pub fn parse(text: &str, path: &Path) -> Result<BridgeConfig, ConfigError> {
    let keys: Keys = toml::from_str(text).map_err(|e| toml_error(&e, text, path))?;
    let at =
        |key: &str, msg: String| ConfigError::invalid(format!("{}: {key}: {msg}", path.display()));
    let missing = |key: &str| at(key, "missing (required)".into());

    let issuer_text = keys.issuer.ok_or_else(|| missing("issuer"))?;
    let issuer = check_issuer(&issuer_text).map_err(|m| at("issuer", m))?;
    let non_empty = |key: &str, v: Option<String>| -> Result<Option<String>, ConfigError> {
        match v {
            Some(s) if s.trim().is_empty() => Err(at(key, "must not be empty".into())),
            other => Ok(other),
        }
    };
    let client_id = non_empty("client_id", keys.client_id)?;
    let audience = non_empty("audience", keys.audience)?;
    if client_id.is_none() && audience.is_none() {
        return Err(at(
            "client_id",
            "set client_id or audience (or both): tokens are accepted only for them".into(),
        ));
    }
    let cache_hosts = keys.cache_hosts.ok_or_else(|| missing("cache_hosts"))?;
    if cache_hosts.is_empty() {
        return Err(at("cache_hosts", "must not be empty".into()));
    }
    for host in &cache_hosts {
        check_cache_host(host).map_err(|m| at("cache_hosts", m))?;
    }
    let absolute = |key: &str, p: Option<PathBuf>, default: &str| -> Result<PathBuf, ConfigError> {
        let p = p.unwrap_or_else(|| PathBuf::from(default));
        if p.is_absolute() {
            Ok(p)
        } else {
            Err(at(key, format!("{} must be an absolute path", p.display())))
        }
    };
    let netrc_path = absolute("netrc_path", keys.netrc_path, DEFAULT_NETRC)?;
    let state_dir = absolute("state_dir", keys.state_dir, DEFAULT_STATE_DIR)?;
    let netrc_login = check_netrc_login(keys.netrc_login).map_err(|m| at("netrc_login", m))?;
    let max_lifetime = match keys.max_token_lifetime {
        Some(text) => crate::cli::parse_duration(&text).map_err(|m| at("max_token_lifetime", m))?,
        None => DEFAULT_MAX_TOKEN_LIFETIME,
    };
    if max_lifetime.is_zero() {
        return Err(at("max_token_lifetime", "must be more than 0".into()));
    }
    let names = |key: &str, v: Option<Vec<String>>| -> Result<Vec<String>, ConfigError> {
        let v = v.unwrap_or_default();
        if let Some(bad) = v
            .iter()
            .find(|n| n.is_empty() || n.contains(['\0', ':', '\n']))
        {
            return Err(at(key, format!("{bad:?} is not a user or group name")));
        }
        Ok(v)
    };
    Ok(BridgeConfig {
        source: path.to_path_buf(),
        policy: Policy {
            issuer: issuer.as_str().trim_end_matches('/').to_string(),
            client_id,
            audience,
            max_lifetime: i64::try_from(max_lifetime.as_secs()).unwrap_or(i64::MAX),
        },
        cache_hosts: cache_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        netrc_path,
        allowed_users: names("allowed_users", keys.allowed_users)?,
        allowed_groups: names("allowed_groups", keys.allowed_groups)?,
        state_dir,
        netrc_login,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn parsed(text: &str) -> Result<BridgeConfig, String> {
        parse(text, Path::new("/etc/b.toml")).map_err(|e| e.message)
    }

    #[test]
    fn defaults() {
        let c = parsed(
            "issuer='https://sso/realms/r/'\nclient_id='nix'\ncache_hosts=['Cache.Example.com']\n",
        )
        .unwrap();
        assert_eq!(c.policy.issuer, "https://sso/realms/r");
        assert_eq!(c.netrc_path, Path::new(DEFAULT_NETRC));
        assert_eq!(c.state_dir, Path::new(DEFAULT_STATE_DIR));
        assert_eq!(c.netrc_login, "nix-cache-login");
        assert_eq!(c.policy.max_lifetime, 86_400);
        assert_eq!(c.cache_hosts, vec!["cache.example.com"]);
        assert!(c.allowed_users.is_empty() && c.allowed_groups.is_empty());
        assert_eq!(
            c.served_host("cache.example.com"),
            Some("cache.example.com")
        );
        assert_eq!(c.served_host("other"), None);
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let cases = [
            ("client_id='x'\ncache_hosts=['c']", "issuer: missing"),
            (
                "issuer='http://sso'\nclient_id='x'\ncache_hosts=['c']",
                "issuer:",
            ),
            (
                "issuer='https://sso'\ncache_hosts=['c']",
                "client_id: set client_id or audience",
            ),
            (
                "issuer='https://sso'\nclient_id='x'\ncache_hosts=[]",
                "cache_hosts: must not be empty",
            ),
            (
                "issuer='https://sso'\nclient_id='x'\ncache_hosts=['https://c']",
                "cache_hosts:",
            ),
            (
                "issuer='https://sso'\nclient_id='x'\ncache_hosts=['c']\nnetrc_path='rel'",
                "netrc_path:",
            ),
            (
                "issuer='https://sso'\nclient_id='x'\ncache_hosts=['c']\nmax_token_lifetime='1y'",
                "max_token_lifetime:",
            ),
            (
                "issuer='https://sso'\nclient_id='x'\ncache_hosts=['c']\nallowed_users=['']",
                "allowed_users:",
            ),
            (
                "issuer='https://sso'\nclient_id='x'\ncache_hosts=['c']\nbogus=1",
                "bogus",
            ),
        ];
        for (text, want) in cases {
            let e = parsed(text).unwrap_err();
            assert!(e.starts_with("/etc/b.toml"), "{e}");
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn a_config_others_could_write_is_refused() {
        // Runs as any user: a temp file owned by a non-root user is refused for its owner;
        // as root, for its mode.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.toml");
        fs::write(
            &path,
            "issuer='https://sso'\nclient_id='x'\ncache_hosts=['c']\n",
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let root = nix_uid() == 0;
        if root {
            assert!(load(&path).is_ok(), "{:?}", load(&path));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
            let e = load(&path).unwrap_err().message;
            assert!(e.contains("writable by group or others"), "{e}");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
            let e = load(&path).unwrap_err().message;
            assert!(e.contains("directory is writable"), "{e}");
        } else {
            let e = load(&path).unwrap_err().message;
            assert!(e.contains("not root"), "{e}");
        }
    }

    #[test]
    fn a_fifo_in_the_config_s_place_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.toml");
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let e = load(&path).unwrap_err().message;
        let want = if nix_uid() == 0 {
            "not a regular file"
        } else {
            "not root"
        };
        assert!(e.contains(want), "{e}");
    }

    fn nix_uid() -> u32 {
        fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(u32::MAX)
    }
}
