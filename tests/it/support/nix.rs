//! Real Nix (Debian's `nix-bin`, Nix 2.8) in a sandbox: a private nix.conf (`NIX_CONF_DIR`),
//! private chroot stores (`--store DIR` keeps its files under `DIR/nix/store`), a signing key,
//! and a `file://` binary cache holding paths built here, for the cache server to serve.
//! Nothing under /nix or /etc/nix is read or written, and nothing reaches past 127.0.0.1:
//! the nix.conf empties `substituters`, so cache.nixos.org is never asked.
//!
//! What was seen with Nix 2.8 (as root and as an unprivileged user) and shapes this file:
//! - `build-users-group =` lets the build run without the nixbld users; a chroot store builds
//!   in a chroot anyway, so the builder's `/bin/sh` must be bind-mounted
//!   (`extra-sandbox-paths`).
//! - Nix sends the netrc entry of the cache's host as Basic auth on every request, without
//!   waiting for a 401; the entry is matched by host name, the port is ignored. A missing
//!   netrc file is ignored silently.
//! - A 401 on `nix-cache-info` reads "does not appear to be a binary cache" (Nix then tries a
//!   PUT of `nix-cache-info`, also refused), then "don't know how to build these paths".
//! - A 401 on a narinfo is cached as "absent" for `narinfo-cache-negative-ttl` (3600 s by
//!   default) in `$XDG_CACHE_HOME/nix/binary-cache-v6.sqlite`; `nix-cache-info` is cached
//!   there too. Every run here gets its own HOME and XDG dirs, and the nix.conf sets the
//!   TTL to 0, unless a test asks otherwise.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::cache::{CacheRequest, CacheServer, summarize};
use super::http::random_token;
use super::proc::output_with_timeout;

/// How long one Nix command may take.
pub const NIX_TIMEOUT: Duration = Duration::from_secs(120);

/// The nix.conf of every Nix command here.
pub const NIX_CONF: &str = "\
# Written by the nix-cache-login tests: no nixbld users, no daemon, no /nix, no internet.
build-users-group =
sandbox = false
extra-sandbox-paths = /bin /lib /lib64 /usr
substituters =
trusted-public-keys =
require-sigs = true
narinfo-cache-negative-ttl = 0
connect-timeout = 5
experimental-features = nix-command
";

/// Two trivial derivations: `echo TEXT > $out` with `/bin/sh` (bind-mounted into the build
/// chroot through `extra-sandbox-paths`). The texts are alphanumeric and spaces only.
const PATHS_NIX: &str = r#"let
  mk = name: text: builtins.derivation {
    inherit name text;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "echo \"$text\" > $out" ];
  };
in {
  main = mk "ncl-test" "@MAIN@";
  other = mk "ncl-other" "@OTHER@";
}
"#;

/// Which of the two paths in the lab's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestPath {
    /// `ncl-test`: what the tests fetch.
    Main,
    /// `ncl-other`: a second path, to warm Nix's cache of `nix-cache-info` without
    /// caching the main path's narinfo.
    Other,
}

/// A Nix sandbox with a binary cache of two freshly built paths.
pub struct NixLab {
    dir: TempDir,
    conf_dir: PathBuf,
    public_key: String,
    cache_dir: PathBuf,
    main: String,
    other: String,
    main_text: String,
    other_text: String,
    runs: Mutex<Vec<RunRecord>>,
    setup_time: Duration,
}

#[derive(Debug, Clone)]
struct RunRecord {
    label: String,
    ok: bool,
    note: String,
}

/// One Nix run that tried to substitute a path from the cache into an empty store.
#[derive(Debug)]
pub struct NixRun {
    /// 1, 2, ... within the lab.
    pub number: usize,
    pub output: Output,
    pub elapsed: Duration,
    /// The store says the path is valid and its file holds what was built.
    pub fetched: bool,
}

impl NixRun {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Exit status, stdout and stderr, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "Nix run {} ({:.1} s): {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.number,
            self.elapsed.as_secs_f64(),
            self.output.status,
            String::from_utf8_lossy(&self.output.stdout),
            self.stderr()
        )
    }

    /// Nix 2.8's words for a cache that answered 401 (see the module docs).
    pub fn refused_by_cache(&self) -> bool {
        let stderr = self.stderr();
        !self.output.status.success()
            && !self.fetched
            && (stderr.contains("does not appear to be a binary cache")
                || stderr.contains("don't know how to build these paths"))
    }
}

/// Options of one [`NixLab::fetch`].
#[derive(Debug, Clone)]
pub struct Fetch<'a> {
    pub cache_url: &'a str,
    /// The netrc Nix reads (`netrc-file`); it may not exist.
    pub netrc: &'a Path,
    pub path: TestPath,
    /// A HOME (and XDG_CACHE_HOME under it) to share between runs; `None`: a fresh one.
    pub home: Option<&'a Path>,
    /// More `--option NAME VALUE`s.
    pub options: &'a [(&'a str, &'a str)],
    /// What the run is for, in the summary.
    pub label: &'a str,
}

