//! The TOML configuration: where it is found, what it may say, and its checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use reqwest::Url;
use serde::Deserialize;

use crate::exit::ConfigError;
use crate::fs::read_guard;
use crate::untrusted;

/// Written beside the token in the netrc. Caches read only the password; a login word must
/// still be there because some curl versions mishandle password-only entries. It names the
/// tool so that whoever reads the netrc knows what manages the entry.
pub const DEFAULT_NETRC_LOGIN: &str = "nix-cache-login";
pub const ENV_CONFIG: &str = "NIX_CACHE_LOGIN_CONFIG";
const SYSTEM_CONFIG: &str = "/etc/nix-cache-login/config.toml";
/// A config is a few hundred bytes; one of many profiles a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 256 << 10;

/// The settings of one run, checked and with paths expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file the settings came from.
    pub source: PathBuf,
    pub profile: Option<String>,
    pub issuer: Url,
    pub client_id: String,
    pub client_secret_file: Option<PathBuf>,
    /// Never empty; the first is the one `status` and `doctor` speak of first.
    pub cache_hosts: Vec<String>,
    pub netrc_path: PathBuf,
    pub scopes: Vec<String>,
    pub netrc_login: String,
    /// 0: any free port.
    pub callback_port: u16,
    /// Where to hand new tokens to the Nix daemon (`daemon_bridge`).
    pub daemon_bridge: crate::bridge::client::DaemonBridge,
    /// The `[ci]` table, for `nix-cache-login ci`.
    pub ci: crate::ci::CiConfig,
}

impl Config {
    /// The issuer as configured, without a trailing slash, as the provider must echo it.
    pub fn issuer_str(&self) -> &str {
        self.issuer.as_str().trim_end_matches('/')
    }
}

/// The keys a config file (or one of its profiles) may hold. Everything is optional here;
/// [`Config::from_keys`] says what is missing.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<String>,
    cache_host: Option<String>,
    cache_hosts: Option<Vec<String>>,
    netrc_path: Option<String>,
    scopes: Option<Vec<String>>,
    netrc_login: Option<String>,
    callback_port: Option<u16>,
    daemon_bridge: Option<toml::Value>,
    ci: Option<crate::ci::CiKeys>,
    profiles: Option<BTreeMap<String, Keys>>,
}

impl Keys {
    /// `over`'s keys win over `self`'s.
    fn overlay(self, over: Keys) -> Keys {
        // A profile that names its own host(s) replaces both forms of the top level's.
        let own_hosts = over.cache_host.is_some() || over.cache_hosts.is_some();
        Keys {
            issuer: over.issuer.or(self.issuer),
            client_id: over.client_id.or(self.client_id),
            client_secret_file: over.client_secret_file.or(self.client_secret_file),
            cache_host: if own_hosts {
                over.cache_host
            } else {
                self.cache_host
            },
            cache_hosts: if own_hosts {
                over.cache_hosts
            } else {
                self.cache_hosts
            },
            netrc_path: over.netrc_path.or(self.netrc_path),
            scopes: over.scopes.or(self.scopes),
            netrc_login: over.netrc_login.or(self.netrc_login),
            callback_port: over.callback_port.or(self.callback_port),
            daemon_bridge: over.daemon_bridge.or(self.daemon_bridge),
            ci: match (self.ci, over.ci) {
                (Some(base), Some(over)) => Some(base.overlay(over)),
                (base, over) => over.or(base),
            },
            profiles: None,
        }
    }
}

