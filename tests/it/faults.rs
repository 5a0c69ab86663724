//! Faults of the provider and of the file system. Every one must end the run with a one-line
//! error that names the URL or the file, a non-zero exit, and the netrc and token store
//! exactly as they were; a file-system fault must be found before a token is requested.
//!
//! The real provider cannot be made to answer 500, stall, hang up, send broken JSON or
//! claim another issuer, so those faults come from `support::fault::FaultServer`, a
//! plain-HTTP stand-in on 127.0.0.1 (the CLI takes `http` issuers on loopback hosts). TLS
//! trust and the file-system faults run against the real provider where they can.

use crate::support;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::fault::{
    Fault, FaultServer, SERVER_HOST, Target, Tmpfs, USER_HOST, assert_failed, fill_up, is_root,
    leftovers, netrc_password, seed_netrc, seed_user_session, server_env_at_fault_server,
    snapshot_dir, store_path, user_env_at_fault_server,
};
use crate::support::{Idp, IdpOptions, TestCa, TestEnv, describe};

/// The netrc's bytes and every file of the token store (and discovery cache).
type Files = (
    Option<Vec<u8>>,
    std::collections::BTreeMap<PathBuf, Vec<u8>>,
);

fn files(env: &TestEnv) -> Files {
    (
        fs::read(env.netrc_path()).ok(),
        snapshot_dir(&env.state_home()),
    )
}

fn assert_unchanged(case: &str, env: &TestEnv, before: &Files) {
    let after = files(env);
    assert!(
        after.0 == before.0,
        "{case}: the netrc changed:\n{}",
        String::from_utf8_lossy(after.0.as_deref().unwrap_or_default())
    );
    assert!(
        after.1 == before.1,
        "{case}: the token store changed: {:?} -> {:?}",
        before.1.keys().collect::<Vec<_>>(),
        after.1.keys().collect::<Vec<_>>()
    );
    let left = leftovers(env.dir());
    assert!(left.is_empty(), "{case}: files left behind: {left:?}");
}

#[test]
fn provider_faults_change_nothing() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let user = user_env_at_fault_server(&idp, &server);
    let service = server_env_at_fault_server(&idp, &server);
    let token_url = server.token_url();
    let discovery_url = server.discovery_url();

    let cases: Vec<(&str, Fault, Target, &str, &str)> = vec![
        (
            "token endpoint answers 500",
            Fault::Status500,
            Target::Token,
            &token_url,
            "500",
        ),
        (
            "discovery answers 500",
            Fault::Status500,
            Target::Discovery,
            &discovery_url,
            "500",
        ),
        (
            "token endpoint is too slow",
            Fault::Slow(Duration::from_secs(5)),
            Target::Token,
            &token_url,
            "timed out",
        ),
        (
            "discovery is too slow",
            Fault::Slow(Duration::from_secs(5)),
            Target::Discovery,
            &discovery_url,
            "timed out",
        ),
        (
            "token endpoint closes the connection",
            Fault::Close,
            Target::Token,
            &token_url,
            "",
        ),
        (
            "discovery closes the connection",
            Fault::Close,
            Target::Discovery,
            &discovery_url,
            "",
        ),
        (
            "token endpoint sends malformed JSON",
            Fault::MalformedJson,
            Target::Token,
            &token_url,
            "not valid JSON",
        ),
        (
            "discovery sends malformed JSON",
            Fault::MalformedJson,
            Target::Discovery,
            &discovery_url,
            "not valid JSON",
        ),
        (
            "token response without access_token",
            Fault::NoAccessToken,
            Target::Token,
            &token_url,
            "access_token",
        ),
        (
            "token endpoint answers without end",
            Fault::Endless,
            Target::Token,
            &token_url,
            "larger than",
        ),
        (
            "discovery answers without end",
            Fault::Endless,
            Target::Discovery,
            &discovery_url,
            "larger than",
        ),
        (
            "discovery names another issuer",
            Fault::WrongIssuer,
            Target::Discovery,
            &discovery_url,
            "issuer",
        ),
    ];

    let mut runs = 0;
    for (name, fault, target, url, what) in &cases {
        for (env, command) in [(&user, "refresh"), (&service, "service-account")] {
            let case = format!("{command}: {name}");
            let before = files(env);
            server.set_fault(fault.clone(), *target);
            server.clear_log();
            let started = Instant::now();
            let out = env.cli(&[command]);
            let took = started.elapsed();
            let mut needles = vec![*url];
            if !what.is_empty() {
                needles.push(what);
            }
            let line = assert_failed(&case, &out, 1, &needles);
            println!("  {case} ({took:.1?}): {line}");
            assert_unchanged(&case, env, &before);
            assert!(
                took < Duration::from_secs(15),
                "{case}: took {took:?} despite a 2 s timeout"
            );
            if *target == Target::Discovery {
                assert_eq!(server.token_requests(), 0, "{case}: {:?}", server.log());
            }
            runs += 1;
        }
    }
    // Healthy again: both sessions still work.
    server.set_fault(Fault::None, Target::Token);
    for (env, command) in [(&user, "refresh"), (&service, "service-account")] {
        let out = env.cli(&[command]);
        assert!(
            out.status.success(),
            "{command} after the faults: {}",
            describe(&out)
        );
    }
    println!(
        "provider faults: {} kinds x 2 commands = {runs} failing runs, files unchanged in all",
        cases.len()
    );
}

