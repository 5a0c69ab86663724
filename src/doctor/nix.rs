//! What Nix's settings say, read the way Nix reads them.
//!
//! The `nix` in PATH is asked first (`nix config show`, or `nix show-config` before Nix
//! 2.20): it knows every rule, default and override. Its answer is the client's view. The
//! nix.conf files are read as well, the way Nix 2.8 does (`$NIX_CONF_DIR/nix.conf`, then the
//! user's files, then `$NIX_CONFIG`): for the daemon's view (the system file alone), to say
//! where a setting came from, and when there is no `nix` to ask.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::system::{User, in_path, run_tool};
use crate::config::Environment;
use crate::fs::read_guard;

pub const DEFAULT_CONF_DIR: &str = "/etc/nix";
const DEFAULT_STATE_DIR: &str = "/nix/var/nix";
pub const DEFAULT_NEGATIVE_TTL: u64 = 3600;
/// Determinate Nix's daemon merges the files listed here into the netrc it manages.
pub const DETERMINATE_CONFIG: &str = "/etc/determinate/config.json";
/// `include` nesting deeper than this is a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Settings by name, each with where it was set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, (String, String)>,
}

impl Settings {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|(v, _)| v.as_str())
    }

    /// The file (or `$NIX_CONFIG`, or the command) that set `name`.
    pub fn origin(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|(_, o)| o.as_str())
    }

    fn set(&mut self, name: &str, value: String, origin: &str) {
        // `extra-foo` appends to `foo`, which is how Nix treats it for the list settings
        // that use it.
        if let Some(base) = name.strip_prefix("extra-") {
            let joined = match self.get(base) {
                Some(old) if !old.is_empty() => format!("{old} {value}"),
                _ => value,
            };
            self.values
                .insert(base.to_string(), (joined, origin.to_string()));
        } else {
            self.values
                .insert(name.to_string(), (value, origin.to_string()));
        }
    }

    /// Lines `name = value`, as `nix show-config` prints them.
    pub fn parse_listing(text: &str, origin: &str) -> Settings {
        let mut settings = Settings::default();
        for line in text.lines() {
            if let Some((name, value)) = line.split_once(" = ") {
                settings.set(name.trim(), value.trim().to_string(), origin);
            } else if let Some(name) = line.trim().strip_suffix(" =") {
                settings.set(name.trim(), String::new(), origin);
            }
        }
        settings
    }
}

/// `$NIX_CONF_DIR`, or /etc/nix.
pub fn conf_dir(env: &dyn Environment) -> PathBuf {
    env.var("NIX_CONF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONF_DIR))
}

/// The system's nix.conf: what the daemon reads.
pub fn system_conf_file(env: &dyn Environment) -> PathBuf {
    conf_dir(env).join("nix.conf")
}

/// The user's nix.conf files, first applied first (so the last one wins):
/// `$NIX_USER_CONF_FILES`, or `$XDG_CONFIG_DIRS` (default /etc/xdg) in reverse and then
/// `$XDG_CONFIG_HOME`, each with `/nix/nix.conf`.
pub fn user_conf_files(env: &dyn Environment) -> Vec<PathBuf> {
    if let Some(files) = env.var("NIX_USER_CONF_FILES") {
        return files
            .split(':')
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
            .rev()
            .collect();
    }
    let dirs = env
        .var("XDG_CONFIG_DIRS")
        .unwrap_or_else(|| "/etc/xdg".to_string());
    let mut files: Vec<PathBuf> = dirs
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join("nix/nix.conf"))
        .rev()
        .collect();
    if let Some(home) = env.config_home() {
        files.push(home.join("nix/nix.conf"));
    }
    files
}

/// The user's own nix.conf, where a per-user setting belongs.
pub fn user_conf_file(env: &dyn Environment) -> Option<PathBuf> {
    user_conf_files(env).pop()
}

/// Settings from files, and the problems met reading them (a missing `include`, a line that
/// is not `name = value`).
#[derive(Debug, Default)]
pub struct FileSettings {
    pub settings: Settings,
    pub problems: Vec<String>,
}

/// The daemon's view: the system nix.conf only.
pub fn read_system(env: &dyn Environment) -> FileSettings {
    let mut out = FileSettings::default();
    apply_file(&system_conf_file(env), true, 0, &mut out);
    out
}

/// The client's view: the system file, the user's files, then `$NIX_CONFIG`.
pub fn read_client(env: &dyn Environment) -> FileSettings {
    let mut out = read_system(env);
    for file in user_conf_files(env) {
        apply_file(&file, true, 0, &mut out);
    }
    if let Some(text) = env.var("NIX_CONFIG") {
        apply_text(&text, Path::new("."), "$NIX_CONFIG", 0, &mut out);
    }
    out
}

