//! Bad configuration through the real binary: one clear line naming the file and key, exit 2,
//! and no file written.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn run(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nix-cache-login"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("BROWSER", "false")
        .current_dir(dir)
        .args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run the CLI")
}

fn expect_config_error(dir: &Path, text: &str, must_contain: &[&str]) {
    let path = dir.join("bad.toml");
    fs::write(&path, text).unwrap();
    for command in ["status", "refresh", "service-account", "login", "logout"] {
        let out = run(dir, &["--config", path.to_str().unwrap(), command], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{command} with {text:?}: {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(path.to_str().unwrap()),
            "names the file: {stderr}"
        );
        for needle in must_contain {
            assert!(stderr.contains(needle), "{needle:?} missing from: {stderr}");
        }
    }
    assert!(!dir.join("state").exists(), "nothing was written");
}

const GOOD: &str = "issuer = 'https://sso.example.com/realms/nix'\nclient_id = 'nix'\ncache_host = 'cache.example.com'\n";

#[test]
fn bad_configs_exit_2_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    expect_config_error(d, &format!("{GOOD}isuer = 'x'\n"), &[":4:1:", "isuer"]);
    expect_config_error(d, &format!("{GOOD}callback_port = 'x'\n"), &[":4:"]);
    expect_config_error(d, "issuer = 'https://x\n", &[":1:"]);
    expect_config_error(d, "client_id='a'\ncache_host='h'\n", &["issuer", "missing"]);
    expect_config_error(
        d,
        "issuer='http://sso.example.com'\nclient_id='a'\ncache_host='h'\n",
        &["issuer", "https"],
    );
    expect_config_error(
        d,
        &GOOD.replace("cache.example.com", "https://cache.example.com"),
        &["cache_host", "scheme"],
    );
    expect_config_error(
        d,
        &format!("{GOOD}netrc_path = '$NCL_TEST_UNSET/netrc'\n"),
        &["netrc_path", "$NCL_TEST_UNSET"],
    );
}

#[test]
fn missing_config_lists_what_was_tried() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["status"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NIX_CACHE_LOGIN_CONFIG"), "{stderr}");
    assert!(stderr.contains("nix-cache-login/config.toml"), "{stderr}");

    let out = run(
        dir.path(),
        &["status"],
        &[("NIX_CACHE_LOGIN_CONFIG", "/nonexistent/c.toml")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/c.toml"));

    let out = run(
        dir.path(),
        &["--config", "/nonexistent/x.toml", "status"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.toml"));
}

#[test]
fn config_is_found_through_env_and_xdg() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let xdg = d.join("config/nix-cache-login");
    fs::create_dir_all(&xdg).unwrap();
    fs::write(xdg.join("config.toml"), GOOD).unwrap();
    // No session: status says "login needed" (3), which proves the config was read.
    let out = run(d, &["status", "--json"], &[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["config"]
            .as_str()
            .unwrap()
            .ends_with("config/nix-cache-login/config.toml")
    );
    assert!(
        report["netrc_path"]
            .as_str()
            .unwrap()
            .ends_with("config/nix/netrc")
    );

    let other = d.join("other.toml");
    fs::write(
        &other,
        GOOD.replace("cache.example.com", "other.example.com"),
    )
    .unwrap();
    let out = run(
        d,
        &["status", "--json"],
        &[("NIX_CACHE_LOGIN_CONFIG", other.to_str().unwrap())],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["hosts"][0]["host"], "other.example.com");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["refresh", "--min-valid", "10x"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(dir.path(), &["no-such-command"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let help = run(dir.path(), &["--help"], &[]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "login",
        "refresh",
        "service-account",
        "status",
        "logout",
        "Exit codes",
        "3  a new",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
}
