//! The one HTTP client of the tool (the provider, the cache probe of `doctor`), and its
//! adapter for the `oauth2`/`openidconnect` crates.
//!
//! One reqwest client means one TLS stack and one trust store: the system's CA store plus
//! `SSL_CERT_FILE`/`SSL_CERT_DIR` (private CAs are the rule in companies), with proxies from
//! `HTTPS_PROXY`/`NO_PROXY`.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Once;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::Environment;

/// Overrides the total timeout of one HTTP request, in seconds.
pub const ENV_HTTP_TIMEOUT: &str = "NIX_CACHE_LOGIN_HTTP_TIMEOUT";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle connection is kept for reuse. The requests of one run follow each other
/// within milliseconds; but a connection kept while a person logs in outlives the server's
/// keep-alive (Node's default is 5 s), and reusing it races the server's close: the token
/// request is reset (seen in the login tests under load).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    /// The https proxy the environment names (reqwest uses it), without credentials: for
    /// telling a refused tunnel.
    proxy: Option<String>,
}

impl HttpClient {
    /// The client for this run; `$NIX_CACHE_LOGIN_HTTP_TIMEOUT` (read through `env`) sets its
    /// timeout.
    pub fn new(env: &dyn Environment) -> Result<HttpClient> {
        install_crypto_provider();
        let timeout = match env.var(ENV_HTTP_TIMEOUT) {
            Some(v) => {
                Duration::from_secs_f64(v.parse::<f64>().ok().filter(|s| *s > 0.0).with_context(
                    || {
                        format!(
                            "${ENV_HTTP_TIMEOUT} must be a positive number of seconds, got {v:?}"
                        )
                    },
                )?)
            }
            None => DEFAULT_TIMEOUT,
        };
        let inner = reqwest::Client::builder()
            .user_agent(concat!("nix-cache-login/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            // OAuth endpoints must not redirect; following one could send credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot set up the HTTP client (TLS trust store)")?;
        Ok(HttpClient {
            inner,
            proxy: proxy_in_use(env),
        })
    }

    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// reqwest's Display stops at "error sending request"; the useful part (refused, timed
    /// out, unknown issuer, a proxy's refusal) is further down the source chain.
    pub fn describe_error(&self, e: &reqwest::Error) -> String {
        describe_reqwest_error(e, self.proxy.as_deref())
    }

    async fn execute(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let response = self
            .inner
            .request(parts.method, &url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| HttpError::new(&url, e, self.proxy.as_deref()))?;
        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let status = response.status();
        let body = read_body(&url, response).await?;
        // oauth2 reads every answer but 200 as an OAuth error response (RFC 6749 5.2); when
        // it is none (an HTML error page, an empty body) it reports a JSON parse failure or
        // an empty response and the status is lost. Report such an answer by its status.
        // A 5xx is the server failing even when it words it as an OAuth error
        // (`server_error`, `temporarily_unavailable`): not a refusal of the grant.
        if status != http::StatusCode::OK && (status.is_server_error() || !is_oauth_error(&body)) {
            return Err(HttpError::status(&url, status));
        }
        builder
            .body(body)
            .map_err(|e| HttpError::new_other(&url, e.to_string()))
    }
}

/// The most an answer of the provider may hold. Discovery documents, key sets and token
/// responses are a few KiB; a bigger answer is refused rather than read into memory for as
/// long as the timeout allows.
pub const MAX_BODY: usize = 1 << 20;

/// Reads the body of `response` (from `url`), refusing one larger than [`MAX_BODY`].
pub async fn read_body(url: &str, mut response: reqwest::Response) -> Result<Vec<u8>, HttpError> {
    let too_big = || {
        HttpError::new_other(
            url,
            format!("the answer is larger than {} MiB", MAX_BODY >> 20),
        )
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| HttpError::new(url, e, None))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport failure, described by the URL (without its query, which may carry a code)
/// and the cause, never a request or response body.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {cause}")]
pub struct HttpError {
    pub url: String,
    pub cause: String,
    pub is_connect: bool,
    pub is_timeout: bool,
    /// The HTTP status of an answer that was neither a success nor an OAuth error.
    pub status: Option<u16>,
}

impl HttpError {
    fn new(url: &str, e: reqwest::Error, proxy: Option<&str>) -> HttpError {
        HttpError {
            url: strip_query(url),
            cause: describe_reqwest_error(&e, proxy),
            is_connect: e.is_connect(),
            is_timeout: e.is_timeout(),
            status: None,
        }
    }

    fn new_other(url: &str, cause: String) -> HttpError {
        HttpError {
            url: strip_query(url),
            cause,
            is_connect: false,
            is_timeout: false,
            status: None,
        }
    }

    fn status(url: &str, status: http::StatusCode) -> HttpError {
        HttpError {
            status: Some(status.as_u16()),
            ..HttpError::new_other(url, format!("HTTP {status}"))
        }
    }
}

/// Whether `host` (a host name, or an IP address with or without brackets) is this machine:
/// the only kind of host this tool talks plain http to (local test providers and caches).
pub fn is_loopback(host: &str) -> bool {
    let ip = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost") || ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `body` is an OAuth error response: a JSON object with a string `error`.
fn is_oauth_error(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("error").is_some_and(serde_json::Value::is_string))
}

pub fn strip_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_string()
}

/// See [`HttpClient::describe_error`]; `proxy` is the one in use, if known.
fn describe_reqwest_error(e: &reqwest::Error, proxy: Option<&str>) -> String {
    if e.is_timeout() {
        return "timed out".to_string();
    }
    let mut deepest = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        deepest = s.to_string();
        source = s.source();
    }
    // reqwest's own message repeats the URL; the caller names it already.
    let deepest = match deepest.find(" for url (") {
        Some(i) => deepest[..i].to_string(),
        None => deepest,
    };
    if e.is_connect() && deepest.contains("tunnel error") {
        // hyper-util says only "tunnel error: unsuccessful" when the proxy answers CONNECT
        // with anything but 200 (a 403 from a proxy that does not let this client out).
        format!(
            "cannot connect: the proxy {} refused to open a tunnel (check HTTPS_PROXY and NO_PROXY)",
            proxy.unwrap_or("from the environment")
        )
    } else if e.is_connect() {
        format!("cannot connect: {deepest}")
    } else {
        deepest
    }
}

