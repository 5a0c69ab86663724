//! The device flow (`login --device`, and `login` choosing it by itself), `token`, and the
//! generated completions and man page. Device logins are approved by the headless-chromium
//! hook on the test provider's device pages, the way a user would on a phone.

use crate::support;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::proc::{output_with_timeout, stop_group, wait_until};
use crate::support::{BrowserHook, BrowserMode, Idp, IdpOptions, TestEnv, describe};

/// Another machine's entry: every command must leave it alone.
const OTHER_ENTRY: &str = "machine github.com login me password ghp_x\n";
const CLI_TIMEOUT: Duration = Duration::from_secs(90);

fn seeded(env: &TestEnv) {
    fs::write(env.netrc_path(), OTHER_ENTRY).unwrap();
    fs::set_permissions(env.netrc_path(), fs::Permissions::from_mode(0o600)).unwrap();
}

/// The netrc entry's password for `cache.test`, parsed by the crate's own reader.
fn netrc_token(env: &TestEnv) -> Option<String> {
    let bytes = fs::read(env.netrc_path()).ok()?;
    let entry = nix_cache_login::netrc::Netrc::parse(&bytes).get("cache.test")?;
    entry.password.map(|p| String::from_utf8(p).unwrap())
}

fn store_files(env: &TestEnv) -> Vec<PathBuf> {
    let dir = env.state_home().join("nix-cache-login");
    fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default()
}

fn stored(env: &TestEnv) -> serde_json::Value {
    let files = store_files(env);
    assert_eq!(files.len(), 1, "one store file expected: {files:?}");
    serde_json::from_slice(&fs::read(&files[0]).unwrap()).unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A CLI run in the background whose stderr is read line by line as it comes.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
    stdout: Option<thread::JoinHandle<Vec<u8>>>,
}

/// What the CLI tells the user to do in the device flow.
struct DevicePrompt {
    verification_uri: String,
    user_code: String,
    verification_uri_complete: Option<String>,
}

impl Running {
    fn start(env: &TestEnv, args: &[&str]) -> Running {
        let mut child = env.spawn(args);
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut buf);
            buf
        });
        Running {
            child,
            lines,
            stderr: Vec::new(),
            stdout: Some(stdout),
        }
    }

    /// Reads stderr until the device prompt is complete (the line after the link with
    /// the code in it, or the waiting line).
    fn device_prompt(&mut self) -> DevicePrompt {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut prompt = DevicePrompt {
            verification_uri: String::new(),
            user_code: String::new(),
            verification_uri_complete: None,
        };
        let mut after_open_line = false;
        let mut after_link_line = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    self.stop();
                    panic!(
                        "no device prompt within 30 s; stderr so far:\n{}",
                        self.stderr.join("\n")
                    );
                }
            };
            self.stderr.push(line.clone());
            let text = line.trim();
            if line.starts_with("To log in to ") {
                after_open_line = true;
            } else if after_open_line && text.starts_with("https://") {
                prompt.verification_uri = text.to_owned();
                after_open_line = false;
            } else if let Some(code) = text.strip_prefix("code: ") {
                prompt.user_code = code.to_owned();
            } else if line.starts_with("Or open this link") {
                after_link_line = true;
            } else if after_link_line && text.starts_with("https://") {
                prompt.verification_uri_complete = Some(text.to_owned());
                after_link_line = false;
            } else if line.starts_with("Waiting for the login to be approved") {
                assert!(
                    !prompt.verification_uri.is_empty() && !prompt.user_code.is_empty(),
                    "incomplete device prompt:\n{}",
                    self.stderr.join("\n")
                );
                return prompt;
            }
        }
    }

    /// Waits for the CLI to exit; its status, stdout and all of stderr.
    fn finish(mut self) -> Output {
        let status = wait_until(&mut self.child, Instant::now() + CLI_TIMEOUT);
        let Some(status) = status else {
            self.stop();
            panic!(
                "the CLI did not finish within {CLI_TIMEOUT:?}; stderr:\n{}",
                self.stderr.join("\n")
            );
        };
        // The reader thread ends with the pipe.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stderr.push(line);
        }
        let mut stderr = self.stderr.join("\n").into_bytes();
        stderr.push(b'\n');
        Output {
            status,
            stdout: self
                .stdout
                .take()
                .and_then(|t| t.join().ok())
                .unwrap_or_default(),
            stderr,
        }
    }

    fn stop(&mut self) {
        stop_group(&mut self.child, Duration::from_secs(2));
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// Plays the user on another device: opens the link with the code in it, or the plain
/// verification page and types the code.
fn approve_on_device(hook: BrowserHook, prompt: &DevicePrompt, use_complete_uri: bool) -> String {
    let (hook, url) = match (&prompt.verification_uri_complete, use_complete_uri) {
        (Some(complete), true) => (hook, complete.clone()),
        _ => (
            hook.user_code(&prompt.user_code),
            prompt.verification_uri.clone(),
        ),
    };
    let out = hook.run(&url);
    format!(
        "hook: {}\nresult: {:?}\nlog:\n{}",
        describe(&out),
        hook.result(),
        hook.log()
    )
}

#[test]
fn device_login_writes_netrc_and_store() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp);
    seeded(&env);

    let mut run = Running::start(&env, &["login", "--device", "--timeout", "60s"]);
    let prompt = run.device_prompt();
    assert!(
        prompt.verification_uri.starts_with(idp.issuer()),
        "{}",
        prompt.verification_uri
    );
    let hook_report = approve_on_device(
        BrowserHook::new(BrowserMode::Device).user("dave"),
        &prompt,
        false,
    );
    let out = run.finish();
    assert!(out.status.success(), "{}\n{hook_report}", describe(&out));
    assert_eq!(stdout(&out), "", "the login prints nothing on stdout");
    let err = stderr(&out);
    assert!(err.contains("Using the device flow: --device."), "{err}");
    assert!(err.contains("Logged in as dave"), "{err}");

    let session = stored(&env);
    assert_eq!(session["grant"], "device_code");
    let token = netrc_token(&env).expect("a netrc entry for cache.test");
    assert_eq!(session["access_token"], token.as_str());
    assert!(session["refresh_token"].is_string(), "{session}");
    assert!(
        !err.contains(&token),
        "the access token must not be printed"
    );
    assert!(env.netrc().starts_with(OTHER_ENTRY));
    assert!(idp.is_active(&token));

    // The device session refreshes like a browser one.
    let out = env.cli(&["refresh"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_ne!(netrc_token(&env).unwrap(), token);
    assert_eq!(stored(&env)["grant"], "device_code");
}

#[test]
fn device_access_denied_changes_nothing() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp);
    seeded(&env);
    let before = fs::read(env.netrc_path()).unwrap();

    let mut run = Running::start(&env, &["login", "--device", "--timeout", "60s"]);
    let prompt = run.device_prompt();
    assert!(
        prompt.verification_uri_complete.is_some(),
        "oidc-provider sends verification_uri_complete"
    );
    let hook_report = approve_on_device(BrowserHook::new(BrowserMode::Deny), &prompt, true);
    let out = run.finish();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{hook_report}",
        describe(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("denied") && err.contains("access_denied"),
        "{err}"
    );
    assert_eq!(stdout(&out), "");
    assert_eq!(fs::read(env.netrc_path()).unwrap(), before);
    assert!(store_files(&env).is_empty());
}

