//! Everything a provider or a file says is hostile: the suite.
//!
//! A hostile provider (`support::hostile`, a stand-in: no real provider can be made to send
//! these) answers with escape sequences and 64 KiB strings in every string field, `http://`
//! endpoints in an https discovery document, numbers at the edges, deep nesting, duplicate
//! keys, a key set of hundreds of keys, a 10 000-character user code and redirects; hostile
//! files are a netrc of 100 000 entries, a token store that is a FIFO or a symlink to
//! /dev/zero, and a config of 1 MB strings. For each run: no panic, no control byte on stdout
//! or stderr (checked character by character), no line longer than [`MAX_LINE`], nothing sent
//! in the clear; a refusal exits 1 or 2 with one `error:` line naming what is at fault and
//! leaves the netrc and the token store byte for byte as they were. Each test prints its
//! figures.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use crate::support::fault::{
    leftovers, netrc_password, seed_netrc, seed_service_session, seed_user_session, snapshot_dir,
    store_path,
};
use crate::support::hostile::{Answer, HostileProvider};
use crate::support::{TestCa, TestEnv, describe};

const HOST: &str = "hostile.cache.test";
const SEED_ACCESS: &str = "seed-access-token-0123456789";
const SEED_REFRESH: &str = "seed-refresh-token-0123456789";
const CLIENT_SECRET: &str = "hostile-client-secret-0123456789";
const DISCOVERY: &str = "/.well-known/openid-configuration";

/// The longest line a run may print: cleaned provider text is at most 300 characters.
const MAX_LINE: usize = 4096;

/// Terminal escapes (clear screen, set title, C1 CSI), a carriage return and a NUL.
const ESCAPES: &str = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31m\r\u{0}\u{7f}";

/// Escapes around 64 KiB of text.
fn evil() -> String {
    format!("{ESCAPES}{}{ESCAPES}", "A".repeat(64 << 10))
}

