//! `doctor` against the real pieces: the test provider, the token-checking test cache
//! (`tests/idp/cache.mjs`), Debian's Nix (`nix show-config`) reading a nix.conf written here,
//! and curl. Nix never reads the host's /etc/nix (NIX_CONF_DIR points into the sandbox) and
//! has no substituters, so nothing leaves the machine.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::support::cache::CacheServer;
use crate::support::{Idp, IdpOptions, TestEnv, describe};
use serde_json::Value;
use tempfile::TempDir;

/// The test cache (`tests/idp/cache.mjs`) over an empty binary cache: it answers
/// `nix-cache-info` to requests whose Basic-auth password is a live access token of the
/// provider for `audience`, and 401 to anything else.
struct Cache {
    server: CacheServer,
    _dir: TempDir,
}

impl Cache {
    fn start(idp: &Idp, audience: &str) -> Cache {
        Cache::serving(idp, audience, 401)
    }

    /// A cache that answers a missing or refused token with `status` (401 or 403).
    fn start_refusing_with(idp: &Idp, status: u16) -> Cache {
        Cache::serving(idp, idp.resource(), status)
    }

    fn serving(idp: &Idp, audience: &str, refuse_status: u16) -> Cache {
        let dir = tempfile::Builder::new()
            .prefix("ncl-doctor-cache-")
            .tempdir()
            .unwrap();
        fs::write(
            dir.path().join("nix-cache-info"),
            "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n",
        )
        .unwrap();
        let server = CacheServer::start_refusing_with(
            idp.issuer(),
            idp.ca_pem_path(),
            audience,
            dir.path(),
            refuse_status,
        );
        Cache { server, _dir: dir }
    }

    fn host(&self) -> String {
        self.server.host()
    }

    /// `status auth why` of every request, e.g. `200 basic -`.
    fn requests(&self) -> Vec<String> {
        self.server
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == "/nix-cache-info")
            .map(|r| {
                format!(
                    "{} {} {}",
                    r.status,
                    r.auth,
                    r.why.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }
}

const HEALTHY_NIX_CONF: &str = "narinfo-cache-negative-ttl = 0\n";

/// Makes Nix read `<sandbox>/nix/nix.conf` only: no substituters, `netrc-file` at the
/// tool's netrc, then `extra` lines. No daemon socket, no XDG system dirs of the host.
fn write_nix_conf(env: &mut TestEnv, netrc_file: &Path, extra: &str) {
    let dir = env.dir().join("nix");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("nix.conf"),
        format!(
            "substituters =\nnetrc-file = {}\ntrusted-users = root\n{extra}",
            netrc_file.display()
        ),
    )
    .unwrap();
    let no_dirs = env.dir().join("no-xdg-dirs");
    let no_socket = env.dir().join("no-daemon-socket");
    env.set_env("NIX_CONF_DIR", dir.to_str().unwrap());
    env.set_env("XDG_CONFIG_DIRS", no_dirs.to_str().unwrap());
    env.set_env("NIX_DAEMON_SOCKET_PATH", no_socket.to_str().unwrap());
}

/// A server config for `cache`, Nix pointed at its netrc, and a service-account token in it.
fn healthy(idp: &Idp, cache: &Cache) -> TestEnv {
    let mut env = TestEnv::new_server(idp);
    env.update_config(|c| c.cache_host = Some(cache.host()));
    let netrc = env.netrc_path();
    write_nix_conf(&mut env, &netrc, HEALTHY_NIX_CONF);
    let out = env.cli(&["service-account"]);
    assert!(out.status.success(), "service-account: {}", describe(&out));
    env
}

fn token(env: &TestEnv) -> String {
    let bytes = fs::read(env.netrc_path()).unwrap();
    let entry = nix_cache_login::netrc::Netrc::parse(&bytes)
        .get("127.0.0.1")
        .expect("netrc entry");
    String::from_utf8(entry.password.unwrap()).unwrap()
}

/// Runs `doctor --json`; the parsed report, and the output for messages.
fn doctor(env: &TestEnv) -> (Value, Output) {
    let out = env.cli(&["doctor", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json is not JSON ({e}): {}", describe(&out)));
    (report, out)
}

/// The check `name` (the first, for per-host checks).
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn status<'a>(report: &'a Value, name: &str) -> &'a str {
    check(report, name)["status"].as_str().unwrap()
}

fn detail<'a>(report: &'a Value, name: &str) -> &'a str {
    check(report, name)["detail"].as_str().unwrap()
}

