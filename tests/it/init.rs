//! `init`, the first run, through the binary against the test provider: the issuer is
//! checked before anything is written, an existing config is kept, and the file written
//! loads and works. The questions are answered on a real terminal (`script` gives the CLI a
//! pseudo-terminal).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::fault::{assert_failed, load_config};
use crate::support::{Idp, IdpOptions, TestEnv, cli_binary, describe};

/// Where init is told to write (not the sandbox's own config.toml).
fn target(env: &TestEnv) -> PathBuf {
    env.dir().join("fresh/nix-cache-login/config.toml")
}

fn init(env: &TestEnv, args: &[&str]) -> Output {
    let path = target(env);
    let mut all = vec!["--config", path.to_str().unwrap(), "init"];
    all.extend_from_slice(args);
    env.cli_raw(&all)
}

/// Everything under the sandbox's config, cache and state dirs and the fresh dir: what a
/// failed init must leave as it was.
fn written(env: &TestEnv) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        env.dir().join("fresh"),
        env.cache_home(),
        env.state_home(),
        env.config_home(),
    ] {
        files.extend(crate::support::fault::snapshot_dir(&dir).into_keys());
    }
    if env.netrc_path().exists() {
        files.push(env.netrc_path());
    }
    files
}

fn good_args(idp: &Idp) -> Vec<String> {
    vec![
        "--issuer".into(),
        idp.issuer().into(),
        "--client-id".into(),
        idp.public_client_id().into(),
        "--cache-host".into(),
        "cache.test".into(),
    ]
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_bad_issuer_writes_nothing() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp);
    let _ = fs::remove_file(env.config_path());
    let unreachable = format!("https://127.0.0.1:{}/realms/x", crate::support::free_port());
    let not_a_provider = format!("{}/not-here", idp.base_url());
    let cases: [(&str, &str, i32, &[&str]); 3] = [
        (
            "nobody listens",
            &unreachable,
            1,
            &["nothing was written", "cannot connect"],
        ),
        (
            "answers, but no provider",
            &not_a_provider,
            1,
            &["nothing was written", "404"],
        ),
        (
            "not https",
            "http://sso.example.com/realms/x",
            2,
            &["issuer", "https"],
        ),
    ];
    for (case, issuer, code, needles) in cases {
        let out = init(
            &env,
            &[
                "--issuer",
                issuer,
                "--client-id",
                "nix",
                "--cache-host",
                "cache.test",
            ],
        );
        let mut all = needles.to_vec();
        if code == 1 {
            all.push(issuer);
        }
        let line = assert_failed(case, &out, code, &all);
        assert!(
            written(&env).is_empty(),
            "{case}: wrote {:?}",
            written(&env)
        );
        println!("{case}: {line}");
    }
}

#[test]
fn the_written_config_loads_and_works() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp);
    let args = good_args(&idp);
    let out = init(&env, &as_strs(&args));
    assert!(out.status.success(), "{}", describe(&out));
    let path = target(&env);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let config = load_config(&env, &path);
    assert_eq!(config.issuer_str(), idp.issuer());
    assert_eq!(config.client_id, idp.public_client_id());
    assert_eq!(config.cache_hosts, ["cache.test"]);
    // The netrc Nix is told to read exists (Lix and Determinate refuse a missing one).
    let netrc = env.config_home().join("nix/netrc");
    assert_eq!(config.netrc_path, netrc);
    assert_eq!(fs::read(&netrc).unwrap(), b"");
    assert_eq!(
        fs::metadata(&netrc).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The lines for Nix are on stdout, naming the netrc and the cache.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("netrc-file = {}", netrc.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("extra-substituters = https://cache.test"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("login"), "next step named: {stderr}");

    // The other commands take it: status says there is no session yet (exit 3).
    let out = env.cli_raw(&["--config", path.to_str().unwrap(), "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
}

#[test]
fn an_existing_config_is_kept_unless_forced() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp);
    let path = target(&env);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mine = "# mine\nissuer = \"https://sso.example.com/realms/a\"\nclient_id = \"a\"\ncache_host = \"c.example.com\"\n";
    fs::write(&path, mine).unwrap();
    let args = good_args(&idp);
    let out = init(&env, &as_strs(&args));
    assert_failed(
        "existing config",
        &out,
        2,
        &[path.to_str().unwrap(), "--force"],
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), mine);

    let mut forced = as_strs(&args);
    forced.push("--force");
    let out = init(&env, &forced);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(load_config(&env, &path).issuer_str(), idp.issuer());
}

#[test]
fn missing_answers_are_asked_on_a_terminal_and_a_usage_error_without_one() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp);
    let out = init(&env, &["--issuer", idp.issuer()]);
    assert_failed(
        "no terminal",
        &out,
        2,
        &["--client-id", "--cache-host", "no terminal"],
    );
    assert!(written(&env).is_empty(), "{:?}", written(&env));

    // On a terminal: the two missing answers, then "n" to the offer to log in.
    let path = target(&env);
    let command = format!(
        "{} --config {} init --issuer {}",
        cli_binary().display(),
        path.display(),
        idp.issuer()
    );
    let mut script = Command::new("script");
    script
        .args(["-qec", &command, "/dev/null"])
        .current_dir(env.dir())
        .env_clear()
        .envs(env.env_vars());
    let out = run_with_input(&mut script, "nix-cache-login\ncache.test\nn\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        text.contains("Client ID:") && text.contains("Cache host"),
        "{text}"
    );
    assert!(text.contains("Log in now? [Y/n]"), "{text}");
    let config = load_config(&env, &path);
    assert_eq!(config.client_id, "nix-cache-login");
    assert_eq!(config.cache_hosts, ["cache.test"]);
}

#[test]
fn no_config_names_init() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp);
    assert!(!Path::new("/etc/nix-cache-login/config.toml").exists());
    let out = env.cli_raw(&["status"]);
    assert_failed(
        "no config",
        &out,
        2,
        &["no config file found", "nix-cache-login init"],
    );
}

fn run_with_input(command: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start script");
    let mut stdin = child.stdin.take().unwrap();
    // One answer at a time, as a person types: the CLI reads each after its prompt.
    for line in input.split_inclusive('\n') {
        std::thread::sleep(Duration::from_millis(700));
        stdin.write_all(line.as_bytes()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(stdin);
    child.wait_with_output().unwrap()
}