/// What the process environment offers to config loading; a trait so tests need not touch
/// the real environment.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    fn home_dir(&self) -> Option<PathBuf>;

    /// `$XDG_CONFIG_HOME`, or `~/.config`.
    fn config_home(&self) -> Option<PathBuf> {
        xdg_dir(self, "XDG_CONFIG_HOME", ".config")
    }

    /// `$XDG_STATE_HOME`, or `~/.local/state`: where the token store lives.
    fn state_home(&self) -> Option<PathBuf> {
        xdg_dir(self, "XDG_STATE_HOME", ".local/state")
    }

    /// Where a system file (`/etc/...`, `/proc`) is on this machine: itself, except in
    /// tests that lay out a machine of their own under a directory.
    fn system_path(&self, path: &Path) -> PathBuf {
        path.to_path_buf()
    }

    /// `$XDG_CACHE_HOME`, or `~/.cache`: where discovery documents are cached.
    fn cache_home(&self) -> Option<PathBuf> {
        xdg_dir(self, "XDG_CACHE_HOME", ".cache")
    }
}

fn xdg_dir<E: Environment + ?Sized>(env: &E, var: &str, fallback: &str) -> Option<PathBuf> {
    match env.var(var) {
        // The XDG spec says a relative value is invalid and must be ignored.
        Some(v) if Path::new(&v).is_absolute() => Some(PathBuf::from(v)),
        _ => env.home_dir().map(|h| h.join(fallback)),
    }
}

pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
    fn home_dir(&self) -> Option<PathBuf> {
        dirs::home_dir()
    }
}

/// Finds the config file: `--config`, then `$NIX_CACHE_LOGIN_CONFIG`, then the user's, then
/// the system's. A path named explicitly must exist; the implicit ones are skipped when absent.
pub fn locate(explicit: Option<&Path>, env: &dyn Environment) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(ConfigError::not_found(format!(
                "config file {} (from --config) does not exist",
                path.display()
            )))
        };
    }
    if let Some(path) = env.var(ENV_CONFIG) {
        return if Path::new(&path).is_file() {
            Ok(PathBuf::from(path))
        } else {
            Err(ConfigError::not_found(format!(
                "config file {path} (from ${ENV_CONFIG}) does not exist"
            )))
        };
    }
    let mut tried = vec![format!("${ENV_CONFIG} (unset)")];
    if let Some(user) = user_config(env) {
        if user.is_file() {
            return Ok(user);
        }
        tried.push(user.display().to_string());
    }
    let system = PathBuf::from(SYSTEM_CONFIG);
    if system.is_file() {
        return Ok(system);
    }
    tried.push(SYSTEM_CONFIG.to_string());
    Err(ConfigError::not_found(format!(
        "no config file found; tried --config (not given), {}; run `nix-cache-login init` to write one",
        tried.join(", ")
    )))
}

/// The user's config file: `$XDG_CONFIG_HOME/nix-cache-login/config.toml`.
fn user_config(env: &dyn Environment) -> Option<PathBuf> {
    env.config_home()
        .map(|dir| dir.join("nix-cache-login/config.toml"))
}

/// Where `init` writes a new config: `--config`, `$NIX_CACHE_LOGIN_CONFIG`, or the user's
/// file, so that [`locate`] finds it next.
pub fn new_config_path(
    explicit: Option<&Path>,
    env: &dyn Environment,
) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = env.var(ENV_CONFIG) {
        return Ok(PathBuf::from(path));
    }
    user_config(env).ok_or_else(|| {
        ConfigError::invalid(
            "neither $XDG_CONFIG_HOME nor $HOME is set: name the config file with --config",
        )
    })
}

/// The text of a new config with the three keys every config needs, as `init` writes it:
/// TOML-quoted, whatever the values hold.
pub fn render_new(issuer: &str, client_id: &str, cache_host: &str) -> String {
    let mut table = toml::Table::new();
    for (key, value) in [
        ("issuer", issuer),
        ("client_id", client_id),
        ("cache_host", cache_host),
    ] {
        table.insert(key.into(), toml::Value::String(value.to_string()));
    }
    format!(
        "# Written by `nix-cache-login init`; every key is in the README.\n{}",
        toml::to_string(&table).expect("strings serialize")
    )
}

/// What a new config does to a file already at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    /// Replace it (`init --force`), atomically.
    Replace,
    /// Keep it, even one that appeared since it was looked for: the write fails.
    Keep,
}

