//! Bad input and secrets: no token, secret or authorization code in any output even at the
//! most verbose logging, private files under any umask, bytes of a netrc that are not UTF-8
//! kept as they are, and a config loader that never panics and errs in one line.

use crate::support;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::ci::{AUDIENCE, CiLab, github_actions_ci};
use crate::support::fault::{netrc_password, seed_netrc, snapshot_dir, store_path};
use crate::support::proc::output_with_timeout;
use crate::support::{BrowserMode, Idp, IdpOptions, TestEnv, assert_ok, cli_binary, describe};
use nix_cache_login::config::Environment;
use nix_cache_login::netrc::Netrc;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

const HOST: &str = "cache.test";

// ------------------------------------------------------------------ secrets in output

/// What the CLI printed in one run, and which run.
struct Printed {
    what: String,
    text: String,
}

/// Every secret seen so far: tokens from the store and the netrc, the client secret.
#[derive(Default)]
struct Secrets(BTreeSet<String>);

impl Secrets {
    fn add(&mut self, s: &str) {
        if s.len() >= 8 {
            self.0.insert(s.to_owned());
        }
    }

    /// The tokens in every store file of `env` and its netrc entry.
    fn collect(&mut self, env: &TestEnv) {
        for bytes in snapshot_dir(&env.state_home()).values() {
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(bytes) else {
                continue;
            };
            for key in ["access_token", "refresh_token", "id_token"] {
                if let Some(t) = json[key].as_str() {
                    self.add(t);
                }
            }
        }
        if let Some(p) = netrc_password(&env.netrc_path(), HOST) {
            self.add(&p);
        }
    }
}

/// Where a JWT (`eyJ...` header, `.`, `eyJ...` payload) starts in `text`.
fn find_jwt(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let is_b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let mut from = 0;
    while let Some(i) = text[from..].find("eyJ").map(|i| i + from) {
        let mut j = i + 3;
        while j < b.len() && is_b64(b[j]) {
            j += 1;
        }
        if text[j..].starts_with(".eyJ") {
            return Some(i);
        }
        from = i + 3;
    }
    None
}

#[test]
fn jwt_finder_finds_jwts_only() {
    assert_eq!(find_jwt("token eyJhbGc.eyJzdWIi.sig"), Some(6));
    assert_eq!(find_jwt("a eyJ b eyJx-_9.eyJ"), Some(8));
    assert_eq!(find_jwt("eyJhbGc is a header, eyJ.not"), None);
    assert_eq!(find_jwt("no token here"), None);
}

fn run(env: &TestEnv, args: &[&str], verbosity: &[&str], log: &mut Vec<Printed>) -> Output {
    let mut all: Vec<&str> = verbosity.to_vec();
    all.extend_from_slice(args);
    let out = env.cli(&all);
    log.push(Printed {
        what: all.join(" "),
        text: format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    });
    out
}