fn apply_file(path: &Path, ignore_missing: bool, depth: usize, out: &mut FileSettings) {
    // A nix.conf (or what it includes) may be anything: read it as every file is read.
    match read_guard::read_regular(path, read_guard::MAX_FILE_BYTES) {
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
            let dir = path.parent().unwrap_or(Path::new("/"));
            apply_text(&text, dir, &path.display().to_string(), depth, out);
        }
        Ok(None) if ignore_missing => {}
        Ok(None) => out
            .problems
            .push(format!("cannot read {}: it does not exist", path.display())),
        Err(e) => out.problems.push(format!("{e:#}")),
    }
}

/// Nix's rules: `#` starts a comment anywhere, words are separated by white space,
/// `include F` and `!include F` (relative to the including file; `!` tolerates a missing
/// file), everything else `name = value...`.
fn apply_text(text: &str, dir: &Path, origin: &str, depth: usize, out: &mut FileSettings) {
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            [keyword @ ("include" | "!include"), file] => {
                if depth >= MAX_INCLUDE_DEPTH {
                    out.problems
                        .push(format!("{origin}:{}: includes nest too deep", index + 1));
                    continue;
                }
                apply_file(&dir.join(file), *keyword == "!include", depth + 1, out);
            }
            [name, "=", value @ ..] => out.settings.set(name, value.join(" "), origin),
            _ => out.problems.push(format!(
                "{origin}:{}: not `name = value`: {}",
                index + 1,
                line.trim()
            )),
        }
    }
}

