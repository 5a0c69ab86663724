//! The checks on Nix's side: which netrc it reads, whether its daemon takes that netrc, and
//! how long it remembers a refused path.

use std::path::{Path, PathBuf};

use super::Check;
use super::nix::{self, FileSettings, Settings, StoreUse};
use super::system::User;
use crate::config::Environment;

/// A negative-cache TTL up to this long costs a user who just logged in little.
const SHORT_NEGATIVE_TTL: u64 = 60;
const NEGATIVE_TTL: &str = "narinfo-cache-negative-ttl";

/// What nix-cache-login is set up to write, when its config could be read.
pub struct Tool<'a> {
    pub netrc: &'a Path,
    pub config: &'a Path,
}

/// `nix-conf` (only when a nix.conf has lines Nix refuses), `nix-netrc`, `nix-daemon`,
/// `negative-cache`.
pub fn checks(env: &dyn Environment, user: Option<&User>, tool: Option<&Tool>) -> Vec<Check> {
    let files = nix::read_client(env);
    let system = nix::read_system(env);
    let (client, asked) = match nix::ask_nix(env) {
        Ok((settings, command)) => (settings, format!("as `{command}` reports it")),
        Err(e) => (
            files.settings.clone(),
            format!("from the nix.conf files, as `nix` could not say: {e:#}"),
        ),
    };
    let view = NixView::new(
        env,
        client,
        asked,
        files,
        system,
        user,
        super::determinate::sources(env),
    );
    let mut checks = Vec::new();
    if !view.files.problems.is_empty() {
        checks.push(Check::warn(
            "nix-conf",
            view.files.problems.join("\n"),
            "correct these lines: Nix stops with an error at them",
        ));
    }
    checks.push(view.netrc_check(tool));
    checks.push(view.daemon_check(user, tool));
    if let Some(tool) = tool
        && let Some(check) =
            super::determinate::restart_check(env, tool.netrc, view.in_determinate(tool.netrc))
    {
        checks.push(check);
    }
    checks.push(view.negative_cache_check());
    checks
}

/// Nix's settings from both sides of the daemon socket.
struct NixView<'a> {
    env: &'a dyn Environment,
    /// The client's settings, from `nix` itself when it answered.
    client: Settings,
    /// How `client` was learned.
    asked: String,
    /// The client's settings as the files say (for where a setting was made).
    files: FileSettings,
    /// The system nix.conf alone: what the daemon reads.
    system: FileSettings,
    store: StoreUse,
    /// The `trusted-users` entry that makes the user trusted by the daemon.
    trusted: Option<String>,
    /// Determinate Nix's additionalNetrcSources; `None` without Determinate.
    determinate: Option<Result<Vec<PathBuf>, String>>,
}

impl<'a> NixView<'a> {
    fn new(
        env: &'a dyn Environment,
        client: Settings,
        asked: String,
        files: FileSettings,
        system: FileSettings,
        user: Option<&User>,
        determinate: Option<Result<Vec<PathBuf>, String>>,
    ) -> Self {
        let store = nix::store_use(client.get("store"), env, user);
        // Trust is the daemon's to grant: only the system file counts.
        let trusted_users = system.settings.get("trusted-users").unwrap_or("root");
        let trusted = user.and_then(|u| nix::trusted_by(u, trusted_users));
        NixView {
            env,
            client,
            asked,
            files,
            system,
            store,
            trusted,
            determinate,
        }
    }

    /// The daemon does the downloads and ignores this user's settings.
    fn daemon_ignores_user(&self) -> bool {
        self.store.daemon && self.trusted.is_none()
    }

    /// `name` as the downloads see it, and the files that say where it was set.
    fn download_setting(&self, name: &str) -> (Option<&str>, &FileSettings) {
        if self.daemon_ignores_user() {
            (self.system.settings.get(name), &self.system)
        } else {
            (self.client.get(name), &self.files)
        }
    }