/// A user's whole life (login, status, refresh, logout, then a refresh token revoked at the
/// provider) and a server's (service-account, a wrong secret, logout), at `verbosity`.
fn whole_flow(idp: &Idp, verbosity: &[&str], rust_log: Option<&str>) -> (Vec<Printed>, Secrets) {
    let mut log = Vec::new();
    let mut secrets = Secrets::default();
    secrets.add(idp.server_client_secret());

    let mut user = TestEnv::new(idp).with_browser(BrowserMode::Approve);
    let mut server = TestEnv::new_server(idp);
    for env in [&mut user, &mut server] {
        set_rust_log(env, rust_log);
        seed_netrc(
            &env.netrc_path(),
            "unrelated.example",
            Some("unrelated-token"),
        );
    }
    assert_ok(
        &run(&user, &["login", "--timeout", "60s"], verbosity, &mut log),
        "login",
    );
    secrets.collect(&user);
    assert_ok(&run(&user, &["status"], verbosity, &mut log), "status");
    assert_ok(
        &run(&user, &["status", "--json"], verbosity, &mut log),
        "status --json",
    );
    assert_ok(&run(&user, &["refresh"], verbosity, &mut log), "refresh");
    secrets.collect(&user);
    assert_ok(
        &run(
            &user,
            &["refresh", "--min-valid", "10s"],
            verbosity,
            &mut log,
        ),
        "refresh --min-valid",
    );
    assert_ok(&run(&user, &["logout"], verbosity, &mut log), "logout");

    // Logged in again, the refresh token revoked behind the CLI's back.
    user.set_browser(Some(support::BrowserHook::new(BrowserMode::Approve)));
    assert_ok(
        &run(&user, &["login", "--timeout", "60s"], verbosity, &mut log),
        "second login",
    );
    secrets.collect(&user);
    let store = store_path(&user, &user.config_path());
    let session: serde_json::Value = serde_json::from_slice(&fs::read(&store).unwrap()).unwrap();
    let revoked = idp.revoke_public(session["refresh_token"].as_str().unwrap());
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let out = run(&user, &["refresh"], verbosity, &mut log);
    assert_eq!(
        out.status.code(),
        Some(3),
        "revoked refresh: {}",
        describe(&out)
    );
    let out = run(&user, &["status"], verbosity, &mut log);
    assert!(out.status.code().is_some(), "{}", describe(&out));
    let _ = run(&user, &["logout"], verbosity, &mut log);

    assert_ok(
        &run(&server, &["service-account"], verbosity, &mut log),
        "service-account",
    );
    secrets.collect(&server);
    assert_ok(
        &run(&server, &["status", "--json"], verbosity, &mut log),
        "server status",
    );
    let secret_file = server.config().client_secret_file.clone().unwrap();
    let wrong = format!("wrong-secret-{}", support::random_token(12));
    secrets.add(&wrong);
    fs::write(&secret_file, &wrong).unwrap();
    let out = run(&server, &["service-account"], verbosity, &mut log);
    assert_eq!(
        out.status.code(),
        Some(1),
        "wrong secret: {}",
        describe(&out)
    );
    fs::write(&secret_file, idp.server_client_secret()).unwrap();
    assert_ok(
        &run(&server, &["logout"], verbosity, &mut log),
        "server logout",
    );
    (log, secrets)
}

fn check_outputs(label: &str, log: &[Printed], secrets: &Secrets) -> usize {
    let mut bytes = 0;
    for printed in log {
        let text = &printed.text;
        bytes += text.len();
        for secret in &secrets.0 {
            assert!(
                !text.contains(secret.as_str()),
                "{label}: `{}` printed a secret (…{}…):\n{text}",
                printed.what,
                &secret[..8]
            );
        }
        if let Some(i) = find_jwt(text) {
            panic!("{label}: `{}` printed a JWT at {i}:\n{text}", printed.what);
        }
        for needle in ["?code=", "&code=", "code_verifier=", "client_secret="] {
            assert!(
                !text.contains(needle),
                "{label}: `{}` printed {needle}:\n{text}",
                printed.what
            );
        }
    }
    bytes
}

/// Runs `flow` at the two most verbose settings (`-vvv`, then `RUST_LOG=trace`) and checks
/// that none of its outputs holds a secret; returns the figures, one a setting.
fn check_each_verbosity(
    mut flow: impl FnMut(&[&str], Option<&str>) -> (Vec<Printed>, Secrets),
) -> String {
    let mut figures = Vec::new();
    for (label, verbosity, rust_log) in [
        ("-vvv", &["-vvv"][..], None),
        ("RUST_LOG=trace", &[][..], Some("trace")),
    ] {
        let (log, secrets) = flow(verbosity, rust_log);
        let bytes = check_outputs(label, &log, &secrets);
        figures.push(format!(
            "{label}: {} runs, {bytes} bytes of output, {} secrets looked for",
            log.len(),
            secrets.0.len()
        ));
    }
    figures.join("; ")
}

fn set_rust_log(env: &mut TestEnv, rust_log: Option<&str>) {
    if let Some(spec) = rust_log {
        env.set_env("RUST_LOG", spec);
    }
}

#[test]
fn no_secret_in_any_output_at_any_verbosity() {
    let idp = Idp::start(IdpOptions::default());
    let figures = check_each_verbosity(|verbosity, rust_log| {
        let (log, secrets) = whole_flow(&idp, verbosity, rust_log);
        // The login URL is printed; it carries state, nonce and the PKCE challenge only.
        let login = &log[0].text;
        assert!(login.contains("code_challenge="), "{login}");
        (log, secrets)
    });
    println!("secrets: {figures}");
}

/// `ci` the same way: every CI grant's session (the job's token in the netrc, for
/// `direct`), status, doctor, token renewal through `token` (stderr only: stdout is the
/// token, by design) and refusals, at the most verbose logging. Neither the job's token nor
/// the access token nor GitHub's request token may appear, nor any JWT at all.
#[test]
fn no_ci_token_in_any_output_at_any_verbosity() {
    let lab = CiLab::start();
    let figures = check_each_verbosity(|verbosity, rust_log| ci_flow(&lab, verbosity, rust_log));
    println!("ci secrets: {figures}");
}

