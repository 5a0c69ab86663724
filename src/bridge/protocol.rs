//! The bridge's wire protocol: one JSON object per line each way, version 1.
//!
//! A request is `{"v":1,"op":"put","host":H,"token":T}`, `{"v":1,"op":"remove","host":H}` or
//! `{"v":1,"op":"status"}` (optionally with `"host"`). The answer is one line, `ok` true or
//! false, a human `message`, a machine `refused` code when false, and for `status` the
//! entries. Everything here is pure: the server and the client share it, and its parser
//! sees every byte a local user sends, so it is bounded and strict (unknown fields refused).

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// The longest request or answer line, newline included. A Keycloak token with many roles
/// is under 16 KiB; curl refuses longer netrc words anyway.
pub const MAX_LINE: usize = 64 * 1024;
/// Requests one connection may make: a client with several cache hosts sends one each.
pub const MAX_REQUESTS_PER_CONNECTION: usize = 8;
/// The longest host name the bridge looks at (DNS names are at most 253 bytes).
const MAX_HOST: usize = 300;

/// A request, checked for shape (not for permission: that is the server's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Put `token` into the daemon's netrc entry for `host`.
    Put { host: String, token: Secret },
    /// Take out the entry for `host` (only the caller's own, unless root).
    Remove { host: String },
    /// What the daemon's netrc holds for the caller: one host, or every served host.
    Status { host: Option<String> },
}

impl Request {
    pub fn op(&self) -> Op {
        match self {
            Request::Put { .. } => Op::Put,
            Request::Remove { .. } => Op::Remove,
            Request::Status { .. } => Op::Status,
        }
    }

    /// The line to send, newline included.
    pub fn to_line(&self) -> String {
        let (op, host, token) = match self {
            Request::Put { host, token } => (Op::Put, Some(host.as_str()), Some(token)),
            Request::Remove { host } => (Op::Remove, Some(host.as_str()), None),
            Request::Status { host } => (Op::Status, host.as_deref(), None),
        };
        let wire = WireRequest {
            v: VERSION,
            op,
            host: host.map(str::to_string),
            token: token.cloned(),
        };
        let mut line = serde_json::to_string(&wire).expect("a request serializes");
        line.push('\n');
        line
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Put,
    Remove,
    Status,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Remove => "remove",
            Op::Status => "status",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRequest {
    v: u32,
    op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<Secret>,
}

/// Why the bridge said no: a stable code for programs, beside the message for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// Not one JSON request of the expected shape.
    BadRequest,
    /// A line longer than [`MAX_LINE`].
    TooLarge,
    /// A line that did not arrive in time.
    Timeout,
    UnsupportedVersion,
    /// More than [`MAX_REQUESTS_PER_CONNECTION`] on one connection.
    TooManyRequests,
    /// The bridge serves too many connections at once.
    Busy,
    /// The calling user is neither root nor in `allowed_users`/`allowed_groups`.
    NotAllowed,
    /// The host is not one of the bridge's `cache_hosts`.
    HostNotServed,
    /// The token did not pass verification.
    BadToken,
    /// A remove of an entry another user put there.
    NotYours,
    /// The bridge could not do it (netrc not writable, issuer unreachable).
    Failed,
}

/// Who put the token the daemon's netrc holds for a host, as the caller may know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Holder {
    /// The caller put the token that is there.
    Caller,
    /// Another user did (on a shared machine the last login wins).
    OtherUser,
    /// An entry the bridge did not put there (or whose record is lost).
    Unrecorded,
    /// No entry.
    Nobody,
}

/// One host in a `status` answer. Never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryStatus {
    pub host: String,
    pub machine: String,
    pub holder: Holder,
    /// When the token there expires: told only to the user who put it, and to root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The token's subject: same rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The uid that put it: told to root only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

/// One answer line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub v: u32,
    pub ok: bool,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// Whether the daemon's netrc was changed (`put`, `remove`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed: bool,
    /// For `put`: when the token written expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<EntryStatus>,
}

