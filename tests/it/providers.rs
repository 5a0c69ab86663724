//! Providers as deployed, not only as the RFCs write them (issue 15). The certified test
//! provider is used wherever it can be made to answer like a deployed one (`no-store` on
//! discovery and JWKS, a key rotation, a login nobody finishes); what it cannot be made to
//! send (a bare 400 to a dead refresh token, a bare 403 to wrong client credentials, a
//! revocation endpoint that refuses public clients, a `verification_uri_complete` of
//! another shape) comes from `support::fault::FaultServer`, the plain-HTTP stand-in.

use crate::support::fault::{
    Fault, FaultServer, SERVER_HOST, Target, USER_HOST, assert_failed, netrc_password, seed_netrc,
    server_env_at_fault_server, snapshot_dir, store_path, user_env_at_fault_server,
};
use crate::support::{BrowserMode, Idp, IdpOptions, TestEnv, describe};

/// The netrc and the token store, to show a failed run changed neither.
fn files(
    env: &TestEnv,
) -> (
    Option<Vec<u8>>,
    std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
) {
    (
        std::fs::read(env.netrc_path()).ok(),
        snapshot_dir(&env.state_home()),
    )
}

#[test]
fn a_refresh_refused_with_400_asks_for_a_new_login() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let env = user_env_at_fault_server(&idp, &server);
    let cases: [(&str, &'static str, &[&str]); 5] = [
        ("bare 400, empty body", "", &["HTTP 400", "no OAuth error"]),
        (
            "400 with an empty object",
            "{}",
            &["HTTP 400", "no OAuth error"],
        ),
        (
            "400 invalid_grant",
            r#"{"error":"invalid_grant","error_description":"Token is not active"}"#,
            &["invalid_grant", "Token is not active"],
        ),
        (
            "400 unauthorized_client",
            r#"{"error":"unauthorized_client"}"#,
            &["unauthorized_client"],
        ),
        (
            "400 with a made-up error",
            r#"{"error":"session_expired"}"#,
            &["session_expired"],
        ),
    ];
    for (case, body, said) in cases {
        server.set_fault(Fault::Answer(400, body), Target::Token);
        let before = files(&env);
        let out = env.cli(&["refresh"]);
        let mut needles = vec![server.token_url(), "nix-cache-login login".to_string()];
        needles.extend(said.iter().map(|s| s.to_string()));
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        let line = assert_failed(case, &out, 3, &needles);
        assert!(
            line.contains("no longer accepts the refresh token"),
            "{case}: {line}"
        );
        assert_eq!(
            files(&env),
            before,
            "{case}: the netrc or the store changed"
        );
        println!("{case}: exit 3: {line}");
    }

    // A malformed request is a bug, not the end of the grant: no login is asked for.
    server.set_fault(
        Fault::Answer(
            400,
            r#"{"error":"invalid_request","error_description":"missing x"}"#,
        ),
        Target::Token,
    );
    let out = env.cli(&["refresh"]);
    let line = assert_failed(
        "400 invalid_request",
        &out,
        1,
        &["invalid_request", "missing x"],
    );
    assert!(!line.contains("run `nix-cache-login login`"), "{line}");
}

#[test]
fn refused_client_credentials_are_named_however_the_provider_says_it() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let env = server_env_at_fault_server(&idp, &server);
    let secret_file = env.config().client_secret_file.clone().unwrap();
    let secret_file = secret_file.display().to_string();
    let cases: [(&str, Fault); 3] = [
        ("403 with no body", Fault::Answer(403, "")),
        ("401 with no body", Fault::Answer(401, "")),
        (
            "401 invalid_client",
            Fault::Answer(401, r#"{"error":"invalid_client"}"#),
        ),
    ];
    for (case, fault) in cases {
        server.set_fault(fault, Target::Token);
        let before = files(&env);
        let out = env.cli(&["service-account"]);
        let line = assert_failed(
            case,
            &out,
            1,
            &[
                "the provider refused the client credentials",
                "nix-cache-server",
                &secret_file,
                &server.token_url(),
            ],
        );
        assert_eq!(
            files(&env),
            before,
            "{case}: the netrc or the store changed"
        );
        println!("{case}: {line}");
    }

    // The certified provider's own answer to a wrong secret reads the same.
    let mut real = TestEnv::new_server(&idp);
    seed_netrc(&real.netrc_path(), SERVER_HOST, None);
    let secret = real.config().client_secret_file.clone().unwrap();
    std::fs::write(&secret, "not-the-secret\n").unwrap();
    real.set_env("NIX_CACHE_LOGIN_HTTP_TIMEOUT", "10");
    let out = real.cli(&["service-account"]);
    assert_failed(
        "the test provider, wrong secret",
        &out,
        1,
        &[
            "the provider refused the client credentials",
            "invalid_client",
        ],
    );
}