fn fix<'a>(report: &'a Value, name: &str) -> &'a str {
    check(report, name)["fix"]
        .as_str()
        .unwrap_or_else(|| panic!("check {name} has no fix: {report:#}"))
}

fn assert_no_token(out: &Output, token: &str) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(token), "doctor printed the token:\n{all}");
    // Not even the signature part alone.
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !all.contains(signature),
        "doctor printed the signature:\n{all}"
    );
}

const EVERY_CHECK: [&str; 11] = [
    "config",
    "issuer",
    "discovery",
    "session",
    "netrc-file",
    "netrc-entry",
    "curl-limits",
    "nix-netrc",
    "nix-daemon",
    "negative-cache",
    "daemon-bridge",
];

#[test]
fn healthy_setup_passes_every_check_and_the_cache_takes_the_token() {
    let idp = Idp::start(IdpOptions::default());
    let cache = Cache::start(&idp, idp.resource());
    let env = healthy(&idp, &cache);
    let token = token(&env);

    let (report, out) = doctor(&env);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(report["ok"], true, "{report:#}");
    for c in report["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "{c:#}\n{report:#}");
        assert!(c["name"].is_string() && c["detail"].is_string(), "{c:#}");
        assert!(c.get("fix").is_some_and(Value::is_null), "{c:#}");
    }
    for name in EVERY_CHECK.iter().chain(&["cache"]) {
        check(&report, name);
    }
    assert_no_token(&out, &token);

    // What Nix would be told, and by whom.
    let netrc = env.netrc_path().display().to_string();
    assert!(detail(&report, "nix-netrc").contains(&netrc), "{report:#}");
    assert!(
        detail(&report, "nix-netrc").contains("nix show-config"),
        "{report:#}"
    );
    assert!(detail(&report, "netrc-file").contains("0600"), "{report:#}");
    let entry = detail(&report, "netrc-entry");
    assert!(
        entry.contains(&format!("{}-byte JWT", token.len()))
            && entry.contains("https://cache.test"),
        "{entry}"
    );
    assert!(
        detail(&report, "curl-limits").contains("curl "),
        "{report:#}"
    );
    assert_eq!(check(&report, "cache")["host"], cache.host());
    assert!(detail(&report, "cache").contains("HTTP 200"), "{report:#}");
    // The proof really went to the cache, with Basic auth, and it said yes.
    assert_eq!(cache.requests(), ["200 basic -"]);

    // The text form: one line per check with its mark, and the count.
    let out = env.cli(&["doctor"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    for name in EVERY_CHECK {
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok ") && l.split_whitespace().nth(1) == Some(name)),
            "{name}:\n{text}"
        );
    }
    assert!(
        text.contains(&format!("ok    cache {}", cache.host())),
        "{text}"
    );
    assert!(text.contains("12 ok, 0 warn, 0 FAIL, 0 skip"), "{text}");
    assert_no_token(&out, &token);
}

#[test]
fn netrc_readable_by_others_fails_with_chmod() {
    let idp = Idp::start(IdpOptions::default());
    let cache = Cache::start(&idp, idp.resource());
    let env = healthy(&idp, &cache);
    fs::set_permissions(env.netrc_path(), fs::Permissions::from_mode(0o644)).unwrap();

    let (report, out) = doctor(&env);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(report["ok"], false);
    assert_eq!(status(&report, "netrc-file"), "fail", "{report:#}");
    assert!(detail(&report, "netrc-file").contains("0644"), "{report:#}");
    assert_eq!(
        fix(&report, "netrc-file"),
        format!("chmod 600 {}", env.netrc_path().display())
    );
    // Only that is wrong: the cache still takes the token.
    assert_eq!(status(&report, "cache"), "ok", "{report:#}");

    let out = env.cli(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL  netrc-file"), "{text}");
    assert!(
        text.contains(&format!(
            "      fix: chmod 600 {}",
            env.netrc_path().display()
        )),
        "{text}"
    );
}

#[test]
fn nix_reading_another_netrc_fails_naming_both() {
    let idp = Idp::start(IdpOptions::default());
    let cache = Cache::start(&idp, idp.resource());
    let mut env = healthy(&idp, &cache);
    let elsewhere = env.dir().join("nix/netrc");
    write_nix_conf(&mut env, &elsewhere, HEALTHY_NIX_CONF);

    let (report, out) = doctor(&env);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(status(&report, "nix-netrc"), "fail", "{report:#}");
    let ours = env.netrc_path().display().to_string();
    let theirs = elsewhere.display().to_string();
    let d = detail(&report, "nix-netrc");
    assert!(d.contains(&theirs) && d.contains(&ours), "{d}");
    let nix_conf = env.dir().join("nix/nix.conf").display().to_string();
    assert!(d.contains(&nix_conf), "names where it was set: {d}");
    let f = fix(&report, "nix-netrc");
    assert!(f.contains(&format!("netrc-file = {ours}")), "{f}");
    assert!(f.contains(&format!("netrc_path = \"{theirs}\"")), "{f}");

    // The same file by another name is the same file.
    let link = env.dir().join("netrc-link");
    std::os::unix::fs::symlink(env.netrc_path(), &link).unwrap();
    write_nix_conf(&mut env, &link, HEALTHY_NIX_CONF);
    let (report, _) = doctor(&env);
    assert_eq!(status(&report, "nix-netrc"), "ok", "{report:#}");
}

#[test]
fn default_negative_ttl_warns_with_the_remedy_and_does_not_fail() {
    let idp = Idp::start(IdpOptions::default());
    let cache = Cache::start(&idp, idp.resource());
    let mut env = healthy(&idp, &cache);
    let netrc = env.netrc_path();
    write_nix_conf(&mut env, &netrc, "");

    let (report, out) = doctor(&env);
    assert!(
        out.status.success(),
        "a warning is not a failure: {}",
        describe(&out)
    );
    assert_eq!(report["ok"], true);
    assert_eq!(status(&report, "negative-cache"), "warn", "{report:#}");
    let d = detail(&report, "negative-cache");
    assert!(d.contains("3600") && d.contains("default"), "{d}");
    let f = fix(&report, "negative-cache");
    assert!(f.contains("narinfo-cache-negative-ttl = 0"), "{f}");
    let sqlite = env.cache_home().join("nix/binary-cache-v6.sqlite");
    assert!(f.contains(&sqlite.display().to_string()), "{f}");

    // A few seconds is fine too.
    write_nix_conf(&mut env, &netrc, "narinfo-cache-negative-ttl = 5\n");
    let (report, _) = doctor(&env);
    assert_eq!(status(&report, "negative-cache"), "ok", "{report:#}");
}

#[test]
fn missing_session_fails_with_login() {
    let idp = Idp::start(IdpOptions::default());
    let cache = Cache::start(&idp, idp.resource());
    let mut env = TestEnv::new(&idp);
    env.update_config(|c| c.cache_host = Some(cache.host()));
    let netrc = env.netrc_path();
    write_nix_conf(&mut env, &netrc, HEALTHY_NIX_CONF);

    let (report, out) = doctor(&env);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(status(&report, "issuer"), "ok", "{report:#}");
    assert_eq!(status(&report, "session"), "fail", "{report:#}");
    assert!(detail(&report, "session").contains("no stored session"));
    assert!(
        fix(&report, "session").contains("nix-cache-login login"),
        "{report:#}"
    );
    assert_eq!(status(&report, "netrc-file"), "fail", "{report:#}");
    assert!(detail(&report, "netrc-file").contains("does not exist"));
    assert!(fix(&report, "netrc-file").contains("nix-cache-login login"));
    assert_eq!(status(&report, "netrc-entry"), "skip", "{report:#}");
    // The cache, asked without credentials as Nix would ask, refuses.
    assert_eq!(status(&report, "cache"), "fail", "{report:#}");
    assert!(
        detail(&report, "cache").contains("HTTP 401")
            && detail(&report, "cache").contains("has none"),
        "{report:#}"
    );
    assert!(fix(&report, "cache").contains("nix-cache-login login"));
    assert_eq!(cache.requests(), ["401 none no-authorization"]);
}

#[test]
fn unreachable_issuer_fails_naming_the_url() {
    let idp = Idp::start(IdpOptions::default());
    let mut env = TestEnv::new(&idp);
    let issuer = format!(
        "http://127.0.0.1:{}/realms/gone",
        crate::support::free_port()
    );
    let cache_host = format!("127.0.0.1:{}", crate::support::free_port());
    env.update_config(|c| {
        c.issuer = Some(issuer.clone());
        c.cache_host = Some(cache_host.clone());
    });
    let netrc = env.netrc_path();
    write_nix_conf(&mut env, &netrc, HEALTHY_NIX_CONF);

    let (report, out) = doctor(&env);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(status(&report, "issuer"), "fail", "{report:#}");
    let d = detail(&report, "issuer");
    assert!(
        d.contains(&format!("{issuer}/.well-known/openid-configuration")),
        "{d}"
    );
    assert!(d.contains("cannot reach"), "{d}");
    assert!(fix(&report, "issuer").contains("issuer in"), "{report:#}");
    assert_eq!(status(&report, "discovery"), "skip", "{report:#}");
    assert_eq!(status(&report, "cache"), "fail", "{report:#}");
    let d = detail(&report, "cache");
    assert!(
        d.contains("cannot reach")
            && d.contains(&format!("https://{cache_host}/nix-cache-info"))
            && d.contains(&format!("http://{cache_host}/nix-cache-info")),
        "loopback: https, then http: {d}"
    );
    // Nix's side does not depend on the provider.
    assert_eq!(status(&report, "nix-netrc"), "ok", "{report:#}");
}

#[test]
fn expired_token_is_refused_and_dated() {
    let idp = Idp::start(IdpOptions {
        client_credentials_ttl: 2,
        ..IdpOptions::default()
    });
    let cache = Cache::start(&idp, idp.resource());
    let env = healthy(&idp, &cache);
    let token = token(&env);
    std::thread::sleep(Duration::from_secs(3));

    let (report, out) = doctor(&env);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    for name in ["session", "netrc-entry", "cache"] {
        assert_eq!(status(&report, name), "fail", "{name}: {report:#}");
        assert!(
            fix(&report, name).contains("nix-cache-login service-account"),
            "{name}: {report:#}"
        );
    }
    let d = detail(&report, "cache");
    assert!(
        d.contains("HTTP 401") && d.contains("expired") && d.contains("UTC"),
        "{d}"
    );
    assert!(
        detail(&report, "netrc-entry").contains("expired"),
        "{report:#}"
    );
    assert_no_token(&out, &token);
}

#[test]
fn cache_refusing_a_live_token_names_its_audience() {
    let idp = Idp::start(IdpOptions::default());
    let cache = Cache::start(&idp, "https://other-cache.test");
    let env = healthy(&idp, &cache);
    let token = token(&env);

    let (report, out) = doctor(&env);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(status(&report, "netrc-entry"), "ok", "{report:#}");
    assert_eq!(status(&report, "cache"), "fail", "{report:#}");
    let d = detail(&report, "cache");
    assert!(
        d.contains("HTTP 401")
            && d.contains("audience https://cache.test")
            && d.contains("expires"),
        "{d}"
    );
    let f = fix(&report, "cache");
    assert!(
        f.contains("has not expired") && f.contains("audience https://cache.test"),
        "{f}"
    );
    assert_eq!(cache.requests(), ["401 basic wrong-aud"]);
    assert_no_token(&out, &token);
}

#[test]
fn broken_config_is_a_failed_check_and_nix_is_still_examined() {
    let idp = Idp::start(IdpOptions::default());
    let mut env = TestEnv::new(&idp);
    env.update_config(|c| c.extra = "isuer = \"typo\"".to_owned());
    let netrc: PathBuf = env.dir().join("somewhere/netrc");
    write_nix_conf(&mut env, &netrc, HEALTHY_NIX_CONF);

    let (report, out) = doctor(&env);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(status(&report, "config"), "fail", "{report:#}");
    assert!(detail(&report, "config").contains("isuer"), "{report:#}");
    for name in ["issuer", "session", "netrc-file", "cache"] {
        assert_eq!(status(&report, name), "skip", "{name}: {report:#}");
    }
    assert_eq!(status(&report, "nix-netrc"), "skip", "{report:#}");
    assert!(
        detail(&report, "nix-netrc").contains(&netrc.display().to_string()),
        "{report:#}"
    );
    assert_eq!(status(&report, "negative-cache"), "ok", "{report:#}");
}

/// Replaces the token in the netrc entry of the cache (127.0.0.1) with `token`.
fn put_token(env: &TestEnv, token: &str) {
    let text = fs::read_to_string(env.netrc_path()).unwrap();
    let old = self::token(env);
    fs::write(env.netrc_path(), text.replace(&old, token)).unwrap();
}

#[test]
fn a_cache_answering_403_is_told_why_that_hurts() {
    let idp = Idp::start(IdpOptions::default());
    let cache = Cache::start_refusing_with(&idp, 403);
    let env = healthy(&idp, &cache);
    put_token(&env, "not-a-token-the-cache-takes");

    let (report, out) = doctor(&env);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(status(&report, "cache"), "fail", "{report:#}");
    let d = detail(&report, "cache");
    assert!(
        d.contains("HTTP 403") && d.contains("narinfo-cache-negative-ttl"),
        "{d}"
    );
    assert!(d.contains("a 403 is worse than a 401"), "{d}");
    let f = fix(&report, "cache");
    assert!(f.contains("answer 401, not 403"), "{f}");
    assert_eq!(cache.requests(), ["403 basic not-a-jwt"]);

    // The same cache answering 401 gets no such note.
    let cache = Cache::start_refusing_with(&idp, 401);
    let env = healthy(&idp, &cache);
    put_token(&env, "not-a-token-the-cache-takes");
    let (report, _) = doctor(&env);
    assert!(!detail(&report, "cache").contains("403"), "{report:#}");
}

#[test]
fn an_audience_that_is_a_scope_list_is_explained() {
    let idp = Idp::start(IdpOptions::default());
    let cache = Cache::start(&idp, idp.resource());
    let env = healthy(&idp, &cache);
    let now = nix_cache_login::clock::now();
    let scoped = crate::support::fault::fake_jwt(&serde_json::json!({
        "iss": idp.issuer(), "sub": "svc", "exp": now + 600, "aud": "openid profile email",
    }));
    put_token(&env, &scoped);

    let (report, _) = doctor(&env);
    let entry = detail(&report, "netrc-entry");
    assert!(
        entry.contains("a space-separated list of scopes"),
        "{entry}"
    );
    let f = fix(&report, "cache");
    assert!(
        f.contains("writes the granted scopes into aud") && f.contains("audience mapper"),
        "{f}"
    );
}
