//! Every flow through a real forward proxy (Debian's squid) on 127.0.0.1. The provider is
//! `https://provider.proxied.test:PORT`, a name only the proxy resolves, so a request that
//! did not go through the proxy could not reach it at all: the proxy's log shows a CONNECT
//! to it for every command. `NO_PROXY` sends a host around the proxy, and a proxy that
//! refuses gives one clear line.

use crate::support::fault::{FaultServer, SERVER_HOST, assert_failed, seed_netrc};
use crate::support::proxy::{PROXIED_HOST, Policy, Squid};
use crate::support::{BrowserMode, Idp, IdpOptions, TestEnv, describe};

fn proxied_idp() -> Idp {
    Idp::start(IdpOptions {
        extra_env: vec![("IDP_PUBLIC_HOST".into(), PROXIED_HOST.into())],
        ..IdpOptions::default()
    })
}

/// The CLI and the browser hook both use `squid`.
fn through(env: &mut TestEnv, squid: &Squid) {
    env.set_env("HTTPS_PROXY", &squid.url());
    env.set_env("BROWSER_PROXY", &squid.url());
    env.set_env("BROWSER_PROXIED_HOSTS", PROXIED_HOST);
}

/// The tunnels squid opened to the provider since `from` (an index into its log), waiting a
/// few seconds for at least one: squid logs a tunnel when it has closed its side, which can be
/// a moment after the CLI has exited.
fn tunnels_logged(squid: &Squid, idp: &Idp, from: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let found = tunnels(squid, idp, from);
        if !found.is_empty() || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The tunnels squid has logged to the provider since `from` (an index into its log).
fn tunnels(squid: &Squid, idp: &Idp, from: usize) -> Vec<String> {
    let target = format!("CONNECT {PROXIED_HOST}:{} 200", idp.port());
    squid.requests()[from..]
        .iter()
        .filter(|r| **r == target)
        .cloned()
        .collect()
}

#[test]
fn every_flow_reaches_the_provider_through_the_proxy() {
    let idp = proxied_idp();
    let squid = Squid::start(Policy::Allow);
    let mut user = TestEnv::new(&idp).with_browser(BrowserMode::Approve);
    through(&mut user, &squid);
    let mut server = TestEnv::new_server(&idp);
    through(&mut server, &squid);

    let steps: [(&str, &TestEnv, &[&str]); 6] = [
        ("login (chromium)", &user, &["login", "--timeout", "60s"]),
        ("refresh", &user, &["refresh"]),
        ("token", &user, &["token", "--min-valid", "10m"]),
        ("service-account", &server, &["service-account"]),
        ("doctor", &server, &["doctor", "--json"]),
        ("logout", &user, &["logout"]),
    ];
    for (step, env, args) in steps {
        let seen = squid.requests().len();
        idp.clear_request_log();
        let out = env.cli(args);
        if step == "doctor" {
            // The cache (cache.test) is nowhere; the provider checks are what count here.
            let report: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("doctor --json ({e}): {}", describe(&out)));
            for name in ["issuer", "discovery"] {
                let check = report["checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["name"] == name)
                    .unwrap();
                assert_eq!(check["status"], "ok", "{step}: {check:#}");
            }
        } else {
            assert!(out.status.success(), "{step}: {}", describe(&out));
        }
        let provider_requests = idp.request_log().lines().count();
        let tunnels = tunnels_logged(&squid, &idp, seen);
        assert!(
            provider_requests > 0 && !tunnels.is_empty(),
            "{step}: {provider_requests} provider requests, squid log since: {:#?}",
            &squid.requests()[seen..]
        );
        println!(
            "{step}: {provider_requests} requests at the provider, {} tunnels through squid",
            tunnels.len()
        );
    }

    // Without the proxy the provider cannot be reached at all: NO_PROXY sends the CLI
    // around it, where the name does not resolve.
    let mut direct = TestEnv::new_server(&idp);
    through(&mut direct, &squid);
    direct.set_env("NO_PROXY", PROXIED_HOST);
    direct.set_env("NIX_CACHE_LOGIN_HTTP_TIMEOUT", "10");
    let seen = squid.requests().len();
    let out = direct.cli(&["service-account"]);
    let line = assert_failed("NO_PROXY", &out, 1, &[PROXIED_HOST]);
    // Give squid the moment it takes to log a tunnel that has closed, had there been one.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(tunnels(&squid, &idp, seen).is_empty(), "{line}");
    println!("NO_PROXY={PROXIED_HOST}: {line}");
}

#[test]
fn no_proxy_sends_a_host_around_the_proxy() {
    let idp = Idp::start(IdpOptions::default());
    let squid = Squid::start(Policy::Allow);
    let fault = FaultServer::start();
    let mut env = TestEnv::new_server(&idp);
    env.update_config(|c| c.issuer = Some(fault.issuer()));
    seed_netrc(&env.netrc_path(), SERVER_HOST, None);
    env.set_env("HTTP_PROXY", &squid.url());
    env.set_env("NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL", "0");

    let out = env.cli(&["service-account"]);
    assert!(
        out.status.success(),
        "through the proxy: {}",
        describe(&out)
    );
    let proxied = squid
        .requests()
        .iter()
        .filter(|r| r.contains(&fault.issuer()))
        .count();
    assert!(
        proxied >= 2,
        "discovery and token via squid: {:#?}",
        squid.requests()
    );

    env.set_env("NO_PROXY", "127.0.0.1");
    let seen = squid.requests().len();
    fault.clear_log();
    let out = env.cli(&["service-account"]);
    assert!(out.status.success(), "around the proxy: {}", describe(&out));
    assert_eq!(squid.requests().len(), seen, "{:#?}", squid.requests());
    assert!(fault.token_requests() == 1, "{:#?}", fault.log());
}

#[test]
fn a_refusing_proxy_gives_one_clear_line() {
    let idp = proxied_idp();
    let squid = Squid::start(Policy::Refuse);
    let mut env = TestEnv::new_server(&idp);
    through(&mut env, &squid);
    let out = env.cli(&["service-account"]);
    let line = assert_failed(
        "refusing proxy",
        &out,
        1,
        &[PROXIED_HOST, &format!("the proxy {} refused", squid.url())],
    );
    assert!(
        squid
            .requests()
            .iter()
            .any(|r| r.starts_with(&format!("CONNECT {PROXIED_HOST}")) && r.ends_with(" 403")),
        "{:#?}",
        squid.requests()
    );
    println!("{line}");
}
