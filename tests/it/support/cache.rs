//! The token-protected binary cache (`tests/idp/cache.mjs`) as a child process: plain HTTP
//! on 127.0.0.1, serving a directory made by `nix copy --to file://DIR`, and answering 401
//! unless the request's Basic-auth password is a live JWT access token of the test provider
//! (signature from the provider's JWKS, `iss`, `aud` = the provider's resource, `exp`).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use super::idp::Idp;
use super::proc::NodeService;

/// How long the cache may take to print its READY line (it loads the provider's JWKS first).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One request the cache served, from its log line
/// `<time> <METHOD> <path> <status> auth=<none|basic|other>[ sub=<sub>][ why=<reason>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRequest {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// `none` (no Authorization header), `basic` or `other`.
    pub auth: String,
    /// The token's `sub` when it was accepted.
    pub sub: Option<String>,
    /// Why it was refused: `no-authorization`, `not-basic`, `not-a-jwt`, `wrong-alg`,
    /// `unknown-kid`, `bad-signature`, `wrong-iss`, `wrong-aud`, `no-exp`, `expired`,
    /// `not-yet-valid`, `read-only`.
    pub why: Option<String>,
}

impl CacheRequest {
    fn parse(line: &str) -> Option<CacheRequest> {
        let mut words = line.split(' ');
        let _time = words.next()?;
        let method = words.next()?.to_owned();
        let path = words.next()?.to_owned();
        let status = words.next()?.parse().ok()?;
        let mut request = CacheRequest {
            method,
            path,
            status,
            auth: String::new(),
            sub: None,
            why: None,
        };
        for word in words {
            match word.split_once('=') {
                Some(("auth", v)) => request.auth = v.to_owned(),
                Some(("sub", v)) => request.sub = Some(v.to_owned()),
                Some(("why", v)) => request.why = Some(v.to_owned()),
                _ => {}
            }
        }
        Some(request)
    }
}

/// A running cache; stopped (its process group) on drop.
pub struct CacheServer {
    _service: NodeService,
    _dir: TempDir,
    url: String,
    port: u16,
    request_log: PathBuf,
}

impl CacheServer {
    /// Serves `cache_dir` (a `file://` binary cache) to holders of `idp`'s access tokens
    /// for its resource (`aud`), and waits until it is ready (it has loaded the JWKS).
    pub fn start(idp: &Idp, cache_dir: &Path) -> CacheServer {
        CacheServer::start_for(idp.issuer(), idp.ca_pem_path(), idp.resource(), cache_dir)
    }

    /// Like [`CacheServer::start`], for any issuer (`ca` is trusted for an https one).
    pub fn start_for(issuer: &str, ca: &Path, audience: &str, cache_dir: &Path) -> CacheServer {
        CacheServer::start_refusing_with(issuer, ca, audience, cache_dir, 401)
    }

    /// Like [`CacheServer::start_for`], answering a missing or refused token with
    /// `refuse_status` (401 or 403).
    pub fn start_refusing_with(
        issuer: &str,
        ca: &Path,
        audience: &str,
        cache_dir: &Path,
        refuse_status: u16,
    ) -> CacheServer {
        let dir = tempfile::Builder::new()
            .prefix("ncl-cache-")
            .tempdir()
            .expect("temp dir for the cache server");
        let request_log = dir.path().join("requests.log");
        let stderr_log = dir.path().join("cache.stderr.log");
        fs::write(&request_log, "").expect("create the request log");

        let refuse_status = refuse_status.to_string();
        let envs: [(&str, &OsStr); 7] = [
            ("CACHE_REFUSE_STATUS", refuse_status.as_ref()),
            ("CACHE_DIR", cache_dir.as_os_str()),
            ("CACHE_ISSUER", issuer.as_ref()),
            ("CACHE_CA_FILE", ca.as_os_str()),
            ("CACHE_AUDIENCE", audience.as_ref()),
            ("CACHE_REQUEST_LOG", request_log.as_os_str()),
            ("CACHE_EXIT_ON_STDIN_EOF", "1".as_ref()),
        ];
        let (service, url) = NodeService::start(
            "cache.mjs",
            "the test cache",
            dir.path(),
            envs,
            &stderr_log,
            START_TIMEOUT,
        );
        let port = url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected READY line from the cache: {url}"));
        CacheServer {
            _service: service,
            _dir: dir,
            url,
            port,
            request_log,
        }
    }

    /// `http://127.0.0.1:PORT` (what goes into `substituters`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `127.0.0.1:PORT`: a `cache_host` for the CLI's config (the netrc entry it writes is
    /// `machine 127.0.0.1`: netrc has no ports, and curl matches the host name only).
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The raw request log.
    pub fn request_log(&self) -> String {
        fs::read_to_string(&self.request_log).unwrap_or_default()
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<CacheRequest> {
        self.request_log()
            .lines()
            .filter_map(CacheRequest::parse)
            .collect()
    }

    /// How many requests were logged so far: `requests_since(mark())` later gives the
    /// requests of what ran in between.
    pub fn mark(&self) -> usize {
        self.requests().len()
    }

    /// The requests after the first `mark` ones.
    pub fn requests_since(&self, mark: usize) -> Vec<CacheRequest> {
        self.requests().into_iter().skip(mark).collect()
    }
}

/// `n×status` counts and refusal reasons of `requests`, e.g.
/// `3 requests: 2×200, 1×401 (no-authorization)`.
pub fn summarize(requests: &[CacheRequest]) -> String {
    use std::collections::BTreeMap;
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for r in requests {
        *by_status.entry(r.status).or_default() += 1;
        if let Some(why) = &r.why {
            *reasons.entry(why).or_default() += 1;
        }
    }
    let statuses: Vec<String> = by_status.iter().map(|(s, n)| format!("{n}×{s}")).collect();
    let mut text = match requests.len() {
        0 => "no requests".to_owned(),
        1 => format!("1 request: {}", statuses.join(", ")),
        n => format!("{n} requests: {}", statuses.join(", ")),
    };
    if !reasons.is_empty() {
        let why: Vec<String> = reasons.iter().map(|(w, n)| format!("{w} {n}")).collect();
        text.push_str(&format!(" (refused: {})", why.join(", ")));
    }
    text
}
