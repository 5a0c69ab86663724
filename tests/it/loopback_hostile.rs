//! The loopback callback listener against requests a browser would never send: forged and
//! stale callbacks, replays, oversized and malformed requests, other methods and paths.
//!
//! The client is hand-written HTTP/1.1 over `std::net::TcpStream` so that every byte of the
//! hostile requests is under the test's control.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix_cache_login::oidc::loopback::{AuthorizationCode, CallbackError, CallbackListener};

const STATE: &str = "Zm9yZ2VkLXN0YXRlLWlzLWhhcmQ";
const IO_TIMEOUT: Duration = Duration::from_secs(10);

type Outcome = Result<AuthorizationCode, CallbackError>;

/// Runs `bind(0)` + `wait` on a current-thread runtime of its own, as the CLI does, and hands
/// back the listener's address at once.
fn start(timeout: Duration) -> (SocketAddr, thread::JoinHandle<Outcome>) {
    let (addr_tx, addr_rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = CallbackListener::bind(0).await.unwrap();
            addr_tx.send(listener.local_addr()).unwrap();
            listener.wait(STATE, timeout).await
        })
    });
    (addr_rx.recv().unwrap(), handle)
}

struct Response {
    status: u16,
    head: String,
    body: String,
}

/// Sends `raw` as-is and reads until the server closes the connection.
fn send(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(raw)?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head:?}"));
    Ok(Response {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    })
}

fn request(addr: SocketAddr, method: &str, target: &str) -> Response {
    let raw = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    send(addr, raw.as_bytes()).unwrap()
}

fn get(addr: SocketAddr, target: &str) -> Response {
    request(addr, "GET", target)
}

/// The callback the provider would send for this login.
fn finish(addr: SocketAddr, waiter: thread::JoinHandle<Outcome>) -> String {
    let response = get(addr, &format!("/callback?code=real-code&state={STATE}"));
    assert_eq!(response.status, 200, "{}", response.body);
    let code = waiter.join().unwrap().expect("the login should succeed");
    code.expose().to_owned()
}

#[test]
fn wrong_state_is_rejected_and_the_right_one_still_succeeds() {
    let (addr, waiter) = start(IO_TIMEOUT);
    let forged = get(addr, "/callback?code=attacker-code&state=guess");
    assert_eq!(forged.status, 400);
    assert!(forged.body.contains("rejected"), "{}", forged.body);
    assert!(!forged.body.contains("attacker-code"));

    // Same length as the real state, differing only in the last character.
    let near_miss = format!("{}X", &STATE[..STATE.len() - 1]);
    let forged = get(
        addr,
        &format!("/callback?code=attacker-code&state={near_miss}"),
    );
    assert_eq!(forged.status, 400);

    assert_eq!(finish(addr, waiter), "real-code");
}

#[test]
fn missing_empty_or_repeated_state_is_rejected() {
    let (addr, waiter) = start(IO_TIMEOUT);
    for target in [
        "/callback?code=attacker-code".to_owned(),
        "/callback?code=attacker-code&state=".to_owned(),
        "/callback".to_owned(),
        format!("/callback?code=attacker-code&state=guess&state={STATE}"),
        format!("/callback?code=attacker-code&code=other&state={STATE}"),
        format!("/callback?state={STATE}"),
    ] {
        let response = get(addr, &target);
        assert_eq!(response.status, 400, "{target}");
    }
    assert_eq!(finish(addr, waiter), "real-code");
}

#[test]
fn error_with_wrong_state_does_not_end_the_login() {
    let (addr, waiter) = start(IO_TIMEOUT);
    let response = get(addr, "/callback?error=access_denied&state=guess");
    assert_eq!(response.status, 400);
    assert_eq!(finish(addr, waiter), "real-code");
}