/// The https proxy `env` names, without any user name or password in it.
fn proxy_in_use(env: &dyn Environment) -> Option<String> {
    let value = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .find_map(|name| env.var(name))?;
    let mut url = url::Url::parse(&value).ok()?;
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(url.as_str().trim_end_matches('/').to_string())
}

impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // ring: smaller than aws-lc-rs and needs no cmake; fails only if one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_error_bodies_are_told_from_error_pages() {
        assert!(is_oauth_error(br#"{"error":"invalid_grant"}"#));
        assert!(is_oauth_error(
            br#"{"error":"invalid_client","error_description":"x"}"#
        ));
        assert!(!is_oauth_error(b"<html>Internal Server Error</html>"));
        assert!(!is_oauth_error(b""));
        assert!(!is_oauth_error(br#"{"message":"down"}"#));
        assert!(!is_oauth_error(br#"{"error":{"code":500}}"#));
    }

    #[test]
    fn status_errors_name_the_url_without_query_and_the_status() {
        let e = HttpError::status(
            "https://sso/token?code=secret",
            http::StatusCode::BAD_GATEWAY,
        );
        assert_eq!(e.to_string(), "https://sso/token: HTTP 502 Bad Gateway");
        assert_eq!(e.status, Some(502));
    }

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1", "localhost", "::1", "127.1.2.3", "LOCALHOST"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["cache.example.com", "10.0.0.1", "localhost.example.com"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
