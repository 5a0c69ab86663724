//! The loopback redirect target of the browser login (RFC 8252 §7.3).
//!
//! A tiny HTTP server on `127.0.0.1` that waits for the identity provider to send the browser
//! back to `/callback` with the authorization code. Anything else that reaches the port (other
//! local processes, web pages probing localhost, stale tabs) is answered and ignored: only a
//! callback carrying the expected `state` ends the wait.

use std::future::IntoFuture;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::secret::Secret;
use crate::untrusted;

const CALLBACK_PATH: &str = "/callback";

/// How long the server may keep finishing in-flight responses (the browser's result page) once
/// the outcome is known. Bounded so that a stalled connection cannot hold up the login.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The authorization code from a successful callback. A secret: it can be exchanged for tokens.
#[derive(Debug)]
pub struct AuthorizationCode(Secret);

impl AuthorizationCode {
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn into_secret(self) -> Secret {
        self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The provider sent the browser back with `error=` (for example the user declined).
    #[error("the identity provider refused the login: {}", denial_text(error, description.as_deref()))]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error(
        "no login callback arrived within {} seconds; run the login again and finish it in the browser",
        .0.as_secs()
    )]
    TimedOut(Duration),
    #[error("the login callback server failed: {0}")]
    Server(String),
}

/// Listens on `127.0.0.1` for the browser's redirect back from the identity provider.
pub struct CallbackListener {
    listener: TcpListener,
    local_addr: SocketAddr,
    label: Option<String>,
}