impl Response {
    pub fn done(message: impl Into<String>) -> Response {
        Response {
            v: VERSION,
            ok: true,
            message: message.into(),
            refused: None,
            changed: false,
            expires_at: None,
            entries: Vec::new(),
        }
    }

    pub fn refuse(refusal: Refusal, message: impl Into<String>) -> Response {
        Response {
            ok: false,
            refused: Some(refusal),
            ..Response::done(message)
        }
    }

    /// The answer line, newline included; the message cleaned (one line, bounded).
    pub fn to_line(&self) -> String {
        let mut clean = self.clone();
        clean.message = crate::untrusted::clean(&clean.message);
        let mut line = serde_json::to_string(&clean).expect("a response serializes");
        line.push('\n');
        line
    }

    /// Reads an answer line (the client side); `None` for anything that is not one.
    pub fn parse(line: &[u8]) -> Option<Response> {
        if line.len() > MAX_LINE {
            return None;
        }
        serde_json::from_slice(line).ok()
    }
}

/// Parses one request line (without its newline). Every failure is a refusal with a
/// message that names what is wrong and never echoes the input (it may hold a token).
pub fn parse_request(line: &[u8]) -> Result<Request, Response> {
    if line.len() > MAX_LINE {
        return Err(Response::refuse(
            Refusal::TooLarge,
            format!("request longer than {MAX_LINE} bytes"),
        ));
    }
    let bad = |why: &str| Response::refuse(Refusal::BadRequest, format!("bad request: {why}"));
    let text = std::str::from_utf8(line).map_err(|_| bad("not UTF-8"))?;
    // The version first, so that a newer client gets "unsupported version" rather than a
    // complaint about a field this build does not know.
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| bad("not one JSON object"))?;
    let object = value.as_object().ok_or_else(|| bad("not a JSON object"))?;
    match object.get("v").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(Response::refuse(
                Refusal::UnsupportedVersion,
                format!("protocol version {v} is not supported (this bridge speaks {VERSION})"),
            ));
        }
        None => return Err(bad("no protocol version \"v\"")),
    }
    let wire: WireRequest = serde_json::from_value(value).map_err(|e| {
        // serde's message names the field or variant, never a value of ours.
        bad(&e.to_string())
    })?;
    let host = match wire.host {
        Some(h) => Some(check_host(&h).map_err(&bad)?),
        None => None,
    };
    let need_host = || host.clone().ok_or_else(|| bad("\"host\" is missing"));
    match wire.op {
        Op::Put => {
            let token = wire.token.ok_or_else(|| bad("\"token\" is missing"))?;
            Ok(Request::Put {
                host: need_host()?,
                token,
            })
        }
        Op::Remove | Op::Status if wire.token.is_some() => Err(bad("only \"put\" takes a token")),
        Op::Remove => Ok(Request::Remove { host: need_host()? }),
        Op::Status => Ok(Request::Status { host }),
    }
}