/// A response that spends the refresh token (a new one in it) but has no access token:
/// the new refresh token must be kept, or the session is lost.
#[test]
fn rotated_refresh_token_without_access_token_is_kept() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let env = user_env_at_fault_server(&idp, &server);
    let store = store_path(&env, &env.config_path());
    let netrc_before = fs::read(env.netrc_path()).unwrap();
    server.set_fault(Fault::NoAccessTokenRotated, Target::Token);
    let out = env.cli(&["refresh"]);
    assert_failed(
        "no access_token but a new refresh token",
        &out,
        1,
        &[&server.token_url(), "access_token"],
    );
    assert_eq!(fs::read(env.netrc_path()).unwrap(), netrc_before);
    let rotated = server.refresh_tokens().last().unwrap().clone();
    let stored: serde_json::Value = serde_json::from_slice(&fs::read(&store).unwrap()).unwrap();
    assert_eq!(
        stored["refresh_token"], rotated,
        "the refresh token the provider rotated to is kept"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&rotated));
}

#[test]
fn untrusted_tls_certificate_changes_nothing() {
    let idp = Idp::start(IdpOptions::default());
    let other_ca_dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::generate(other_ca_dir.path());

    // A server session that worked (so the discovery document is cached, too).
    let mut service = TestEnv::new_server(&idp);
    seed_netrc(&service.netrc_path(), SERVER_HOST, None);
    let out = service.cli(&["service-account"]);
    assert!(out.status.success(), "{}", describe(&out));
    // A user session nothing has been fetched for yet.
    let mut user = TestEnv::new(&idp);
    user.update_config(|c| c.cache_host = Some(USER_HOST.into()));
    seed_netrc(&user.netrc_path(), USER_HOST, Some("seed-access"));
    seed_user_session(&user, &user.config_path(), "seed-access", "seed-refresh");

    let host = format!("127.0.0.1:{}", idp.port());
    let mut runs = 0;
    for trust in ["another CA", "no CA file"] {
        for (env, command) in [(&mut user, "refresh"), (&mut service, "service-account")] {
            match trust {
                "another CA" => {
                    env.set_env("SSL_CERT_FILE", other_ca.ca_cert.to_str().unwrap());
                    env.set_env("NIX_SSL_CERT_FILE", other_ca.ca_cert.to_str().unwrap());
                }
                _ => {
                    env.remove_env("SSL_CERT_FILE");
                    env.remove_env("NIX_SSL_CERT_FILE");
                }
            }
            let case = format!("{command} with {trust}");
            let before = files(env);
            let tokens_before = idp.count_requests("POST", "/token", &[]);
            let out = env.cli(&[command]);
            let line = assert_failed(&case, &out, 1, &[&host]);
            assert!(
                line.to_lowercase().contains("certificate") || line.contains("UnknownIssuer"),
                "{case}: says it is about the certificate: {line}"
            );
            assert_unchanged(&case, env, &before);
            assert_eq!(
                idp.count_requests("POST", "/token", &[]),
                tokens_before,
                "{case}: no token request reached the provider"
            );
            runs += 1;
        }
    }
    println!("untrusted TLS: {runs} failing runs, files unchanged in all");
}