    /// The client's netrc-file and where it was set.
    fn client_netrc(&self) -> (PathBuf, String) {
        let default = nix::default_netrc(self.env);
        let value = self
            .client
            .get("netrc-file")
            .map(PathBuf::from)
            .unwrap_or_else(|| default.clone());
        let origin = match self.files.settings.get("netrc-file") {
            Some(v) if Path::new(v) == value => format!(
                "set in {}",
                self.files.settings.origin("netrc-file").unwrap_or("?")
            ),
            _ if value == default => "Nix's default".to_string(),
            _ => "set outside the nix.conf files doctor knows".to_string(),
        };
        (value, origin)
    }

    /// Where to change `name` in `settings`: where it is set now (the last word wins), else
    /// the system file when the daemon ignores the user, else the user's own nix.conf.
    fn conf_to_edit(&self, settings: &FileSettings, name: &str) -> String {
        if let Some(origin) = settings.settings.origin(name) {
            return origin.to_string();
        }
        let file = if self.daemon_ignores_user() {
            nix::system_conf_file(self.env)
        } else {
            nix::user_conf_file(self.env).unwrap_or_else(|| nix::system_conf_file(self.env))
        };
        file.display().to_string()
    }

    fn in_determinate(&self, netrc: &Path) -> bool {
        self.determinate
            .as_ref()
            .is_some_and(|sources| super::determinate::merges(sources, netrc))
    }

    fn netrc_check(&self, tool: Option<&Tool>) -> Check {
        let (nix_netrc, origin) = self.client_netrc();
        let reads = format!(
            "Nix reads {} ({origin}; {})",
            nix_netrc.display(),
            self.asked
        );
        let Some(tool) = tool else {
            return Check::skip("nix-netrc", format!("{reads}; no config to compare with"));
        };
        let ours = tool.netrc.display();
        if same_file(&nix_netrc, tool.netrc) {
            return Check::ok(
                "nix-netrc",
                format!("{reads}, the file nix-cache-login writes"),
            );
        }
        if self.in_determinate(tool.netrc) {
            return Check::ok(
                "nix-netrc",
                format!(
                    "{reads}; Determinate Nix merges {ours} into it (additionalNetrcSources in {})",
                    nix::DETERMINATE_CONFIG
                ),
            );
        }
        match &self.determinate {
            Some(Ok(_)) => Check::fail(
                "nix-netrc",
                format!(
                    "{reads}, but nix-cache-login writes {ours}, which is not among Determinate's additionalNetrcSources"
                ),
                super::determinate::add_source_fix(tool.netrc),
            ),
            Some(Err(e)) => Check::fail(
                "nix-netrc",
                format!(
                    "{reads}, but nix-cache-login writes {ours}; {}: {e}",
                    nix::DETERMINATE_CONFIG
                ),
                format!(
                    "correct {} and list \"{ours}\" in authentication.additionalNetrcSources",
                    nix::DETERMINATE_CONFIG
                ),
            ),
            None => Check::fail(
                "nix-netrc",
                format!("{reads}, but nix-cache-login writes {ours}"),
                format!(
                    "set `netrc-file = {ours}` in {}, or set netrc_path = \"{}\" in {}",
                    self.conf_to_edit(&self.files, "netrc-file"),
                    nix_netrc.display(),
                    tool.config.display()
                ),
            ),
        }
    }