/// Every CI grant's session, status, doctor, `token`, a refusal and logout, then `direct`,
/// at `verbosity`.
fn ci_flow(lab: &CiLab, verbosity: &[&str], rust_log: Option<&str>) -> (Vec<Printed>, Secrets) {
    let mut log = Vec::new();
    let mut secrets = Secrets::default();
    secrets.add(lab.ci.request_token());
    for (client, grant) in [
        ("nix-cache-ci", "jwt-bearer"),
        ("nix-cache-ci", "token-exchange"),
        ("nix-cache-ci-federated", "client-assertion"),
    ] {
        let mut env = lab.env(client, HOST);
        set_rust_log(&mut env, rust_log);
        let ci = github_actions_ci(grant, AUDIENCE);
        assert_ok(&run(&env, &ci, verbosity, &mut log), grant);
        secrets.collect(&env);
        assert_ok(&run(&env, &["status"], verbosity, &mut log), "status");
        assert_ok(
            &run(&env, &["status", "--json"], verbosity, &mut log),
            "status --json",
        );
        let _ = run(&env, &["doctor"], verbosity, &mut log);
        let mut all: Vec<&str> = verbosity.to_vec();
        all.extend(["token", "--min-valid", "10m"]);
        let out = env.cli(&all);
        assert_ok(&out, "token");
        secrets.add(String::from_utf8_lossy(&out.stdout).trim());
        log.push(Printed {
            what: format!("{} (stderr)", all.join(" ")),
            text: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
        let wrong = github_actions_ci(grant, "https://wrong.test");
        let out = run(&env, &wrong, verbosity, &mut log);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert_ok(&run(&env, &["logout"], verbosity, &mut log), "logout");
    }
    // direct: the job's own token goes into the netrc.
    let mut env = TestEnv::for_issuer(lab.ci.issuer(), "unused", lab.bundle());
    lab.trust_and_github(&mut env);
    set_rust_log(&mut env, rust_log);
    let direct = github_actions_ci("direct", AUDIENCE);
    assert_ok(&run(&env, &direct, verbosity, &mut log), "direct");
    secrets.collect(&env);
    assert_ok(
        &run(&env, &["status", "--json"], verbosity, &mut log),
        "status --json",
    );
    assert_ok(&run(&env, &["logout"], verbosity, &mut log), "logout");
    (log, secrets)
}

// ------------------------------------------------------------------ umask

#[test]
fn umask_000_still_gives_private_files() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new_server(&idp);
    let run_with_umask = |args: &[&str]| {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg("umask 000; exec \"$0\" \"$@\"")
            .arg(cli_binary())
            .arg("--config")
            .arg(env.config_path())
            .args(args)
            .current_dir(env.dir())
            .env_clear()
            .envs(env.env_vars());
        output_with_timeout(&mut cmd, std::time::Duration::from_secs(60))
    };
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;

    // A first run creates everything: netrc, store, their directories, locks, caches.
    fs::remove_dir_all(env.state_home()).unwrap();
    fs::remove_dir_all(env.cache_home()).unwrap();
    let out = run_with_umask(&["service-account"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(mode(&env.netrc_path()), 0o600);
    let store = store_path(&env, &env.config_path());
    assert_eq!(mode(&store), 0o600);
    assert_eq!(mode(store.parent().unwrap()), 0o700);
    assert_eq!(mode(&env.state_home()), 0o700);
    let mut checked = 2;
    for dir in [env.dir().to_path_buf(), env.state_home(), env.cache_home()] {
        for entry in walk(&dir) {
            let m = mode(&entry);
            assert_eq!(
                m & 0o077,
                0,
                "{} is open to others (mode {m:o})",
                entry.display()
            );
            checked += 1;
        }
    }

    // An existing world-readable netrc becomes private when rewritten.
    fs::set_permissions(env.netrc_path(), fs::Permissions::from_mode(0o666)).unwrap();
    let out = run_with_umask(&["service-account"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(mode(&env.netrc_path()), 0o600);
    assert_eq!(mode(&store), 0o600);
    println!("umask 000: {checked} files and directories checked, none open to group or others");
}

/// The files and directories the CLI made under `dir` (not the harness's own).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if ["config.toml", "client-secret", "home", "config", "runtime"].contains(&name.as_str())
            && path.parent() == Some(dir)
        {
            continue;
        }
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

// ------------------------------------------------------------------ non-UTF-8 netrc

#[test]
fn netrc_bytes_that_are_not_utf8_are_kept() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new_server(&idp);
    let before_entry: &[u8] =
        b"# caf\xe9 \xff\xfe\nmachine latin1.example login \xe9t\xe9 password \"p\xe4ss w\xf6rd\"\n\n";
    let after_entry: &[u8] =
        b"\nmachine after.example\n  login \x80\x81\n  password \xc3\x28\n# \xf0\x28\x8c\xbc end\n";
    let mut original = before_entry.to_vec();
    original.extend_from_slice(format!("machine {HOST} login old password old-token\n").as_bytes());
    original.extend_from_slice(after_entry);
    fs::write(env.netrc_path(), &original).unwrap();
    fs::set_permissions(env.netrc_path(), fs::Permissions::from_mode(0o600)).unwrap();

    let mut rewrites = 0;
    for _ in 0..2 {
        let before = fs::read(env.netrc_path()).unwrap();
        let out = env.cli(&["service-account"]);
        assert!(out.status.success(), "{}", describe(&out));
        let after = fs::read(env.netrc_path()).unwrap();
        assert!(
            after.starts_with(before_entry),
            "bytes before the entry kept"
        );
        assert!(after.ends_with(after_entry), "bytes after the entry kept");
        let token = netrc_password(&env.netrc_path(), HOST).unwrap();
        assert!(idp.is_active(&token));
        let mut expected = Netrc::parse(&before);
        expected.upsert(HOST, "nix-cache-login", &token);
        assert_eq!(after, expected.to_bytes(), "only the entry changed");
        rewrites += 1;
    }
    let out = env.cli(&["logout"]);
    assert!(out.status.success(), "{}", describe(&out));
    let after = fs::read(env.netrc_path()).unwrap();
    assert!(after.starts_with(before_entry) && after.ends_with(after_entry));
    assert_eq!(netrc_password(&env.netrc_path(), HOST), None);
    println!(
        "non-UTF-8 netrc: {rewrites} rewrites and a logout kept {} foreign bytes as they were",
        before_entry.len() + after_entry.len()
    );
}

// ------------------------------------------------------------------ config loader

struct FakeEnv {
    home: Option<std::path::PathBuf>,
}

impl Environment for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        match name {
            "CREDS" => Some("/run/creds".into()),
            "EMPTYISH" => Some(" ".into()),
            "XDG_CONFIG_HOME" => Some("relative/dir".into()),
            _ => None,
        }
    }
    fn home_dir(&self) -> Option<std::path::PathBuf> {
        self.home.clone()
    }
}

const KEYS: &[&str] = &[
    "issuer",
    "client_id",
    "client_secret_file",
    "cache_host",
    "cache_hosts",
    "netrc_path",
    "scopes",
    "netrc_login",
    "callback_port",
    "profiles",
    "isuer",
    "\"quoted key\"",
    "profiles.x",
    "profiles.x.issuer",
    "a.b.c",
];

const VALUES: &[&str] = &[
    "\"https://sso.example.com/realms/nix\"",
    "\"http://127.0.0.1:8080\"",
    "\"http://sso.example.com\"",
    "\"https://user:pw@h/\"",
    "\"https://h/?q#f\"",
    "\"not a url\"",
    "\"nix-cache\"",
    "\"\"",
    "\" \"",
    "\"cache.example.com\"",
    "\"[::1]:80\"",
    "\"https://cache\"",
    "\"ca che\"",
    "[\"a\", \"b:1\"]",
    "[]",
    "[1, \"a\"]",
    "[\"openid\", \"offline access\"]",
    "\"$CREDS/secret\"",
    "\"${NOPE}/x\"",
    "\"~/netrc\"",
    "\"relative\"",
    "\"$EMPTYISH\"",
    "0",
    "65535",
    "70000",
    "-1",
    "3.5",
    "true",
    "1979-05-27T07:32:00Z",
    "{ issuer = \"x\" }",
    "{ x = { profiles = {} } }",
    "\"\"\"multi\nline\"\"\"",
    "'''raw\r\nline'''",
    "\"esc \\u00e9 \\n \\t\"",
    "\"bad escape \\q\"",
    "\"unterminated",
    "'\u{0}'",
    "\"\u{202e}rtl\"",
];

const HEADERS: &[&str] = &[
    "[profiles.x]",
    "[profiles.y]",
    "[profiles.x.profiles.z]",
    "[[profiles]]",
    "[profiles]",
    "[other]",
    "[profiles.\"we ird\"]",
    "[",
];

/// Text that looks like a config: keys and values, good and bad, under table headers.
fn config_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        4 => (prop::sample::select(KEYS), prop::sample::select(VALUES))
            .prop_map(|(k, v)| format!("{k} = {v}")),
        1 => prop::sample::select(HEADERS).prop_map(String::from),
        1 => "[ -~]{0,30}",
        1 => Just(String::new()),
    ];
    (
        prop::collection::vec(line, 0..14),
        prop::sample::select(&["\n", "\r\n", "\r", " "][..]),
    )
        .prop_map(|(lines, sep)| lines.join(sep))
}