impl NixLab {
    /// Writes the nix.conf, makes a signing key, builds two trivial derivations in a
    /// private store and copies them, signed, into a `file://` binary cache.
    /// Panics when `nix-store` is missing (`.ci/install-deps` installs `nix-bin`).
    pub fn new() -> NixLab {
        let started = Instant::now();
        let version = Command::new("nix-store").arg("--version").output();
        match version {
            Ok(out) if out.status.success() => {}
            _ => panic!(
                "`nix-store` is not on PATH: these tests need real Nix (run .ci/install-deps, \
                 which installs Debian's nix-bin)"
            ),
        }
        let dir = tempfile::Builder::new()
            .prefix("ncl-nix-")
            .tempdir()
            .expect("temp dir for Nix");
        let conf_dir = dir.path().join("conf");
        fs::create_dir_all(&conf_dir).expect("create the nix.conf dir");
        fs::write(conf_dir.join("nix.conf"), NIX_CONF).expect("write nix.conf");
        let mut lab = NixLab {
            conf_dir,
            public_key: String::new(),
            cache_dir: dir.path().join("binary-cache"),
            main: String::new(),
            other: String::new(),
            main_text: String::new(),
            other_text: String::new(),
            runs: Mutex::new(Vec::new()),
            setup_time: Duration::ZERO,
            dir,
        };

        let secret = lab.dir.path().join("cache-key.secret");
        let public = lab.dir.path().join("cache-key.public");
        let out = lab.nix(
            "nix-store",
            &[
                "--generate-binary-cache-key",
                "ncl-test-cache-1",
                path_str(&secret),
                path_str(&public),
            ],
        );
        assert!(out.status.success(), "generate key: {}", describe(&out));
        lab.public_key = fs::read_to_string(&public)
            .expect("read the public key")
            .trim()
            .to_owned();

        // A marker makes this lab's paths unlike any other test's.
        let marker = random_token(8);
        lab.main_text = format!("hello from nix-cache-login {marker}\n");
        lab.other_text = format!("other {marker}\n");
        let build_store = lab.dir.path().join("build-store");
        let nix_file = lab.dir.path().join("paths.nix");
        let expr = PATHS_NIX
            .replace("@MAIN@", lab.main_text.trim_end())
            .replace("@OTHER@", lab.other_text.trim_end());
        fs::write(&nix_file, expr).expect("write paths.nix");
        let mut built = Vec::new();
        for attr in ["main", "other"] {
            let out = lab.nix(
                "nix-build",
                &[
                    "--store",
                    path_str(&build_store),
                    path_str(&nix_file),
                    "-A",
                    attr,
                    "--no-out-link",
                ],
            );
            assert!(
                out.status.success(),
                "nix-build -A {attr}: {}",
                describe(&out)
            );
            let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            assert!(
                path.starts_with("/nix/store/"),
                "nix-build printed {path:?}"
            );
            built.push(path);
        }
        lab.other = built.pop().unwrap();
        lab.main = built.pop().unwrap();

        let to = format!(
            "file://{}?secret-key={}&compression=none",
            path_str(&lab.cache_dir),
            path_str(&secret)
        );
        let out = lab.nix(
            "nix",
            &[
                "copy",
                "--store",
                path_str(&build_store),
                "--to",
                &to,
                &lab.main,
                &lab.other,
            ],
        );
        assert!(out.status.success(), "nix copy: {}", describe(&out));
        assert!(lab.cache_dir.join("nix-cache-info").is_file());
        lab.setup_time = started.elapsed();
        lab
    }

    /// The public key the cache's paths are signed with (`trusted-public-keys`).
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The text of the path's file once substituted.
    pub fn text_of(&self, which: TestPath) -> &str {
        match which {
            TestPath::Main => &self.main_text,
            TestPath::Other => &self.other_text,
        }
    }

    /// The `file://` binary cache directory (for [`super::cache::CacheServer`]).
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    pub fn path_of(&self, which: TestPath) -> &str {
        match which {
            TestPath::Main => &self.main,
            TestPath::Other => &self.other,
        }
    }

    /// A new empty directory under the lab, e.g. a HOME to share between runs.
    pub fn new_dir(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        fs::create_dir_all(&dir).expect("create a dir in the Nix lab");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod 0700");
        dir
    }

    /// Runs Nix as `f` says; returns the run and what `cache` served meanwhile (also noted
    /// in the summary).
    pub fn fetch_from(&self, cache: &CacheServer, f: &Fetch) -> (NixRun, Vec<CacheRequest>) {
        let mark = cache.mark();
        let run = self.fetch(f);
        let requests = cache.requests_since(mark);
        self.annotate(run.number, &summarize(&requests));
        (run, requests)
    }

