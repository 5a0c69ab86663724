//! The four grant commands against the real test provider (oidc-provider) and, for `login`,
//! a real headless chromium playing the user. Every test seeds the netrc with other entries
//! and checks that they survive.

use crate::support;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{AccessTokenFormat, BrowserMode, Idp, IdpOptions, TestEnv, describe};

/// Entries of other machines, a comment, a macdef and a default, in the shapes people write:
/// every command must leave these bytes alone.
const OTHER_ENTRIES: &str = "# managed by hand\nmachine github.com login me password ghp_x\n\nmachine other.example\n  login a\n  password b\n\nmacdef init\ncd /pub\n\n";
const DEFAULT_ENTRY: &str = "default login anonymous password guest\n";

fn seeded(env: &TestEnv) {
    fs::write(env.netrc_path(), format!("{OTHER_ENTRIES}{DEFAULT_ENTRY}")).unwrap();
    fs::set_permissions(env.netrc_path(), fs::Permissions::from_mode(0o600)).unwrap();
}

/// The netrc entry's password for `machine`, parsed by the crate's own reader.
fn netrc_password(env: &TestEnv, machine: &str) -> Option<String> {
    let bytes = fs::read(env.netrc_path()).ok()?;
    let entry = nix_cache_login::netrc::Netrc::parse(&bytes).get(machine)?;
    entry.password.map(|p| String::from_utf8(p).unwrap())
}

fn assert_others_intact(env: &TestEnv) {
    let text = env.netrc();
    assert!(
        text.starts_with(OTHER_ENTRIES),
        "other entries changed:\n{text}"
    );
    assert!(
        text.ends_with(DEFAULT_ENTRY),
        "default entry moved:\n{text}"
    );
}

fn store_files(env: &TestEnv) -> Vec<PathBuf> {
    let dir = env.state_home().join("nix-cache-login");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn stored(env: &TestEnv) -> serde_json::Value {
    let files = store_files(env);
    assert_eq!(files.len(), 1, "one store file expected: {files:?}");
    serde_json::from_slice(&fs::read(&files[0]).unwrap()).unwrap()
}

fn stored_str(env: &TestEnv, key: &str) -> String {
    stored(env)[key].as_str().unwrap_or_default().to_string()
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Logs in through the browser hook; returns the environment ready for more commands.
fn logged_in(idp: &Idp) -> TestEnv {
    let env = TestEnv::new(idp).with_browser(BrowserMode::Approve);
    seeded(&env);
    let out = env.cli(&["login", "--timeout", "60s"]);
    assert!(out.status.success(), "login: {}", describe(&out));
    env
}

#[test]
fn login_writes_netrc_and_store() {
    let idp = Idp::start(IdpOptions::default());
    let env = logged_in(&idp);
    let token = netrc_password(&env, "cache.test").expect("netrc entry");
    assert!(
        idp.is_active(&token),
        "the provider accepts the written token"
    );
    assert_eq!(mode(&env.netrc_path()), 0o600);
    assert_others_intact(&env);
    // The entry is multi-line (curl < 8.7 drops lines of 4095+ bytes), before `default`.
    assert!(
        env.netrc().contains(&format!(
            "machine cache.test\nlogin nix-cache-login\npassword {token}\n{DEFAULT_ENTRY}"
        )),
        "{}",
        env.netrc()
    );
    let store = &store_files(&env)[0];
    assert_eq!(mode(store), 0o600);
    let s = stored(&env);
    assert_eq!(s["grant"], "authorization_code");
    assert_eq!(s["access_token"], token.as_str());
    assert!(s["refresh_token"].is_string(), "refresh token stored: {s}");
    assert_eq!(s["username"], "alice");
    // The ID token is validated and dropped: nothing reads it again (issue 13).
    assert!(s.get("id_token").is_none(), "an ID token on disk: {s}");
    // The browser saw the friendly page, not a token.
    let result = env
        .browser()
        .unwrap()
        .wait_result(Duration::from_secs(10))
        .unwrap();
    assert_eq!(result["callback"]["status"], 200, "{result}");
    let page = result["callback"]["text"].as_str().unwrap_or_default();
    assert!(page.contains("Logged in"), "{page}");
    assert!(!page.contains(&token));

    let status = env.cli(&["status", "--json"]);
    assert!(status.status.success(), "{}", describe(&status));
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["state"], "valid");
    assert_eq!(report["username"], "alice");
    assert_eq!(report["access_token"]["format"], "jwt");
    assert_eq!(report["hosts"][0]["netrc_entry"], true);
}

#[test]
fn forged_callback_is_refused_and_real_login_completes() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp).with_browser(BrowserMode::ForgeState);
    seeded(&env);
    let out = env.cli(&["login", "--timeout", "60s"]);
    assert!(out.status.success(), "login: {}", describe(&out));
    let result = env
        .browser()
        .unwrap()
        .wait_result(Duration::from_secs(10))
        .unwrap();
    assert_eq!(result["forged"]["status"], 400, "{result}");
    assert!(netrc_password(&env, "cache.test").is_some());
    assert_others_intact(&env);
}

