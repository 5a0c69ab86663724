//! A hostile OpenID provider: it answers each path with whatever the test scripts (escape
//! sequences, 64 KiB strings, numbers at the edges, deep nesting, duplicate keys, plain-http
//! endpoints, redirects). No real provider can be made to say these things, so this stand-in
//! of the fault harness says them. It reuses the fault server's request reader.
//!
//! One port speaks both TLS (with the test CA's certificate) and plain HTTP, told apart by the
//! first byte: so a discovery document of `https://127.0.0.1:PORT` can name
//! `http://127.0.0.1:PORT/...` endpoints, and every request that arrives in the clear is logged
//! as such, bytes and all, for the test to look for secrets in.
//!
//! `/auth` plays the user's browser login: it redirects to the `redirect_uri` with a code, the
//! `state` and the `iss` the test chose.

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::certs::TestCa;
use super::fault::{Request, fake_jwt, read_request};
use super::http::urldecode;

/// What one path answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(status: u16, value: &serde_json::Value) -> Answer {
        Answer::raw(status, "application/json", value.to_string().into_bytes())
    }

    /// A body as given, byte for byte (broken JSON, duplicate keys).
    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn redirect(status: u16, location: &str) -> Answer {
        Answer {
            status,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
        }
    }
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Seen {
    pub tls: bool,
    pub method: String,
    pub target: String,
    /// The head and body as text (lossy), for looking for secrets.
    pub text: String,
}

struct State {
    answers: HashMap<String, Answer>,
    /// The `iss` that `/auth` sends back (`None`: none).
    auth_iss: Option<String>,
    log: Vec<Seen>,
}

pub struct HostileProvider {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl HostileProvider {
    /// Listens on 127.0.0.1 with `ca`'s server certificate, answering as [`Self::reset`] says.
    pub fn start(ca: &TestCa) -> HostileProvider {
        let tls = Arc::new(tls_config(ca));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the hostile provider");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            answers: HashMap::new(),
            auth_iss: None,
            log: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (state, stop) = (state.clone(), stop.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (state, tls) = (state.clone(), tls.clone());
                    thread::spawn(move || serve(conn, &tls, &state));
                }
            })
        };
        let provider = HostileProvider {
            port,
            state,
            stop,
            accept: Some(accept),
        };
        provider.reset();
        provider
    }

    /// `https://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The same port in the clear: `http://127.0.0.1:PORT{path}`.
    pub fn plain_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A discovery document with every endpoint on this server, over https.
    pub fn healthy_discovery(&self) -> serde_json::Value {
        let issuer = self.issuer();
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "device_authorization_endpoint": format!("{issuer}/device"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "jwks_uri": format!("{issuer}/jwks"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "end_session_endpoint": format!("{issuer}/logout"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                "urn:ietf:params:oauth:grant-type:device_code"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        })
    }

    /// A token answer with an unsigned JWT access token valid for five minutes.
    pub fn healthy_token(&self) -> serde_json::Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        serde_json::json!({
            "access_token": fake_jwt(&serde_json::json!({
                "iss": self.issuer(), "sub": "hostile-user", "exp": now + 300, "iat": now,
            })),
            "token_type": "Bearer",
            "expires_in": 300,
            "refresh_token": "hostile-refresh-token",
        })
    }

    /// Healthy answers everywhere, `/auth` without `iss`, an empty log.
    pub fn reset(&self) {
        let healthy = [
            (
                "/.well-known/openid-configuration",
                Answer::json(200, &self.healthy_discovery()),
            ),
            ("/token", Answer::json(200, &self.healthy_token())),
            ("/jwks", Answer::json(200, &serde_json::json!({"keys": []}))),
            ("/revoke", Answer::raw(200, "text/plain", "")),
        ];
        let mut s = self.state.lock().unwrap();
        s.answers = healthy
            .into_iter()
            .map(|(path, answer)| (path.to_string(), answer))
            .collect();
        s.auth_iss = None;
        s.log.clear();
    }

    pub fn answer(&self, path: &str, answer: Answer) {
        self.state
            .lock()
            .unwrap()
            .answers
            .insert(path.into(), answer);
    }

    pub fn set_auth_iss(&self, iss: Option<&str>) {
        self.state.lock().unwrap().auth_iss = iss.map(str::to_string);
    }

    pub fn log(&self) -> Vec<Seen> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for HostileProvider {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn tls_config(ca: &TestCa) -> rustls::ServerConfig {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca.server_cert)
        .expect("read the server certificate")
        .map(|c| c.expect("a PEM certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(&ca.server_key).expect("read the server key");
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("the server certificate and key")
}

fn serve(conn: TcpStream, tls: &Arc<rustls::ServerConfig>, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let mut first = [0u8; 1];
    // A TLS connection starts with a handshake record, type 22.
    let is_tls = matches!(conn.peek(&mut first), Ok(1) if first[0] == 0x16);
    if is_tls {
        let Ok(session) = rustls::ServerConnection::new(tls.clone()) else {
            return;
        };
        let mut stream = rustls::StreamOwned::new(session, conn);
        if let Some(request) = read_request(&mut stream) {
            let answer = handle(&request, true, state);
            write_answer(&mut stream, &answer);
            stream.conn.send_close_notify();
            let _ = stream.flush();
            let _ = stream.sock.shutdown(Shutdown::Both);
        }
    } else {
        let mut stream = &conn;
        if let Some(request) = read_request(&mut stream) {
            let answer = handle(&request, false, state);
            write_answer(&mut stream, &answer);
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

fn handle(request: &Request, tls: bool, state: &Mutex<State>) -> Answer {
    let mut s = state.lock().unwrap();
    let head: String = request
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect();
    s.log.push(Seen {
        tls,
        method: request.method.clone(),
        target: request.target.clone(),
        text: format!(
            "{} {}\n{head}\n{}",
            request.method,
            request.target,
            String::from_utf8_lossy(&request.body)
        ),
    });
    if request.path == "/auth" {
        return auth_redirect(&request.target, s.auth_iss.as_deref());
    }
    s.answers
        .get(&request.path)
        .cloned()
        .unwrap_or_else(|| Answer::raw(404, "text/plain", "not found"))
}

/// The provider's side of a browser login: straight back to the client with a code.
fn auth_redirect(target: &str, iss: Option<&str>) -> Answer {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let param = |name: &str| {
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| urldecode(v))
        })
    };
    let (Some(redirect_uri), Some(state)) = (param("redirect_uri"), param("state")) else {
        return Answer::raw(400, "text/plain", "no redirect_uri or state");
    };
    let mut location = format!("{redirect_uri}?code=hostile-code&state={state}");
    if let Some(iss) = iss {
        location.push_str(&format!("&iss={}", super::http::urlencode(iss)));
    }
    Answer::redirect(302, &location)
}

fn write_answer(w: &mut impl Write, answer: &Answer) {
    let mut head = format!(
        "HTTP/1.1 {} Hostile\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = w.write_all(head.as_bytes());
    let _ = w.write_all(&answer.body);
    let _ = w.flush();
}