    fn daemon_check(&self, user: Option<&User>, tool: Option<&Tool>) -> Check {
        let why = &self.store.why;
        if !self.store.daemon {
            return Check::ok(
                "nix-daemon",
                format!("no daemon ({why}): Nix downloads with its own settings"),
            );
        }
        let Some(user) = user else {
            return Check::warn(
                "nix-daemon",
                format!("the daemon downloads ({why}), and who runs doctor is unknown"),
                "run `id` to see why it fails",
            );
        };
        let name = &user.name;
        if let Some(entry) = &self.trusted {
            let because = if user.uid == 0 {
                "root always is".to_string()
            } else {
                format!("{entry} in trusted-users")
            };
            return Check::ok(
                "nix-daemon",
                format!(
                    "the daemon downloads ({why}); {name} is a trusted user ({because}), so the daemon takes the client's netrc-file"
                ),
            );
        }
        let daemon_netrc = self
            .system
            .settings
            .get("netrc-file")
            .map(PathBuf::from)
            .unwrap_or_else(|| nix::default_netrc(self.env));
        let ignored = format!(
            "the daemon downloads ({why}) and ignores {name}'s settings, as {name} is not a trusted user; it reads {}",
            daemon_netrc.display()
        );
        let takes_ours =
            tool.is_some_and(|t| same_file(t.netrc, &daemon_netrc) || self.in_determinate(t.netrc));
        if takes_ours {
            return Check::ok(
                "nix-daemon",
                format!("{ignored}, the file nix-cache-login writes"),
            );
        }
        let ours = tool
            .map(|t| t.netrc.display().to_string())
            .unwrap_or_else(|| "the netrc nix-cache-login writes".to_string());
        let system_conf = nix::system_conf_file(self.env);
        Check::fail(
            "nix-daemon",
            ignored,
            format!(
                "set `netrc-file = {ours}` in {} and restart the daemon (on NixOS, the \
                 nix-cache-login module does this), or add {name} to trusted-users there \
                 (which makes {name} as powerful as root for Nix)",
                system_conf.display()
            ),
        )
    }

    fn negative_cache_check(&self) -> Check {
        let (value, settings) = self.download_setting(NEGATIVE_TTL);
        let whose = if self.store.daemon {
            "the daemon's "
        } else {
            ""
        };
        let ttl = match value.map(str::parse::<u64>) {
            None => nix::DEFAULT_NEGATIVE_TTL,
            Some(Ok(ttl)) => ttl,
            Some(Err(_)) => {
                return Check::warn(
                    "negative-cache",
                    format!(
                        "{whose}{NEGATIVE_TTL} is {:?}, not a number of seconds",
                        value.unwrap_or_default()
                    ),
                    format!(
                        "set `{NEGATIVE_TTL} = 0` in {}",
                        self.conf_to_edit(settings, NEGATIVE_TTL)
                    ),
                );
            }
        };
        if ttl <= SHORT_NEGATIVE_TTL {
            return Check::ok(
                "negative-cache",
                format!("{whose}{NEGATIVE_TTL} is {ttl} s: a fixed login takes effect at once"),
            );
        }
        let default = if ttl == nix::DEFAULT_NEGATIVE_TTL {
            " (Nix's default)"
        } else {
            ""
        };
        // The daemon runs as root, so its cache is root's.
        let sqlite = if self.store.daemon {
            PathBuf::from(nix::DAEMON_NARINFO_CACHE)
        } else {
            self.env
                .cache_home()
                .map(|dir| nix::narinfo_cache(&dir))
                .unwrap_or_else(|| PathBuf::from("~/.cache/nix/binary-cache-v6.sqlite"))
        };
        Check::warn(
            "negative-cache",
            format!(
                "{whose}{NEGATIVE_TTL} is {ttl} s{default}: a path that got a 401 counts as \
                 missing for up to {}, even after a successful login",
                describe_seconds(ttl)
            ),
            format!(
                "set `{NEGATIVE_TTL} = 0` (or a few seconds) in {}; to forget the failures now, remove {}",
                self.conf_to_edit(settings, NEGATIVE_TTL),
                sqlite.display()
            ),
        )
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    nix::canonical(a) == nix::canonical(b)
}

fn describe_seconds(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        _ if secs.is_multiple_of(3600) => format!("{} h", secs / 3600),
        _ => format!("{} min", secs / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::FakeEnv;
    use crate::doctor::Status;

    /// A machine with a daemon whose system nix.conf says `system_conf`, and alice in
    /// group wheel; the client's view is what the files say.
    struct Machine {
        dir: tempfile::TempDir,
        env: FakeEnv,
    }

    impl Machine {
        fn new(system_conf: &str) -> Machine {
            let dir = tempfile::tempdir().unwrap();
            let etc = dir.path().join("etc");
            std::fs::create_dir_all(&etc).unwrap();
            std::fs::write(etc.join("nix.conf"), system_conf).unwrap();
            let socket = dir.path().join("socket");
            std::fs::write(&socket, "").unwrap();
            let s = |p: &Path| p.to_str().unwrap().to_string();
            let env = FakeEnv {
                vars: [
                    ("NIX_CONF_DIR".to_string(), s(&etc)),
                    ("NIX_DAEMON_SOCKET_PATH".to_string(), s(&socket)),
                    ("XDG_CONFIG_HOME".to_string(), s(&dir.path().join("xdg"))),
                    ("XDG_CONFIG_DIRS".to_string(), s(&dir.path().join("none"))),
                    ("XDG_CACHE_HOME".to_string(), s(&dir.path().join("cache"))),
                ]
                .into(),
                home: Some(dir.path().join("home")),
            };
            Machine { dir, env }
        }

        fn user_conf(&self, text: &str) {
            let dir = self.dir.path().join("xdg/nix");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("nix.conf"), text).unwrap();
        }

        fn view(&self, user: &User, determinate: Option<Vec<PathBuf>>) -> NixView<'_> {
            let files = nix::read_client(&self.env);
            NixView::new(
                &self.env,
                files.settings.clone(),
                "from the files".into(),
                files,
                nix::read_system(&self.env),
                Some(user),
                determinate.map(Ok),
            )
        }

        fn netrc(&self) -> PathBuf {
            self.dir.path().join("home/.config/nix/netrc")
        }
    }

