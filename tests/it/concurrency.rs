//! Many CLI processes on one netrc and one state directory at once: a user session refreshed
//! by several processes (host A, refresh-token rotation on), and service accounts for three
//! more hosts (B, C, D), all started together, twice over. Afterwards the netrc parses, every
//! cache host's entry holds a token the provider accepts, the user's session lives on, every
//! other byte of the netrc is as it was, and no temp file is left (the `.lock` files stay).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::support::fault::{DEFAULT_ENTRY, OTHER_ENTRIES, leftovers, netrc_password, store_path};
use crate::support::proc::{stop_group, wait_until};
use crate::support::{BrowserMode, CliConfig, Idp, IdpOptions, TestEnv, describe};

const USER_HOST: &str = "a.cache.test";
const SERVER_HOSTS: [&str; 3] = ["b.cache.test", "c.cache.test", "d.cache.test"];
const PER_CONFIG: usize = 4;
const ROUNDS: usize = 5;

fn spawn(env: &TestEnv, config: &Path, command: &str) -> Child {
    env.spawn_raw(&["--config", config.to_str().unwrap(), command])
}

#[test]
fn sixteen_processes_on_one_netrc() {
    let idp = Idp::start(IdpOptions::default());
    let mut env = TestEnv::new(&idp).with_browser(BrowserMode::Approve);
    env.update_config(|c| c.cache_host = Some(USER_HOST.into()));
    fs::write(env.netrc_path(), format!("{OTHER_ENTRIES}{DEFAULT_ENTRY}")).unwrap();
    let out = env.cli(&["login", "--timeout", "60s"]);
    assert!(out.status.success(), "login: {}", describe(&out));
    let user_config = env.config_path();

    let secret = env.dir().join("server-secret");
    fs::write(&secret, idp.server_client_secret()).unwrap();
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let server_configs: Vec<PathBuf> = SERVER_HOSTS
        .iter()
        .map(|host| {
            let config = CliConfig {
                issuer: Some(idp.issuer().to_owned()),
                client_id: Some(idp.server_client_id().to_owned()),
                client_secret_file: Some(secret.clone()),
                cache_host: Some((*host).to_owned()),
                netrc_path: Some(env.netrc_path()),
                ..CliConfig::default()
            };
            let path = env.dir().join(format!("{host}.toml"));
            fs::write(&path, config.to_toml()).unwrap();
            path
        })
        .collect();

    let mut runs = 0;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let mut children: Vec<(String, Child)> = Vec::new();
        for i in 0..PER_CONFIG {
            children.push((
                format!("refresh {USER_HOST} #{i}"),
                spawn(&env, &user_config, "refresh"),
            ));
            for (host, config) in SERVER_HOSTS.iter().zip(&server_configs) {
                children.push((
                    format!("service-account {host} #{i}"),
                    spawn(&env, config, "service-account"),
                ));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut failures = Vec::new();
        for (name, child) in &mut children {
            let status = wait_until(child, deadline);
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            match status {
                Some(s) if s.success() => {}
                Some(s) => failures.push(format!("{name}: {s}: {stderr}")),
                None => {
                    stop_group(child, Duration::from_secs(1));
                    failures.push(format!("{name}: still running after 120 s"));
                }
            }
            runs += 1;
        }
        assert!(failures.is_empty(), "round {round}: {failures:#?}");
    }
    let took = started.elapsed();

    let netrc = env.netrc();
    assert!(
        netrc.starts_with(OTHER_ENTRIES),
        "other entries changed:\n{netrc}"
    );
    assert!(
        netrc.ends_with(DEFAULT_ENTRY),
        "default entry moved:\n{netrc}"
    );
    let parsed = nix_cache_login::netrc::Netrc::parse(netrc.as_bytes());
    let mut machines = parsed.machines();
    machines.sort();
    let mut expected: Vec<String> = ["github.com", "other.example", USER_HOST]
        .into_iter()
        .chain(SERVER_HOSTS)
        .map(String::from)
        .collect();
    expected.sort();
    assert_eq!(machines, expected, "one entry per host:\n{netrc}");
    for host in std::iter::once(USER_HOST).chain(SERVER_HOSTS) {
        let token = netrc_password(&env.netrc_path(), host).unwrap();
        assert!(
            idp.is_active(&token),
            "{host}: the provider accepts the token"
        );
    }
    // The user's session survived four refreshes at a time: its refresh token is live and
    // the store holds what the netrc holds.
    let store = store_path(&env, &user_config);
    let session: serde_json::Value = serde_json::from_slice(&fs::read(&store).unwrap()).unwrap();
    assert!(idp.is_active(session["refresh_token"].as_str().unwrap()));
    assert_eq!(
        session["access_token"].as_str(),
        netrc_password(&env.netrc_path(), USER_HOST).as_deref()
    );
    let left = leftovers(env.dir());
    assert!(left.is_empty(), "temp files left: {left:?}");
    assert!(env.dir().join("netrc.lock").exists(), "the lock file stays");

    let refreshes = idp.count_requests("POST", "/token", &["grant_type=refresh_token"]);
    println!(
        "concurrency: {ROUNDS} rounds x {} processes at once ({} refresh of one session, {} service-account on 3 hosts) = {runs} runs in {took:?}, all succeeded; {refreshes} refresh-token requests, session intact; netrc has {} entries, others unchanged",
        PER_CONFIG * 4,
        PER_CONFIG,
        PER_CONFIG * 3,
        machines.len()
    );
}
