//! `ci`: a CI job logs in with its platform's own OIDC token. The job's side is the one
//! stand-in of the suite (`tests/idp/ci-issuer.mjs`, GitHub's ID-token protocol, discovery
//! and JWKS); the provider is the real oidc-provider with the jwt-bearer and token-exchange
//! grants and federated client assertion (`tests/idp/federation.mjs`), checking the CI
//! token's signature, `iss`, `aud`, `exp` and repository. Every way in ends with real Nix
//! substituting through the token-checking cache; every refusal leaves the netrc and the
//! store byte-identical and says why in one line.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tempfile::TempDir;

use crate::support::cache::{CacheRequest, summarize};
use crate::support::ci_issuer::{CiIssuer, CiMode};
use crate::support::fault::{assert_failed, netrc_password, seed_netrc, snapshot_dir};
use crate::support::{
    CacheServer, Idp, IdpOptions, NixLab, TestCa, TestEnv, assert_ok, describe, jwt_claims,
};

/// `ci --source github-actions --grant GRANT --audience AUDIENCE`.
pub fn github_actions_ci<'a>(grant: &'a str, audience: &'a str) -> [&'a str; 7] {
    [
        "ci",
        "--source",
        "github-actions",
        "--grant",
        grant,
        "--audience",
        audience,
    ]
}

/// The audience the provider (and, for `direct`, the cache) accepts.
pub const AUDIENCE: &str = "https://cache.test";
pub const REPOSITORY: &str = "acme/app";
pub const SUBJECT: &str = "repo:acme/app:ref:refs/heads/main";
const CI_CLIENT: &str = "nix-cache-ci";
const FEDERATED_CLIENT: &str = "nix-cache-ci-federated";

/// A CI issuer, the provider federated with it, and a CA bundle trusting both.
pub struct CiLab {
    pub ci: CiIssuer,
    pub idp: Idp,
    _dir: TempDir,
    bundle: PathBuf,
}

impl CiLab {
    pub fn start() -> CiLab {
        let dir = tempfile::Builder::new()
            .prefix("ncl-cilab-")
            .tempdir()
            .unwrap();
        let ca = TestCa::generate(&dir.path().join("ci-tls"));
        let ci = CiIssuer::start(&ca, REPOSITORY);
        let idp = Idp::start(IdpOptions {
            extra_env: vec![
                ("IDP_CI_ISSUER".into(), ci.issuer().into()),
                ("IDP_CI_AUDIENCE".into(), AUDIENCE.into()),
                ("IDP_CI_REPOSITORY".into(), REPOSITORY.into()),
                ("IDP_CI_CA_FILE".into(), path_str(&ca.ca_cert).into()),
            ],
            ..IdpOptions::default()
        });
        let bundle = dir.path().join("bundle.pem");
        let mut pem = fs::read(idp.ca_pem_path()).unwrap();
        pem.extend(fs::read(&ca.ca_cert).unwrap());
        fs::write(&bundle, pem).unwrap();
        CiLab {
            ci,
            idp,
            _dir: dir,
            bundle,
        }
    }

    /// A CLI sandbox for `client_id` at the provider, trusting both, with GitHub's two
    /// variables set and `cache_host` = `host`.
    pub fn env(&self, client_id: &str, host: &str) -> TestEnv {
        let mut env = TestEnv::for_issuer(self.idp.issuer(), client_id, &self.bundle);
        self.trust_and_github(&mut env);
        env.update_config(|c| c.cache_host = Some(host.to_owned()));
        env
    }