// ------------------------------------------------------------------ file-system faults

/// A run of one command whose token requests can be counted at its provider.
struct Subject<'a> {
    name: &'static str,
    env: TestEnv,
    token_requests: Box<dyn Fn() -> usize + 'a>,
}

/// The user session at the fault server (refresh) and a server session at the real
/// provider (service-account), both healthy.
fn subjects<'a>(idp: &'a Idp, server: &'a FaultServer) -> Vec<Subject<'a>> {
    let user = user_env_at_fault_server(idp, server);
    let mut service = TestEnv::new_server(idp);
    seed_netrc(&service.netrc_path(), SERVER_HOST, None);
    let out = service.cli(&["service-account"]);
    assert!(out.status.success(), "{}", describe(&out));
    service.set_env("NIX_CACHE_LOGIN_HTTP_TIMEOUT", "5");
    vec![
        Subject {
            name: "refresh",
            env: user,
            token_requests: Box::new(move || server.token_requests()),
        },
        Subject {
            name: "service-account",
            env: service,
            token_requests: Box::new(move || idp.count_requests("POST", "/token", &[])),
        },
    ]
}

/// Runs the subject's command and checks the fault was found before any token request,
/// with one line naming `needles`, and nothing changed.
fn fails_before_token(case: &str, subject: &Subject, code: i32, needles: &[&str]) {
    let before = files(&subject.env);
    let tokens_before = (subject.token_requests)();
    let out = subject.env.cli(&[subject.name]);
    assert_failed(case, &out, code, needles);
    assert_eq!(
        (subject.token_requests)(),
        tokens_before,
        "{case}: a token was requested"
    );
    assert_unchanged(case, &subject.env, &before);
}

/// A directory nobody can write to, not even root, for as long as this lives.
enum ReadOnlyDir {
    Mount { _mount: Tmpfs },
    Immutable(PathBuf),
    Mode(PathBuf),
}

impl ReadOnlyDir {
    /// Makes `dir` (holding `files`, name and bytes) read-only. Root: a tmpfs remounted
    /// read-only, else `chattr +i`; others: mode 0555. Err: why that was impossible.
    fn make(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<ReadOnlyDir, String> {
        let write_files = |dir: &Path| {
            for (name, bytes) in files {
                fs::write(dir.join(name), bytes).unwrap();
                fs::set_permissions(dir.join(name), fs::Permissions::from_mode(0o600)).unwrap();
            }
        };
        if !is_root() {
            fs::create_dir_all(dir).unwrap();
            write_files(dir);
            fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).unwrap();
            return Ok(ReadOnlyDir::Mode(dir.to_path_buf()));
        }
        match Tmpfs::mount(dir, "1m") {
            Ok(mount) => {
                write_files(dir);
                mount.remount_read_only()?;
                Ok(ReadOnlyDir::Mount { _mount: mount })
            }
            Err(mount_error) => {
                write_files(dir);
                let ok = std::process::Command::new("chattr")
                    .arg("+i")
                    .arg(dir)
                    .status()
                    .is_ok_and(|s| s.success());
                if ok && fs::write(dir.join(".probe"), b"").is_err() {
                    Ok(ReadOnlyDir::Immutable(dir.to_path_buf()))
                } else {
                    let _ = fs::remove_file(dir.join(".probe"));
                    Err(format!(
                        "running as root, and neither a read-only tmpfs ({mount_error}) nor chattr +i is possible here"
                    ))
                }
            }
        }
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        match self {
            ReadOnlyDir::Mount { .. } => {}
            ReadOnlyDir::Immutable(dir) => {
                let _ = std::process::Command::new("chattr")
                    .arg("-i")
                    .arg(&*dir)
                    .status();
            }
            ReadOnlyDir::Mode(dir) => {
                let _ = fs::set_permissions(&*dir, fs::Permissions::from_mode(0o700));
            }
        }
    }
}