/// Writes a new config to `path` (0600, atomically); with [`IfExists::Keep`] never over a
/// file that is there, not even one another run wrote a moment ago.
pub fn write_new(path: &Path, text: &str, if_exists: IfExists) -> anyhow::Result<()> {
    match if_exists {
        IfExists::Replace => crate::fs::write_atomic(path, text.as_bytes()),
        IfExists::Keep => crate::fs::write_new(path, text.as_bytes()).map_err(|e| {
            match e.downcast_ref::<std::io::Error>() {
                Some(io) if io.kind() == std::io::ErrorKind::AlreadyExists => ConfigError::invalid(
                    format!("{} appeared meanwhile; not overwriting it", path.display()),
                )
                .into(),
                _ => e,
            }
        }),
    }
}

/// Locates, reads, parses and checks the config.
pub fn load(
    explicit: Option<&Path>,
    profile: Option<&str>,
    env: &dyn Environment,
) -> Result<Config, ConfigError> {
    let path = locate(explicit, env)?;
    let text = read_guard::read_regular(&path, MAX_CONFIG_BYTES)
        .map_err(|e| ConfigError::invalid(format!("config file: {e:#}")))?
        .ok_or_else(|| ConfigError::invalid(format!("config file {} is gone", path.display())))?;
    let text = String::from_utf8(text).map_err(|_| {
        ConfigError::invalid(format!("config file {} is not UTF-8", path.display()))
    })?;
    parse(&text, &path, profile, env)
}