/// Asks the `nix` in PATH for its settings. Returns them and the command that answered.
pub fn ask_nix(env: &dyn Environment) -> Result<(Settings, String)> {
    const FLAGS: [&str; 2] = ["--extra-experimental-features", "nix-command"];
    if !in_path(env, "nix") {
        bail!("nix is not in PATH");
    }
    let mut errors = Vec::new();
    for sub in [&["config", "show"][..], &["show-config"][..]] {
        let args: Vec<&str> = FLAGS.iter().chain(sub).copied().collect();
        let shown = format!("nix {}", sub.join(" "));
        match run_tool("nix", &args) {
            Ok(out) => {
                let settings = Settings::parse_listing(&out, &format!("`{shown}`"));
                if settings.get("netrc-file").is_none() {
                    bail!("`{shown}` printed no netrc-file setting");
                }
                return Ok((settings, shown));
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    bail!("{}", errors.join("; "))
}

/// Where Nix reads the netrc when nothing sets `netrc-file`.
pub fn default_netrc(env: &dyn Environment) -> PathBuf {
    conf_dir(env).join("netrc")
}

/// Whether downloads go through the daemon, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUse {
    pub daemon: bool,
    pub why: String,
}

/// Nix's `store` setting (its default is `$NIX_REMOTE`, else `auto`): `daemon` and
/// `unix://...` use the daemon; `auto` uses the local store when the state directory is
/// writable (for root) and the daemon when its socket exists.
pub fn store_use(store: Option<&str>, env: &dyn Environment, user: Option<&User>) -> StoreUse {
    let (store, from) = match (store, env.var("NIX_REMOTE")) {
        (Some(s), _) => (s.to_string(), "store setting"),
        (None, Some(r)) => (r, "$NIX_REMOTE"),
        (None, None) => ("auto".to_string(), "store setting"),
    };
    let scheme = store.split('?').next().unwrap_or("");
    let explicit = |daemon: bool| StoreUse {
        daemon,
        why: format!("{from} is {store:?}"),
    };
    match scheme {
        "daemon" => explicit(true),
        s if s.starts_with("unix://") => explicit(true),
        "" | "auto" => {
            let socket = daemon_socket(env);
            if user.is_some_and(|u| u.uid == 0) {
                StoreUse {
                    daemon: false,
                    why: format!(
                        "{from} is \"auto\" and root can write the store itself, so Nix does not use the daemon"
                    ),
                }
            } else if socket.exists() {
                StoreUse {
                    daemon: true,
                    why: format!(
                        "{from} is \"auto\" and the daemon socket {} exists",
                        socket.display()
                    ),
                }
            } else {
                StoreUse {
                    daemon: false,
                    why: format!("no daemon socket at {}", socket.display()),
                }
            }
        }
        _ => explicit(false),
    }
}

fn daemon_socket(env: &dyn Environment) -> PathBuf {
    if let Some(path) = env.var("NIX_DAEMON_SOCKET_PATH") {
        return PathBuf::from(path);
    }
    let state = env
        .var("NIX_STATE_DIR")
        .unwrap_or_else(|| DEFAULT_STATE_DIR.to_string());
    Path::new(&state).join("daemon-socket/socket")
}

/// The `trusted-users` entry that makes `user` trusted (root always is), or `None`.
pub fn trusted_by(user: &User, trusted_users: &str) -> Option<String> {
    if user.uid == 0 {
        return Some("root".to_string());
    }
    trusted_users
        .split_whitespace()
        .find(|entry| match entry.strip_prefix('@') {
            Some(group) => user.groups.iter().any(|g| g == group),
            None => *entry == "*" || *entry == user.name,
        })
        .map(str::to_string)
}

/// `authentication.additionalNetrcSources` of Determinate Nix's config.json.
pub fn determinate_netrc_sources(json: &str) -> Result<Vec<PathBuf>> {
    let value: serde_json::Value = serde_json::from_str(json).context("not valid JSON")?;
    let Some(sources) = value
        .get("authentication")
        .and_then(|a| a.get("additionalNetrcSources"))
    else {
        return Ok(Vec::new());
    };
    let list = sources
        .as_array()
        .context("authentication.additionalNetrcSources is not a list")?;
    list.iter()
        .map(|v| {
            v.as_str()
                .map(PathBuf::from)
                .context("authentication.additionalNetrcSources holds a non-string")
        })
        .collect()
}

/// The narinfo cache Nix keeps negative answers in, for a user whose cache directory is
/// `cache_home` (`$XDG_CACHE_HOME` or `~/.cache`).
pub fn narinfo_cache(cache_home: &Path) -> PathBuf {
    cache_home.join("nix/binary-cache-v6.sqlite")
}

/// The daemon runs as root with root's home.
pub const DAEMON_NARINFO_CACHE: &str = "/root/.cache/nix/binary-cache-v6.sqlite";

/// `path` with symlinks and `..` resolved, as far as it exists: two spellings of one file
/// compare equal even when the file itself is still missing.
pub fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
            canonical(parent).join(name)
        }
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::FakeEnv;

    fn env(vars: &[(&str, &str)]) -> FakeEnv {
        FakeEnv {
            home: Some("/home/alice".into()),
            ..FakeEnv::with(vars)
        }
    }

    fn alice() -> User {
        User {
            uid: 1000,
            name: "alice".into(),
            groups: vec!["users".into(), "wheel".into()],
        }
    }

    #[test]
    fn listing_as_nix_prints_it() {
        let s = Settings::parse_listing(
            "netrc-file = /etc/nix/netrc\nsubstituters = \ntrusted-users = root @wheel\n",
            "`nix show-config`",
        );
        assert_eq!(s.get("netrc-file"), Some("/etc/nix/netrc"));
        assert_eq!(s.get("substituters"), Some(""));
        assert_eq!(s.get("trusted-users"), Some("root @wheel"));
        assert_eq!(s.origin("netrc-file"), Some("`nix show-config`"));
    }

    #[test]
    fn files_in_nix_order_with_includes_and_extra() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::create_dir_all(d.join("xdg/nix")).unwrap();
        std::fs::write(
            d.join("etc/nix.conf"),
            "# system\nnetrc-file = /etc/nix/netrc # trailing\ntrusted-users = root\n\
             include extra.conf\n!include missing.conf\n",
        )
        .unwrap();
        std::fs::write(d.join("etc/extra.conf"), "extra-trusted-users = @wheel\n").unwrap();
        std::fs::write(
            d.join("xdg/nix/nix.conf"),
            "netrc-file = /home/alice/.config/nix/netrc\nbogus line\n",
        )
        .unwrap();
        let e = env(&[
            ("NIX_CONF_DIR", d.join("etc").to_str().unwrap()),
            ("XDG_CONFIG_HOME", d.join("xdg").to_str().unwrap()),
            ("XDG_CONFIG_DIRS", d.join("none").to_str().unwrap()),
            ("NIX_CONFIG", "narinfo-cache-negative-ttl = 5"),
        ]);
        let system = read_system(&e);
        assert_eq!(system.settings.get("netrc-file"), Some("/etc/nix/netrc"));
        assert_eq!(system.settings.get("trusted-users"), Some("root @wheel"));
        assert!(system.problems.is_empty(), "{:?}", system.problems);

        let client = read_client(&e);
        let user_file = d.join("xdg/nix/nix.conf").display().to_string();
        assert_eq!(
            client.settings.get("netrc-file"),
            Some("/home/alice/.config/nix/netrc")
        );
        assert_eq!(
            client.settings.origin("netrc-file"),
            Some(user_file.as_str())
        );
        assert_eq!(client.settings.get("narinfo-cache-negative-ttl"), Some("5"));
        assert_eq!(
            client.settings.origin("narinfo-cache-negative-ttl"),
            Some("$NIX_CONFIG")
        );
        assert_eq!(client.problems.len(), 1, "{:?}", client.problems);
        assert!(client.problems[0].contains(":2:"), "{:?}", client.problems);

        std::fs::write(d.join("etc/nix.conf"), "include missing.conf\n").unwrap();
        assert_eq!(read_system(&e).problems.len(), 1);
        std::fs::write(d.join("etc/nix.conf"), "include nix.conf\n").unwrap();
        assert!(read_system(&e).problems[0].contains("too deep"));
    }

    #[test]
    fn user_files_order() {
        let e = env(&[("XDG_CONFIG_DIRS", "/a:/b"), ("XDG_CONFIG_HOME", "/c")]);
        assert_eq!(
            user_conf_files(&e),
            vec![
                PathBuf::from("/b/nix/nix.conf"),
                "/a/nix/nix.conf".into(),
                "/c/nix/nix.conf".into()
            ]
        );
        assert_eq!(user_conf_file(&e), Some("/c/nix/nix.conf".into()));
        let e = env(&[("NIX_USER_CONF_FILES", "/x.conf:/y.conf")]);
        // The first listed wins, so it is applied last.
        assert_eq!(
            user_conf_files(&e),
            vec![PathBuf::from("/y.conf"), "/x.conf".into()]
        );
        let e = env(&[]);
        assert_eq!(
            user_conf_files(&e).last(),
            Some(&PathBuf::from("/home/alice/.config/nix/nix.conf"))
        );
        assert_eq!(default_netrc(&e), PathBuf::from("/etc/nix/netrc"));
    }

    #[test]
    fn daemon_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("socket");
        let with_socket = env(&[("NIX_DAEMON_SOCKET_PATH", socket.to_str().unwrap())]);
        assert!(!store_use(None, &with_socket, Some(&alice())).daemon);
        std::fs::write(&socket, "").unwrap();
        assert!(store_use(None, &with_socket, Some(&alice())).daemon);
        assert!(store_use(Some("auto"), &with_socket, Some(&alice())).daemon);
        let root = User {
            uid: 0,
            name: "root".into(),
            groups: vec![],
        };
        assert!(!store_use(None, &with_socket, Some(&root)).daemon);
        assert!(store_use(Some("daemon"), &with_socket, Some(&root)).daemon);
        assert!(store_use(Some("unix:///run/nix.sock"), &env(&[]), None).daemon);
        assert!(!store_use(Some("local"), &with_socket, Some(&alice())).daemon);
        let remote = env(&[("NIX_REMOTE", "daemon")]);
        let used = store_use(None, &remote, Some(&alice()));
        assert!(used.daemon && used.why.contains("$NIX_REMOTE"), "{used:?}");
    }

    #[test]
    fn trusted_users() {
        assert_eq!(trusted_by(&alice(), "root"), None);
        assert_eq!(trusted_by(&alice(), "root alice"), Some("alice".into()));
        assert_eq!(trusted_by(&alice(), "root @wheel"), Some("@wheel".into()));
        assert_eq!(trusted_by(&alice(), "@admins *"), Some("*".into()));
        assert_eq!(trusted_by(&alice(), "@alice"), None);
        let root = User {
            uid: 0,
            name: "root".into(),
            groups: vec![],
        };
        assert_eq!(trusted_by(&root, ""), Some("root".into()));
    }

    #[test]
    fn determinate_sources() {
        let json = r#"{"authentication":{"additionalNetrcSources":["/home/a/.config/nix/netrc"]}}"#;
        assert_eq!(
            determinate_netrc_sources(json).unwrap(),
            vec![PathBuf::from("/home/a/.config/nix/netrc")]
        );
        assert!(determinate_netrc_sources("{}").unwrap().is_empty());
        assert!(determinate_netrc_sources("[").is_err());
        assert!(
            determinate_netrc_sources(r#"{"authentication":{"additionalNetrcSources":"x"}}"#)
                .is_err()
        );
    }

    #[test]
    fn canonical_paths_of_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        assert_eq!(
            canonical(&dir.path().join("link/netrc")),
            real.join("netrc")
        );
        assert_eq!(
            canonical(&dir.path().join("link/../real/./netrc")),
            real.join("netrc")
        );
        assert_eq!(canonical(Path::new("relative")), PathBuf::from("relative"));
    }
}
