//! The Nix-daemon bridge against real parts: the test provider, the token-checking cache, a
//! real `nix-daemon` (Debian's nix-bin) on a private store and socket that trusts only root,
//! the bridge as root, and an unprivileged user (`nobody`, through setpriv) who logs in with
//! headless chromium. Needs root (the daemon, setpriv, chown).
//!
//! Each test prints its figures (refusals, callers, kills) past libtest's capture.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::cache::{CacheRequest, summarize};
use crate::support::daemon::{
    Bridge, DAEMON_USER, NAMELESS, NOBODY, NixDaemon, as_user, give_to, open_dir,
};
use crate::support::http::random_bytes;
use crate::support::nix::TestPath;
use crate::support::proc::output_with_timeout;
use crate::support::{BrowserMode, CacheServer, Idp, IdpOptions, NixLab, TestEnv, describe};
use nix_cache_login::netrc::Netrc;

/// What the daemon's netrc holds besides the bridge's entries; must survive byte for byte.
const OTHER_ENTRIES: &str = "# the daemon's own, by hand\nmachine github.com login me password ghp_x\n\nmachine other.example\n  login a\n  password b\n\n";

fn print(text: &str) {
    let _ = std::io::stderr().write_all(format!("\n{text}\n").as_bytes());
}

/// A root-owned work dir others may enter, with a root-only `etc/netrc` seeded with
/// [`OTHER_ENTRIES`] for the daemon.
fn work_dir() -> (TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("ncl-bridge-")
        .tempdir()
        .expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let etc = dir.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    fs::set_permissions(&etc, fs::Permissions::from_mode(0o700)).unwrap();
    let netrc = etc.join("netrc");
    fs::write(&netrc, OTHER_ENTRIES).unwrap();
    fs::set_permissions(&netrc, fs::Permissions::from_mode(0o600)).unwrap();
    (dir, netrc)
}

/// The bridge's config: `idp`'s issuer and resource, `hosts`, the daemon's `netrc`.
fn bridge_config(idp: &Idp, hosts: &[String], netrc: &Path, work: &Path, users: &[&str]) -> String {
    let mut t = toml::Table::new();
    let s = |v: &str| toml::Value::String(v.to_owned());
    let list = |v: &[&str]| toml::Value::Array(v.iter().map(|x| s(x)).collect());
    t.insert("issuer".into(), s(idp.issuer()));
    t.insert("client_id".into(), s(idp.public_client_id()));
    t.insert("audience".into(), s(idp.resource()));
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    t.insert("cache_hosts".into(), list(&hosts));
    t.insert("netrc_path".into(), s(netrc.to_str().unwrap()));
    t.insert("state_dir".into(), s(work.join("state").to_str().unwrap()));
    t.insert("allowed_users".into(), list(users));
    toml::to_string(&t).unwrap()
}

fn password(netrc: &Path, machine: &str) -> Option<String> {
    let entry = Netrc::parse(&fs::read(netrc).ok()?).get(machine)?;
    entry.password.map(|p| String::from_utf8(p).unwrap())
}

/// A CLI sandbox run by `uid`, for `cache_host`, handing over to `bridge`.
fn user_env(mut env: TestEnv, uid: u32, cache_host: &str, bridge: &Bridge) -> TestEnv {
    let socket = bridge.socket().to_str().unwrap().to_owned();
    env.update_config(|c| {
        c.cache_host = Some(cache_host.to_owned());
        c.extra = format!("daemon_bridge = {socket:?}");
    });
    give_to(env.dir(), uid);
    if let Some(hook) = env.browser() {
        give_to(hook.dir(), uid);
    }
    env
}

/// The real parts of the end-to-end test, for nobody's substitutions through the daemon.
struct Parts<'a> {
    daemon: &'a NixDaemon,
    cache: &'a CacheServer,
    lab: &'a NixLab,
    home: &'a Path,
}

impl Parts<'_> {
    /// Nobody substitutes `which` through the daemon and is refused by the cache (`when`
    /// names the case); returns Nix's output and what the cache served meanwhile.
    fn refused(
        &self,
        which: TestPath,
        options: &[(&str, &str)],
        when: &str,
    ) -> (Output, Vec<CacheRequest>) {
        let mark = self.cache.mark();
        let (out, fetched) = self
            .daemon
            .realise_as(NOBODY, self.home, self.lab, which, options);
        assert!(!fetched, "fetched {when}: {}", describe(&out));
        let seen = self.cache.requests_since(mark);
        assert!(
            !seen.is_empty() && seen.iter().all(|r| r.status == 401),
            "{when}: {seen:#?}"
        );
        (out, seen)
    }
}

