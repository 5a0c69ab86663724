//! The test OpenID provider (`tests/idp/provider.mjs`) as a child process.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::certs::TestCa;
use super::http::{CurlResponse, curl};
use super::idp_dir;
use super::proc::{NodeService, output_with_timeout};

/// How long the provider may take to print its READY line.
// Generous: on a loaded two-core machine node takes long to load oidc-provider.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The client ids the provider registers.
pub const PUBLIC_CLIENT_ID: &str = "nix-cache-login";
pub const SERVER_CLIENT_ID: &str = "nix-cache-server";
pub const SERVER_POST_CLIENT_ID: &str = "nix-cache-server-post";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessTokenFormat {
    /// RS256-signed JWT (`typ: at+jwt`) with iss, sub, aud, exp, iat, jti, client_id,
    /// preferred_username. Not accepted by the provider's introspection and revocation
    /// endpoints (oidc-provider refuses structured tokens there); see [`Idp::introspect`].
    Jwt,
    /// Opaque random string, stored by the provider: introspectable and revocable.
    Opaque,
}

/// Settings of one provider. Times are in seconds.
#[derive(Debug, Clone)]
pub struct IdpOptions {
    /// 0: any free port (the default).
    pub port: u16,
    /// Path under `https://127.0.0.1:PORT` for the issuer, e.g. `/realms/test`.
    pub issuer_path: Option<String>,
    /// The resource (and `aud`) every access token is for when no `resource` is asked.
    pub resource: String,
    /// The scope the resource server knows (requesting it puts it into `scope`).
    pub resource_scope: String,
    pub access_token_format: AccessTokenFormat,
    pub access_token_ttl: u64,
    pub client_credentials_ttl: u64,
    pub refresh_token_ttl: u64,
    pub id_token_ttl: u64,
    pub authorization_code_ttl: u64,
    pub device_code_ttl: u64,
    pub session_ttl: u64,
    pub grant_ttl: u64,
    pub interaction_ttl: u64,
    /// Issue refresh tokens to clients allowed the refresh_token grant (no offline_access
    /// needed). false: never.
    pub issue_refresh_token: bool,
    /// Rotate refresh tokens on every use (reuse of a spent one revokes the grant).
    pub rotate_refresh_token: bool,
    /// Refresh tokens die with the provider's browser session (false: they do not).
    pub expires_with_session: bool,
    /// `interval` in the device authorization response.
    pub device_poll_interval: u64,
    /// Answer `slow_down` to device-flow polls that come sooner than `interval`.
    pub device_enforce_interval: bool,
    pub server_client_secret: String,
    /// More environment for the provider process.
    pub extra_env: Vec<(String, String)>,
}

impl Default for IdpOptions {
    fn default() -> Self {
        IdpOptions {
            port: 0,
            issuer_path: None,
            resource: "https://cache.test".into(),
            resource_scope: "nix-cache".into(),
            access_token_format: AccessTokenFormat::Jwt,
            access_token_ttl: 60,
            client_credentials_ttl: 60,
            refresh_token_ttl: 600,
            id_token_ttl: 60,
            authorization_code_ttl: 60,
            device_code_ttl: 300,
            session_ttl: 600,
            grant_ttl: 3600,
            interaction_ttl: 300,
            issue_refresh_token: true,
            rotate_refresh_token: true,
            expires_with_session: false,
            device_poll_interval: 1,
            device_enforce_interval: true,
            server_client_secret: format!("server-secret-{}", super::http::random_token(12)),
            extra_env: Vec::new(),
        }
    }
}