fn read_only_words() -> &'static str {
    if is_root() {
        "read-only file system"
    } else {
        "permission denied"
    }
}

#[test]
fn read_only_netrc_directory_fails_before_a_token_is_spent() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let mut subjects = subjects(&idp, &server);
    for subject in &mut subjects {
        let dir = subject.env.dir().join("read-only");
        let netrc = dir.join("netrc");
        let bytes = fs::read(subject.env.netrc_path()).unwrap();
        let guard = match ReadOnlyDir::make(&dir, &[("netrc", bytes)]) {
            Ok(g) => g,
            Err(why) => {
                println!("SKIPPED read-only netrc directory: {why}");
                return;
            }
        };
        subject
            .env
            .update_config(|c| c.netrc_path = Some(netrc.clone()));
        let case = format!("{}: read-only netrc directory", subject.name);
        fails_before_token(
            &case,
            subject,
            1,
            &[&netrc.display().to_string(), read_only_words()],
        );
        drop(guard);
    }
    println!("read-only netrc directory: 2 commands refused before any token request");
}

#[test]
fn read_only_store_directory_fails_before_a_token_is_spent() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let subjects = subjects(&idp, &server);
    let mut checked = 0;
    for subject in &subjects {
        let dir = subject.env.state_home().join("nix-cache-login");
        let store_files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        fs::remove_dir_all(&dir).unwrap();
        let refs: Vec<(&str, Vec<u8>)> = store_files
            .iter()
            .map(|(n, b)| (n.as_str(), b.clone()))
            .collect();
        let guard = match ReadOnlyDir::make(&dir, &refs) {
            Ok(g) => g,
            Err(why) => {
                println!("SKIPPED read-only store directory: {why}");
                return;
            }
        };
        let case = format!("{}: read-only token store directory", subject.name);
        fails_before_token(
            &case,
            subject,
            1,
            &[&dir.display().to_string(), read_only_words()],
        );
        drop(guard);
        checked += 1;
    }
    println!("read-only store directory: {checked} commands refused before any token request");
}

#[test]
fn full_disk_fails_before_a_token_is_spent() {
    if !is_root() {
        println!("SKIPPED full disk: mounting a small tmpfs needs root");
        return;
    }
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let mut subjects = subjects(&idp, &server);
    for subject in &mut subjects {
        let dir = subject.env.dir().join("full");
        let mount = match Tmpfs::mount(&dir, "64k") {
            Ok(m) => m,
            Err(why) => {
                println!("SKIPPED full disk: {why}");
                return;
            }
        };
        let netrc = dir.join("netrc");
        fs::copy(subject.env.netrc_path(), &netrc).unwrap();
        fill_up(&dir);
        subject
            .env
            .update_config(|c| c.netrc_path = Some(netrc.clone()));
        let case = format!("{}: full disk", subject.name);
        fails_before_token(
            &case,
            subject,
            1,
            &[&netrc.display().to_string(), "no space left"],
        );
        drop(mount);
    }
    println!("full disk: 2 commands refused before any token request");
}

