//! End to end with real Nix: the CLI logs in at the real test provider (oidc-provider, with
//! headless chromium playing the user), writes the token into a netrc, and real Nix 2.8
//! (Debian's nix-bin) substitutes a path it built into an empty store through a binary cache
//! that answers 401 unless the Basic-auth password is a live access token of that provider
//! (`tests/idp/cache.mjs`: RS256 signature from the JWKS, `iss`, `aud`, `exp`).
//!
//! Everything is on 127.0.0.1; Nix uses a private nix.conf and private stores (see
//! `support::nix`), never /nix or /etc/nix. Every test prints how many Nix runs it made and
//! which fetched the path, and what the cache answered.

use crate::support;
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::cache::{CacheRequest, summarize};
use crate::support::nix::{Fetch, NixRun, TestPath};
use crate::support::{BrowserMode, CacheServer, Idp, IdpOptions, NixLab, TestEnv, describe};

/// The netrc entry's password for `machine`, parsed by the crate's own reader.
fn netrc_password(netrc: &Path, machine: &str) -> Option<String> {
    let bytes = fs::read(netrc).ok()?;
    let entry = nix_cache_login::netrc::Netrc::parse(&bytes).get(machine)?;
    entry.password.map(|p| String::from_utf8(p).unwrap())
}