#[test]
fn access_denied_changes_nothing() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp).with_browser(BrowserMode::Deny);
    seeded(&env);
    let before = fs::read(env.netrc_path()).unwrap();
    let out = env.cli(&["login", "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("access_denied"), "{stderr}");
    assert_eq!(fs::read(env.netrc_path()).unwrap(), before);
    assert!(store_files(&env).is_empty());
}

#[test]
fn login_times_out() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp).with_browser(BrowserMode::Ignore);
    seeded(&env);
    let before = fs::read(env.netrc_path()).unwrap();
    let started = Instant::now();
    let out = env.cli(&["login", "--timeout", "3s"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(started.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("within 3 seconds"), "{stderr}");
    assert_eq!(fs::read(env.netrc_path()).unwrap(), before);
}

#[test]
fn no_browser_prints_the_url_only() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp).with_browser(BrowserMode::Approve);
    let out = env.cli(&["login", "--no-browser", "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}/auth?", idp.issuer())),
        "{stderr}"
    );
    assert!(stderr.contains("code_challenge_method=S256"), "{stderr}");
    assert!(env.browser_log().is_empty(), "no browser was started");
}

#[test]
fn refresh_rotates_and_min_valid_skips() {
    let idp = Idp::start(IdpOptions::default());
    let env = logged_in(&idp);
    let old_access = netrc_password(&env, "cache.test").unwrap();
    let old_refresh = stored_str(&env, "refresh_token");

    idp.clear_request_log();
    let out = env.cli(&["refresh"]);
    assert!(out.status.success(), "refresh: {}", describe(&out));
    // Warm: the discovery document is cached, so the token request is the only request.
    let log = idp.request_log();
    assert_eq!(log.lines().count(), 1, "one request expected:\n{log}");
    assert_eq!(
        idp.count_requests("POST", "/token", &["grant_type=refresh_token"]),
        1
    );

    let new_access = netrc_password(&env, "cache.test").unwrap();
    let new_refresh = stored_str(&env, "refresh_token");
    assert_ne!(new_access, old_access);
    assert_ne!(
        new_refresh, old_refresh,
        "the provider rotates refresh tokens"
    );
    assert!(idp.is_active(&new_refresh));
    assert!(
        !idp.is_active(&old_refresh),
        "the spent refresh token is dead"
    );
    assert_others_intact(&env);

    idp.clear_request_log();
    let out = env.cli(&["refresh", "--min-valid", "10s"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        idp.request_log(),
        "",
        "--min-valid with a fresh token sends nothing"
    );
    assert_eq!(netrc_password(&env, "cache.test").unwrap(), new_access);

    // Longer than the token lives (60 s in the test provider): refresh is due.
    let out = env.cli(&["refresh", "--min-valid", "5m"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_ne!(netrc_password(&env, "cache.test").unwrap(), new_access);
}

#[test]
fn concurrent_refreshes_keep_the_session() {
    let idp = Idp::start(IdpOptions::default());
    let env = logged_in(&idp);
    let mut children: Vec<_> = (0..4).map(|_| env.spawn(&["refresh"])).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for child in &mut children {
        let status = support::proc::wait_until(child, deadline).expect("refresh finished");
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut stderr).unwrap();
        }
        assert!(status.success(), "a concurrent refresh failed: {stderr}");
    }
    // The session lives on: one more refresh works and the netrc token is accepted.
    let out = env.cli(&["refresh"]);
    assert!(out.status.success(), "{}", describe(&out));
    let token = netrc_password(&env, "cache.test").unwrap();
    assert!(idp.is_active(&token));
    assert!(idp.is_active(&stored_str(&env, "refresh_token")));
    assert_others_intact(&env);
}

#[test]
fn refresh_after_revocation_needs_login() {
    let idp = Idp::start(IdpOptions::default());
    let env = logged_in(&idp);
    let refresh_token = stored_str(&env, "refresh_token");
    let r = idp.revoke_public(&refresh_token);
    assert_eq!(r.status, 200, "{}", r.body);
    let netrc_before = fs::read(env.netrc_path()).unwrap();
    let out = env.cli(&["refresh"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nix-cache-login login"), "{stderr}");
    assert!(stderr.contains("invalid_grant"), "{stderr}");
    assert!(!stderr.contains(&refresh_token));
    assert_eq!(fs::read(env.netrc_path()).unwrap(), netrc_before);
}

#[test]
fn refresh_without_session_needs_login() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp);
    let out = env.cli(&["refresh"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let status = env.cli(&["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", describe(&status));
    assert!(String::from_utf8_lossy(&status.stdout).contains("login needed"));
}

#[test]
fn service_account_with_basic_and_post_auth() {
    let idp = Idp::start(IdpOptions::default());
    let mut env = TestEnv::new_server(&idp);
    seeded(&env);
    let out = env.cli(&["service-account"]);
    assert!(out.status.success(), "{}", describe(&out));
    let token = netrc_password(&env, "cache.test").unwrap();
    assert!(idp.is_active(&token));
    assert_eq!(
        idp.count_requests("POST", "/token", &["grant_type=client_credentials"]),
        1
    );
    assert_others_intact(&env);
    assert_eq!(stored_str(&env, "grant"), "client_credentials");

    // A provider that takes only client_secret_post for this client.
    env.update_config(|c| c.client_id = Some(idp.server_post_client_id().to_owned()));
    let out = env.cli(&["service-account"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(idp.is_active(&netrc_password(&env, "cache.test").unwrap()));
}

/// A provider that issues opaque (non-JWT) access tokens: the expiry comes from `expires_in`
/// alone, and status shows it and that the token is opaque.
#[test]
fn opaque_access_tokens_get_their_expiry_from_expires_in() {
    let idp = Idp::start(IdpOptions {
        access_token_format: AccessTokenFormat::Opaque,
        ..IdpOptions::default()
    });
    let env = TestEnv::new_server(&idp);
    seeded(&env);
    let out = env.cli(&["service-account"]);
    assert!(out.status.success(), "{}", describe(&out));
    let token = netrc_password(&env, "cache.test").unwrap();
    assert_eq!(
        token.matches('.').count(),
        0,
        "not a JWT: {} bytes",
        token.len()
    );
    assert!(idp.is_active(&token));
    assert!(stored(&env)["access_token_expires_at"].as_i64().is_some());
    let out = env.cli(&["status"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(opaque)"),
        "{}",
        describe(&out)
    );
    assert_others_intact(&env);
}

#[test]
fn service_account_wrong_secret_changes_nothing() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new_server(&idp);
    seeded(&env);
    let ok = env.cli(&["service-account"]);
    assert!(ok.status.success(), "{}", describe(&ok));
    let netrc_before = fs::read(env.netrc_path()).unwrap();
    let store_before = fs::read(&store_files(&env)[0]).unwrap();

    let secret_file = env.config().client_secret_file.clone().unwrap();
    fs::write(&secret_file, "not-the-secret\n").unwrap();
    let out = env.cli(&["service-account"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid_client"), "{stderr}");
    assert!(stderr.contains("/token"), "names the URL: {stderr}");
    assert!(!stderr.contains("not-the-secret"));
    assert_eq!(fs::read(env.netrc_path()).unwrap(), netrc_before);
    assert_eq!(fs::read(&store_files(&env)[0]).unwrap(), store_before);
}

#[test]
fn service_account_secret_file_problems_are_config_errors() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new_server(&idp);
    let secret_file = env.config().client_secret_file.clone().unwrap();
    fs::write(&secret_file, "\n").unwrap();
    let out = env.cli(&["service-account"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is empty"));
    fs::remove_file(&secret_file).unwrap();
    let out = env.cli(&["service-account"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&secret_file.display().to_string()));

    fs::write(&secret_file, format!("{}\n", idp.server_client_secret())).unwrap();
    fs::set_permissions(&secret_file, fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.cli(&["service-account"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by group or others"));
}

#[test]
fn logout_revokes_and_removes() {
    let idp = Idp::start(IdpOptions::default());
    let env = logged_in(&idp);
    let refresh_token = stored_str(&env, "refresh_token");
    assert!(idp.is_active(&refresh_token));
    let out = env.cli(&["logout"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!idp.is_active(&refresh_token), "revoked at the provider");
    assert_eq!(netrc_password(&env, "cache.test"), None);
    assert!(store_files(&env).is_empty());
    assert_eq!(env.netrc(), format!("{OTHER_ENTRIES}{DEFAULT_ENTRY}"));
    assert_eq!(mode(&env.netrc_path()), 0o600);
}

#[test]
fn logout_when_provider_is_down_still_removes_and_says_so() {
    let mut idp = Idp::start(IdpOptions::default());
    let env = logged_in(&idp);
    idp.stop();
    let out = env.cli(&["logout"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stay valid"), "{stderr}");
    assert_eq!(netrc_password(&env, "cache.test"), None);
    assert!(store_files(&env).is_empty());
    assert_others_intact(&env);
}

#[test]
fn provider_down_changes_nothing() {
    let mut idp = Idp::start(IdpOptions::default());
    let env = logged_in(&idp);
    let netrc_before = fs::read(env.netrc_path()).unwrap();
    let store_before = fs::read(&store_files(&env)[0]).unwrap();
    idp.stop();
    let out = env.cli(&["refresh"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("127.0.0.1"), "names the host: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert_eq!(fs::read(env.netrc_path()).unwrap(), netrc_before);
    assert_eq!(fs::read(&store_files(&env)[0]).unwrap(), store_before);
}

#[test]
fn several_cache_hosts_get_the_same_token() {
    let idp = Idp::start(IdpOptions::default());
    let mut env = TestEnv::new_server(&idp);
    seeded(&env);
    env.update_config(|c| {
        c.cache_host = None;
        c.cache_hosts = Some(vec!["cache.test".into(), "mirror.test:8443".into()]);
    });
    let out = env.cli(&["service-account"]);
    assert!(out.status.success(), "{}", describe(&out));
    let a = netrc_password(&env, "cache.test").unwrap();
    assert_eq!(netrc_password(&env, "mirror.test"), Some(a));
    let out = env.cli(&["logout"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(env.netrc(), format!("{OTHER_ENTRIES}{DEFAULT_ENTRY}"));
}

#[test]
fn logout_revokes_with_a_plain_http_loopback_issuer() {
    // The config allows http issuers on loopback (local test providers, the demo); the
    // oauth2 crate refuses http revocation endpoints, so the tool sends that request itself.
    let idp = Idp::start(IdpOptions {
        extra_env: vec![("IDP_HTTP".into(), "1".into())],
        ..IdpOptions::default()
    });
    assert!(idp.issuer().starts_with("http://127.0.0.1:"));
    let env = logged_in(&idp);
    let refresh_token = stored_str(&env, "refresh_token");
    let out = env.cli(&["logout"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!idp.is_active(&refresh_token), "revoked at the provider");
    assert_eq!(netrc_password(&env, "cache.test"), None);
}

#[test]
fn profiles_select_other_hosts_with_their_own_store() {
    let idp = Idp::start(IdpOptions::default());
    let mut env = TestEnv::new_server(&idp);
    seeded(&env);
    env.update_config(|c| c.extra = "[profiles.mirror]\ncache_host = 'mirror.test'\n".into());
    let out = env.cli(&["--profile", "mirror", "service-account"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(netrc_password(&env, "mirror.test").is_some());
    assert_eq!(netrc_password(&env, "cache.test"), None);
    let status = env.cli(&["status", "--profile", "mirror", "--json"]);
    assert!(status.status.success(), "{}", describe(&status));
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["profile"], "mirror");
    // The top level is another session, not logged in yet.
    let top = env.cli(&["status"]);
    assert_ne!(top.status.code(), Some(0), "{}", describe(&top));
    let out = env.cli(&["--profile", "nope", "status"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mirror"));
    assert_others_intact(&env);
}