#[test]
fn dangling_netrc_symlink_fails_before_a_token_is_spent() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let mut subjects = subjects(&idp, &server);
    for subject in &mut subjects {
        let link = subject.env.dir().join("netrc-link");
        std::os::unix::fs::symlink("gone/netrc", &link).unwrap();
        subject
            .env
            .update_config(|c| c.netrc_path = Some(link.clone()));
        let case = format!("{}: dangling netrc symlink", subject.name);
        fails_before_token(
            &case,
            subject,
            1,
            &[&link.display().to_string(), "does not exist"],
        );
        assert!(
            !subject.env.dir().join("gone").exists(),
            "{case}: nothing created"
        );
    }
    println!("dangling symlink: 2 commands refused before any token request");
}

#[test]
fn corrupt_token_store_means_log_in_again() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let env = user_env_at_fault_server(&idp, &server);
    let store = store_path(&env, &env.config_path());
    let good = fs::read(&store).unwrap();
    let mut wrong_version: serde_json::Value = serde_json::from_slice(&good).unwrap();
    wrong_version["version"] = 99.into();
    let corruptions: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("not UTF-8", b"\xff\xfe\x00garbage\x80".to_vec()),
        ("a JSON array", b"[]".to_vec()),
        ("missing fields", br#"{"version": 1}"#.to_vec()),
        (
            "wrong types holding a token",
            br#"{"version": 1, "access_token": 42, "refresh_token": "eyJsecret.eyJsecret"}"#
                .to_vec(),
        ),
        (
            "another format version",
            serde_json::to_vec(&wrong_version).unwrap(),
        ),
        ("NUL bytes", vec![0u8; 64]),
    ];
    let store_name = store.display().to_string();
    for (what, bytes) in &corruptions {
        fs::write(&store, bytes).unwrap();
        let before = files(&env);
        server.clear_log();
        let case = format!("refresh with a store that is {what}");
        let line = assert_failed(&case, &env.cli(&["refresh"]), 3, &[&store_name]);
        assert!(line.contains("nix-cache-login login"), "{case}: {line}");
        assert!(
            !line.contains("eyJsecret"),
            "{case}: quotes the store: {line}"
        );
        assert_eq!(server.token_requests(), 0, "{case}: a token was requested");
        assert_unchanged(&case, &env, &before);

        // status reports what Nix would send (the netrc's token, still good here) and
        // names the broken store as the problem; it never panics.
        let out = env.cli(&["status", "--json"]);
        assert!(
            matches!(out.status.code(), Some(0 | 3))
                && !String::from_utf8_lossy(&out.stderr).contains("panicked"),
            "status --json, {what}: {}",
            describe(&out)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let error = report["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&store_name) && !error.contains("eyJsecret"),
            "status --json, {what}: {report}"
        );
    }
    // logout clears a corrupt store away (and the netrc entry), with a warning.
    let out = env.cli(&["logout"]);
    assert!(out.status.success(), "logout: {}", describe(&out));
    assert!(!store.exists());
    assert_eq!(netrc_password(&env.netrc_path(), USER_HOST), None);
    println!(
        "corrupt store: {} kinds, each exit 3 for refresh (status names the problem), no token request",
        corruptions.len()
    );
}

#[test]
fn netrc_or_lock_that_is_a_directory_fails_before_a_token_is_spent() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let mut subjects = subjects(&idp, &server);
    for subject in &mut subjects {
        let dir_netrc = subject.env.dir().join("netrc-is-a-dir");
        fs::create_dir(&dir_netrc).unwrap();
        subject
            .env
            .update_config(|c| c.netrc_path = Some(dir_netrc.clone()));
        let case = format!("{}: the netrc is a directory", subject.name);
        fails_before_token(&case, subject, 1, &[&dir_netrc.display().to_string()]);

        let netrc = subject.env.dir().join("netrc2");
        fs::copy(subject.env.dir().join("netrc"), &netrc).unwrap();
        let lock = subject.env.dir().join("netrc2.lock");
        fs::create_dir(&lock).unwrap();
        subject
            .env
            .update_config(|c| c.netrc_path = Some(netrc.clone()));
        let case = format!("{}: the netrc's lock file is a directory", subject.name);
        fails_before_token(&case, subject, 1, &[&lock.display().to_string()]);
    }
    println!("netrc or lock a directory: 4 runs refused before any token request");
}