impl CallbackListener {
    /// Binds `127.0.0.1:port`; port 0 picks any free port. Only the IPv4 loopback address is
    /// used, so nothing outside this machine can reach the callback.
    pub async fn bind(port: u16) -> anyhow::Result<Self> {
        let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(listener) => listener,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => anyhow::bail!(
                "callback port {port} on 127.0.0.1 is in use; is another login running?"
            ),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot listen on 127.0.0.1:{port} for the login callback")
                });
            }
        };
        let local_addr = listener
            .local_addr()
            .context("cannot read the address of the login callback listener")?;
        Ok(CallbackListener {
            listener,
            local_addr,
            label: None,
        })
    }

    /// Names what the user is logging in to on the success page ("Logged in to <label>").
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:PORT/callback`, the redirect URI to register and send.
    pub fn redirect_uri(&self) -> String {
        format!("http://{}{CALLBACK_PATH}", self.local_addr)
    }

    /// Serves until a callback with `expected_state` arrives (carrying a code or an `error=`),
    /// or `timeout` passes; then shuts the server down, so the port is closed on return and a
    /// replayed callback finds nobody listening.
    pub async fn wait(
        self,
        expected_state: &str,
        timeout: Duration,
    ) -> Result<AuthorizationCode, CallbackError> {
        // An empty state would match an empty `state=` and so turn off the CSRF protection.
        if expected_state.is_empty() {
            return Err(CallbackError::Server(
                "refusing to wait for a callback without a state".into(),
            ));
        }
        let (done_tx, done_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            expected_state: expected_state.to_owned(),
            label: self.label,
            done: Mutex::new(Some(done_tx)),
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = axum::serve(self.listener, router(shared))
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .into_future();
        let mut server = std::pin::pin!(server);

        let result = tokio::select! {
            // A callback that lands together with the deadline still counts.
            biased;
            outcome = done_rx => match outcome {
                Ok(Outcome::Code(code)) => Ok(AuthorizationCode(code)),
                Ok(Outcome::Denied { error, description }) => {
                    Err(CallbackError::Denied { error, description })
                }
                Err(_) => Err(CallbackError::Server("the callback handler went away".into())),
            },
            () = tokio::time::sleep(timeout) => Err(CallbackError::TimedOut(timeout)),
            served = &mut server => {
                // The server future is finished, so it must not be polled again below.
                let why = match served {
                    Ok(()) => "it stopped on its own".to_owned(),
                    Err(e) => e.to_string(),
                };
                return Err(CallbackError::Server(why));
            }
        };

        let _ = stop_tx.send(());
        if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
            tracing::debug!("callback server shut down with a connection still open");
        }
        result
    }
}

enum Outcome {
    Code(Secret),
    Denied {
        error: String,
        description: Option<String>,
    },
}

struct Shared {
    expected_state: String,
    label: Option<String>,
    /// Taken by the first accepted callback, so any later one (a replayed code, a second tab)
    /// is refused rather than racing the first.
    done: Mutex<Option<oneshot::Sender<Outcome>>>,
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        // Only the browser's navigation, a GET, may finish the login: the user must see the
        // result page. HEAD would otherwise be routed to the GET handler.
        .route(CALLBACK_PATH, get(callback).head(method_not_allowed))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::map_response(security_headers))
        .with_state(shared)
}

async fn callback(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let Some(params) = CallbackParams::parse(&uri) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Login request rejected",
            "The callback parameters were malformed or repeated.",
        );
    };
    let state_matches = params
        .state
        .as_deref()
        .is_some_and(|state| constant_time_eq(state.as_bytes(), shared.expected_state.as_bytes()));
    tracing::debug!("callback received, state matches: {state_matches}");
    if !state_matches {
        return page(
            StatusCode::BAD_REQUEST,
            "Login request rejected",
            "This request does not belong to the login in progress, so it was ignored. \
             If you are logging in, finish the login in the tab the command opened.",
        );
    }

    let (outcome, title, message) = match params {
        CallbackParams {
            error: Some(error),
            error_description,
            ..
        } => {
            // They end up in the terminal and in our error chain.
            let error = untrusted::clean(&error);
            let description = error_description.as_deref().map(untrusted::clean);
            let message = format!(
                "The identity provider refused the login: {}. You can close this tab.",
                denial_text(&error, description.as_deref())
            );
            let outcome = Outcome::Denied { error, description };
            (outcome, "Login failed", message)
        }
        CallbackParams {
            code: Some(code), ..
        } if !code.is_empty() => {
            let message = match &shared.label {
                Some(label) => format!("Logged in to {label}. You can close this tab."),
                None => "Logged in. You can close this tab and return to the terminal.".to_owned(),
            };
            (Outcome::Code(Secret::new(code)), "Logged in", message)
        }
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "Login request rejected",
                "The callback carried neither an authorization code nor an error.",
            );
        }
    };

    let done = shared
        .done
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let Some(done) = done else {
        return page(
            StatusCode::GONE,
            "Login already finished",
            "This login has already been completed; its link cannot be used again.",
        );
    };
    if done.send(outcome).is_err() {
        // wait() gave up (timed out) while this request was in flight.
        return page(
            StatusCode::GONE,
            "Login no longer waiting",
            "The command stopped waiting for this login. Run it again.",
        );
    }
    page(StatusCode::OK, title, &message)
}

async fn not_found() -> Response {
    page(StatusCode::NOT_FOUND, "Not found", "There is nothing here.")
}

async fn method_not_allowed() -> Response {
    let mut response = page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "Only the browser's redirect (a GET request) is accepted here.",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    response
}

/// Applied to every response the router produces, including its 404 and 405 pages.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Builds the whole page from plain text, escaping every piece, so that no caller can put
/// provider-controlled text into the HTML unescaped.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let title = escape_html(title);
    let message = escape_html(message);
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:4em auto;padding:0 1em}}</style>\
         </head><body><h1>{title}</h1><p>{message}</p></body></html>\n"
    );
    (status, body).into_response()
}

#[derive(Default)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl CallbackParams {
    /// `None` if the query does not decode or repeats a parameter we read: RFC 6749 §3.1
    /// forbids repeats, and which copy to believe would be a guess an attacker could steer.
    fn parse(uri: &Uri) -> Option<Self> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
        let mut params = CallbackParams::default();
        for (key, value) in pairs {
            let slot = match key.as_str() {
                "code" => &mut params.code,
                "state" => &mut params.state,
                "error" => &mut params.error,
                "error_description" => &mut params.error_description,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return None;
            }
        }
        Some(params)
    }
}

/// Equal-length inputs take the same time whatever their content, so the response time does
/// not reveal how much of a guessed state was right. The length itself is not secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The provider's words, cleaned: they are printed to a terminal, where an escape sequence
/// could rewrite what the user sees.
fn denial_text(error: &str, description: Option<&str>) -> String {
    match description {
        Some(description) => format!(
            "{} ({})",
            untrusted::clean(error),
            untrusted::clean(description)
        ),
        None => untrusted::clean(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn state_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn params_are_decoded_and_repeats_refused() {
        let uri: Uri = "/callback?code=a%2Bb&state=s+1&iss=x".parse().unwrap();
        let p = CallbackParams::parse(&uri).unwrap();
        assert_eq!(p.code.as_deref(), Some("a+b"));
        assert_eq!(p.state.as_deref(), Some("s 1"));
        assert!(p.error.is_none());

        let uri: Uri = "/callback?code=a&state=s&state=t".parse().unwrap();
        assert!(CallbackParams::parse(&uri).is_none());
        let uri: Uri = "/callback".parse().unwrap();
        assert!(CallbackParams::parse(&uri).unwrap().state.is_none());
    }

    #[test]
    fn denial_text_neutralises_terminal_escapes() {
        let text = denial_text("access_denied", Some("no\x1b[2Jway"));
        assert_eq!(text, "access_denied (no\u{FFFD}[2Jway)");
    }

    #[test]
    fn code_is_redacted_in_debug() {
        let code = AuthorizationCode(Secret::new("the-code"));
        assert!(!format!("{code:?}").contains("the-code"));
        assert_eq!(code.expose(), "the-code");
    }

    fn get(addr: SocketAddr, target: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[tokio::test(flavor = "current_thread")]
    async fn serves_one_callback_with_headers_and_label() {
        let listener = CallbackListener::bind(0)
            .await
            .unwrap()
            .with_label("cache.example.org");
        let addr = listener.local_addr();
        assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
        assert_eq!(
            listener.redirect_uri(),
            format!("http://127.0.0.1:{}/callback", addr.port())
        );
        let client = tokio::task::spawn_blocking(move || {
            (
                get(addr, "/callback?code=c0de&state=wrong"),
                get(addr, "/callback?code=c0de&state=st4te"),
            )
        });
        let code = listener
            .wait("st4te", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(code.expose(), "c0de");

        let (rejected, accepted) = client.await.unwrap();
        assert!(rejected.starts_with("HTTP/1.1 400"), "{rejected}");
        assert!(accepted.starts_with("HTTP/1.1 200"), "{accepted}");
        assert!(accepted.contains("Logged in to cache.example.org"));
        assert!(!accepted.contains("c0de") && !accepted.contains("st4te"));
        let headers = accepted.to_ascii_lowercase();
        for expected in [
            "cache-control: no-store",
            "referrer-policy: no-referrer",
            "content-type: text/html; charset=utf-8",
            "content-security-policy: default-src 'none'; style-src 'unsafe-inline'",
        ] {
            assert!(headers.contains(expected), "missing {expected}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn empty_expected_state_is_refused() {
        let listener = CallbackListener::bind(0).await.unwrap();
        let err = listener.wait("", Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, CallbackError::Server(_)));
    }
}