    /// The CA bundle the CLI trusts (the provider's and the CI issuer's).
    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    /// Makes `env` trust both and sets GitHub's two variables.
    pub fn trust_and_github(&self, env: &mut TestEnv) {
        env.set_env("SSL_CERT_FILE", path_str(&self.bundle));
        for (k, v) in self.ci.github_env() {
            env.set_env(k, v);
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Prints past libtest's capture, so the figures show in a plain `cargo test`.
fn report(text: &str) {
    let _ = std::io::stderr().write_all(format!("\n{text}\n").as_bytes());
}

/// Nix substitutes the main path into an empty store through `cache` with `netrc`; every
/// request was accepted and the path came.
fn nix_fetches(lab: &NixLab, cache: &CacheServer, netrc: &Path, label: &str) -> Vec<CacheRequest> {
    let (run, requests) = lab.substitute(cache, netrc, label);
    assert!(run.fetched, "{label}: {}", run.describe());
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(
            (r.status, r.auth.as_str()),
            (200, "basic"),
            "{label}: {r:?}"
        );
    }
    assert!(requests.iter().any(|r| r.path.ends_with(".narinfo")));
    assert!(requests.iter().any(|r| r.path.starts_with("/nar/")));
    requests
}

fn netrc_token(env: &TestEnv) -> String {
    netrc_password(&env.netrc_path(), "127.0.0.1").expect("a netrc entry for 127.0.0.1")
}

#[test]
fn github_actions_with_each_grant_lets_nix_fetch() {
    let started = Instant::now();
    let lab = CiLab::start();
    let nix = NixLab::new();
    let cache = CacheServer::start(&lab.idp, nix.cache_dir());
    let mut figures = Vec::new();

    for (grant, client, sub) in [
        ("jwt-bearer", CI_CLIENT, SUBJECT),
        ("token-exchange", CI_CLIENT, SUBJECT),
        ("client-assertion", FEDERATED_CLIENT, FEDERATED_CLIENT),
    ] {
        let mut env = lab.env(client, &cache.host());
        let args = github_actions_ci(grant, AUDIENCE);
        let out = env.cli(&args);
        assert_ok(&out, grant);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("github-actions, {grant}")),
            "{grant}: {stderr}"
        );
        let token = netrc_token(&env);
        let claims = jwt_claims(&token);
        assert_eq!(claims["iss"], lab.idp.issuer(), "{grant}");
        assert_eq!(claims["sub"], sub, "{grant}");
        assert_eq!(claims["aud"], AUDIENCE, "{grant}");
        nix_fetches(
            &nix,
            &cache,
            &env.netrc_path(),
            &format!("after ci --grant {grant}"),
        );

        // Warm (discovery cached): one request to the CI platform, one token request.
        let ci_before = lab.ci.token_requests();
        lab.idp.clear_request_log();
        assert_ok(&env.cli(&args), grant);
        let ci_requests = lab.ci.token_requests() - ci_before;
        let idp_log = lab.idp.request_log();
        let idp_requests = idp_log.lines().count();
        assert_eq!((ci_requests, idp_requests), (1, 1), "{grant}: {idp_log}");
        assert_ne!(netrc_token(&env), token, "{grant}: a new token");
        figures.push(format!(
            "  {grant}: warm run {ci_requests} CI + {idp_requests} provider request(s)"
        ));

        // --min-valid: the stored token still covers it, so nothing is asked of anyone.
        let ci_before = lab.ci.token_requests();
        lab.idp.clear_request_log();
        let mut skip = args.to_vec();
        skip.extend(["--min-valid", "20s"]);
        assert_ok(&env.cli(&skip), "ci --min-valid");
        assert_eq!(lab.ci.token_requests(), ci_before, "{grant}: --min-valid");
        assert_eq!(lab.idp.request_log(), "", "{grant}: --min-valid");

        // status and doctor know the kind; token re-runs the same CI login when due.
        let status = env.cli(&["status"]);
        assert_ok(&status, "status");
        let text = String::from_utf8_lossy(&status.stdout);
        assert!(
            text.contains(&format!(
                "CI login:      github-actions, grant {grant}, audience {AUDIENCE}"
            )),
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&env.cli(&["status", "--json"]).stdout).unwrap();
        assert_eq!(json["grant"], "ci");
        assert_eq!(json["ci"]["grant"], grant);
        let doctor = env.cli(&["doctor"]);
        let text = String::from_utf8_lossy(&doctor.stdout);
        assert!(
            text.contains(&format!("CI job (github-actions, grant {grant})")),
            "{}",
            describe(&doctor)
        );
        let before = netrc_token(&env);
        let out = env.cli(&["token", "--min-valid", "10m"]);
        assert_ok(&out, "token");
        let printed = String::from_utf8(out.stdout).unwrap();
        assert_eq!(printed.trim(), netrc_token(&env), "{grant}: token = netrc");
        assert_ne!(printed.trim(), before, "{grant}: token re-ran the grant");
        let refresh = env.cli(&["refresh"]);
        assert_failed("refresh of a CI session", &refresh, 3, &["`ci`"]);

        // doctor: the job's variables are there; without them the CI session cannot be
        // renewed, and the fix is the workflow's permission.
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok") && l.contains("ci-source")),
            "{text}"
        );
        for var in [
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        ] {
            env.remove_env(var);
        }
        let doctor = env.cli(&["doctor"]);
        assert_eq!(doctor.status.code(), Some(1), "{}", describe(&doctor));
        let text = String::from_utf8_lossy(&doctor.stdout);
        assert!(
            text.lines().any(|l| l.starts_with("FAIL")
                && l.contains("ci-source")
                && l.contains("ACTIONS_ID_TOKEN_REQUEST_URL")),
            "{text}"
        );
        assert!(text.contains("permissions: id-token: write"), "{text}");
    }
    report(&format!(
        "[ci::github_actions_with_each_grant_lets_nix_fetch] {:.1} s\n{}\n{}\n  cache: {}",
        started.elapsed().as_secs_f64(),
        figures.join("\n"),
        nix.summary(),
        summarize(&cache.requests())
    ));
}