/// The netrc's directory turns read-only while the token request is under way, so the
/// failure comes after the provider answered: `refresh` keeps the rotated refresh token
/// (the old one is spent), `service-account` puts the store back; the netrc is untouched.
#[test]
fn netrc_turning_read_only_during_the_token_request() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let user = user_env_at_fault_server(&idp, &server);
    let service = server_env_at_fault_server(&idp, &server);
    for (mut env, command) in [(user, "refresh"), (service, "service-account")] {
        let case = format!("{command}: netrc directory read-only during the request");
        let dir = env.dir().join("turns-read-only");
        let mount = if is_root() {
            match Tmpfs::mount(&dir, "1m") {
                Ok(m) => Some(m),
                Err(why) => {
                    println!("SKIPPED {case}: {why}");
                    return;
                }
            }
        } else {
            fs::create_dir(&dir).unwrap();
            None
        };
        let netrc = dir.join("netrc");
        fs::copy(env.netrc_path(), &netrc).unwrap();
        env.update_config(|c| c.netrc_path = Some(netrc.clone()));
        let store = store_path(&env, &env.config_path());
        let netrc_before = fs::read(&netrc).unwrap();
        let store_before = fs::read(&store).unwrap();

        server.clear_log();
        server.set_fault(Fault::Slow(Duration::from_millis(1500)), Target::Token);
        let mut child = env.spawn(&[command]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.token_requests() == 0 {
            assert!(Instant::now() < deadline, "{case}: no token request came");
            std::thread::sleep(Duration::from_millis(10));
        }
        match &mount {
            Some(m) => m.remount_read_only().unwrap(),
            None => fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap(),
        }
        let status =
            support::proc::wait_until(&mut child, Instant::now() + Duration::from_secs(30))
                .expect("the run ends");
        let mut stderr = Vec::new();
        std::io::Read::read_to_end(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        let out = std::process::Output {
            status,
            stdout: Vec::new(),
            stderr,
        };
        let line = assert_failed(&case, &out, 1, &[&netrc.display().to_string()]);
        assert_eq!(
            fs::read(&netrc).unwrap(),
            netrc_before,
            "{case}: netrc changed"
        );
        let stored: serde_json::Value = serde_json::from_slice(&fs::read(&store).unwrap()).unwrap();
        if command == "refresh" {
            let rotated = server.refresh_tokens().last().unwrap().clone();
            assert_eq!(
                stored["refresh_token"], rotated,
                "{case}: the rotated refresh token is kept"
            );
            assert!(line.contains("kept"), "{case}: says so: {line}");
        } else {
            assert_eq!(
                fs::read(&store).unwrap(),
                store_before,
                "{case}: the store is put back"
            );
        }

        // Writable again: the next run works, with the kept refresh token.
        server.set_fault(Fault::None, Target::Token);
        match &mount {
            Some(m) => m.remount_read_write().unwrap(),
            None => fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap(),
        }
        let out = env.cli(&[command]);
        assert!(out.status.success(), "{case}, then: {}", describe(&out));
        if command == "refresh" {
            assert_eq!(
                server.refresh_tokens_received().last(),
                stored["refresh_token"].as_str().map(String::from).as_ref(),
                "{case}: the next refresh presents the kept token"
            );
        }
        assert_eq!(
            netrc_password(
                &netrc,
                if command == "refresh" {
                    USER_HOST
                } else {
                    SERVER_HOST
                }
            ),
            server.access_tokens().last().cloned()
        );
        drop(mount);
    }
    println!(
        "netrc read-only mid-request: refresh kept the rotated refresh token, service-account restored its store"
    );
}