    /// Substitutes the main path from `cache` into a new store with a fresh HOME, reading
    /// `netrc`.
    pub fn substitute(
        &self,
        cache: &CacheServer,
        netrc: &Path,
        label: &str,
    ) -> (NixRun, Vec<CacheRequest>) {
        self.fetch_from(
            cache,
            &Fetch {
                cache_url: cache.url(),
                netrc,
                path: TestPath::Main,
                home: None,
                options: &[],
                label,
            },
        )
    }

    /// `nix-store --store <new empty store> --realise PATH` with the cache as the only
    /// substituter, its key trusted (signatures required), and `netrc` as `netrc-file`.
    pub fn fetch(&self, f: &Fetch) -> NixRun {
        let number = {
            let runs = self.runs.lock().unwrap();
            runs.len() + 1
        };
        let run_dir = self
            .dir
            .path()
            .join(format!("run-{number}-{}", random_token(4)));
        let store_root = run_dir.join("store");
        let home = match f.home {
            Some(h) => h.to_owned(),
            None => run_dir.join("home"),
        };
        fs::create_dir_all(&home).expect("create the run's HOME");
        let path = self.path_of(f.path).to_owned();
        let mut args: Vec<String> = vec![
            "--store".into(),
            path_str(&store_root).into(),
            "--realise".into(),
            path.clone(),
            "--option".into(),
            "substituters".into(),
            f.cache_url.into(),
            "--option".into(),
            "trusted-public-keys".into(),
            self.public_key.clone(),
            "--option".into(),
            "netrc-file".into(),
            path_str(f.netrc).into(),
        ];
        for (k, v) in f.options {
            args.extend(["--option".into(), (*k).into(), (*v).into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let output = self.nix_in("nix-store", &args, &home);
        let elapsed = started.elapsed();

        let expected = self.text_of(f.path);
        let fetched = output.status.success() && {
            let valid = self.nix_in(
                "nix-store",
                &["--store", path_str(&store_root), "--check-validity", &path],
                &home,
            );
            let file = store_root.join(path.trim_start_matches('/'));
            valid.status.success() && fs::read_to_string(&file).is_ok_and(|text| text == *expected)
        };
        let mut runs = self.runs.lock().unwrap();
        runs.push(RunRecord {
            label: f.label.to_owned(),
            ok: fetched,
            note: String::new(),
        });
        NixRun {
            number,
            output,
            elapsed,
            fetched,
        }
    }

    /// Adds `note` (e.g. what the cache answered) to run `number` in the summary.
    pub fn annotate(&self, number: usize, note: &str) {
        if let Some(r) = self.runs.lock().unwrap().get_mut(number.wrapping_sub(1)) {
            r.note = note.to_owned();
        }
    }

    /// `N Nix runs: a fetched the path, b did not` and one line per run.
    pub fn summary(&self) -> String {
        let runs = self.runs.lock().unwrap();
        let ok = runs.iter().filter(|r| r.ok).count();
        let mut text = format!(
            "{} Nix runs: {} fetched the path through the cache, {} did not (setup: {:.1} s)",
            runs.len(),
            ok,
            runs.len() - ok,
            self.setup_time.as_secs_f64()
        );
        for (i, r) in runs.iter().enumerate() {
            text.push_str(&format!(
                "\n  run {}: {:<8} {}",
                i + 1,
                if r.ok { "fetched" } else { "failed" },
                r.label
            ));
            if !r.note.is_empty() {
                text.push_str(&format!("\n          cache: {}", r.note));
            }
        }
        text
    }

    /// A Nix command in the lab's environment with a HOME of its own.
    fn nix(&self, program: &str, args: &[&str]) -> Output {
        let home = self.dir.path().join("setup-home");
        fs::create_dir_all(&home).expect("create the setup HOME");
        self.nix_in(program, args, &home)
    }

    fn nix_in(&self, program: &str, args: &[&str], home: &Path) -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("NIX_CONF_DIR", &self.conf_dir)
            .env("TMPDIR", std::env::temp_dir())
            .env("LANG", "C.UTF-8");
        output_with_timeout(&mut cmd, NIX_TIMEOUT)
    }
}

impl Drop for NixLab {
    fn drop(&mut self) {
        // Store paths and their directories are read-only: make them writable so the
        // temp dir can go.
        make_writable(self.dir.path());
    }
}

fn make_writable(path: &Path) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o200 == 0 {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o700));
    }
    if meta.is_dir()
        && let Ok(entries) = fs::read_dir(path)
    {
        for entry in entries.flatten() {
            make_writable(&entry.path());
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