#[test]
fn gitlab_file_and_env_sources_let_nix_fetch() {
    let started = Instant::now();
    let lab = CiLab::start();
    let nix = NixLab::new();
    let cache = CacheServer::start(&lab.idp, nix.cache_dir());

    // gitlab: the job's `id_tokens:` variable, named in the [ci] table, grant from there too.
    let mut env = lab.env(CI_CLIENT, &cache.host());
    env.update_config(|c| {
        c.extra = format!(
            "[ci]\nsource = 'gitlab'\ngrant = 'jwt-bearer'\naudience = '{AUDIENCE}'\nid_token_var = 'CACHE_ID_TOKEN'\n"
        )
    });
    env.set_env("CACHE_ID_TOKEN", &lab.ci.mint(AUDIENCE, 300));
    assert_ok(&env.cli(&["ci"]), "gitlab");
    nix_fetches(&nix, &cache, &env.netrc_path(), "after ci (gitlab)");
    env.remove_env("CACHE_ID_TOKEN");
    let out = env.cli(&["ci"]);
    assert_failed(
        "gitlab without the variable",
        &out,
        2,
        &["$CACHE_ID_TOKEN", "id_tokens:"],
    );

    // file:PATH through the environment (as a Kubernetes pod would set it), re-read each run.
    let env = lab.env(CI_CLIENT, &cache.host());
    let token_file = env.dir().join("projected-token");
    fs::write(&token_file, format!("{}\n", lab.ci.mint(AUDIENCE, 300))).unwrap();
    let mut env = env;
    env.set_env(
        "NIX_CACHE_LOGIN_CI_SOURCE",
        &format!("file:{}", token_file.display()),
    );
    env.set_env("NIX_CACHE_LOGIN_CI_GRANT", "token-exchange");
    env.set_env("NIX_CACHE_LOGIN_CI_AUDIENCE", AUDIENCE);
    assert_ok(&env.cli(&["ci"]), "file");
    nix_fetches(&nix, &cache, &env.netrc_path(), "after ci (file:)");
    fs::write(&token_file, lab.ci.mint(AUDIENCE, -30)).unwrap();
    let out = env.cli(&["ci"]);
    assert_failed("file re-read, now expired", &out, 1, &["file:", "expired"]);

    // env:VAR, flags only.
    let mut env = lab.env(FEDERATED_CLIENT, &cache.host());
    env.set_env("MY_JOB_JWT", &lab.ci.mint(AUDIENCE, 300));
    assert_ok(
        &env.cli(&[
            "ci",
            "--source",
            "env:MY_JOB_JWT",
            "--grant",
            "client-assertion",
        ]),
        "env",
    );
    nix_fetches(&nix, &cache, &env.netrc_path(), "after ci (env:)");

    report(&format!(
        "[ci::gitlab_file_and_env_sources_let_nix_fetch] {:.1} s\n{}\n  cache: {}",
        started.elapsed().as_secs_f64(),
        nix.summary(),
        summarize(&cache.requests())
    ));
}

#[test]
fn direct_puts_the_job_token_in_the_netrc_for_a_cache_that_trusts_the_ci_issuer() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::generate(&dir.path().join("tls"));
    let ci = CiIssuer::start(&ca, REPOSITORY);
    let nix = NixLab::new();
    let cache = CacheServer::start_for(ci.issuer(), &ca.ca_cert, AUDIENCE, nix.cache_dir());

    let mut env = TestEnv::for_issuer(ci.issuer(), "unused", &ca.ca_cert);
    env.update_config(|c| c.cache_host = Some(cache.host()));
    for (k, v) in ci.github_env() {
        env.set_env(k, v);
    }
    let args = github_actions_ci("direct", AUDIENCE);
    assert_ok(&env.cli(&args), "direct");
    let token = netrc_token(&env);
    let claims = jwt_claims(&token);
    assert_eq!(claims["iss"], ci.issuer());
    assert_eq!(claims["sub"], SUBJECT);
    assert_eq!(claims["repository"], REPOSITORY);
    let requests = nix_fetches(&nix, &cache, &env.netrc_path(), "after ci --grant direct");
    assert_eq!(ci.token_requests(), 1, "direct asks the CI platform only");
    let status = env.cli(&["status"]);
    assert_ok(&status, "status");
    assert!(String::from_utf8_lossy(&status.stdout).contains("grant direct"));
    assert_ok(&env.cli(&["logout"]), "logout");
    assert_eq!(netrc_password(&env.netrc_path(), "127.0.0.1"), None);

    // A config whose issuer is not the token's: nothing is written.
    env.update_config(|c| c.issuer = Some("https://token.actions.githubusercontent.com".into()));
    let out = env.cli(&args);
    assert_failed(
        "direct, other issuer",
        &out,
        1,
        &["direct", "issued by", ci.issuer()],
    );
    assert!(!env.netrc().contains("password"), "{}", env.netrc());
    report(&format!(
        "[ci::direct_puts_the_job_token_in_the_netrc] {:.1} s, {} cache requests\n{}",
        started.elapsed().as_secs_f64(),
        requests.len(),
        nix.summary()
    ));
}

