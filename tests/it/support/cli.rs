//! A sandbox to run the CLI in: its own HOME and XDG dirs, a config file pointing at the
//! test provider, a netrc path, the test CA, and optionally the BROWSER hook.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::browser::{BrowserHook, BrowserMode};
use super::cli_binary;
use super::idp::Idp;
use super::proc::output_with_timeout;

/// How long one CLI run may take before the harness kills it and fails the test.
pub const DEFAULT_CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// The CLI's TOML config. `None` keys are left out of the file.
#[derive(Debug, Clone, Default)]
pub struct CliConfig {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub cache_host: Option<String>,
    pub cache_hosts: Option<Vec<String>>,
    pub netrc_path: Option<PathBuf>,
    pub scopes: Option<Vec<String>>,
    pub netrc_login: Option<String>,
    pub callback_port: Option<u16>,
    /// Raw TOML appended after the keys (for `[profiles.x]` tables or wrong keys).
    pub extra: String,
}

impl CliConfig {
    /// The file's text.
    pub fn to_toml(&self) -> String {
        let mut t = toml::Table::new();
        let s = |v: &str| toml::Value::String(v.to_owned());
        let p = |v: &Path| toml::Value::String(v.to_str().expect("UTF-8 path").to_owned());
        let list = |v: &[String]| toml::Value::Array(v.iter().map(|x| s(x)).collect());
        if let Some(v) = &self.issuer {
            t.insert("issuer".into(), s(v));
        }
        if let Some(v) = &self.client_id {
            t.insert("client_id".into(), s(v));
        }
        if let Some(v) = &self.client_secret_file {
            t.insert("client_secret_file".into(), p(v));
        }
        if let Some(v) = &self.cache_host {
            t.insert("cache_host".into(), s(v));
        }
        if let Some(v) = &self.cache_hosts {
            t.insert("cache_hosts".into(), list(v));
        }
        if let Some(v) = &self.netrc_path {
            t.insert("netrc_path".into(), p(v));
        }
        if let Some(v) = &self.scopes {
            t.insert("scopes".into(), list(v));
        }
        if let Some(v) = &self.netrc_login {
            t.insert("netrc_login".into(), s(v));
        }
        if let Some(v) = self.callback_port {
            t.insert("callback_port".into(), toml::Value::Integer(i64::from(v)));
        }
        let mut text = toml::to_string(&t).expect("serialize the config");
        if !self.extra.is_empty() {
            text.push('\n');
            text.push_str(&self.extra);
            text.push('\n');
        }
        text
    }
}

/// One sandbox for CLI runs. Everything lives in a temp dir removed on drop:
/// `home/`, `state/` (XDG_STATE_HOME: token store), `cache/` (XDG_CACHE_HOME: discovery
/// cache), `config/` (XDG_CONFIG_HOME), `runtime/` (XDG_RUNTIME_DIR), `config.toml`,
/// `netrc` (not created: the CLI makes it), `client-secret` (for server configs).
pub struct TestEnv {
    dir: TempDir,
    config: CliConfig,
    ca_pem: PathBuf,
    browser: Option<BrowserHook>,
    env: Vec<(String, String)>,
    removed_env: Vec<String>,
    timeout: Duration,
}

impl TestEnv {
    /// A sandbox whose config uses the public client (`nix-cache-login`) of `idp`, cache
    /// host `cache.test`, and `<dir>/netrc`. No browser hook yet: see `with_browser`.
    pub fn new(idp: &Idp) -> TestEnv {
        TestEnv::for_issuer(idp.issuer(), idp.public_client_id(), idp.ca_pem_path())
    }