#[test]
fn device_login_times_out() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp);
    seeded(&env);
    let before = fs::read(env.netrc_path()).unwrap();
    let started = Instant::now();
    let out = env.cli(&["login", "--device", "--timeout", "3s"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(started.elapsed() < Duration::from_secs(30));
    let err = stderr(&out);
    assert!(err.contains("not approved within 3 seconds"), "{err}");
    assert_eq!(fs::read(env.netrc_path()).unwrap(), before);
    // Polled at the provider's interval (1 s), without a slow_down.
    let polls = idp.count_requests(
        "POST",
        "/token",
        &["grant_type=urn:ietf:params:oauth:grant-type:device_code"],
    );
    assert!((2..=5).contains(&polls), "{polls} polls in 3 s");
    assert!(!idp.request_log().contains("error=slow_down"));
}

#[test]
fn login_chooses_the_device_flow_without_browser_or_display() {
    let idp = Idp::start(IdpOptions::default());
    let mut env = TestEnv::new(&idp);
    env.remove_env("BROWSER");
    env.remove_env("DISPLAY");
    env.remove_env("WAYLAND_DISPLAY");

    let err = plain_login_approved_on_device(&env);
    assert!(
        err.contains("Using the device flow: no $DISPLAY or $WAYLAND_DISPLAY, and no $BROWSER."),
        "{err}"
    );
    assert_eq!(stored(&env)["grant"], "device_code");
    assert!(netrc_token(&env).is_some());
}

#[test]
fn login_keeps_the_browser_flow_with_browser_set() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp).with_browser(BrowserMode::Approve);
    let out = env.cli(&["login", "--timeout", "60s"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("Using the browser flow: $BROWSER is set."),
        "{}",
        describe(&out)
    );
    assert_eq!(stored(&env)["grant"], "authorization_code");
}