#[test]
fn refused_ci_logins_change_nothing_and_say_why() {
    let started = Instant::now();
    let mut lab = CiLab::start();
    let mut env = lab.env(CI_CLIENT, "cache.test");
    // A working session and another entry first, so "unchanged" means something.
    seed_netrc(&env.netrc_path(), "other.example", Some("other-token"));
    let good = github_actions_ci("jwt-bearer", AUDIENCE);
    assert_ok(&env.cli(&good), "first login");
    let netrc_before = fs::read(env.netrc_path()).unwrap();
    let store_before = snapshot_dir(&env.state_home());
    assert_eq!(store_before.len(), 1);

    let mut lines = Vec::new();
    let mut check = |case: &str, env: &TestEnv, args: &[&str], code: i32, needles: &[&str]| {
        let out = env.cli(args);
        let line = assert_failed(case, &out, code, needles);
        assert!(
            !line.contains('\u{1b}'),
            "{case}: an escape reached the terminal: {line:?}"
        );
        assert_eq!(
            fs::read(env.netrc_path()).unwrap(),
            netrc_before,
            "{case}: netrc"
        );
        assert_eq!(
            snapshot_dir(&env.state_home()),
            store_before,
            "{case}: store"
        );
        lines.push(format!("  {case}: exit {code}: {line}"));
    };

    let wrong = github_actions_ci("jwt-bearer", "https://wrong.test");
    check(
        "wrong audience",
        &env,
        &wrong,
        1,
        &[
            "github-actions",
            "jwt-bearer",
            "invalid_grant",
            "audience is not https://cache.test",
        ],
    );
    lab.ci.set_mode(CiMode::Expired);
    check(
        "expired CI token",
        &env,
        &good,
        1,
        &["github-actions", "jwt-bearer", "expired"],
    );
    lab.ci.set_mode(CiMode::Ok);
    lab.ci.set_repository("evil/fork");
    check(
        "another repository",
        &env,
        &good,
        1,
        &["jwt-bearer", "repository evil/fork is not allowed"],
    );
    lab.ci.set_repository(REPOSITORY);
    env.remove_env("ACTIONS_ID_TOKEN_REQUEST_URL");
    check(
        "missing id-token variables",
        &env,
        &good,
        2,
        &[
            "github-actions",
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "permissions: id-token: write",
        ],
    );
    for (k, v) in lab.ci.github_env() {
        env.set_env(k, v);
    }
    env.set_env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ghs_wrong");
    check(
        "a wrong request token",
        &env,
        &good,
        1,
        &["github-actions", "HTTP 401"],
    );
    env.set_env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", lab.ci.request_token());
    for (mode, code, needles) in [
        (
            CiMode::Slow,
            1,
            &["github-actions", "/idtoken", "timed out"][..],
        ),
        (CiMode::Error, 1, &["github-actions", "HTTP 500"]),
        (
            CiMode::Malformed,
            1,
            &["github-actions", "malformed answer"],
        ),
        (CiMode::NotJwt, 1, &["github-actions", "not a JWT"]),
        (CiMode::Huge, 1, &["github-actions", "larger than 1 MiB"]),
    ] {
        lab.ci.set_mode(mode);
        env.set_env("NIX_CACHE_LOGIN_HTTP_TIMEOUT", "3");
        check(&format!("CI endpoint {mode:?}"), &env, &good, code, needles);
    }
    lab.ci.set_mode(CiMode::Ok);

    // The provider's own exp check, without the CLI's (which stops an expired token first).
    let expired = lab.ci.mint(AUDIENCE, -5);
    let r = lab.idp.curl(&[
        "--data-urlencode",
        "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer",
        "--data-urlencode",
        &format!("assertion={expired}"),
        "-d",
        &format!("client_id={CI_CLIENT}"),
        &lab.idp.endpoint("/token"),
    ]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("CI token refused: expired"), "{}", r.body);

    lab.ci.stop();
    check(
        "CI endpoint down",
        &env,
        &good,
        1,
        &["github-actions", "cannot connect"],
    );
    report(&format!(
        "[ci::refused_ci_logins_change_nothing_and_say_why] {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        lines.join("\n")
    ));
}