    /// A sandbox whose config names `issuer` and `client_id` (any issuer: the CI issuer for
    /// `ci --grant direct`), trusting `ca_pem`.
    pub fn for_issuer(issuer: &str, client_id: &str, ca_pem: &Path) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("ncl-env-")
            .tempdir()
            .expect("temp dir for the CLI sandbox");
        for sub in ["home", "state", "cache", "config", "runtime"] {
            let p = dir.path().join(sub);
            fs::create_dir_all(&p).expect("create sandbox dirs");
            fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).expect("chmod 0700");
        }
        let config = CliConfig {
            issuer: Some(issuer.to_owned()),
            client_id: Some(client_id.to_owned()),
            cache_host: Some("cache.test".to_owned()),
            netrc_path: Some(dir.path().join("netrc")),
            ..CliConfig::default()
        };
        let mut env = TestEnv {
            dir,
            config,
            ca_pem: ca_pem.to_owned(),
            browser: None,
            env: Vec::new(),
            removed_env: Vec::new(),
            timeout: DEFAULT_CLI_TIMEOUT,
        };
        env.write_config(&env.config.clone());
        env
    }

    /// A sandbox whose config uses the confidential client (`nix-cache-server`) with its
    /// secret in `<dir>/client-secret` (mode 0600).
    pub fn new_server(idp: &Idp) -> TestEnv {
        TestEnv::new(idp).with_client_secret(idp.server_client_id(), idp.server_client_secret())
    }

    /// Makes the config use the confidential client `client_id`, with `secret` in
    /// `<dir>/client-secret` (mode 0600).
    pub fn with_client_secret(mut self, client_id: &str, secret: &str) -> TestEnv {
        let path = self.dir.path().join("client-secret");
        fs::write(&path, format!("{secret}\n")).expect("write secret");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod secret");
        let mut config = self.config.clone();
        config.client_id = Some(client_id.to_owned());
        config.client_secret_file = Some(path);
        self.write_config(&config);
        self
    }

    /// Makes the hook in `mode` the CLI's browser (replacing any earlier one).
    pub fn with_browser(mut self, mode: BrowserMode) -> TestEnv {
        self.browser = Some(BrowserHook::new(mode));
        self
    }

    pub fn set_browser(&mut self, hook: Option<BrowserHook>) {
        self.browser = hook;
    }

    pub fn browser(&self) -> Option<&BrowserHook> {
        self.browser.as_ref()
    }

    /// Sets an environment variable for CLI runs (after the defaults, so it wins).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.removed_env.retain(|k| k != key);
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Leaves a default variable (e.g. SSL_CERT_FILE) out of CLI runs.
    pub fn remove_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
        self.removed_env.push(key.to_owned());
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// XDG_STATE_HOME (the token store is under `nix-cache-login/` there).
    pub fn state_home(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// XDG_CACHE_HOME (the discovery cache is under `nix-cache-login/` there).
    pub fn cache_home(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn config_home(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("runtime")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// The config last written.
    pub fn config(&self) -> &CliConfig {
        &self.config
    }

    /// The netrc path of the current config (default `<dir>/netrc`).
    pub fn netrc_path(&self) -> PathBuf {
        self.config
            .netrc_path
            .clone()
            .unwrap_or_else(|| self.dir.path().join("netrc"))
    }

    /// The netrc's text ("" when it does not exist).
    pub fn netrc(&self) -> String {
        fs::read_to_string(self.netrc_path()).unwrap_or_default()
    }

    /// Replaces `config.toml` with `config`.
    pub fn write_config(&mut self, config: &CliConfig) {
        self.config = config.clone();
        fs::write(self.config_path(), config.to_toml()).expect("write config.toml");
    }

    /// Edits the current config and writes it.
    pub fn update_config(&mut self, edit: impl FnOnce(&mut CliConfig)) {
        let mut config = self.config.clone();
        edit(&mut config);
        self.write_config(&config);
    }

    /// The environment of CLI runs: a cleared environment with PATH, HOME, USER,
    /// XDG_{STATE,CACHE,CONFIG}_HOME, XDG_RUNTIME_DIR, SSL_CERT_FILE and
    /// NIX_SSL_CERT_FILE (the test CA), LANG=C.UTF-8, BROWSER (the hook when set, else
    /// `false`, so no real browser ever opens), then what `set_env` added.
    pub fn env_vars(&self) -> Vec<(String, OsString)> {
        let path = |p: PathBuf| p.into_os_string();
        let mut env: Vec<(String, OsString)> = vec![
            (
                "PATH".into(),
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            ),
            ("HOME".into(), path(self.home())),
            (
                "USER".into(),
                std::env::var_os("USER").unwrap_or_else(|| "tester".into()),
            ),
            ("LANG".into(), "C.UTF-8".into()),
            ("XDG_STATE_HOME".into(), path(self.state_home())),
            ("XDG_CACHE_HOME".into(), path(self.cache_home())),
            ("XDG_CONFIG_HOME".into(), path(self.config_home())),
            ("XDG_RUNTIME_DIR".into(), path(self.runtime_dir())),
            ("SSL_CERT_FILE".into(), self.ca_pem.clone().into_os_string()),
            (
                "NIX_SSL_CERT_FILE".into(),
                self.ca_pem.clone().into_os_string(),
            ),
        ];
        match &self.browser {
            Some(hook) => env.extend(hook.env().into_iter().map(|(k, v)| (k, v.into()))),
            None => env.push(("BROWSER".into(), "false".into())),
        }
        for (k, v) in &self.env {
            env.retain(|(key, _)| key != k);
            env.push((k.clone(), v.into()));
        }
        env.retain(|(k, _)| !self.removed_env.contains(k));
        env
    }

    /// The CLI command with `--config <config.toml>` and `args`, in the sandbox
    /// environment, run from the sandbox dir.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command_raw(&[]);
        cmd.arg("--config").arg(self.config_path()).args(args);
        cmd
    }

    /// The CLI command with exactly `args` (no `--config`).
    pub fn command_raw(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(cli_binary());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .envs(self.env_vars());
        cmd
    }

    /// Runs the CLI with `--config` and `args`; panics if it outlives the time limit.
    pub fn cli(&self, args: &[&str]) -> Output {
        output_with_timeout(&mut self.command(args), self.timeout)
    }

    /// Runs the CLI with exactly `args` (no `--config`); panics if it outlives the time limit.
    pub fn cli_raw(&self, args: &[&str]) -> Output {
        output_with_timeout(&mut self.command_raw(args), self.timeout)
    }

    /// Starts the CLI without waiting (for concurrent runs); stdout and stderr piped,
    /// stdin empty, in its own process group. The caller waits for it (use
    /// `support::proc::wait_until` for a deadline) and kills it on failure.
    pub fn spawn(&self, args: &[&str]) -> Child {
        spawn_piped(self.command(args))
    }

    /// [`TestEnv::spawn`] with exactly `args` (no `--config`).
    pub fn spawn_raw(&self, args: &[&str]) -> Child {
        spawn_piped(self.command_raw(args))
    }

    /// The hook's log ("" without a hook).
    pub fn browser_log(&self) -> String {
        self.browser
            .as_ref()
            .map(BrowserHook::log)
            .unwrap_or_default()
    }
}

/// Panics, naming `what` and showing the run, unless it exited 0.
pub fn assert_ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}: {}", describe(out));
}

/// Exit status, stdout and stderr of a run, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn spawn_piped(mut cmd: Command) -> Child {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start the CLI")
}