/// A config that is valid but for a few keys drawn from good and bad values, with optional
/// keys and a profile or two.
fn near_valid() -> impl Strategy<Value = String> {
    let pick = |good: &'static [&'static str]| {
        prop_oneof![
            4 => prop::sample::select(good).prop_map(String::from),
            1 => prop::sample::select(VALUES).prop_map(String::from),
        ]
    };
    const OPTIONAL: &[(&str, &str)] = &[
        ("client_secret_file", "\"$CREDS/secret\""),
        ("client_secret_file", "\"~/secret\""),
        ("netrc_path", "\"/etc/nix/netrc\""),
        ("netrc_path", "\"${CREDS}/netrc\""),
        ("scopes", "[\"openid\", \"offline_access\"]"),
        ("netrc_login", "\"me\""),
        ("callback_port", "18400"),
    ];
    let optional = prop_oneof![
        4 => prop::sample::select(OPTIONAL).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => (prop::sample::select(&KEYS[2..9]), prop::sample::select(VALUES))
            .prop_map(|(k, v)| format!("{k} = {v}")),
    ];
    (
        pick(&[
            "\"https://sso.example.com/realms/nix\"",
            "\"http://[::1]:9/x\"",
        ]),
        pick(&["\"nix-cache\""]),
        pick(&["\"cache.example.com\"", "\"cache:8443\""]),
        prop::collection::vec(optional, 0..3),
        prop::option::of((
            prop::sample::select(&["x", "y", "\"we ird\""][..]),
            prop::collection::vec(
                (prop::sample::select(KEYS), prop::sample::select(VALUES))
                    .prop_map(|(k, v)| format!("{k} = {v}")),
                0..3,
            ),
        )),
    )
        .prop_map(|(issuer, client, host, extra, profile)| {
            let mut text =
                format!("issuer = {issuer}\nclient_id = {client}\ncache_host = {host}\n");
            for line in extra {
                text.push_str(&line);
                text.push('\n');
            }
            if let Some((name, lines)) = profile {
                text.push_str(&format!("[profiles.{name}]\n{}\n", lines.join("\n")));
            }
            text
        })
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => near_valid(),
        2 => config_like(),
        1 => any::<String>(),
        1 => prop::collection::vec(any::<char>(), 0..200).prop_map(|c| c.into_iter().collect()),
    ]
}