/// `doctor --json` as nobody: its `daemon-bridge` check, and the whole report.
fn daemon_bridge_check(env: &TestEnv) -> (serde_json::Value, serde_json::Value) {
    let doctor = cli_as(env, NOBODY, &["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout)
        .unwrap_or_else(|e| panic!("doctor --json ({e}): {}", describe(&doctor)));
    let check = report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == "daemon-bridge"))
        .cloned()
        .unwrap_or_default();
    (check, report)
}

fn cli_as(env: &TestEnv, uid: u32, args: &[&str]) -> Output {
    output_with_timeout(
        &mut as_user(&env.command(args), uid),
        Duration::from_secs(120),
    )
}

#[test]
fn the_daemon_sees_a_users_login_without_trusted_users() {
    let started = Instant::now();
    let idp = Idp::start(IdpOptions::default());
    let lab = NixLab::new();
    let cache = CacheServer::start(&idp, lab.cache_dir());
    let (work, daemon_netrc) = work_dir();
    let daemon = NixDaemon::start(&lab, &cache, &daemon_netrc);
    let config = bridge_config(
        &idp,
        &[cache.host()],
        &daemon_netrc,
        work.path(),
        &["nobody"],
    );
    let bridge = Bridge::start(work.path(), &config, idp.ca_pem_path());
    let home = open_dir(work.path(), "nobody-home");
    let mut lines = Vec::new();

    // 1. Not logged in: the daemon has nothing for the cache.
    let lab_parts = Parts {
        daemon: &daemon,
        cache: &cache,
        lab: &lab,
        home: &home,
    };
    let (_, seen) = lab_parts.refused(TestPath::Main, &[], "without a login");
    lines.push(format!(
        "before login, plain: refused ({})",
        summarize(&seen)
    ));

    // 1b. The woe: the user's own valid netrc does not reach the daemon.
    let token = idp.client_credentials()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(idp.is_active(&token));
    let own_netrc = home.join("netrc");
    fs::write(
        &own_netrc,
        format!("machine 127.0.0.1 login x password {token}\n"),
    )
    .unwrap();
    let own = own_netrc.to_str().unwrap();
    let (out, seen) = lab_parts.refused(
        TestPath::Main,
        &[("netrc-file", own)],
        "with the user's own netrc-file",
    );
    // The daemon sent no credentials at all: the user's netrc never reached it.
    assert!(
        !seen.is_empty() && seen.iter().all(|r| r.status == 401 && r.auth == "none"),
        "{seen:#?}"
    );
    // Nix 2.8 says nothing about it at the default verbosity; newer ones warn.
    let said = format!("{}{}", String::from_utf8_lossy(&out.stderr), daemon.log());
    let warned = said.contains("ignoring the client-specified setting");
    lines.push(format!(
        "before login, --option netrc-file with a live token: refused, no credentials sent ({}); Nix {} it ignored the setting",
        summarize(&seen),
        if warned { "said" } else { "did not say" }
    ));

    // 2. `login` as nobody (chromium through the BROWSER hook) hands the token over.
    let env = user_env(
        TestEnv::new(&idp).with_browser(BrowserMode::Approve),
        NOBODY,
        &cache.host(),
        &bridge,
    );
    let out = cli_as(&env, NOBODY, &["login", "--timeout", "60s"]);
    assert!(
        out.status.success(),
        "login as nobody: {}\n{}",
        describe(&out),
        bridge.log()
    );
    let user_token = password(&env.netrc_path(), "127.0.0.1").expect("the user's own entry");
    assert_eq!(
        password(&daemon_netrc, "127.0.0.1").as_deref(),
        Some(user_token.as_str()),
        "the daemon's netrc has the user's token"
    );
    assert!(
        fs::read_to_string(&daemon_netrc)
            .unwrap()
            .starts_with(OTHER_ENTRIES)
    );
    assert_eq!(
        fs::metadata(&daemon_netrc).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !bridge.log().contains(&user_token),
        "the bridge logged the token"
    );
    assert!(bridge.log().contains("put 127.0.0.1:"), "{}", bridge.log());
    let mark = cache.mark();
    let (out, fetched) = daemon.realise_as(NOBODY, &home, &lab, TestPath::Main, &[]);
    assert!(
        fetched,
        "not fetched after login: {}\n{}",
        describe(&out),
        daemon.log()
    );
    let seen = cache.requests_since(mark);
    assert!(
        seen.iter()
            .all(|r| r.status == 200 && r.sub.as_deref() == Some("alice")),
        "{seen:#?}"
    );
    lines.push(format!(
        "after login: fetched through the daemon, untrusted ({})",
        summarize(&seen)
    ));

    // The user can see what the daemon holds, never the token.
    let status = cli_as(&env, NOBODY, &["bridge", "status", "--json"]);
    assert!(status.status.success(), "{}", describe(&status));
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["entries"][0]["holder"], "caller", "{report}");
    assert!(report["entries"][0]["expires_at"].as_i64().is_some());
    assert!(!String::from_utf8_lossy(&status.stdout).contains(&user_token));
    let status = cli_as(&env, NOBODY, &["status", "--json"]);
    assert!(status.status.success(), "{}", describe(&status));
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        report["daemon"]["entries"][0]["holder"], "caller",
        "{report}"
    );
    assert!(!String::from_utf8_lossy(&status.stdout).contains(&user_token));
    let (check, report) = daemon_bridge_check(&env);
    assert_eq!(check["status"], "ok", "{report}");
    lines.push(format!(
        "status and doctor: {}",
        check["detail"].as_str().unwrap_or_default()
    ));

    // 3. `logout` takes it back: the daemon's netrc is what it was, byte for byte.
    let out = cli_as(&env, NOBODY, &["logout"]);
    assert!(out.status.success(), "logout: {}", describe(&out));
    assert_eq!(fs::read_to_string(&daemon_netrc).unwrap(), OTHER_ENTRIES);
    let (check, report) = daemon_bridge_check(&env);
    assert_eq!(check["status"], "fail", "{report}");
    assert!(
        check["fix"].as_str().unwrap_or_default().contains("login"),
        "{check}"
    );
    let (_, seen) = lab_parts.refused(TestPath::Other, &[], "after logout");
    lines.push(format!(
        "after logout: refused ({}); daemon netrc byte-identical to before login",
        summarize(&seen)
    ));
    print(&format!(
        "[bridge::the_daemon_sees_a_users_login_without_trusted_users] {:.1} s, nix-daemon trusts root only, user uid {NOBODY}\n  {}",
        started.elapsed().as_secs_f64(),
        lines.join("\n  ")
    ));
}