    fn alice() -> User {
        User {
            uid: 1000,
            name: "alice".into(),
            groups: vec!["users".into(), "wheel".into()],
        }
    }

    fn tool(netrc: &Path) -> Tool<'_> {
        Tool {
            netrc,
            config: Path::new("/home/alice/.config/nix-cache-login/config.toml"),
        }
    }

    #[test]
    fn an_untrusted_user_s_netrc_does_not_reach_the_daemon() {
        let m = Machine::new("trusted-users = root\n");
        let netrc = m.netrc();
        m.user_conf(&format!(
            "netrc-file = {}\nnarinfo-cache-negative-ttl = 0\n",
            netrc.display()
        ));
        let view = m.view(&alice(), None);
        assert!(view.store.daemon, "{:?}", view.store);

        // The client reads the tool's netrc...
        assert_eq!(view.netrc_check(Some(&tool(&netrc))).status, Status::Ok);
        // ...but the daemon does not, and the user's TTL does not count either.
        let daemon = view.daemon_check(Some(&alice()), Some(&tool(&netrc)));
        assert_eq!(daemon.status, Status::Fail, "{daemon:?}");
        let system_conf = m.dir.path().join("etc/nix.conf").display().to_string();
        let default_netrc = m.dir.path().join("etc/netrc").display().to_string();
        assert!(
            daemon.detail.contains("not a trusted user") && daemon.detail.contains(&default_netrc),
            "{}",
            daemon.detail
        );
        let fix = daemon.fix.unwrap();
        assert!(
            fix.contains(&format!("netrc-file = {}", netrc.display()))
                && fix.contains(&system_conf)
                && fix.contains("trusted-users"),
            "{fix}"
        );
        let ttl = view.negative_cache_check();
        assert_eq!(ttl.status, Status::Warn, "{ttl:?}");
        assert!(ttl.detail.starts_with("the daemon's"), "{}", ttl.detail);
        let fix = ttl.fix.unwrap();
        assert!(
            fix.contains(nix::DAEMON_NARINFO_CACHE) && fix.contains(&system_conf),
            "{fix}"
        );
    }

    #[test]
    fn the_daemon_takes_the_netrc_of_a_trusted_user_or_its_own() {
        let m = Machine::new("trusted-users = root @wheel\n");
        let netrc = m.netrc();
        let check = m
            .view(&alice(), None)
            .daemon_check(Some(&alice()), Some(&tool(&netrc)));
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert!(check.detail.contains("@wheel"), "{}", check.detail);

        let m = Machine::new(&format!(
            "trusted-users = root\nnetrc-file = {}\n",
            netrc.display()
        ));
        let check = m
            .view(&alice(), None)
            .daemon_check(Some(&alice()), Some(&tool(&netrc)));
        assert_eq!(check.status, Status::Ok, "{check:?}");
    }

    #[test]
    fn determinate_sources_count_as_read() {
        let m = Machine::new("netrc-file = /nix/var/determinate/netrc\n");
        let netrc = m.netrc();
        let view = m.view(&alice(), Some(vec![netrc.clone()]));
        let check = view.netrc_check(Some(&tool(&netrc)));
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert!(check.detail.contains("Determinate"), "{}", check.detail);
        assert_eq!(
            view.daemon_check(Some(&alice()), Some(&tool(&netrc)))
                .status,
            Status::Ok
        );

        let view = m.view(&alice(), Some(vec![]));
        let check = view.netrc_check(Some(&tool(&netrc)));
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.fix.unwrap().contains("additionalNetrcSources"),
            "{}",
            check.detail
        );
    }

    #[test]
    fn the_fix_edits_the_file_that_set_the_value() {
        let m = Machine::new("netrc-file = /etc/nix/netrc\ntrusted-users = root @wheel\n");
        let netrc = m.netrc();
        let check = m.view(&alice(), None).netrc_check(Some(&tool(&netrc)));
        assert_eq!(check.status, Status::Fail);
        let system_conf = m.dir.path().join("etc/nix.conf").display().to_string();
        assert!(check.detail.contains(&format!("set in {system_conf}")));
        let fix = check.fix.unwrap();
        assert!(
            fix.starts_with(&format!(
                "set `netrc-file = {}` in {system_conf}",
                netrc.display()
            )),
            "{fix}"
        );
        assert!(fix.contains("netrc_path = \"/etc/nix/netrc\""), "{fix}");
    }

    #[test]
    fn negative_ttl_thresholds() {
        let m = Machine::new("trusted-users = root @wheel\n");
        m.user_conf("narinfo-cache-negative-ttl = 30\n");
        assert_eq!(
            m.view(&alice(), None).negative_cache_check().status,
            Status::Ok
        );
        m.user_conf("narinfo-cache-negative-ttl = 600\n");
        let user_conf = m.dir.path().join("xdg/nix/nix.conf").display().to_string();
        // A trusted user's TTL goes to the daemon, whose cache is root's.
        let check = m.view(&alice(), None).negative_cache_check();
        assert_eq!(check.status, Status::Warn);
        assert!(check.detail.contains("10 min"), "{}", check.detail);
        let fix = check.fix.unwrap();
        assert!(
            fix.contains(&user_conf) && fix.contains(nix::DAEMON_NARINFO_CACHE),
            "{fix}"
        );
        // Without a daemon the cache is the user's own.
        std::fs::remove_file(m.dir.path().join("socket")).unwrap();
        let fix = m.view(&alice(), None).negative_cache_check().fix.unwrap();
        let sqlite = m.dir.path().join("cache/nix/binary-cache-v6.sqlite");
        assert!(fix.contains(&sqlite.display().to_string()), "{fix}");
    }

    #[test]
    fn seconds_read_naturally() {
        assert_eq!(describe_seconds(3600), "1 h");
        assert_eq!(describe_seconds(7200), "2 h");
        assert_eq!(describe_seconds(600), "10 min");
        assert_eq!(describe_seconds(90), "90 s");
    }
}