impl IdpOptions {
    fn env(&self) -> Vec<(String, String)> {
        let b = |v: bool| if v { "1" } else { "0" }.to_owned();
        let mut env = vec![
            ("IDP_PORT".into(), self.port.to_string()),
            ("IDP_RESOURCE".into(), self.resource.clone()),
            ("IDP_RESOURCE_SCOPE".into(), self.resource_scope.clone()),
            (
                "IDP_ACCESS_TOKEN_FORMAT".into(),
                match self.access_token_format {
                    AccessTokenFormat::Jwt => "jwt",
                    AccessTokenFormat::Opaque => "opaque",
                }
                .into(),
            ),
            (
                "IDP_ACCESS_TOKEN_TTL".into(),
                self.access_token_ttl.to_string(),
            ),
            (
                "IDP_CLIENT_CREDENTIALS_TTL".into(),
                self.client_credentials_ttl.to_string(),
            ),
            (
                "IDP_REFRESH_TOKEN_TTL".into(),
                self.refresh_token_ttl.to_string(),
            ),
            ("IDP_ID_TOKEN_TTL".into(), self.id_token_ttl.to_string()),
            (
                "IDP_AUTHORIZATION_CODE_TTL".into(),
                self.authorization_code_ttl.to_string(),
            ),
            (
                "IDP_DEVICE_CODE_TTL".into(),
                self.device_code_ttl.to_string(),
            ),
            ("IDP_SESSION_TTL".into(), self.session_ttl.to_string()),
            ("IDP_GRANT_TTL".into(), self.grant_ttl.to_string()),
            (
                "IDP_INTERACTION_TTL".into(),
                self.interaction_ttl.to_string(),
            ),
            (
                "IDP_ISSUE_REFRESH_TOKEN".into(),
                b(self.issue_refresh_token),
            ),
            (
                "IDP_ROTATE_REFRESH_TOKEN".into(),
                b(self.rotate_refresh_token),
            ),
            (
                "IDP_EXPIRES_WITH_SESSION".into(),
                b(self.expires_with_session),
            ),
            (
                "IDP_DEVICE_POLL_INTERVAL".into(),
                self.device_poll_interval.to_string(),
            ),
            (
                "IDP_DEVICE_ENFORCE_INTERVAL".into(),
                b(self.device_enforce_interval),
            ),
            (
                "IDP_SERVER_CLIENT_SECRET".into(),
                self.server_client_secret.clone(),
            ),
        ];
        if let Some(p) = &self.issuer_path {
            env.push(("IDP_ISSUER_PATH".into(), p.clone()));
        }
        env.extend(self.extra_env.iter().cloned());
        env
    }
}

/// A running provider; stopped (its whole process group) on drop.
pub struct Idp {
    service: NodeService,
    _dir: TempDir,
    ca: TestCa,
    issuer: String,
    port: u16,
    request_log: PathBuf,
    options: IdpOptions,
}

impl Idp {
    /// Starts a provider with a new CA and waits (90 s at most) for it to be ready.
    /// Panics with the provider's stderr when it does not come up.
    pub fn start(options: IdpOptions) -> Idp {
        let dir = tempfile::Builder::new()
            .prefix("ncl-idp-")
            .tempdir()
            .expect("temp dir for the provider");
        let ca = TestCa::generate(&dir.path().join("tls"));
        let request_log = dir.path().join("requests.log");
        let stderr_log = dir.path().join("provider.stderr.log");
        fs::write(&request_log, "").expect("create the request log");

        let mut envs: Vec<(OsString, OsString)> = vec![
            ("IDP_TLS_CERT".into(), ca.server_cert.clone().into()),
            ("IDP_TLS_KEY".into(), ca.server_key.clone().into()),
            ("IDP_REQUEST_LOG".into(), request_log.clone().into()),
            ("IDP_EXIT_ON_STDIN_EOF".into(), "1".into()),
        ];
        envs.extend(options.env().into_iter().map(|(k, v)| (k.into(), v.into())));
        let (service, issuer) = NodeService::start(
            "provider.mjs",
            "the test provider",
            dir.path(),
            envs,
            &stderr_log,
            START_TIMEOUT,
        );
        // `IDP_HTTP=1` in extra_env serves plain http (loopback issuers may be http).
        // `IDP_PUBLIC_HOST` in extra_env names the issuer's host (it still listens on 127.0.0.1).
        let port = issuer
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|authority| authority.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected READY line: {issuer}"));

        Idp {
            service,
            _dir: dir,
            ca,
            issuer,
            port,
            request_log,
            options,
        }
    }

