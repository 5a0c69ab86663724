//! The CI platform stand-in (`tests/idp/ci-issuer.mjs`) as a child process: GitHub Actions'
//! ID-token endpoint, discovery document and JWKS, on 127.0.0.1 over HTTPS. It is the only
//! stand-in of the suite (GitHub and GitLab cannot be reached from here).

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use super::certs::TestCa;
use super::http::{CurlResponse, curl, random_token};
use super::proc::NodeService;

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How the ID-token endpoint answers (see ci-issuer.mjs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiMode {
    Ok,
    /// Answers after 30 s.
    Slow,
    /// HTTP 500 with an HTML page.
    Error,
    /// `{"value": 42}`.
    Malformed,
    /// `{"value": "<ESC>]0;owned<BEL> not a token"}`.
    NotJwt,
    /// A 2 MiB answer.
    Huge,
    /// A well-signed token whose `exp` has passed.
    Expired,
}

impl CiMode {
    fn name(self) -> &'static str {
        match self {
            CiMode::Ok => "ok",
            CiMode::Slow => "slow",
            CiMode::Error => "error",
            CiMode::Malformed => "malformed",
            CiMode::NotJwt => "not-jwt",
            CiMode::Huge => "huge",
            CiMode::Expired => "expired",
        }
    }
}

/// A running CI issuer; stopped (its process group) on drop.
pub struct CiIssuer {
    service: NodeService,
    _dir: TempDir,
    ca: TestCa,
    issuer: String,
    request_url: String,
    request_token: String,
    request_log: PathBuf,
}

impl CiIssuer {
    /// Starts the issuer for a job of `repository` on `refs/heads/main`, serving TLS with
    /// `ca`'s server certificate (so that a CLI trusting `ca` trusts it).
    pub fn start(ca: &TestCa, repository: &str) -> CiIssuer {
        let dir = tempfile::Builder::new()
            .prefix("ncl-ci-")
            .tempdir()
            .expect("temp dir for the CI issuer");
        let request_log = dir.path().join("requests.log");
        fs::write(&request_log, "").expect("create the request log");
        let request_token = format!("ghs_{}", random_token(24));
        let envs: Vec<(OsString, OsString)> = vec![
            ("CI_TLS_CERT".into(), ca.server_cert.clone().into()),
            ("CI_TLS_KEY".into(), ca.server_key.clone().into()),
            ("CI_REQUEST_TOKEN".into(), request_token.clone().into()),
            ("CI_REPOSITORY".into(), repository.into()),
            ("CI_REQUEST_LOG".into(), request_log.clone().into()),
            ("CI_EXIT_ON_STDIN_EOF".into(), "1".into()),
        ];
        let (service, ready) = NodeService::start(
            "ci-issuer.mjs",
            "the CI issuer",
            dir.path(),
            envs,
            &dir.path().join("ci-issuer.stderr.log"),
            START_TIMEOUT,
        );
        let (issuer, request_url) = ready
            .split_once(' ')
            .unwrap_or_else(|| panic!("unexpected READY line from the CI issuer: {ready}"));
        CiIssuer {
            service,
            _dir: dir,
            ca: ca.clone(),
            issuer: issuer.to_owned(),
            request_url: request_url.to_owned(),
            request_token,
            request_log,
        }
    }

    /// `https://127.0.0.1:PORT`: the `iss` of its tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// What GitHub puts in `ACTIONS_ID_TOKEN_REQUEST_URL` (with `?api-version=2.0`).
    pub fn request_url(&self) -> &str {
        &self.request_url
    }

    /// What GitHub puts in `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub fn request_token(&self) -> &str {
        &self.request_token
    }

    /// The two variables a GitHub Actions job with `id-token: write` has.
    pub fn github_env(&self) -> [(&'static str, &str); 2] {
        [
            ("ACTIONS_ID_TOKEN_REQUEST_URL", self.request_url()),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", self.request_token()),
        ]
    }

    fn curl(&self, args: &[&str]) -> CurlResponse {
        curl(&self.ca.ca_cert, args)
    }

    /// Sets how the ID-token endpoint answers from now on.
    pub fn set_mode(&self, mode: CiMode) {
        let body = format!("{{\"mode\":\"{}\"}}", mode.name());
        let r = self.curl(&[
            "-H",
            "content-type: application/json",
            "--data-binary",
            &body,
            &format!("{}/test/mode", self.issuer),
        ]);
        assert_eq!(r.status, 200, "set mode: {}", r.body);
    }

    /// Makes the job one of `repository` from now on.
    pub fn set_repository(&self, repository: &str) {
        let body = serde_json::json!({ "repository": repository }).to_string();
        let r = self.curl(&[
            "-H",
            "content-type: application/json",
            "--data-binary",
            &body,
            &format!("{}/test/job", self.issuer),
        ]);
        assert_eq!(r.status, 200, "set job: {}", r.body);
    }

    /// A token for `audience`, living `ttl` seconds (negative: already expired), as GitLab
    /// would put it in an `id_tokens:` variable.
    pub fn mint(&self, audience: &str, ttl: i64) -> String {
        let r = self.curl(&[&format!(
            "{}/test/mint?audience={}&ttl={ttl}",
            self.issuer,
            super::http::urlencode(audience)
        )]);
        assert_eq!(r.status, 200, "mint: {}", r.body);
        r.json()["value"].as_str().expect("value").to_owned()
    }

    /// Requests to the ID-token endpoint so far.
    pub fn token_requests(&self) -> usize {
        fs::read_to_string(&self.request_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" GET /_apis/"))
            .count()
    }

    /// Stops the issuer now (the CI endpoint is down from here on).
    pub fn stop(&mut self) {
        self.service.stop();
    }
}