#[test]
fn token_prints_the_netrc_token_and_refreshes_when_it_expires() {
    let idp = Idp::start(IdpOptions {
        access_token_ttl: 4,
        ..IdpOptions::default()
    });
    let env = TestEnv::new(&idp).with_browser(BrowserMode::Approve);
    let out = env.cli(&["login", "--timeout", "60s"]);
    assert!(out.status.success(), "login: {}", describe(&out));
    let first = netrc_token(&env).unwrap();

    idp.clear_request_log();
    let out = env.cli(&["token", "--min-valid", "1s"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), format!("{first}\n"));
    assert_eq!(idp.request_log(), "", "a valid token needs no request");
    assert!(!stderr(&out).contains(&first));

    thread::sleep(Duration::from_secs(5));
    let out = env.cli(&["token"]);
    assert!(out.status.success(), "{}", describe(&out));
    let second = netrc_token(&env).unwrap();
    assert_ne!(second, first, "the expired token was refreshed");
    assert_eq!(stdout(&out), format!("{second}\n"));
    assert_eq!(
        idp.count_requests("POST", "/token", &["grant_type=refresh_token"]),
        1
    );
    assert_eq!(stored(&env)["access_token"], second.as_str());
}

#[test]
fn token_without_session_needs_login() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new(&idp);
    let out = env.cli(&["token"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("nix-cache-login login"),
        "{}",
        describe(&out)
    );
}

#[test]
fn token_renews_a_service_account_token() {
    let idp = Idp::start(IdpOptions {
        client_credentials_ttl: 4,
        ..IdpOptions::default()
    });
    let env = TestEnv::new_server(&idp);
    let out = env.cli(&["service-account"]);
    assert!(out.status.success(), "{}", describe(&out));
    let first = netrc_token(&env).unwrap();

    let out = env.cli(&["token", "--min-valid", "1s"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), format!("{first}\n"));

    thread::sleep(Duration::from_secs(5));
    idp.clear_request_log();
    let out = env.cli(&["token"]);
    assert!(out.status.success(), "{}", describe(&out));
    let second = netrc_token(&env).unwrap();
    assert_ne!(second, first);
    assert_eq!(stdout(&out), format!("{second}\n"));
    assert_eq!(
        idp.count_requests("POST", "/token", &["grant_type=client_credentials"]),
        1
    );
}

/// The CLI with no config anywhere: HOME and the XDG dirs point into an empty directory.
fn without_config(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(support::cli_binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("XDG_CACHE_HOME", home.path().join("cache"));
    output_with_timeout(&mut cmd, Duration::from_secs(30))
}

#[test]
fn completions_need_no_config() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = without_config(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", describe(&out));
        let script = stdout(&out);
        assert!(script.contains("refresh"), "{shell}: {script}");
        assert!(script.contains("service-account"), "{shell}");
    }
    let out = without_config(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

#[test]
fn man_page_needs_no_config() {
    let out = without_config(&["man"]);
    assert!(out.status.success(), "{}", describe(&out));
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.contains(".TH nix-cache-login 1"), "{page}");
    // roff spells a hyphen that must stay one as `\-`.
    let text = page.replace("\\-", "-");
    for command in [
        "service-account",
        "login",
        "--device",
        "token",
        "--min-valid",
    ] {
        assert!(text.contains(command), "{command} missing:\n{page}");
    }
    assert_eq!(
        page.matches(".ds Aq").count(),
        2,
        "one string definition (.ie/.el), not one per section"
    );
}

#[test]
fn login_falls_back_to_the_device_flow_when_no_browser_opens() {
    let idp = Idp::start(IdpOptions::default());
    let mut env = TestEnv::new(&idp);
    // A $BROWSER that does not exist, and a PATH where webbrowser finds no other browser
    // (xdg-open and friends) to try: nothing can open, and no real browser ever does.
    let empty_path = env.dir().join("empty-path");
    fs::create_dir_all(&empty_path).unwrap();
    env.set_env("BROWSER", "/nonexistent/browser");
    env.set_env("PATH", empty_path.to_str().unwrap());
    env.set_env("DISPLAY", ":99");

    let err = plain_login_approved_on_device(&env);
    assert!(
        err.contains("Using the browser flow: $BROWSER is set."),
        "{err}"
    );
    assert!(
        err.contains("Could not open a browser") && err.contains("using the device flow instead"),
        "{err}"
    );
    assert!(
        !err.contains("/auth?"),
        "no login URL for a browser flow that was given up: {err}"
    );
    assert_eq!(stored(&env)["grant"], "device_code");
}

/// Runs plain `login` (no flow forced), approves the device code it prints in the headless
/// browser, and returns the CLI's stderr once it has succeeded.
fn plain_login_approved_on_device(env: &TestEnv) -> String {
    let mut run = Running::start(env, &["login", "--timeout", "60s"]);
    let prompt = run.device_prompt();
    let hook_report = approve_on_device(BrowserHook::new(BrowserMode::Device), &prompt, true);
    let out = run.finish();
    assert!(out.status.success(), "{}\n{hook_report}", describe(&out));
    stderr(&out)
}