/// `value` with every string in it (keys aside) replaced by `with(key)`.
fn replace_strings(value: &Value, with: &dyn Fn(&str) -> Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(_) => with(k),
                        other => replace_strings(other, with),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| match v {
                    Value::String(_) => json!(evil()),
                    other => replace_strings(other, with),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `doc`'s JSON text without `key`.
fn without(doc: &Value, key: &str) -> String {
    let mut doc = doc.clone();
    doc.as_object_mut().unwrap().remove(key);
    doc.to_string()
}

/// `depth` nested arrays.
fn deep(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Checks what a run printed, character by character; returns the stderr text.
fn assert_clean(case: &str, out: &Output) -> String {
    let mut stderr = String::new();
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8(bytes.clone())
            .unwrap_or_else(|_| panic!("{case}: {stream} is not UTF-8\n{}", describe(out)));
        if let Some((at, c)) = text
            .char_indices()
            .find(|(_, c)| c.is_control() && *c != '\n')
        {
            panic!(
                "{case}: {stream} has control character {c:?} at byte {at}\n{}",
                describe(out)
            );
        }
        let longest = text.lines().map(str::len).max().unwrap_or(0);
        assert!(
            longest <= MAX_LINE,
            "{case}: {stream} has a line of {longest} bytes\n{}",
            &text[..text.len().min(2000)]
        );
        if stream == "stderr" {
            stderr = text;
        }
    }
    assert!(!stderr.contains("panicked"), "{case}: panic\n{stderr}");
    stderr
}

/// The netrc and every file of the token store.
type Files = (Option<Vec<u8>>, BTreeMap<PathBuf, Vec<u8>>);

fn files(env: &TestEnv) -> Files {
    (
        fs::read(env.netrc_path()).ok(),
        snapshot_dir(&env.state_home()),
    )
}

/// What a run of the suite came to.
#[derive(Default)]
struct Figures {
    inputs: usize,
    runs: usize,
    refused: BTreeMap<i32, usize>,
    succeeded: usize,
    cleared: usize,
    printed_bytes: usize,
}

impl Figures {
    fn print(&self, suite: &str) {
        println!(
            "{suite}: {} hostile inputs, {} runs: {} refused with one line ({}), {} succeeded \
             with what the provider may say clamped or cleaned, {} cleared by logout; 0 panics, \
             {} bytes of output checked, no control character, nothing in the clear, every \
             refusal left the netrc and the store byte-identical",
            self.inputs,
            self.runs,
            self.refused.values().sum::<usize>(),
            self.refused
                .iter()
                .map(|(code, n)| format!("exit {code}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.succeeded,
            self.cleared,
            self.printed_bytes
        );
    }

    fn record(&mut self, out: &Output) {
        self.runs += 1;
        self.printed_bytes += out.stdout.len() + out.stderr.len();
    }

    /// Runs `args` and checks a refusal: exit 1 or 2, the last stderr line the one `error:`
    /// line, naming each of `needles`; files unchanged; nothing in the clear.
    fn refused(
        &mut self,
        case: &str,
        env: &TestEnv,
        provider: Option<&HostileProvider>,
        args: &[&str],
        needles: &[&str],
    ) -> String {
        let before = files(env);
        let out = env.cli(args);
        self.record(&out);
        let stderr = assert_clean(case, &out);
        let code = out.status.code().unwrap_or(-1);
        let last = stderr.trim_end().lines().last().unwrap_or("").to_string();
        // Exit 3 (log in again) is right only where the provider refused the refresh grant
        // itself, and then the line says which command helps.
        let login_needed = code == 3 && last.contains("the provider no longer accepts");
        assert!(
            code == 1 || code == 2 || login_needed,
            "{case}: exit {code}, expected 1 or 2\n{}",
            describe(&out)
        );
        *self.refused.entry(code).or_default() += 1;
        assert!(last.starts_with("error: "), "{case}: last line\n{stderr}");
        assert_eq!(
            stderr.matches("error:").count(),
            1,
            "{case}: one error line\n{stderr}"
        );
        for needle in needles {
            assert!(
                last.contains(needle),
                "{case}: should name {needle:?}: {last}"
            );
        }
        let after = files(env);
        assert!(after.0 == before.0, "{case}: the netrc changed");
        assert!(after.1 == before.1, "{case}: the token store changed");
        assert!(leftovers(env.dir()).is_empty(), "{case}: files left behind");
        if let Some(provider) = provider {
            assert_nothing_in_the_clear(case, provider);
        }
        println!("  {case}: exit {code}: {}", &last[..last.len().min(200)]);
        last
    }

    /// Runs `args` where refusing and going ahead are both right; checks whichever it was.
    fn either(&mut self, case: &str, env: &TestEnv, provider: &HostileProvider, args: &[&str]) {
        let before = files(env);
        let out = env.cli(args);
        if out.status.success() {
            self.record(&out);
            assert_clean(case, &out);
            assert_nothing_in_the_clear(case, provider);
            self.succeeded += 1;
            println!("  {case}: exit 0");
        } else {
            // Run again to check it as a refusal, from the same files.
            assert!(files(env) == before, "{case}: a failed run changed files");
            self.refused(case, env, Some(provider), args, &[]);
        }
    }

    /// Checks a run's output and exit `code`; returns its stderr and stdout.
    fn exits(&mut self, case: &str, out: &Output, code: i32) -> String {
        self.record(out);
        let stderr = assert_clean(case, out);
        assert_eq!(out.status.code(), Some(code), "{case}\n{}", describe(out));
        stderr + &String::from_utf8_lossy(&out.stdout)
    }

    /// Runs `status`, which reports a problem in its `Problem:` line (naming each of
    /// `needles`) and exits 1; files unchanged.
    fn status_reports(&mut self, case: &str, env: &TestEnv, needles: &[&str]) {
        let before = files(env);
        let out = env.cli(&["status"]);
        self.record(&out);
        assert_clean(case, &out);
        assert_eq!(out.status.code(), Some(1), "{case}\n{}", describe(&out));
        *self.refused.entry(1).or_default() += 1;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let problem = stdout
            .lines()
            .find(|l| l.starts_with("Problem:"))
            .unwrap_or_else(|| panic!("{case}: no Problem line\n{stdout}"));
        for needle in needles {
            assert!(
                problem.contains(needle),
                "{case}: should name {needle:?}: {problem}"
            );
        }
        assert!(files(env) == before, "{case}: files changed");
        println!("  {case}: exit 1: {problem}");
    }

    /// Runs `args` and checks a success: exit 0, clean output, nothing in the clear.
    fn succeeded(
        &mut self,
        case: &str,
        env: &TestEnv,
        provider: &HostileProvider,
        args: &[&str],
    ) -> String {
        let out = env.cli(args);
        self.record(&out);
        let stderr = assert_clean(case, &out);
        assert!(
            out.status.success(),
            "{case}: should succeed\n{}",
            describe(&out)
        );
        assert_nothing_in_the_clear(case, provider);
        self.succeeded += 1;
        println!("  {case}: exit 0");
        stderr + &String::from_utf8_lossy(&out.stdout)
    }
}

/// The provider is https: no request may have arrived in the clear (a plain-http endpoint,
/// a followed redirect), and none may carry a token or the client secret.
fn assert_nothing_in_the_clear(case: &str, provider: &HostileProvider) {
    let log = provider.log();
    let Some(seen) = log.iter().find(|s| !s.tls) else {
        return;
    };
    // Name the worst first: a secret on the wire.
    for secret in [
        SEED_ACCESS,
        SEED_REFRESH,
        CLIENT_SECRET,
        "hostile-refresh-token",
    ] {
        assert!(
            !seen.text.contains(secret),
            "{case}: {secret} sent in the clear"
        );
    }
    panic!(
        "{case}: a request in the clear: {} {}",
        seen.method, seen.target
    );
}

/// A provider, its CA, and a user sandbox with a session whose access token has expired.
struct Lab {
    _ca_dir: tempfile::TempDir,
    ca: TestCa,
    provider: HostileProvider,
}

impl Lab {
    fn start() -> Lab {
        let ca_dir = tempfile::tempdir().unwrap();
        let ca = TestCa::generate(ca_dir.path());
        let provider = HostileProvider::start(&ca);
        Lab {
            _ca_dir: ca_dir,
            ca,
            provider,
        }
    }

    fn env(&self) -> TestEnv {
        let mut env =
            TestEnv::for_issuer(&self.provider.issuer(), "nix-cache-login", &self.ca.ca_cert);
        env.update_config(|c| c.cache_host = Some(HOST.into()));
        env.set_env("NIX_CACHE_LOGIN_HTTP_TIMEOUT", "5");
        // Every run meets the document the case serves (the provider says no-store).
        env.set_env("NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL", "0");
        env
    }

    /// A user's sandbox: netrc with the seeded access token, a session whose access token
    /// expired (so `refresh` asks the provider).
    fn user(&self) -> TestEnv {
        let env = self.env();
        reseed_user(&env);
        env
    }

    /// A service account's sandbox after one healthy `service-account`.
    fn service(&self) -> TestEnv {
        let env = self
            .env()
            .with_client_secret("hostile-service", CLIENT_SECRET);
        seed_service_session(&env, HOST);
        env
    }
}

fn reseed_user(env: &TestEnv) {
    seed_netrc(&env.netrc_path(), HOST, Some(SEED_ACCESS));
    seed_user_session(env, &env.config_path(), SEED_ACCESS, SEED_REFRESH);
}

/// Edits the stored session's JSON.
fn edit_store(env: &TestEnv, edit: impl FnOnce(&mut Value)) {
    let path = store_path(env, &env.config_path());
    let mut json: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    edit(&mut json);
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
}

#[test]
fn hostile_discovery_documents_are_refused_in_one_line() {
    let lab = Lab::start();
    let p = &lab.provider;
    let (user, service) = (lab.user(), lab.service());
    let mut figures = Figures::default();
    let healthy = p.healthy_discovery();
    let issuer = p.issuer();

    let mut cases: Vec<(String, Answer, Vec<String>)> = vec![
        (
            "every string field is escapes + 64 KiB (more than 1 MiB in all)".into(),
            Answer::json(200, &replace_strings(&healthy, &|_| json!(evil()))),
            vec!["larger than 1 MiB".into()],
        ),
        (
            "duplicate token_endpoint keys, https first, http last".into(),
            Answer::raw(
                200,
                "application/json",
                without(&healthy, "token_endpoint").replacen(
                    '{',
                    &format!(
                        "{{\"token_endpoint\":\"{issuer}/token\",\"token_endpoint\":\"{}\",",
                        p.plain_url("/token")
                    ),
                    1,
                ),
            ),
            vec!["token_endpoint".into(), "not https".into()],
        ),
        (
            "duplicate issuer keys, the right one first".into(),
            Answer::raw(
                200,
                "application/json",
                healthy
                    .to_string()
                    .replacen('{', "{\"issuer\":\"x\",", 1)
                    .replacen('}', ",\"issuer\":\"https://impostor.example\"}", 1),
            ),
            vec!["issuer".into()],
        ),
        (
            "100 000 levels of nesting".into(),
            Answer::raw(
                200,
                "application/json",
                format!("{{\"issuer\":{}}}", deep(100_000)),
            ),
            vec!["not valid JSON".into()],
        ),
        (
            "a number out of range (1e400)".into(),
            Answer::raw(
                200,
                "application/json",
                healthy
                    .to_string()
                    .replacen('{', "{\"request_uri_parameter_supported\":1e400,", 1),
            ),
            vec![DISCOVERY.into(), "not valid JSON".into()],
        ),
        (
            "numbers at the edges (u64::MAX + 1, -1, 0.5) where flags belong".into(),
            Answer::raw(
                200,
                "application/json",
                healthy.to_string().replacen(
                    '{',
                    "{\"request_uri_parameter_supported\":18446744073709551616,\
                     \"authorization_response_iss_parameter_supported\":-1,\
                     \"claims_parameter_supported\":0.5,",
                    1,
                ),
            ),
            vec![],
        ),
        (
            "a redirect to a plain-http copy (never followed)".into(),
            Answer::redirect(302, &p.plain_url(DISCOVERY)),
            vec!["302".into()],
        ),
    ];
    for key in [
        "token_endpoint",
        "revocation_endpoint",
        "device_authorization_endpoint",
        "jwks_uri",
        "authorization_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
    ] {
        let mut doc = healthy.clone();
        doc[key] = json!(p.plain_url("/x"));
        cases.push((
            format!("{key} is http:// in an https discovery document"),
            Answer::json(200, &doc),
            vec![key.into(), "not https".into()],
        ));
    }

    // One string field at a time: the issuer and the endpoints are refused; what the tool
    // never uses or shows may be anything.
    for key in healthy.as_object().unwrap().keys() {
        let mut doc = healthy.clone();
        doc[key] =
            replace_strings(&json!({ key: doc[key].clone() }), &|_| json!(evil()))[key].take();
        let needles: Vec<String> = match key.as_str() {
            "issuer" => vec!["issuer".into()],
            k if k.ends_with("_endpoint") || k == "jwks_uri" => {
                vec![k.into(), "bytes long".into()]
            }
            _ => vec![],
        };
        cases.push((
            format!("{key} is escapes + 64 KiB"),
            Answer::json(200, &doc),
            needles,
        ));
    }

    for (name, answer, needles) in &cases {
        figures.inputs += 1;
        if needles.is_empty() {
            for (env, command) in [(&user, "refresh"), (&service, "service-account")] {
                p.reset();
                p.answer(DISCOVERY, answer.clone());
                figures.either(&format!("{command}: {name}"), env, p, &[command]);
            }
            reseed_user(&user);
            continue;
        }
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        for (env, command) in [(&user, "refresh"), (&service, "service-account")] {
            p.reset();
            p.answer(DISCOVERY, answer.clone());
            let case = format!("{command}: {name}");
            figures.refused(&case, env, Some(p), &[command], &needles);
            let token_requests = p.log().iter().filter(|s| s.target == "/token").count();
            assert_eq!(token_requests, 0, "{case}: a token request was made");
        }
        // logout revokes nothing at a refused document, and still removes what is local.
        p.reset();
        p.answer(DISCOVERY, answer.clone());
        figures.exits(&format!("logout: {name}"), &user.cli(&["logout"]), 1);
        assert_nothing_in_the_clear(name, p);
        assert_eq!(netrc_password(&user.netrc_path(), HOST), None);
        figures.cleared += 1;
        reseed_user(&user);
        // doctor shows the same refusal, cleaned.
        figures.exits(&format!("doctor: {name}"), &user.cli(&["doctor"]), 1);
    }
    figures.print("hostile discovery documents");
}

#[test]
fn hostile_token_answers_are_refused_or_clamped() {
    let lab = Lab::start();
    let p = &lab.provider;
    let (user, service) = (lab.user(), lab.service());
    let mut figures = Figures::default();
    let mut token = p.healthy_token();
    // Without a refresh token in a broken answer, nothing may be kept from it.
    token.as_object_mut().unwrap().remove("refresh_token");

    let mut refusals: Vec<(String, Answer, &str)> = vec![
        (
            "every string field is escapes + 64 KiB".into(),
            Answer::json(200, &replace_strings(&token, &|_| json!(evil()))),
            "/token",
        ),
        (
            "an OAuth error whose every field is escapes + 64 KiB".into(),
            Answer::json(
                400,
                &json!({"error": evil(), "error_description": evil(), "error_uri": evil()}),
            ),
            "the provider refused",
        ),
        (
            "100 000 levels of nesting".into(),
            Answer::raw(
                200,
                "application/json",
                format!("{{\"access_token\":{}}}", deep(100_000)),
            ),
            "access_token",
        ),
        (
            "duplicate access_token keys".into(),
            Answer::raw(
                200,
                "application/json",
                token
                    .to_string()
                    .replacen('{', "{\"access_token\":\"first\",", 1),
            ),
            "/token",
        ),
        (
            "a 307 redirect to a plain-http token endpoint (never followed)".into(),
            Answer::redirect(307, &p.plain_url("/token")),
            "307",
        ),
    ];
    for field in ["expires_in", "refresh_expires_in"] {
        for raw in ["-1", "0.5", "\"300\"", "18446744073709551616", "1e400"] {
            let body = token
                .to_string()
                .replacen('{', &format!("{{\"{field}\":{raw},"), 1);
            refusals.push((
                format!("{field}: {raw}"),
                Answer::raw(200, "application/json", body),
                "/token",
            ));
        }
    }
    for (name, answer, needle) in &refusals {
        figures.inputs += 1;
        for (env, command) in [(&user, "refresh"), (&service, "service-account")] {
            p.reset();
            p.answer("/token", answer.clone());
            figures.refused(
                &format!("{command}: {name}"),
                env,
                Some(p),
                &[command],
                &[needle],
            );
        }
    }

    // What is merely odd is taken, clamped: a lifetime of u64::MAX is ten years, not an
    // overflow into the past (or a panic).
    for field in ["expires_in", "refresh_expires_in"] {
        figures.inputs += 1;
        let mut answer = p.healthy_token();
        answer[field] = json!(u64::MAX);
        p.reset();
        p.answer("/token", Answer::json(200, &answer));
        reseed_user(&user);
        figures.succeeded(
            &format!("refresh: {field}: u64::MAX"),
            &user,
            p,
            &["refresh"],
        );
        let status = figures.succeeded(
            &format!("status after {field}: u64::MAX"),
            &user,
            p,
            &["status"],
        );
        let year = clamped_year(&store_path(&user, &user.config_path()), field);
        assert!(
            year < 2050,
            "{field}: stored expiry in year {year}\n{status}"
        );
    }

    // Keycloak's offline token: no fixed end, yet not forever.
    figures.inputs += 1;
    let mut offline = p.healthy_token();
    offline["refresh_expires_in"] = json!(0);
    p.reset();
    p.answer("/token", Answer::json(200, &offline));
    reseed_user(&user);
    figures.succeeded(
        "refresh: refresh_expires_in: 0 (offline token)",
        &user,
        p,
        &["refresh"],
    );
    let status = figures.succeeded("status of an offline token", &user, p, &["status"]);
    let line = status
        .lines()
        .find(|l| l.starts_with("Refresh token:"))
        .unwrap_or_else(|| panic!("no refresh token line\n{status}"));
    assert!(
        line.contains("idle timeout") && !line.contains("no expiry"),
        "status must not promise forever: {line}"
    );
    // doctor fails at the cache, which does not exist; the session line is what is checked.
    let text = figures.exits("doctor of an offline token", &user.cli(&["doctor"]), 1);
    assert!(text.contains("idle timeout"), "doctor: {text}");

    // A 64 KiB access token made of plain characters is written, with one warning, not two.
    figures.inputs += 1;
    let mut long = p.healthy_token();
    long["access_token"] = json!("A".repeat(64 << 10));
    p.reset();
    p.answer("/token", Answer::json(200, &long));
    reseed_user(&user);
    let stderr = figures.succeeded("refresh: a 64 KiB access token", &user, p, &["refresh"]);
    assert_eq!(
        stderr
            .matches("the access token is 65536 bytes long")
            .count(),
        1,
        "the warning once\n{stderr}"
    );
    figures.print("hostile token answers");
}

/// The year of `field`'s stored expiry (`expires_in` → the access token's).
fn clamped_year(store: &Path, field: &str) -> i64 {
    let json: Value = serde_json::from_slice(&fs::read(store).unwrap()).unwrap();
    let key = if field == "expires_in" {
        "access_token_expires_at"
    } else {
        "refresh_token_expires_at"
    };
    let at = json[key]
        .as_i64()
        .unwrap_or_else(|| panic!("no {key} in {json}"));
    1970 + at / 31_556_952
}

#[test]
fn hostile_device_and_login_answers_print_nothing_raw() {
    let lab = Lab::start();
    let p = &lab.provider;
    let user = lab.user();
    let mut figures = Figures::default();
    let device = |interval: Value, expires_in: Value| {
        json!({
            "device_code": evil(),
            "user_code": format!("{ESCAPES}{}", "U".repeat(10_000)),
            "verification_uri": format!("{}/device?{ESCAPES}{}", p.issuer(), "v".repeat(64 << 10)),
            "verification_uri_complete": evil(),
            "expires_in": expires_in,
            "interval": interval,
        })
    };
    let hundreds_of_keys = json!({"keys": (0..500).map(|i| json!({
        "kty": "RSA", "kid": format!("{ESCAPES}{i}"), "use": "sig", "alg": "RS256",
        "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
        "e": "AQAB",
    })).collect::<Vec<_>>()});

    let cases: Vec<(&str, Answer, Answer, Answer, &str)> = vec![
        (
            "a 10 000-character user code, escapes in every link, interval and lifetime u64::MAX, then slow_down",
            Answer::json(200, &device(json!(u64::MAX), json!(u64::MAX))),
            Answer::json(400, &json!({"error": "slow_down"})),
            Answer::json(200, &json!({"keys": []})),
            "not approved within",
        ),
        (
            "the same, then access_denied with a hostile description",
            Answer::json(200, &device(json!(0), json!(600))),
            Answer::json(
                400,
                &json!({"error": "access_denied", "error_description": evil()}),
            ),
            Answer::json(200, &json!({"keys": []})),
            "denied",
        ),
        (
            "a device answer that is an OAuth error of escapes + 64 KiB",
            Answer::json(400, &json!({"error": evil(), "error_description": evil()})),
            Answer::json(200, &p.healthy_token()),
            Answer::json(200, &json!({"keys": []})),
            "the provider refused",
        ),
        (
            "a key set of 500 keys with hostile ids, then access_denied",
            Answer::json(200, &device(json!(1), json!(600))),
            Answer::json(400, &json!({"error": "access_denied"})),
            Answer::json(200, &hundreds_of_keys),
            "denied",
        ),
        (
            "a key set nested 100 000 deep",
            Answer::json(200, &device(json!(1), json!(600))),
            Answer::json(400, &json!({"error": "access_denied"})),
            Answer::raw(
                200,
                "application/json",
                format!("{{\"keys\":{}}}", deep(100_000)),
            ),
            "not valid JSON",
        ),
    ];
    for (name, device_answer, token_answer, jwks, needle) in cases {
        figures.inputs += 1;
        p.reset();
        p.answer("/device", device_answer);
        p.answer("/token", token_answer);
        p.answer("/jwks", jwks);
        figures.refused(
            &format!("login --device: {name}"),
            &user,
            Some(p),
            &["login", "--device", "--timeout", "4s"],
            &[needle],
        );
    }

    // RFC 9207: the browser login's callback `iss`. A curl "browser" follows the provider's
    // redirect back to the CLI's listener.
    let browser = user.dir().join("curl-browser");
    fs::write(
        &browser,
        format!(
            "#!/bin/sh\nexec curl -sS -L --max-time 20 --cacert {} -o /dev/null \"$1\"\n",
            lab.ca.ca_cert.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&browser, fs::Permissions::from_mode(0o755)).unwrap();
    let mut user = user;
    user.set_env("BROWSER", browser.to_str().unwrap());
    let mut promises_iss = p.healthy_discovery();
    promises_iss["authorization_response_iss_parameter_supported"] = json!(true);
    let impostor = format!("https://impostor.example/{ESCAPES}");
    let right = p.issuer();
    let cases: Vec<(&str, Option<&str>, &Value, &str)> = vec![
        (
            "iss names another issuer",
            Some("https://impostor.example"),
            &promises_iss,
            "came from issuer",
        ),
        (
            "iss with escapes",
            Some(&impostor),
            &promises_iss,
            "came from issuer",
        ),
        (
            "no iss where the provider promised it",
            None,
            &promises_iss,
            "no iss parameter",
        ),
        // The right iss passes the check; the stand-in then sends no ID token, which the
        // browser flow requires.
        ("the right iss", Some(&right), &promises_iss, "no ID token"),
    ];
    for (name, iss, discovery, needle) in cases {
        figures.inputs += 1;
        p.reset();
        p.answer(DISCOVERY, Answer::json(200, discovery));
        p.set_auth_iss(iss);
        let last = figures.refused(
            &format!("login --browser: {name}"),
            &user,
            Some(p),
            &["login", "--browser", "--timeout", "20s"],
            &[needle],
        );
        let exchanged = p.log().iter().any(|s| s.target == "/token");
        assert_eq!(
            exchanged,
            needle == "no ID token",
            "{name}: code exchanged? {last}"
        );
    }
    figures.print("hostile device and login answers");
}

#[test]
fn hostile_names_and_revocation_answers_print_nothing_raw() {
    let lab = Lab::start();
    let p = &lab.provider;
    let user = lab.user();
    let mut figures = Figures::default();

    // A name and subject from the provider's claims, as stored by an earlier login.
    figures.inputs += 1;
    edit_store(&user, |s| {
        s["username"] = json!(evil());
        s["subject"] = json!(evil());
        s["access_token_expires_at"] = json!(i64::MAX);
    });
    fs::write(
        user.netrc_path(),
        format!("machine {HOST} login nix-cache-login password {SEED_ACCESS}\n"),
    )
    .unwrap();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["doctor"],
        &["doctor", "--json"],
    ] {
        // doctor fails at the cache, which does not exist; the names are what is checked.
        let code = if args[0] == "doctor" { 1 } else { 0 };
        let text = figures.exits(
            &format!("{args:?} with a hostile user name"),
            &user.cli(args),
            code,
        );
        assert!(text.contains("AAAA"), "{args:?} shows the name\n{text}");
        assert!(!text.contains(&"A".repeat(1000)), "{args:?} bounded");
    }

    // Revocation answers an error of escapes + 64 KiB: logout says so in one line.
    figures.inputs += 1;
    reseed_user(&user);
    p.reset();
    p.answer(
        "/revoke",
        Answer::json(400, &json!({"error": evil(), "error_description": evil()})),
    );
    let text = figures.exits(
        "logout: a hostile revocation error",
        &user.cli(&["logout"]),
        1,
    );
    assert_eq!(text.matches("error:").count(), 1, "{text}");
    figures.cleared += 1;
    figures.print("hostile names and revocation answers");
}

#[test]
fn hostile_environment_and_rotated_secrets() {
    let lab = Lab::start();
    let p = &lab.provider;
    let mut figures = Figures::default();

    // $NIX_CACHE_LOGIN_HTTP_TIMEOUT at the edges: a config error, not an abort.
    let mut user = lab.user();
    for value in ["inf", "1e20", "NaN", "-1", "\u{1b}[2J"] {
        figures.inputs += 1;
        user.set_env("NIX_CACHE_LOGIN_HTTP_TIMEOUT", value);
        figures.refused(
            &format!("refresh: NIX_CACHE_LOGIN_HTTP_TIMEOUT={value:?}"),
            &user,
            Some(p),
            &["refresh"],
            &["NIX_CACHE_LOGIN_HTTP_TIMEOUT"],
        );
    }

    // A service account whose secret is rotated away still gets its valid stored token.
    figures.inputs += 1;
    let service = lab.service();
    let secret = service.config().client_secret_file.clone().unwrap();
    fs::remove_file(&secret).unwrap();
    let stdout = figures.succeeded("token with the secret file gone", &service, p, &["token"]);
    assert!(stdout.contains("eyJ"), "the stored token: {stdout}");
    // A new token needs the secret.
    let out = service.cli(&["token", "--min-valid", "1h"]);
    figures.exits("token --min-valid 1h with the secret gone", &out, 2);

    // A secret file readable by others is warned about once, not twice.
    fs::write(&secret, format!("{CLIENT_SECRET}\n")).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = figures.succeeded(
        "service-account with a 0644 secret",
        &service,
        p,
        &["service-account"],
    );
    assert_eq!(stderr.matches("chmod 600").count(), 1, "{stderr}");
    figures.print("hostile environment");
}

#[test]
fn hostile_files_are_refused_before_a_token_is_spent() {
    let lab = Lab::start();
    let p = &lab.provider;
    let user = lab.user();
    let service = lab.service();
    let mut figures = Figures::default();

    // A netrc of 100 000 entries (7 MB), ours among them.
    figures.inputs += 1;
    for env in [&user, &service] {
        let mut text = String::with_capacity(8 << 20);
        for i in 0..100_000 {
            text.push_str(&format!(
                "machine host-{i:06}.example.org login someone password 0123456789abcdef{i}\n"
            ));
        }
        text.push_str(&format!(
            "machine {HOST} login nix-cache-login password {SEED_ACCESS}\n"
        ));
        fs::write(env.netrc_path(), text).unwrap();
        fs::set_permissions(env.netrc_path(), fs::Permissions::from_mode(0o600)).unwrap();
    }
    let netrc_case = "a netrc of 100 000 entries";
    figures.status_reports(&format!("status: {netrc_case}"), &user, &["netrc", "MiB"]);
    for (env, args) in [
        (&user, &["refresh"][..]),
        (&service, &["service-account"]),
        (&user, &["logout"]),
    ] {
        p.reset();
        figures.refused(
            &format!("{args:?}: {netrc_case}"),
            env,
            Some(p),
            args,
            &["netrc", "MiB"],
        );
        assert!(
            p.log().iter().all(|s| s.target != "/token"),
            "{args:?}: a token was spent"
        );
    }
    figures.exits(&format!("doctor: {netrc_case}"), &user.cli(&["doctor"]), 1);
    reseed_user(&user);

    // A token store that is a FIFO, or a symlink to /dev/zero.
    let store = store_path(&user, &user.config_path());
    for (name, make) in [
        ("a token store that is a FIFO", &make_fifo as &dyn Fn(&Path)),
        (
            "a token store that is a symlink to /dev/zero",
            &|path: &Path| std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        ),
    ] {
        figures.inputs += 1;
        fs::remove_file(&store).unwrap();
        make(&store);
        figures.status_reports(&format!("status: {name}"), &user, &["not a regular file"]);
        for args in [&["refresh"][..], &["token"], &["login", "--device"]] {
            p.reset();
            figures.refused(
                &format!("{args:?}: {name}"),
                &user,
                Some(p),
                args,
                &["not a regular file"],
            );
        }
        figures.exits(&format!("doctor: {name}"), &user.cli(&["doctor"]), 1);
        // logout clears it away, as it does a corrupt store.
        figures.exits(&format!("logout: {name}"), &user.cli(&["logout"]), 0);
        assert!(fs::symlink_metadata(&store).is_err(), "{name}: still there");
        assert!(fs::metadata("/dev/zero").is_ok());
        figures.cleared += 1;
        reseed_user(&user);
    }

    // A config of 1 MB strings (with escapes) in every key.
    figures.inputs += 1;
    let mb = format!("{ESCAPES}{}", "c".repeat(1 << 20));
    let toml_string = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut config = String::new();
    for key in [
        "issuer",
        "client_id",
        "cache_host",
        "netrc_path",
        "netrc_login",
        "client_secret_file",
    ] {
        config.push_str(&format!("{key} = {}\n", toml_string(&mb)));
    }
    config.push_str(&format!("scopes = [{}]\n", toml_string(&mb)));
    let path = user.dir().join("huge.toml");
    fs::write(&path, &config).unwrap();
    let path = path.to_str().unwrap();
    for args in [
        &["status"][..],
        &["refresh"],
        &["token"],
        &["logout"],
        &["doctor"],
    ] {
        let mut full = vec!["--config", path];
        full.extend_from_slice(args);
        let mut cmd = user.command_raw(&full);
        let out =
            crate::support::proc::output_with_timeout(&mut cmd, std::time::Duration::from_secs(60));
        // doctor reports a broken config as a failed check (exit 1), the rest exit 2.
        let code = if args == ["doctor"] { 1 } else { 2 };
        let text = figures.exits(&format!("{args:?}: a config of 1 MB strings"), &out, code);
        assert!(text.contains("huge.toml") && text.contains("KiB"), "{text}");
        *figures.refused.entry(code).or_default() += 1;
    }
    // Under the size bound, every key's value is quoted cleaned and cut.
    figures.inputs += 1;
    let long = format!("{ESCAPES}{}", "d".repeat(100 << 10));
    for key in ["issuer", "cache_host", "netrc_path", "netrc_login"] {
        let mut cfg = user.config().to_toml();
        cfg = cfg
            .lines()
            .filter(|l| !l.starts_with(key))
            .collect::<Vec<_>>()
            .join("\n");
        cfg.push_str(&format!("\n{key} = {}\n", toml_string(&long)));
        fs::write(user.dir().join("long.toml"), cfg).unwrap();
        let long_path = user.dir().join("long.toml");
        let mut cmd = user.command_raw(&["--config", long_path.to_str().unwrap(), "refresh"]);
        let out =
            crate::support::proc::output_with_timeout(&mut cmd, std::time::Duration::from_secs(60));
        let text = figures.exits(&format!("refresh: a 100 KiB {key}"), &out, 2);
        assert!(text.contains(key), "{key}: {text}");
        *figures.refused.entry(2).or_default() += 1;
    }
    figures.print("hostile files");
}

fn make_fifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo");
}