#[test]
fn denial_ends_the_wait_and_the_page_escapes_the_provider_text() {
    let (addr, waiter) = start(IO_TIMEOUT);
    let target = format!(
        "/callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state={STATE}"
    );
    let response = get(addr, &target);
    assert!(response.body.contains("Login failed"), "{}", response.body);
    assert!(
        response
            .body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert!(!response.body.contains("<script>"));
    assert!(
        response
            .head
            .contains("content-security-policy: default-src 'none'")
    );

    match waiter.join().unwrap() {
        Err(CallbackError::Denied { error, description }) => {
            assert_eq!(error, "access_denied");
            assert_eq!(description.as_deref(), Some("<script>alert(1)</script>"));
        }
        other => panic!("expected Denied, got {other:?}"),
    }
}

#[test]
fn a_code_is_accepted_only_once() {
    let (addr, waiter) = start(IO_TIMEOUT);
    // Two pipelined requests on one keep-alive connection: the second is already in the server
    // when the first ends the login.
    let callback =
        format!("GET /callback?code=real-code&state={STATE} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let raw = format!("{callback}{callback}");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut text = String::new();
    // A reset after the first response is as good as a refusal.
    let _ = stream.read_to_string(&mut text);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 1, "{text}");

    assert_eq!(waiter.join().unwrap().unwrap().expose(), "real-code");

    // wait() has returned, so the port is closed and a replay finds no listener.
    match send(
        addr,
        format!("GET /callback?code=real-code&state={STATE} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    ) {
        Err(_) => {}
        Ok(response) => assert_ne!(response.status, 200),
    }
}

#[test]
fn huge_requests_are_refused_without_harm() {
    let (addr, waiter) = start(IO_TIMEOUT);
    let huge_query = "a".repeat(1 << 20);
    for raw in [
        format!("GET /callback?code={huge_query}&state={STATE} HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
        format!("GET /callback HTTP/1.1\r\nHost: {addr}\r\nX-Filler: {huge_query}\r\n\r\n"),
    ] {
        // The server may reset the connection while the request is still being written.
        if let Ok(response) = send(addr, raw.as_bytes()) {
            assert_ne!(response.status, 200);
        }
    }
    // Just under the longest URI the `http` crate takes (64 KiB), so it reaches the handler.
    let big = get(
        addr,
        &format!("/callback?code={}&state=guess", "b".repeat(60_000)),
    );
    assert_eq!(big.status, 400);

    assert_eq!(finish(addr, waiter), "real-code");
}

#[test]
fn other_paths_are_not_found() {
    let (addr, waiter) = start(IO_TIMEOUT);
    let query = format!("?code=attacker-code&state={STATE}");
    for path in [
        "/",
        "/../callback",
        "/./callback",
        "//callback",
        "/callback/",
        "/callback/..",
        "/callback/../../etc/passwd",
        "/%2e%2e/callback",
        "/%2E%2E%2Fcallback",
        "/callback%2f..%2f..%2fetc%2fpasswd",
        "/%63allback",
        "/CALLBACK",
        "/callback%00",
        "/etc/passwd",
    ] {
        let response = get(addr, &format!("{path}{query}"));
        assert!(
            matches!(response.status, 400 | 404),
            "{path} answered {}",
            response.status
        );
        assert!(response.head.contains("cache-control: no-store"), "{path}");
    }
    // Not even a valid request, but it must not bring anything down either.
    let _ = send(addr, b"GET ../../etc/passwd HTTP/1.1\r\n\r\n");

    assert_eq!(finish(addr, waiter), "real-code");
}

#[test]
fn only_get_is_allowed() {
    let (addr, waiter) = start(IO_TIMEOUT);
    let target = format!("/callback?code=attacker-code&state={STATE}");
    for method in ["POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"] {
        let response = request(addr, method, &target);
        assert_eq!(response.status, 405, "{method}");
        assert!(response.head.contains("allow: get"), "{method}");
    }
    let post_with_body = format!(
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 33\r\n\r\n\
         code=attacker-code&state=whatever"
    );
    assert_eq!(send(addr, post_with_body.as_bytes()).unwrap().status, 405);

    assert_eq!(finish(addr, waiter), "real-code");
}

#[test]
fn times_out() {
    // Closed means free to bind again. A connect cannot tell: the other tests of this binary
    // start listeners on ephemeral ports too, and one may take the freed port at once; so a
    // taken port is tried again with a new listener, and only a port that stays taken fails.
    for _ in 0..3 {
        let started = Instant::now();
        let (addr, waiter) = start(Duration::from_millis(300));
        match waiter.join().unwrap() {
            Err(CallbackError::TimedOut(after)) => assert_eq!(after, Duration::from_millis(300)),
            other => panic!("expected TimedOut, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        if std::net::TcpListener::bind(addr).is_ok() {
            return;
        }
    }
    panic!("the listener's port stayed taken after three timed-out logins");
}

#[test]
fn a_stalled_connection_does_not_hold_up_the_login() {
    let (addr, waiter) = start(IO_TIMEOUT);
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(b"GET /callback?code=x&sta").unwrap();

    let started = Instant::now();
    assert_eq!(finish(addr, waiter), "real-code");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(stalled);
}

#[test]
fn listens_on_loopback_only() {
    let (addr, waiter) = start(IO_TIMEOUT);
    assert_eq!(addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));

    let others = non_loopback_ipv4_addresses();
    if others.is_empty() {
        eprintln!(
            "note: this machine has no non-loopback IPv4 address; only the bound address was checked"
        );
    }
    for ip in others {
        let target = SocketAddr::new(IpAddr::V4(ip), addr.port());
        assert!(
            TcpStream::connect_timeout(&target, Duration::from_secs(2)).is_err(),
            "the callback listener is reachable on {target}"
        );
    }
    assert_eq!(finish(addr, waiter), "real-code");
}

#[test]
fn a_fixed_port_in_use_is_named_in_the_error() {
    let squatter = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = squatter.local_addr().unwrap().port();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = match runtime.block_on(CallbackListener::bind(port)) {
        Ok(_) => panic!("bound port {port} although it is in use"),
        Err(err) => format!("{err:#}"),
    };
    assert!(
        err.contains(&format!("callback port {port} on 127.0.0.1 is in use")),
        "{err}"
    );
}

/// This machine's IPv4 addresses outside 127.0.0.0/8, from `ip -4 -o addr`, or from the
/// kernel's routing table when `ip` is not installed.
fn non_loopback_ipv4_addresses() -> Vec<Ipv4Addr> {
    let mut found: Vec<Ipv4Addr> = match std::process::Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
    {
        // "2: eth0    inet 192.0.2.2/24 brd ... scope global eth0"
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                words.find(|w| *w == "inet")?;
                words.next()?.split('/').next()?.parse().ok()
            })
            .collect(),
        // fib_trie lists each local address on the line before "/32 host LOCAL".
        _ => {
            let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
            let lines: Vec<&str> = trie.lines().collect();
            lines
                .windows(2)
                .filter(|pair| pair[1].contains("/32 host LOCAL"))
                .filter_map(|pair| pair[0].trim().trim_start_matches("|-- ").parse().ok())
                .collect()
        }
    };
    found.retain(|ip| !ip.is_loopback() && !ip.is_unspecified());
    found.sort();
    found.dedup();
    found
}