/// Parses and checks config text that came from `path` (named in every error).
pub fn parse(
    text: &str,
    path: &Path,
    profile: Option<&str>,
    env: &dyn Environment,
) -> Result<Config, ConfigError> {
    let keys: Keys = toml::from_str(text).map_err(|e| toml_error(&e, text, path))?;
    let at =
        |key: &str, msg: String| ConfigError::invalid(format!("{}: {key}: {msg}", path.display()));
    let mut profiles = keys.profiles.clone().unwrap_or_default();
    let keys = match profile {
        None => keys,
        Some(name) => {
            let chosen = profiles.remove(name).ok_or_else(|| {
                let known: Vec<_> = profiles.keys().map(String::as_str).collect();
                at(
                    "profiles",
                    format!(
                        "no profile {name:?} (defined: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?;
            if chosen.profiles.is_some() {
                return Err(at(
                    &format!("profiles.{name}.profiles"),
                    "profiles cannot be nested".into(),
                ));
            }
            keys.overlay(chosen)
        }
    };
    Config::from_keys(keys, path, profile, env)
}

impl Config {
    fn from_keys(
        keys: Keys,
        path: &Path,
        profile: Option<&str>,
        env: &dyn Environment,
    ) -> Result<Config, ConfigError> {
        let prefix = match profile {
            Some(p) => format!("profiles.{p}."),
            None => String::new(),
        };
        let at = |key: &str, msg: String| {
            ConfigError::invalid(format!("{}: {prefix}{key}: {msg}", path.display()))
        };
        let missing = |key: &str| at(key, "missing (required)".into());

        let issuer_text = keys.issuer.ok_or_else(|| missing("issuer"))?;
        let issuer = check_issuer(&issuer_text).map_err(|m| at("issuer", m))?;

        let client_id = keys.client_id.ok_or_else(|| missing("client_id"))?;
        if client_id.trim().is_empty() {
            return Err(at("client_id", "must not be empty".into()));
        }

        let cache_hosts = match (keys.cache_host, keys.cache_hosts) {
            (Some(_), Some(_)) => {
                return Err(at(
                    "cache_hosts",
                    "set either cache_host or cache_hosts, not both".into(),
                ));
            }
            (Some(h), None) => vec![h],
            (None, Some(hs)) if !hs.is_empty() => hs,
            (None, Some(_)) => return Err(at("cache_hosts", "must not be empty".into())),
            (None, None) => return Err(missing("cache_host")),
        };
        for host in &cache_hosts {
            check_cache_host(host).map_err(|m| at("cache_host", m))?;
        }

        let expand = |key: &str, value: &str| -> Result<PathBuf, ConfigError> {
            let expanded = expand_path(value, env).map_err(|m| at(key, m))?;
            if !expanded.is_absolute() {
                return Err(at(
                    key,
                    format!(
                        "{:?} must be an absolute path (after expansion)",
                        untrusted::clean(value)
                    ),
                ));
            }
            Ok(expanded)
        };
        let netrc_path = match keys.netrc_path {
            Some(p) => expand("netrc_path", &p)?,
            None => env
                .config_home()
                .map(|d| d.join("nix/netrc"))
                .ok_or_else(|| {
                    at(
                        "netrc_path",
                        "not set, and neither $XDG_CONFIG_HOME nor $HOME is set to derive it"
                            .into(),
                    )
                })?,
        };
        let client_secret_file = keys
            .client_secret_file
            .map(|p| expand("client_secret_file", &p))
            .transpose()?;

        let scopes = keys.scopes.unwrap_or_else(|| vec!["openid".to_string()]);
        if let Some(bad) = scopes.iter().find(|s| {
            s.is_empty()
                || s.chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        }) {
            return Err(at(
                "scopes",
                format!("invalid scope {:?}", untrusted::clean(bad)),
            ));
        }

        let netrc_login = check_netrc_login(keys.netrc_login).map_err(|m| at("netrc_login", m))?;

        let daemon_bridge = match &keys.daemon_bridge {
            Some(v) => crate::bridge::client::DaemonBridge::from_toml(v)
                .map_err(|m| at("daemon_bridge", m))?,
            None => Default::default(),
        };

        Ok(Config {
            source: path.to_path_buf(),
            profile: profile.map(str::to_string),
            issuer,
            client_id,
            client_secret_file,
            cache_hosts,
            netrc_path,
            scopes,
            netrc_login,
            callback_port: keys.callback_port.unwrap_or(0),
            daemon_bridge,
            ci: crate::ci::CiConfig::from_keys(keys.ci.unwrap_or_default(), &at)?,
        })
    }
}

/// One line, `file:line:column: message`, where the toml crate's own Display spans several.
pub(crate) fn toml_error(err: &toml::de::Error, text: &str, path: &Path) -> ConfigError {
    // The parser's message may quote the offending value.
    let message = untrusted::clean(&err.message().trim().replace('\n', " "));
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            ConfigError::invalid(format!("{}:{line}:{column}: {message}", path.display()))
        }
        None => ConfigError::invalid(format!("{}: {message}", path.display())),
    }
}

pub(crate) fn check_issuer(text: &str) -> Result<Url, String> {
    // Quoted in errors: cleaned and bounded (a config may hold anything).
    let shown = untrusted::clean(text);
    let url = Url::parse(text).map_err(|e| format!("{shown:?} is not a URL: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("{shown:?} has no host"))?;
    match url.scheme() {
        "https" => {}
        "http" if crate::http::is_loopback(host) => {}
        "http" => {
            return Err(format!(
                "{shown:?} must use https (http is allowed only for 127.0.0.1, ::1 and localhost)"
            ));
        }
        other => {
            return Err(format!(
                "{shown:?}: scheme {:?} is not https",
                untrusted::clean(other)
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{shown:?} must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{shown:?} must not carry credentials"));
    }
    Ok(url)
}

/// The `login` word of the netrc entry (`netrc_login`, or the tool's name): one plain netrc
/// word, since curl and Nix read the entry word by word.
pub(crate) fn check_netrc_login(value: Option<String>) -> Result<String, String> {
    let login = value.unwrap_or_else(|| DEFAULT_NETRC_LOGIN.to_string());
    if !crate::netrc::is_plain_word(&login) {
        return Err(format!(
            "{:?} must be one word without spaces, quotes or control characters, not starting with # and not a netrc keyword",
            untrusted::clean(&login)
        ));
    }
    Ok(login)
}

/// A cache host is what Nix's substituter URL has between `https://` and the path.
pub(crate) fn check_cache_host(host: &str) -> Result<(), String> {
    // Quoted in errors: cleaned and bounded (a config may hold anything).
    let shown = untrusted::clean(host);
    if host.is_empty() {
        return Err("must not be empty".into());
    }
    if host.contains("://") {
        return Err(format!(
            "{shown:?} must be a host name (optionally with :port), without a scheme"
        ));
    }
    if host.contains(['/', '?', '#', '@'])
        || host.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{shown:?} must be a host name (optionally with :port), without a path, user or spaces"
        ));
    }
    // Let the URL parser judge the host and port, as it will when the cache is contacted.
    let url = Url::parse(&format!("https://{host}/"))
        .map_err(|e| format!("{shown:?} is not a valid host[:port]: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown:?} is not a valid host[:port]"));
    }
    Ok(())
}

/// Expands `~`, `$VAR` and `${VAR}`; an unset variable is an error that names it.
fn expand_path(value: &str, env: &dyn Environment) -> Result<PathBuf, String> {
    // Quoted in errors: cleaned and bounded (a config may hold anything).
    let shown = untrusted::clean(value);
    let expanded = shellexpand::full_with_context(
        value,
        || env.home_dir().map(|h| h.to_string_lossy().into_owned()),
        |name: &str| -> Result<Option<String>, String> {
            env.var(name).map(Some).ok_or_else(|| "not set".to_string())
        },
    )
    .map_err(|e| {
        format!(
            "environment variable ${} in {shown:?} is not set",
            e.var_name
        )
    })?;
    if value.starts_with('~') && env.home_dir().is_none() {
        return Err(format!("{shown:?} starts with ~ but $HOME is not set"));
    }
    Ok(PathBuf::from(expanded.as_ref()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct FakeEnv {
        pub vars: HashMap<String, String>,
        pub home: Option<PathBuf>,
    }

    impl FakeEnv {
        /// These variables, and no home.
        pub fn with(vars: &[(&str, &str)]) -> FakeEnv {
            FakeEnv {
                vars: vars
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                home: None,
            }
        }
    }

    impl Environment for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
        fn home_dir(&self) -> Option<PathBuf> {
            self.home.clone()
        }
    }

    fn env() -> FakeEnv {
        FakeEnv {
            vars: [("CREDS".to_string(), "/run/creds".to_string())].into(),
            home: Some("/home/alice".into()),
        }
    }

    const MINIMAL: &str = r#"
issuer = "https://sso.example.com/realms/nix"
client_id = "nix-cache"
cache_host = "cache.example.com"
"#;

    fn parse_ok(text: &str) -> Config {
        parse(text, Path::new("/cfg.toml"), None, &env()).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse(text, Path::new("/cfg.toml"), None, &env())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_new_config_is_quoted_as_toml_and_parses() {
        let text = render_new("https://sso/realms/a\"b", "id", "c");
        let table: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(table["issuer"].as_str(), Some("https://sso/realms/a\"b"));
        let text = render_new(
            "https://sso.example.com/realms/nix",
            "nix-cache",
            "cache.example.com",
        );
        assert_eq!(parse_ok(&text), parse_ok(MINIMAL));
    }

    #[test]
    fn a_new_config_never_replaces_one_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        write_new(&path, "a = 1\n", IfExists::Keep).unwrap();
        let e = write_new(&path, "b = 2\n", IfExists::Keep).unwrap_err();
        assert!(format!("{e:#}").contains("appeared meanwhile"), "{e:#}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 1\n");
        write_new(&path, "b = 2\n", IfExists::Replace).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "b = 2\n");
    }

    #[test]
    fn defaults() {
        let c = parse_ok(MINIMAL);
        assert_eq!(c.issuer_str(), "https://sso.example.com/realms/nix");
        assert_eq!(c.cache_hosts, vec!["cache.example.com"]);
        assert_eq!(c.netrc_path, PathBuf::from("/home/alice/.config/nix/netrc"));
        assert_eq!(c.scopes, vec!["openid"]);
        assert_eq!(c.netrc_login, DEFAULT_NETRC_LOGIN);
        assert_eq!(c.callback_port, 0);
        assert_eq!(c.client_secret_file, None);
    }

    #[test]
    fn xdg_config_home_sets_netrc_default() {
        let mut e = env();
        e.vars.insert("XDG_CONFIG_HOME".into(), "/xdg".into());
        let c = parse(MINIMAL, Path::new("/c"), None, &e).unwrap();
        assert_eq!(c.netrc_path, PathBuf::from("/xdg/nix/netrc"));
    }

    #[test]
    fn paths_expand_vars_braces_and_tilde() {
        let c = parse_ok(&format!(
            "{MINIMAL}client_secret_file = \"$CREDS/secret\"\nnetrc_path = \"~/n/${{CREDS}}x\"\n"
        ));
        assert_eq!(
            c.client_secret_file,
            Some(PathBuf::from("/run/creds/secret"))
        );
        assert_eq!(c.netrc_path, PathBuf::from("/home/alice/n//run/credsx"));
    }

    #[test]
    fn unset_variable_is_named() {
        let e = parse_err(&format!("{MINIMAL}netrc_path = \"$NOPE/netrc\"\n"));
        assert!(
            e.contains("netrc_path") && e.contains("$NOPE") && e.contains("/cfg.toml"),
            "{e}"
        );
    }

    #[test]
    fn relative_path_is_refused() {
        let e = parse_err(&format!("{MINIMAL}netrc_path = \"netrc\"\n"));
        assert!(e.contains("absolute"), "{e}");
    }

    #[test]
    fn unknown_key_has_line_and_column() {
        let e = parse_err(&format!("{MINIMAL}isuer = \"x\"\n"));
        assert!(e.starts_with("/cfg.toml:5:1: "), "{e}");
        assert!(e.contains("isuer"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn wrong_type_has_line_and_column() {
        let e = parse_err(&format!("{MINIMAL}callback_port = \"eighty\"\n"));
        assert!(e.starts_with("/cfg.toml:5:"), "{e}");
        let e = parse_err(&format!("{MINIMAL}callback_port = 70000\n"));
        assert!(e.starts_with("/cfg.toml:5:"), "{e}");
    }

    #[test]
    fn syntax_error_is_one_line() {
        let e = parse_err("issuer = \"unterminated\n");
        assert!(e.starts_with("/cfg.toml:1:"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn missing_keys_are_named() {
        assert!(parse_err("client_id='a'\ncache_host='h'").contains("issuer: missing"));
        assert!(parse_err("issuer='https://i'\ncache_host='h'").contains("client_id: missing"));
        assert!(parse_err("issuer='https://i'\nclient_id='a'").contains("cache_host: missing"));
    }

    #[test]
    fn issuer_must_be_https_unless_loopback() {
        let base = "client_id='a'\ncache_host='h'\n";
        assert!(parse_err(&format!("{base}issuer='http://sso.example.com'")).contains("https"));
        assert!(parse_err(&format!("{base}issuer='ftp://x'")).contains("scheme"));
        assert!(parse_err(&format!("{base}issuer='not a url'")).contains("not a URL"));
        for ok in [
            "http://127.0.0.1:8080/r",
            "http://localhost",
            "http://[::1]:9/x",
        ] {
            parse_ok(&format!("{base}issuer='{ok}'"));
        }
    }

    #[test]
    fn cache_host_shapes() {
        let base = "issuer='https://i'\nclient_id='a'\n";
        for bad in ["https://cache", "cache/path", "", "ca che", "user@cache"] {
            let e = parse_err(&format!("{base}cache_host='{bad}'"));
            assert!(e.contains("cache_host"), "{bad}: {e}");
        }
        for good in ["cache.example.com", "cache:8443", "[::1]:8080", "127.0.0.1"] {
            parse_ok(&format!("{base}cache_host='{good}'"));
        }
        assert!(
            parse_err(&format!("{base}cache_host='a'\ncache_hosts=['b']")).contains("not both")
        );
        assert!(parse_err(&format!("{base}cache_hosts=[]")).contains("empty"));
        let c = parse_ok(&format!("{base}cache_hosts=['a','b:1']"));
        assert_eq!(c.cache_hosts, vec!["a", "b:1"]);
    }

    #[test]
    fn netrc_login_must_be_a_plain_word() {
        for bad in ["default", "Machine", "two words", "#x", "a\\\"b", ""] {
            let e = parse_err(&format!("{MINIMAL}netrc_login = {bad:?}\n"));
            assert!(e.contains("netrc_login"), "{bad}: {e}");
        }
        assert_eq!(
            parse_ok(&format!("{MINIMAL}netrc_login = 'oauth2'\n")).netrc_login,
            "oauth2"
        );
    }

    #[test]
    fn profiles_override_top_level() {
        let text = format!(
            "{MINIMAL}\n[profiles.staging]\nissuer = 'https://sso-staging.example.com'\ncache_hosts = ['s1', 's2']\n"
        );
        let c = parse(&text, Path::new("/c"), Some("staging"), &env()).unwrap();
        assert_eq!(c.issuer_str(), "https://sso-staging.example.com");
        assert_eq!(c.client_id, "nix-cache");
        assert_eq!(c.cache_hosts, vec!["s1", "s2"]);
        assert_eq!(c.profile.as_deref(), Some("staging"));
        let e = parse(&text, Path::new("/c"), Some("prod"), &env())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no profile \"prod\"") && e.contains("staging"),
            "{e}"
        );
        let top = parse(&text, Path::new("/c"), None, &env()).unwrap();
        assert_eq!(top.cache_hosts, vec!["cache.example.com"]);
    }

    #[test]
    fn bad_profile_key_is_located() {
        let text = format!("{MINIMAL}\n[profiles.x]\nisuer = 'y'\n");
        let e = parse_err(&text);
        assert!(e.starts_with("/cfg.toml:7:"), "{e}");
    }

    #[test]
    fn locate_order() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("xdg/nix-cache-login/config.toml");
        std::fs::create_dir_all(user.parent().unwrap()).unwrap();
        std::fs::write(&user, MINIMAL).unwrap();
        let explicit = dir.path().join("explicit.toml");
        std::fs::write(&explicit, MINIMAL).unwrap();
        let mut e = FakeEnv::default();
        e.vars.insert(
            "XDG_CONFIG_HOME".into(),
            dir.path().join("xdg").display().to_string(),
        );
        assert_eq!(locate(None, &e).unwrap(), user);
        assert_eq!(locate(Some(&explicit), &e).unwrap(), explicit);
        e.vars
            .insert(ENV_CONFIG.into(), explicit.display().to_string());
        assert_eq!(locate(None, &e).unwrap(), explicit);
        e.vars.insert(ENV_CONFIG.into(), "/nonexistent.toml".into());
        let err = locate(None, &e).unwrap_err().to_string();
        assert!(
            err.contains("/nonexistent.toml") && err.contains(ENV_CONFIG),
            "{err}"
        );
        let err = locate(Some(Path::new("/missing.toml")), &e)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/missing.toml") && err.contains("--config"),
            "{err}"
        );
    }

    #[test]
    fn locate_lists_what_it_tried() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = FakeEnv::default();
        e.vars
            .insert("XDG_CONFIG_HOME".into(), dir.path().display().to_string());
        if Path::new(SYSTEM_CONFIG).exists() {
            return; // a machine with a system config finds it; nothing to assert here
        }
        let err = locate(None, &e).unwrap_err().to_string();
        assert!(
            err.contains(ENV_CONFIG) && err.contains(SYSTEM_CONFIG),
            "{err}"
        );
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }
}