/// Replaces the signature of `token` (or its header) to make it unsigned.
fn unsigned(token: &str, header: Option<&str>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    match header {
        Some(h) => {
            parts[0] = b64.encode(h);
            parts[2] = String::new();
        }
        None => parts[2] = b64.encode(b"not the issuer's signature"),
    }
    parts.join(".")
}

fn put(host: &str, token: &str) -> serde_json::Value {
    serde_json::json!({"v": 1, "op": "put", "host": host, "token": token})
}

#[test]
fn refusals_leave_the_daemon_netrc_byte_identical() {
    let started = Instant::now();
    // Client-credentials tokens live 3 s here, so one fetched first is expired by the end.
    let idp = Idp::start(IdpOptions {
        client_credentials_ttl: 3,
        ..IdpOptions::default()
    });
    let fresh = || {
        idp.client_credentials()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let soon_expired = fresh();
    let other_issuer = Idp::start(IdpOptions::default());
    let (work, netrc) = work_dir();
    let host = "cache.test".to_owned();
    let config = bridge_config(
        &idp,
        std::slice::from_ref(&host),
        &netrc,
        work.path(),
        &["nobody", "daemon"],
    );
    let bridge = Bridge::start(work.path(), &config, idp.ca_pem_path());

    // nobody puts an entry (service-account): the one others must not remove.
    let nobody = user_env(TestEnv::new_server(&idp), NOBODY, &host, &bridge);
    let out = cli_as(&nobody, NOBODY, &["service-account"]);
    assert!(out.status.success(), "{}\n{}", describe(&out), bridge.log());
    let before = fs::read(&netrc).unwrap();
    assert!(password(&netrc, "cache.test").is_some());

    let mut refused: Vec<String> = Vec::new();
    let expect = |what: &str, answer: serde_json::Value, code: &str| -> String {
        assert_eq!(answer["ok"], false, "{what}: {answer}");
        assert_eq!(answer["refused"], code, "{what}: {answer}");
        assert_eq!(
            fs::read(&netrc).unwrap(),
            before,
            "{what} changed the daemon's netrc"
        );
        format!("{what}: {code}: {}", answer["message"].as_str().unwrap())
    };

    let token = fresh();
    refused.push(expect(
        "unsigned (signature replaced)",
        bridge.request(&put(&host, &unsigned(&token, None))),
        "bad-token",
    ));
    refused.push(expect(
        "unsigned (alg none)",
        bridge.request(&put(&host, &unsigned(&token, Some(r#"{"alg":"none"}"#)))),
        "bad-token",
    ));
    let foreign = other_issuer.client_credentials()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    refused.push(expect(
        "another issuer's token",
        bridge.request(&put(&host, &foreign)),
        "bad-token",
    ));
    refused.push(expect(
        "host not in cache_hosts",
        bridge.request(&put("cache.other", &fresh())),
        "host-not-served",
    ));
    let mut big = b"{\"v\":1,\"op\":\"put\",\"host\":\"cache.test\",\"token\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1 << 20));
    big.extend(b"\"}\n");
    refused.push(expect(
        "a 1 MB request",
        bridge.request_raw(&big),
        "too-large",
    ));
    let mut garbage = random_bytes(300);
    garbage.retain(|b| *b != b'\n');
    garbage.push(b'\n');
    refused.push(expect(
        "garbage bytes",
        bridge.request_raw(&garbage),
        "bad-request",
    ));
    refused.push(expect(
        "a request without its newline",
        bridge.request_raw(b"{\"v\":1,\"op\":\"status\""),
        "bad-request",
    ));

    // A key id the JWKS does not have (a rotation?): fetched again once, then not for a minute.
    idp.clear_request_log();
    let live = fresh();
    let rotated = |kid: &str| {
        let t = unsigned(&live, Some(&format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#)));
        format!("{t}c2ln")
    };
    refused.push(expect(
        "an unknown key id",
        bridge.request(&put(&host, &rotated("rotated-1"))),
        "bad-token",
    ));
    refused.push(expect(
        "another unknown key id at once",
        bridge.request(&put(&host, &rotated("rotated-2"))),
        "bad-token",
    ));
    let jwks_fetches = idp.count_requests("GET", "/jwks", &[]);
    assert_eq!(
        jwks_fetches,
        1,
        "JWKS fetches for two unknown key ids: {}",
        idp.request_log()
    );

    // A caller that is not allowed: its own login works, the hand-over fails with one line.
    let stranger = user_env(TestEnv::new_server(&idp), NAMELESS, &host, &bridge);
    let out = cli_as(&stranger, NAMELESS, &["service-account"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("may not use the bridge"), "{stderr}");
    assert!(
        stderr.contains("Nix through the daemon will not see the new token"),
        "{stderr}"
    );
    assert!(
        password(&stranger.netrc_path(), "cache.test").is_some(),
        "the user's own netrc"
    );
    assert_eq!(fs::read(&netrc).unwrap(), before);
    refused.push(format!(
        "a caller not allowed (uid {NAMELESS}, service-account): exit 1: {}",
        stderr.trim_end()
    ));

    // Another allowed user's logout leaves nobody's entry alone.
    let other_user = user_env(TestEnv::new(&idp), DAEMON_USER, &host, &bridge);
    let out = cli_as(&other_user, DAEMON_USER, &["logout"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("holds another user's token; left as it is"),
        "{}",
        describe(&out)
    );
    assert_eq!(fs::read(&netrc).unwrap(), before);
    assert!(
        bridge.log().contains("refused remove from uid=1 (daemon)"),
        "{}",
        bridge.log()
    );
    refused.push("a remove of another user's entry (uid 1, logout): not-yours".into());

    // Expired: the first token, now past its exp.
    let exp = crate::support::jwt_claims(&soon_expired)["exp"]
        .as_i64()
        .unwrap();
    while nix_cache_login::clock::now() <= exp {
        std::thread::sleep(Duration::from_millis(200));
    }
    refused.push(expect(
        "an expired token",
        bridge.request(&put(&host, &soon_expired)),
        "bad-token",
    ));

    // And the same bridge does take a good token: the refusals were for cause.
    let answer = bridge.request(&put(&host, &fresh()));
    assert_eq!(answer["ok"], true, "{answer}\n{}", bridge.log());
    assert_ne!(fs::read(&netrc).unwrap(), before);
    assert!(
        fs::read_to_string(&netrc)
            .unwrap()
            .starts_with(OTHER_ENTRIES)
    );
    for t in [&token, &foreign, &soon_expired] {
        assert!(
            !bridge.log().contains(t.as_str()),
            "the bridge logged a token"
        );
    }
    print(&format!(
        "[bridge::refusals_leave_the_daemon_netrc_byte_identical] {:.1} s: {} refusals, daemon netrc byte-identical after each; JWKS fetches for two unknown key ids within a minute: {jwks_fetches}\n  {}",
        started.elapsed().as_secs_f64(),
        refused.len(),
        refused.join("\n  ")
    ));
}

#[test]
fn sixteen_callers_at_once_are_all_served() {
    const CALLERS: usize = 16;
    let idp = Idp::start(IdpOptions::default());
    let (work, netrc) = work_dir();
    let hosts: Vec<String> = (0..CALLERS).map(|i| format!("cache-{i}.test")).collect();
    let config = bridge_config(&idp, &hosts, &netrc, work.path(), &[]);
    let bridge = Arc::new(Bridge::start(work.path(), &config, idp.ca_pem_path()));
    let token = idp.client_credentials()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let barrier = Arc::new(Barrier::new(CALLERS));
    let started = Instant::now();
    let threads: Vec<_> = hosts
        .iter()
        .map(|host| {
            let (bridge, barrier, host, token) = (
                Arc::clone(&bridge),
                Arc::clone(&barrier),
                host.clone(),
                token.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                let t = Instant::now();
                let answer = bridge.request(&put(&host, &token));
                (answer, t.elapsed())
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for t in threads {
        let (answer, took) = t.join().unwrap();
        assert_eq!(answer["ok"], true, "{answer}");
        slowest = slowest.max(took);
    }
    let elapsed = started.elapsed();
    let text = fs::read_to_string(&netrc).unwrap();
    assert!(text.starts_with(OTHER_ENTRIES), "{text}");
    for host in &hosts {
        assert_eq!(
            password(&netrc, host).as_deref(),
            Some(token.as_str()),
            "{host} lost"
        );
    }
    let status = bridge.request(&serde_json::json!({"v": 1, "op": "status"}));
    let entries = status["entries"].as_array().unwrap();
    assert_eq!(entries.len(), CALLERS);
    assert!(entries.iter().all(|e| e["holder"] == "caller"), "{status}");
    print(&format!(
        "[bridge::sixteen_callers_at_once_are_all_served] {CALLERS} callers at once: {CALLERS} served, 0 entries lost, all in {:.0} ms (slowest {:.0} ms)",
        elapsed.as_secs_f64() * 1000.0,
        slowest.as_secs_f64() * 1000.0
    ));
}

#[test]
fn sigkill_during_writes_leaves_the_old_or_the_new_netrc() {
    const KILLS: usize = 100;
    let idp = Idp::start(IdpOptions::default());
    let (work, netrc) = work_dir();
    let host = "cache.test".to_owned();
    let config = bridge_config(&idp, std::slice::from_ref(&host), &netrc, work.path(), &[]);
    let mut bridge = Bridge::start(work.path(), &config, idp.ca_pem_path());
    let tokens: Vec<String> = (0..2)
        .map(|_| {
            idp.client_credentials()["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // How long a hand-over takes here, so that the kills land before, during and after.
    let mut took: Vec<Duration> = (0..6)
        .map(|i| {
            let t = Instant::now();
            assert_eq!(bridge.request(&put(&host, &tokens[i % 2]))["ok"], true);
            t.elapsed()
        })
        .collect();
    took.sort();
    let window = took[3].as_micros() as u64 * 3 / 2;
    idp.clear_request_log();
    let (mut old_seen, mut new_seen) = (0, 0);
    let started = Instant::now();
    for i in 0..KILLS {
        let old = fs::read(&netrc).unwrap();
        // The token that is not there now, so that every write changes the file.
        let current = password(&netrc, "cache.test");
        let token = tokens
            .iter()
            .find(|t| Some(t.as_str()) != current.as_deref())
            .unwrap();
        let mut expected = Netrc::parse(&old);
        expected.upsert("cache.test", "nix-cache-login", token);
        let new = expected.to_bytes();
        assert_ne!(old, new);
        let socket = bridge.socket().to_path_buf();
        let line = format!("{}\n", put(&host, token));
        let sender = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) else {
                return;
            };
            let _ = s.write_all(line.as_bytes());
            let _ = s.read_to_end(&mut Vec::new());
        });
        let random = u64::from_le_bytes(random_bytes(8).try_into().unwrap());
        let delay = random % window.max(1);
        std::thread::sleep(Duration::from_micros(delay));
        bridge.kill9();
        sender.join().unwrap();
        let now = fs::read(&netrc).unwrap();
        if now == old {
            old_seen += 1;
        } else if now == new {
            new_seen += 1;
        } else {
            panic!(
                "kill {i}: the netrc is neither the old nor the new file:\n{}",
                String::from_utf8_lossy(&now)
            );
        }
        assert_eq!(
            fs::metadata(&netrc).unwrap().permissions().mode() & 0o777,
            0o600
        );
        bridge.restart();
    }
    // A restarted bridge reads the issuer's keys from its state directory.
    let provider_requests = idp.request_log().lines().count();
    assert_eq!(provider_requests, 0, "{}", idp.request_log());
    assert!(
        fs::read_to_string(&netrc)
            .unwrap()
            .starts_with(OTHER_ENTRIES)
    );
    print(&format!(
        "[bridge::sigkill_during_writes_leaves_the_old_or_the_new_netrc] {KILLS} SIGKILLs in {:.1} s: kill points 0-{} ms after the request, netrc old {old_seen}×, new {new_seen}×, torn 0×; {provider_requests} provider requests over {KILLS} restarts (JWKS from the state dir)",
        started.elapsed().as_secs_f64(),
        window / 1000
    ));
}

#[test]
fn socket_activation_serves_the_socket_systemd_passes() {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let Ok(activate) = which("systemd-socket-activate") else {
        print(
            "[bridge::socket_activation_serves_the_socket_systemd_passes] SKIPPED: systemd-socket-activate is not installed (Debian's systemd package)",
        );
        return;
    };
    let (work, netrc) = work_dir();
    // No provider: the keys are fetched lazily, and `status` needs none.
    let config = format!(
        "issuer = \"https://127.0.0.1:9\"\naudience = \"https://cache.test\"\ncache_hosts = [\"cache.test\"]\nnetrc_path = {:?}\nstate_dir = {:?}\n",
        netrc.to_str().unwrap(),
        work.path().join("state").to_str().unwrap()
    );
    let config_path = work.path().join("bridge.toml");
    fs::write(&config_path, config).unwrap();
    let socket = open_dir(work.path(), "run").join("activated.sock");
    let unused = work.path().join("run").join("not-this.sock");
    let log = work.path().join("bridge.log");
    let mut child = Command::new(activate)
        .arg("-l")
        .arg(&socket)
        .arg("--")
        .arg(crate::support::cli_binary())
        .args(["bridge", "serve", "--config"])
        .arg(&config_path)
        .arg("--socket")
        .arg(&unused)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .process_group(0)
        .spawn()
        .expect("start systemd-socket-activate");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "no socket from systemd-socket-activate"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first connection starts the bridge with the listening socket as fd 3.
    let answer = {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"{\"v\":1,\"op\":\"status\"}\n").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    };
    crate::support::proc::stop_group(&mut child, Duration::from_secs(2));
    let stderr = fs::read_to_string(&log).unwrap_or_default();
    let answer: serde_json::Value = serde_json::from_str(answer.trim_end())
        .unwrap_or_else(|e| panic!("no answer ({e}): {answer:?}\n{stderr}"));
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["entries"][0]["holder"], "nobody", "{answer}");
    assert!(
        stderr.contains("listening on the socket systemd passed"),
        "{stderr}"
    );
    assert!(
        !unused.exists(),
        "the bridge bound --socket despite socket activation"
    );
    print(
        "[bridge::socket_activation_serves_the_socket_systemd_passes] LISTEN_FDS socket served; --socket left unbound",
    );
}

fn which(program: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .ok_or(())
}