#[test]
fn a_warm_refresh_costs_one_request_even_when_the_provider_says_no_store() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    // The fault server sends discovery with `Cache-Control: no-store`. The helper has run one
    // refresh, which fetched the discovery document.
    let mut env = user_env_at_fault_server(&idp, &server);
    env.remove_env("NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL");
    let out = env.cli(&["refresh"]);
    assert!(out.status.success(), "{}", describe(&out));
    server.clear_log();
    let runs = 5;
    for _ in 0..runs {
        let out = env.cli(&["refresh"]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    let log = server.log();
    assert_eq!(
        log.len(),
        runs,
        "one request per warm refresh, the token request: {log:#?}"
    );
    assert!(
        log.iter()
            .all(|l| l == "POST /token grant_type=refresh_token"),
        "{log:#?}"
    );
    println!(
        "no-store provider: {} requests per warm refresh",
        log.len() / runs
    );

    // Obeying no-store (the floor set to 0, the cached document gone) costs a discovery
    // request on every run.
    std::fs::remove_dir_all(env.cache_home().join("nix-cache-login")).unwrap();
    env.set_env("NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL", "0");
    server.clear_log();
    for _ in 0..2 {
        let out = env.cli(&["refresh"]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    assert_eq!(server.log().len(), 4, "{:#?}", server.log());
    println!("obeying no-store: 2 requests per warm refresh");

    // The floor is checked like any setting.
    env.set_env("NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL", "soon");
    let out = env.cli(&["refresh"]);
    assert_failed(
        "a floor that is no number",
        &out,
        2,
        &["NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL"],
    );
}

/// The certified provider in its `no-store` mode: warm refreshes cost one request, a second
/// login fetches neither discovery nor JWKS, and a provider that rotated its key is met by
/// fetching the JWKS again (the ID token's `kid` is unknown to the cached set).
#[test]
fn no_store_discovery_and_jwks_are_kept_and_refetched_on_an_unknown_key() {
    let options = || IdpOptions {
        extra_env: vec![("IDP_DISCOVERY_NO_STORE".into(), "1".into())],
        ..IdpOptions::default()
    };
    let mut idp = Idp::start(options());
    let headers = idp.curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        &idp.endpoint("/.well-known/openid-configuration"),
    ]);
    assert!(
        headers
            .body
            .to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "the provider sends no-store: {}",
        headers.body
    );
    let mut env = TestEnv::new(&idp).with_browser(BrowserMode::Approve);
    let out = env.cli(&["login", "--timeout", "60s"]);
    assert!(out.status.success(), "login: {}", describe(&out));

    idp.clear_request_log();
    let runs = 3;
    for _ in 0..runs {
        let out = env.cli(&["refresh"]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    let log = idp.request_log();
    assert_eq!(log.lines().count(), runs, "{log}");
    assert_eq!(
        idp.count_requests("POST", "/token", &["grant_type=refresh_token"]),
        runs,
        "{log}"
    );
    println!(
        "test provider with no-store: {} requests per warm refresh",
        log.lines().count() / runs
    );

    idp.clear_request_log();
    let out = env.cli(&["login", "--timeout", "60s"]);
    assert!(out.status.success(), "second login: {}", describe(&out));
    assert_eq!(
        idp.count_requests("GET", "/.well-known/openid-configuration", &[]),
        0
    );
    assert_eq!(
        idp.count_requests("GET", "/jwks", &[]),
        0,
        "{}",
        idp.request_log()
    );

    // The same issuer comes back with a new signing key (and, in this harness, a new CA).
    let port = idp.port();
    idp.stop();
    let rotated = Idp::start(IdpOptions { port, ..options() });
    assert_eq!(rotated.issuer(), idp.issuer());
    let ca = rotated.ca_pem_path().to_str().unwrap().to_string();
    env.set_env("SSL_CERT_FILE", &ca);
    env.set_env("NIX_SSL_CERT_FILE", &ca);
    let out = env.cli(&["login", "--timeout", "60s"]);
    assert!(
        out.status.success(),
        "login after the key rotation: {}",
        describe(&out)
    );
    assert_eq!(
        rotated.count_requests("GET", "/jwks", &[]),
        1,
        "the unknown kid made the CLI fetch the JWKS once: {}",
        rotated.request_log()
    );
}

#[test]
fn a_public_client_refused_revocation_is_named_and_everything_local_goes() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let cases: [(&str, &'static str); 2] = [
        (
            "401 invalid_client",
            r#"{"error":"invalid_client","error_description":"client authentication required"}"#,
        ),
        ("401 with no body", ""),
    ];
    for (case, body) in cases {
        let env = user_env_at_fault_server(&idp, &server);
        let store = store_path(&env, &env.config_path());
        assert!(store.exists());
        server.set_fault(Fault::Answer(401, body), Target::Revocation);
        let out = env.cli(&["logout"]);
        let line = assert_failed(
            case,
            &out,
            1,
            &[
                &format!("{}/revoke", server.issuer()),
                "refuses to revoke tokens for the public client \"nix-cache-login\"",
                "RFC 7009",
                "stay valid",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Removed the netrc entry"),
            "{case}: {stderr}"
        );
        assert_eq!(netrc_password(&env.netrc_path(), USER_HOST), None, "{case}");
        assert!(!store.exists(), "{case}: the token store is gone");
        println!("{case}: {line}");
    }
}

#[test]
fn a_login_that_times_out_says_a_fixed_callback_port_may_be_needed() {
    let idp = Idp::start(IdpOptions::default());
    let mut env = TestEnv::new(&idp).with_browser(BrowserMode::Ignore);
    let out = env.cli(&["login", "--browser", "--timeout", "2s"]);
    let config = env.config_path().display().to_string();
    let line = assert_failed(
        "any port",
        &out,
        1,
        &[
            "within 2 seconds",
            "matches redirect URIs exactly",
            "callback_port = PORT",
            &config,
        ],
    );
    println!("{line}");

    let port = crate::support::free_port();
    env.update_config(|c| c.callback_port = Some(port));
    let out = env.cli(&["login", "--browser", "--timeout", "2s"]);
    assert_failed(
        "fixed port",
        &out,
        1,
        &[&format!(
            "register http://127.0.0.1:{port}/callback there exactly"
        )],
    );
}

#[test]
fn a_verification_uri_complete_of_another_shape_is_shown_as_sent() {
    let idp = Idp::start(IdpOptions::default());
    let server = FaultServer::start();
    let env = user_env_at_fault_server(&idp, &server);
    server.clear_log();
    let out = env.cli(&["login", "--device", "--timeout", "20s"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complete = server.verification_uri_complete();
    assert!(stderr.contains(&format!("\n  {complete}\n")), "{stderr}");
    assert!(stderr.contains(FaultServer::USER_CODE), "{stderr}");
    assert!(
        stderr.contains(&format!("{}/activate\n", server.issuer())),
        "{stderr}"
    );
    assert_eq!(
        server.count("POST", "/device/auth"),
        1,
        "{:#?}",
        server.log()
    );
    let token = netrc_password(&env.netrc_path(), USER_HOST).unwrap();
    assert_eq!(Some(&token), server.access_tokens().last());
}