#[test]
fn config_parser_never_panics_and_errs_in_one_line() {
    let tried = AtomicUsize::new(0);
    let accepted = AtomicUsize::new(0);
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 6000,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let profile = prop_oneof![
        6 => Just(None),
        2 => Just(Some("x".to_string())),
        1 => Just(Some("y".to_string())),
        1 => any::<String>().prop_map(Some),
    ];
    let has_home = prop::bool::weighted(0.8);
    let result = runner.run(
        &(any_text(), profile, has_home),
        |(text, profile, has_home)| {
            tried.fetch_add(1, Ordering::Relaxed);
            let env = FakeEnv {
                home: has_home.then(|| "/home/alice".into()),
            };
            match nix_cache_login::config::parse(
                &text,
                Path::new("/cfg.toml"),
                profile.as_deref(),
                &env,
            ) {
                Ok(config) => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    prop_assert!(!config.cache_hosts.is_empty());
                    prop_assert!(config.netrc_path.is_absolute());
                }
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(
                        !msg.contains('\n') && !msg.contains('\r'),
                        "not one line: {msg:?}"
                    );
                    prop_assert!(
                        msg.starts_with("/cfg.toml"),
                        "does not name the file: {msg}"
                    );
                }
            }
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    println!(
        "config loader: {} inputs tried, {} accepted, the rest refused in one line, no panic",
        tried.load(Ordering::Relaxed),
        accepted.load(Ordering::Relaxed)
    );
}