    /// `https://127.0.0.1:PORT` (plus the issuer path, if one was set); no trailing slash.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:PORT`, without the issuer path.
    pub fn base_url(&self) -> String {
        let scheme = self.issuer.split("://").next().unwrap_or("https");
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA certificate that signed the provider's TLS certificate (PEM).
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca.ca_cert
    }

    /// The public native PKCE client (auth code, refresh, device code).
    pub fn public_client_id(&self) -> &'static str {
        PUBLIC_CLIENT_ID
    }

    /// The confidential client (client_credentials), registered for client_secret_basic;
    /// oidc-provider also takes client_secret_post from it.
    pub fn server_client_id(&self) -> &'static str {
        SERVER_CLIENT_ID
    }

    /// Same secret and grants, registered for client_secret_post.
    pub fn server_post_client_id(&self) -> &'static str {
        SERVER_POST_CLIENT_ID
    }

    pub fn server_client_secret(&self) -> &str {
        &self.options.server_client_secret
    }

    /// The resource every token is for (`aud` of the access tokens).
    pub fn resource(&self) -> &str {
        &self.options.resource
    }

    pub fn request_log(&self) -> String {
        fs::read_to_string(&self.request_log).unwrap_or_default()
    }

    /// How many requests so far match `method` and `path` exactly (and contain every
    /// `fields` item, like `grant_type=refresh_token`).
    pub fn count_requests(&self, method: &str, path: &str, fields: &[&str]) -> usize {
        self.request_log()
            .lines()
            .filter(|line| {
                let mut parts = line.split(' ');
                let _time = parts.next();
                parts.next() == Some(method)
                    && parts.next() == Some(path)
                    && fields.iter().all(|f| line.split(' ').any(|w| w == *f))
            })
            .count()
    }

    /// Empties the request log (to count the requests of one command).
    pub fn clear_request_log(&self) {
        fs::write(&self.request_log, "").expect("truncate the request log");
    }

    /// `issuer + path`, e.g. `endpoint("/token")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// curl with the test CA against the provider.
    pub fn curl(&self, args: &[&str]) -> CurlResponse {
        curl(self.ca_pem_path(), args)
    }

    /// The discovery document.
    pub fn discovery(&self) -> serde_json::Value {
        let r = self.curl(&[&self.endpoint("/.well-known/openid-configuration")]);
        assert_eq!(r.status, 200, "discovery: {}", r.body);
        r.json()
    }

    /// A client_credentials token response for the confidential client (basic auth).
    pub fn client_credentials(&self) -> serde_json::Value {
        let user = format!("{}:{}", SERVER_CLIENT_ID, self.server_client_secret());
        let r = self.curl(&[
            "-u",
            &user,
            "-d",
            "grant_type=client_credentials",
            &self.endpoint("/token"),
        ]);
        assert_eq!(r.status, 200, "client_credentials: {}", r.body);
        r.json()
    }

    /// Introspects `token` as the confidential client.
    ///
    /// Opaque tokens (refresh tokens, opaque access tokens) go to the provider's real
    /// introspection endpoint. JWT access tokens cannot (oidc-provider 9 answers
    /// `unsupported_token_type` for any JWT there), so those go to the provider's
    /// test-only `/test/introspect`, which checks the signature, `exp`, `iss`, that the
    /// provider issued it, and that its grant still exists (a refresh-token reuse, a
    /// revoked refresh token or grant expiry turn it inactive). Both answer RFC 7662 JSON.
    pub fn introspect(&self, token: &str) -> serde_json::Value {
        let path = if looks_like_jwt(token) {
            "/test/introspect"
        } else {
            "/token/introspection"
        };
        let url = if path.starts_with("/test/") {
            format!("{}{}", self.base_url(), path)
        } else {
            self.endpoint(path)
        };
        let user = format!("{}:{}", SERVER_CLIENT_ID, self.server_client_secret());
        let body = format!("token={}", super::http::urlencode(token));
        let r = self.curl(&[
            "-u",
            &user,
            "--data-binary",
            &body,
            "-H",
            "content-type: application/x-www-form-urlencoded",
            &url,
        ]);
        assert_eq!(r.status, 200, "introspection: {}", r.body);
        r.json()
    }

    /// `introspect(token)["active"] == true`.
    pub fn is_active(&self, token: &str) -> bool {
        self.introspect(token)["active"] == serde_json::Value::Bool(true)
    }

    /// Revokes a refresh token (or an opaque access token) as the public client, as the CLI
    /// would; revoking a refresh token revokes its whole grant. Returns the HTTP status.
    pub fn revoke_public(&self, token: &str) -> CurlResponse {
        let body = format!(
            "token={}&client_id={}",
            super::http::urlencode(token),
            PUBLIC_CLIENT_ID
        );
        self.curl(&[
            "--data-binary",
            &body,
            "-H",
            "content-type: application/x-www-form-urlencoded",
            &self.endpoint("/token/revocation"),
        ])
    }

    /// A token request as the public client with form fields `fields` (`k=v`, encoded
    /// here). Returns status and body; 400 answers are for the caller to look at.
    pub fn token_request_public(&self, fields: &[(&str, &str)]) -> CurlResponse {
        let mut body: Vec<String> = vec![format!("client_id={PUBLIC_CLIENT_ID}")];
        body.extend(fields.iter().map(|(k, v)| {
            format!(
                "{}={}",
                super::http::urlencode(k),
                super::http::urlencode(v)
            )
        }));
        let body = body.join("&");
        self.curl(&[
            "--data-binary",
            &body,
            "-H",
            "content-type: application/x-www-form-urlencoded",
            &self.endpoint("/token"),
        ])
    }

    /// An authorization URL for the public client (code flow with PKCE S256).
    pub fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        code_challenge: &str,
        scope: &str,
    ) -> String {
        use super::http::urlencode as e;
        format!(
            "{}?response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
            self.endpoint("/auth"),
            e(PUBLIC_CLIENT_ID),
            e(redirect_uri),
            e(scope),
            e(state),
            e(nonce),
            e(code_challenge)
        )
    }

    /// Stops the provider now (drop does the same).
    pub fn stop(&mut self) {
        self.service.stop();
    }
}

fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

/// Makes sure `tests/idp/node_modules` is installed; runs `npm ci` once (under a file
/// lock, so parallel tests and test binaries wait for one another) when it is not.
/// Set NIX_CACHE_LOGIN_TEST_NPM_CI=0 to forbid that and fail instead.
pub fn ensure_node_modules() {
    let dir = idp_dir();
    let marker = dir
        .join("node_modules")
        .join("oidc-provider")
        .join("package.json");
    let marker2 = dir
        .join("node_modules")
        .join("playwright-core")
        .join("package.json");
    if marker.is_file() && marker2.is_file() {
        return;
    }
    if std::env::var("NIX_CACHE_LOGIN_TEST_NPM_CI").as_deref() == Ok("0") {
        panic!(
            "{} has no node_modules: run `npm ci --prefix tests/idp` first",
            dir.display()
        );
    }
    let lock_path = std::env::temp_dir().join("nix-cache-login-tests-npm-ci.lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .expect("open the npm ci lock file");
    lock.lock().expect("lock the npm ci lock file");
    if !(marker.is_file() && marker2.is_file()) {
        let out = output_with_timeout(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"),
            Duration::from_secs(300),
        );
        assert!(
            out.status.success(),
            "`npm ci` in {} failed:\n{}\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = lock.unlock();
}