/// A host as a cache host may be written: a name or address, maybe a port. Lower-cased,
/// since host names compare case-insensitively (as curl matches netrc machines).
fn check_host(host: &str) -> Result<String, &'static str> {
    if host.is_empty() || host.len() > MAX_HOST {
        return Err("\"host\" is empty or too long");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:[]".contains(c);
    if !host.chars().all(allowed) {
        return Err("\"host\" is not a host name");
    }
    Ok(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refusal(line: &str) -> Refusal {
        parse_request(line.as_bytes()).unwrap_err().refused.unwrap()
    }

    #[test]
    fn parses_the_three_operations() {
        assert_eq!(
            parse_request(br#"{"v":1,"op":"put","host":"Cache.Example.com","token":"t"}"#).unwrap(),
            Request::Put {
                host: "cache.example.com".into(),
                token: Secret::new("t")
            }
        );
        assert_eq!(
            parse_request(br#"{"v":1,"op":"remove","host":"c:8443"}"#).unwrap(),
            Request::Remove {
                host: "c:8443".into()
            }
        );
        assert_eq!(
            parse_request(br#"{"v":1,"op":"status"}"#).unwrap(),
            Request::Status { host: None }
        );
    }

    #[test]
    fn refuses_what_is_not_a_request() {
        for line in [
            "",
            "garbage",
            "[1,2]",
            r#"{"op":"put","host":"c","token":"t"}"#,
            r#"{"v":"1","op":"status"}"#,
            r#"{"v":1,"op":"steal"}"#,
            r#"{"v":1,"op":"put","host":"c"}"#,
            r#"{"v":1,"op":"put","token":"t"}"#,
            r#"{"v":1,"op":"remove"}"#,
            r#"{"v":1,"op":"remove","host":"c","token":"t"}"#,
            r#"{"v":1,"op":"status","extra":true}"#,
            r#"{"v":1,"op":"put","host":"c d","token":"t"}"#,
            r#"{"v":1,"op":"put","host":"","token":"t"}"#,
            r#"{"v":1,"op":"put","host":"c","token":7}"#,
        ] {
            assert_eq!(refusal(line), Refusal::BadRequest, "{line}");
        }
        assert_eq!(
            refusal(r#"{"v":2,"op":"status"}"#),
            Refusal::UnsupportedVersion
        );
        let big = format!(
            r#"{{"v":1,"op":"put","host":"c","token":"{}"}}"#,
            "a".repeat(MAX_LINE)
        );
        assert_eq!(refusal(&big), Refusal::TooLarge);
        assert_eq!(
            parse_request(&[0xff, 0xfe]).unwrap_err().refused,
            Some(Refusal::BadRequest)
        );
    }

    #[test]
    fn a_refusal_never_echoes_the_token() {
        let line = r#"{"v":1,"op":"put","host":"c","token":"SECRET-TOKEN","x":1}"#;
        let answer = parse_request(line.as_bytes()).unwrap_err();
        assert!(
            !answer.to_line().contains("SECRET-TOKEN"),
            "{}",
            answer.to_line()
        );
    }

    #[test]
    fn answers_are_one_line_and_round_trip() {
        let mut r = Response::refuse(Refusal::NotYours, "line one\nline two\r");
        r.entries.push(EntryStatus {
            host: "c".into(),
            machine: "c".into(),
            holder: Holder::OtherUser,
            expires_at: None,
            subject: None,
            uid: None,
        });
        let line = r.to_line();
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with('\n'));
        let back = Response::parse(line.trim_end().as_bytes()).unwrap();
        assert_eq!(back.message, "line one\u{FFFD}line two\u{FFFD}");
        assert_eq!(back.refused, Some(Refusal::NotYours));
        assert_eq!(back.entries, r.entries);
    }

    fn any_request() -> impl Strategy<Value = Request> {
        let host = "[a-zA-Z0-9.-]{1,40}(:[0-9]{1,5})?";
        prop_oneof![
            (host, "[!-~]{1,200}").prop_map(|(h, t)| Request::Put {
                host: h,
                token: Secret::new(t)
            }),
            host.prop_map(|h| Request::Remove { host: h }),
            proptest::option::of(host).prop_map(|h| Request::Status { host: h }),
        ]
    }

    fn lowercased(r: Request) -> Request {
        match r {
            Request::Put { host, token } => Request::Put {
                host: host.to_ascii_lowercase(),
                token,
            },
            Request::Remove { host } => Request::Remove {
                host: host.to_ascii_lowercase(),
            },
            Request::Status { host } => Request::Status {
                host: host.map(|h| h.to_ascii_lowercase()),
            },
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_refusals_are_one_line(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Err(answer) = parse_request(&bytes) {
                prop_assert!(!answer.ok);
                prop_assert!(answer.refused.is_some());
                prop_assert_eq!(answer.to_line().matches('\n').count(), 1);
            }
        }

        #[test]
        fn what_the_client_sends_the_server_reads(request in any_request()) {
            let line = request.to_line();
            prop_assert!(line.len() < MAX_LINE);
            let parsed = parse_request(line.trim_end_matches('\n').as_bytes()).unwrap();
            prop_assert_eq!(parsed, lowercased(request));
        }
    }
}