fn token_exp(token: &str) -> u64 {
    support::jwt_claims(token)["exp"]
        .as_u64()
        .expect("exp in the access token")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sleeps until `exp` has passed (the cache allows no clock leeway).
fn wait_past(exp: u64) -> Duration {
    let started = Instant::now();
    while now() <= exp {
        std::thread::sleep(Duration::from_millis(200));
    }
    started.elapsed()
}

/// Prints past libtest's output capture, so the figures show in a plain `cargo test`.
fn report(test: &str, started: Instant, lab: &NixLab, cache: &CacheServer, extra: &str) {
    let mut text = format!(
        "\n[nix_e2e::{test}] {:.1} s\n{}\n  cache, whole test: {}\n",
        started.elapsed().as_secs_f64(),
        lab.summary(),
        summarize(&cache.requests())
    );
    if !extra.is_empty() {
        text.push_str(extra);
        text.push('\n');
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Every request carried a token the cache accepted, for `sub`, and the path itself
/// (narinfo and nar) was among them: Nix sent the credentials up front, no 401 first.
fn assert_all_accepted(requests: &[CacheRequest], sub: &str) {
    assert!(!requests.is_empty(), "Nix asked the cache nothing");
    for r in requests {
        assert_eq!(r.status, 200, "{r:?} in {requests:#?}");
        assert_eq!(r.auth, "basic", "{r:?}");
        assert_eq!(r.sub.as_deref(), Some(sub), "{r:?}");
    }
    assert!(requests.iter().any(|r| r.path.ends_with(".narinfo")));
    assert!(requests.iter().any(|r| r.path.starts_with("/nar/")));
}

/// Nix was turned away, for `why`, and got no file.
fn assert_all_refused(requests: &[CacheRequest], why: &str) {
    assert!(!requests.is_empty(), "Nix asked the cache nothing");
    for r in requests {
        assert_eq!(r.status, 401, "{r:?} in {requests:#?}");
        assert_eq!(r.why.as_deref(), Some(why), "{r:?}");
    }
}

/// The run fetched the path, every request accepted for `sub` (see [`assert_all_accepted`]).
fn expect_fetched((run, requests): (NixRun, Vec<CacheRequest>), sub: &str) -> Vec<CacheRequest> {
    assert!(run.fetched, "{}", run.describe());
    assert_all_accepted(&requests, sub);
    requests
}

/// The cache turned the run away, every request for `why` (see [`assert_all_refused`]).
fn expect_refused((run, requests): (NixRun, Vec<CacheRequest>), why: &str) -> Vec<CacheRequest> {
    assert!(run.refused_by_cache(), "{}", run.describe());
    assert_all_refused(&requests, why);
    requests
}

/// A Nix lab, a provider with `options`, and the test cache serving the lab's binary cache
/// to holders of that provider's tokens.
fn lab_with_cache(options: IdpOptions) -> (NixLab, Idp, CacheServer) {
    let lab = NixLab::new();
    let idp = Idp::start(options);
    let cache = CacheServer::start(&idp, lab.cache_dir());
    (lab, idp, cache)
}

/// A CLI sandbox whose `cache_host` is the test cache (`127.0.0.1:PORT`; the netrc entry is
/// `machine 127.0.0.1`).
fn cli_for(env: TestEnv, cache: &CacheServer) -> TestEnv {
    let mut env = env;
    env.update_config(|c| c.cache_host = Some(cache.host()));
    env
}

/// [`cli_for`] a user who approves in the (headless) browser.
fn browser_cli_for(idp: &Idp, cache: &CacheServer) -> TestEnv {
    cli_for(TestEnv::new(idp).with_browser(BrowserMode::Approve), cache)
}

/// Runs the CLI with `args`, which must succeed.
fn cli_ok(env: &TestEnv, args: &[&str]) {
    let out = env.cli(args);
    assert!(out.status.success(), "{}: {}", args[0], describe(&out));
}

#[test]
fn login_lets_nix_fetch_and_logout_stops_it() {
    let started = Instant::now();
    let (lab, idp, cache) = lab_with_cache(IdpOptions::default());
    let env = browser_cli_for(&idp, &cache);
    let netrc = env.netrc_path();

    // No netrc file yet: Nix ignores the missing file and asks without credentials.
    assert!(!netrc.exists());
    expect_refused(
        lab.substitute(&cache, &netrc, "before login (no netrc file)"),
        "no-authorization",
    );

    cli_ok(&env, &["login", "--timeout", "60s"]);
    let token = netrc_password(&netrc, "127.0.0.1").expect("a netrc entry for 127.0.0.1");

    expect_fetched(
        lab.substitute(&cache, &netrc, "after login (browser, PKCE)"),
        "alice",
    );

    cli_ok(&env, &["logout"]);
    assert_eq!(netrc_password(&netrc, "127.0.0.1"), None);

    expect_refused(
        lab.substitute(&cache, &netrc, "after logout"),
        "no-authorization",
    );

    // The limit of logout, shown rather than hidden: the access token is a JWT that this
    // cache checks offline, so a copy taken before logout still opens it until `exp`.
    // Logout removes it from the netrc and revokes the refresh token, so no new one comes.
    let copy = support::http::curl(
        idp.ca_pem_path(),
        &[
            "-u",
            &format!("copy:{token}"),
            &format!("{}/nix-cache-info", cache.url()),
        ],
    );
    let left = token_exp(&token).saturating_sub(now());
    assert_eq!(copy.status, 200, "{}", copy.body);
    report(
        "login_lets_nix_fetch_and_logout_stops_it",
        started,
        &lab,
        &cache,
        &format!(
            "  a copy of the logged-out access token still opens this offline-checking cache \
             for its last {left} s"
        ),
    );
}

#[test]
fn service_account_alone_lets_nix_fetch() {
    let started = Instant::now();
    let (lab, idp, cache) = lab_with_cache(IdpOptions::default());
    let env = cli_for(TestEnv::new_server(&idp), &cache);

    cli_ok(&env, &["service-account"]);

    expect_fetched(
        lab.substitute(&cache, &env.netrc_path(), "after service-account"),
        idp.server_client_id(),
    );
    report(
        "service_account_alone_lets_nix_fetch",
        started,
        &lab,
        &cache,
        "",
    );
}

#[test]
fn expired_token_fails_and_refresh_fixes_it() {
    let started = Instant::now();
    // Long enough for a Nix run on a loaded machine, short enough to wait out.
    let (lab, idp, cache) = lab_with_cache(IdpOptions {
        access_token_ttl: 10,
        ..IdpOptions::default()
    });
    let env = browser_cli_for(&idp, &cache);
    let netrc = env.netrc_path();

    cli_ok(&env, &["login", "--timeout", "60s"]);
    let first = netrc_password(&netrc, "127.0.0.1").expect("netrc entry");
    expect_fetched(lab.substitute(&cache, &netrc, "fresh token"), "alice");

    let waited = wait_past(token_exp(&first));
    expect_refused(
        lab.substitute(&cache, &netrc, "same token, expired"),
        "expired",
    );

    // `status` sees it too, and names the cure.
    let status = env.cli(&["status"]);
    assert_eq!(status.status.code(), Some(1), "{}", describe(&status));
    assert!(
        describe(&status).contains("nix-cache-login refresh"),
        "{}",
        describe(&status)
    );

    cli_ok(&env, &["refresh"]);
    let second = netrc_password(&netrc, "127.0.0.1").expect("netrc entry");
    assert_ne!(second, first);
    expect_fetched(lab.substitute(&cache, &netrc, "after refresh"), "alice");
    report(
        "expired_token_fails_and_refresh_fixes_it",
        started,
        &lab,
        &cache,
        &format!(
            "  access tokens live 10 s; waited {:.1} s for the first to expire",
            waited.as_secs_f64()
        ),
    );
}

/// Why the README tells people to lower `narinfo-cache-negative-ttl`: Nix 2.8 remembers a
/// 401 on a narinfo as "no such path" and does not ask again, even after a good token is in
/// the netrc, until that TTL (default 3600 s) runs out.
#[test]
fn nix_remembers_a_refused_narinfo_unless_the_negative_ttl_is_zero() {
    let started = Instant::now();
    let (lab, idp, cache) = lab_with_cache(IdpOptions {
        client_credentials_ttl: 10,
        ..IdpOptions::default()
    });
    let env = cli_for(TestEnv::new_server(&idp), &cache);
    let netrc = env.netrc_path();
    let home = lab.new_dir("shared-home");
    let hour: &[(&str, &str)] = &[("narinfo-cache-negative-ttl", "3600")];

    cli_ok(&env, &["service-account"]);
    let first = netrc_password(&netrc, "127.0.0.1").expect("netrc entry");
    // Every run here shares one HOME (Nix's own narinfo cache lives there).
    let shared = |path: TestPath, options: &[(&str, &str)], label: &str| {
        lab.fetch_from(
            &cache,
            &Fetch {
                cache_url: cache.url(),
                netrc: &netrc,
                path,
                home: Some(&home),
                options,
                label,
            },
        )
    };
    // Another path first: Nix caches the cache's nix-cache-info in the shared HOME, so later
    // runs go straight to the main path's narinfo.
    let requests = expect_fetched(
        shared(
            TestPath::Other,
            hour,
            "other path, shared HOME, negative TTL 3600 s",
        ),
        idp.server_client_id(),
    );
    assert!(requests.iter().any(|r| r.path == "/nix-cache-info"));

    wait_past(token_exp(&first));
    let requests = expect_refused(
        shared(
            TestPath::Main,
            hour,
            "main path, expired token, shared HOME, TTL 3600 s",
        ),
        "expired",
    );
    assert!(
        requests.iter().all(|r| r.path.ends_with(".narinfo")),
        "nix-cache-info came from Nix's own cache: {requests:#?}"
    );

    cli_ok(&env, &["service-account"]);
    let (run, requests) = shared(
        TestPath::Main,
        hour,
        "main path, new token, shared HOME, TTL 3600 s",
    );
    assert!(!run.fetched, "{}", run.describe());
    assert!(
        run.stderr().contains("don't know how to build these paths"),
        "{}",
        run.describe()
    );
    assert_eq!(
        requests,
        vec![],
        "Nix did not even ask: the 401 is cached as absent"
    );

    expect_fetched(
        shared(
            TestPath::Main,
            &[("narinfo-cache-negative-ttl", "0")],
            "main path, new token, shared HOME, TTL 0",
        ),
        idp.server_client_id(),
    );
    report(
        "nix_remembers_a_refused_narinfo_unless_the_negative_ttl_is_zero",
        started,
        &lab,
        &cache,
        "",
    );
}

/// The cache itself: what it refuses, and why (its log says; never the token).
#[test]
fn cache_refuses_what_is_not_a_live_token_for_it() {
    let idp = Idp::start(IdpOptions::default());
    let other_idp = Idp::start(IdpOptions::default());
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("nix-cache-info"), "StoreDir: /nix/store\n").unwrap();
    let cache = CacheServer::start(&idp, dir.path());
    let foreign_aud = CacheServer::start_for(
        idp.issuer(),
        idp.ca_pem_path(),
        "https://other-cache.test",
        dir.path(),
    );
    let token = idp.client_credentials()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let foreign = other_idp.client_credentials()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    // One character of the signature changed, in the middle (the last one may only carry
    // padding bits).
    let mut sig: Vec<char> = parts[2].chars().collect();
    let mid = sig.len() / 2;
    sig[mid] = if sig[mid] == 'A' { 'B' } else { 'A' };
    let bad_sig = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        sig.iter().collect::<String>()
    );
    // Claims changed (another sub), signature kept.
    let mut claims = support::jwt_claims(&token);
    claims["sub"] = "mallory".into();
    let b64 = |v: &serde_json::Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let forged_claims = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    let alg_none = format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "typ": "at+jwt"})),
        parts[1]
    );

    let get = |server: &CacheServer, args: &[&str]| {
        let url = format!("{}/nix-cache-info", server.url());
        let mut all: Vec<&str> = args.to_vec();
        all.push(&url);
        support::http::curl(idp.ca_pem_path(), &all).status
    };
    let basic = |t: &str| format!("nix-cache-login:{t}");
    let mut cases = 0;
    let mut check =
        |what: &str, server: &CacheServer, args: &[&str], status: u16, why: Option<&str>| {
            let mark = server.mark();
            assert_eq!(get(server, args), status, "{what}");
            let seen = server.requests_since(mark);
            assert_eq!(seen.len(), 1, "{what}: {seen:?}");
            assert_eq!(seen[0].why.as_deref(), why, "{what}: {seen:?}");
            cases += 1;
        };
    let bearer = format!("Authorization: Bearer {token}");
    check("no credentials", &cache, &[], 401, Some("no-authorization"));
    check(
        "bearer, not basic",
        &cache,
        &["-H", &bearer],
        401,
        Some("not-basic"),
    );
    check(
        "not a JWT",
        &cache,
        &["-u", &basic("hunter2")],
        401,
        Some("not-a-jwt"),
    );
    check(
        "signature changed",
        &cache,
        &["-u", &basic(&bad_sig)],
        401,
        Some("bad-signature"),
    );
    check(
        "claims changed",
        &cache,
        &["-u", &basic(&forged_claims)],
        401,
        Some("bad-signature"),
    );
    check(
        "alg none",
        &cache,
        &["-u", &basic(&alg_none)],
        401,
        Some("wrong-alg"),
    );
    check(
        "another provider's token",
        &cache,
        &["-u", &basic(&foreign)],
        401,
        Some("unknown-kid"),
    );
    check(
        "a token for another audience",
        &foreign_aud,
        &["-u", &basic(&token)],
        401,
        Some("wrong-aud"),
    );
    check("a live token", &cache, &["-u", &basic(&token)], 200, None);
    // Read-only, and nothing outside its directory.
    let live = basic(&token);
    let up = |path: &str, extra: &[&str]| {
        let url = format!("{}{path}", cache.url());
        let mut args = vec!["-u", live.as_str()];
        args.extend_from_slice(extra);
        args.push(&url);
        support::http::curl(idp.ca_pem_path(), &args).status
    };
    assert_eq!(up("/../../../etc/passwd", &["--path-as-is"]), 404);
    assert_eq!(up("/%2e%2e/%2e%2e/etc/passwd", &[]), 404);
    assert_eq!(up("/nix-cache-info", &["-X", "PUT", "-d", "x"]), 405);
    let log = cache.request_log();
    assert!(!log.contains(&parts[2][..20]), "a token in the log:\n{log}");
    let _ = std::io::stderr().write_all(
        format!(
            "\n[nix_e2e::cache_refuses_what_is_not_a_live_token_for_it] {} cases as expected; \
             the cache's log: {}\n",
            cases + 3,
            summarize(&cache.requests())
        )
        .as_bytes(),
    );
}
