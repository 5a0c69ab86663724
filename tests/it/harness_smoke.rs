//! Guards the product tests against passing for the wrong reason: what they take on trust
//! from the harness is shown here once, with curl and not the CLI. The provider really
//! refuses a wrong secret, a replayed code and a reused refresh token; `Idp::is_active` really
//! says no to a tampered token; the request log counts requests and holds no secret; each
//! browser mode really approves, denies or forges against the real login pages.

use crate::support;
use std::time::Duration;

use crate::support::http::{query_param, urlencode};
use crate::support::{BrowserHook, BrowserMode, CallbackServer, Idp, IdpOptions};
use serde_json::Value;

const CALLBACK_WAIT: Duration = Duration::from_secs(60);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

/// Asserts the claims an access token for the cache must carry.
fn assert_access_token_claims(idp: &Idp, token: &str, sub: &str, client_id: &str, ttl: i64) {
    let header = support::http::jwt_header(token);
    assert_eq!(header["alg"], "RS256", "{header}");
    assert_eq!(header["typ"], "at+jwt", "{header}");
    let claims = support::jwt_claims(token);
    assert_eq!(claims["iss"], idp.issuer(), "{claims}");
    assert_eq!(claims["aud"], idp.resource(), "{claims}");
    assert_eq!(claims["sub"], sub, "{claims}");
    assert_eq!(claims["client_id"], client_id, "{claims}");
    assert!(claims["jti"].is_string(), "{claims}");
    let exp = claims["exp"].as_i64().expect("exp");
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(exp - iat, ttl, "{claims}");
    assert!(
        (exp - now()).abs() <= ttl + 30,
        "exp {exp} is not near now: {claims}"
    );
}

#[test]
fn provider_discovery_client_credentials_and_introspection() {
    let idp = Idp::start(IdpOptions::default());
    assert!(
        idp.issuer().starts_with("https://127.0.0.1:"),
        "{}",
        idp.issuer()
    );

    let d = idp.discovery();
    assert_eq!(d["issuer"], idp.issuer());
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "device_authorization_endpoint",
        "end_session_endpoint",
    ] {
        assert!(
            str_of(&d, key).starts_with(idp.issuer()),
            "{key} not under the issuer: {d}"
        );
    }
    let methods = d["code_challenge_methods_supported"].as_array().unwrap();
    assert!(methods.iter().any(|m| m == "S256"), "{d}");
    assert!(!methods.iter().any(|m| m == "plain"), "{d}");
    let grants = d["grant_types_supported"].as_array().unwrap();
    for g in [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        assert!(grants.iter().any(|x| x == g), "{g} missing: {d}");
    }

    // client_credentials with client_secret_basic: a JWT for the cache.
    let t = idp.client_credentials();
    assert_eq!(t["token_type"], "Bearer", "{t}");
    assert_eq!(t["expires_in"], 60, "{t}");
    assert!(t.get("refresh_token").is_none(), "{t}");
    let at = str_of(&t, "access_token").to_owned();
    assert_access_token_claims(
        &idp,
        &at,
        idp.server_client_id(),
        idp.server_client_id(),
        60,
    );
    assert_eq!(
        support::jwt_claims(&at)["preferred_username"],
        "service-account-nix-cache-server"
    );

    // client_secret_post works for both confidential clients.
    for client in [idp.server_client_id(), idp.server_post_client_id()] {
        let body = format!(
            "grant_type=client_credentials&client_id={client}&client_secret={}",
            urlencode(idp.server_client_secret())
        );
        let r = idp.curl(&["--data-binary", &body, &idp.endpoint("/token")]);
        assert_eq!(r.status, 200, "{client}: {}", r.body);
        assert!(support::jwt_claims(str_of(&r.json(), "access_token"))["exp"].is_i64());
    }
    // A wrong secret is refused.
    let r = idp.curl(&[
        "-u",
        &format!("{}:wrong", idp.server_client_id()),
        "-d",
        "grant_type=client_credentials",
        &idp.endpoint("/token"),
    ]);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_client");

    // The JWT is active per the harness's introspection.
    let i = idp.introspect(&at);
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["client_id"], idp.server_client_id(), "{i}");
    // A tampered JWT is not active.
    let mut tampered = at.clone();
    tampered.push('A');
    assert_eq!(idp.introspect(&tampered)["active"], false);
    assert_eq!(idp.introspect("not-a-token")["active"], false);

    // The request log counts what happened, without secrets.
    let log = idp.request_log();
    assert!(
        idp.count_requests("POST", "/token", &["grant_type=client_credentials"]) >= 3,
        "{log}"
    );
    assert!(
        idp.count_requests("GET", "/.well-known/openid-configuration", &[]) >= 1,
        "{log}"
    );
    assert!(!log.contains(idp.server_client_secret()), "{log}");
    assert!(!log.contains(&at), "{log}");
}

/// The code flow by hand: hook in chromium, loopback listener, code exchange with PKCE,
/// then refresh-token rotation and reuse detection.
#[test]
fn browser_hook_code_flow_and_refresh_rotation() {
    let idp = Idp::start(IdpOptions::default());
    let cb = CallbackServer::start();
    let (verifier, challenge) = support::pkce_pair();
    let state = support::random_token(16);
    let nonce = support::random_token(16);
    let url = idp.authorization_url(&cb.redirect_uri(), &state, &nonce, &challenge, "openid");

    let hook = BrowserHook::new(BrowserMode::Approve).user("bob");
    let out = hook.run(&url);
    assert!(
        out.status.success(),
        "hook failed: {}\n{}",
        support::describe(&out),
        hook.log()
    );
    let target = cb
        .next_callback(CALLBACK_WAIT)
        .expect("the listener got no callback");
    assert_eq!(
        query_param(&target, "state").as_deref(),
        Some(state.as_str()),
        "{target}"
    );
    assert_eq!(
        query_param(&target, "iss").as_deref(),
        Some(idp.issuer()),
        "{target}"
    );
    let code = query_param(&target, "code").expect("code in the callback");
    let result = hook.result().expect("hook result");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["callback"]["status"], 200, "{result}");
    assert!(
        hook.log().contains("BLOCKED https://fonts.googleapis.com"),
        "{}",
        hook.log()
    );
    assert!(!hook.log().contains(&code), "the hook logged the code");

    // Exchange the code with the PKCE verifier.
    let r = idp.token_request_public(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("code_verifier", &verifier),
        ("redirect_uri", &cb.redirect_uri()),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    let at1 = str_of(&t, "access_token").to_owned();
    let rt1 = str_of(&t, "refresh_token").to_owned();
    assert_access_token_claims(&idp, &at1, "bob", idp.public_client_id(), 60);
    assert_eq!(support::jwt_claims(&at1)["preferred_username"], "bob");
    let id = support::jwt_claims(str_of(&t, "id_token"));
    assert_eq!(id["sub"], "bob", "{id}");
    assert_eq!(id["nonce"], nonce.as_str(), "{id}");
    assert_eq!(id["aud"], idp.public_client_id(), "{id}");
    assert!(rt1.split('.').count() == 1, "refresh tokens are opaque");

    assert!(idp.is_active(&at1));
    let i = idp.introspect(&rt1);
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["sub"], "bob", "{i}");

    // Refresh: a new access token and a new (rotated) refresh token.
    let r = idp.token_request_public(&[("grant_type", "refresh_token"), ("refresh_token", &rt1)]);
    assert_eq!(r.status, 200, "{}", r.body);
    let t2 = r.json();
    let at2 = str_of(&t2, "access_token").to_owned();
    let rt2 = str_of(&t2, "refresh_token").to_owned();
    assert_ne!(rt1, rt2, "refresh token not rotated");
    assert_ne!(at1, at2);
    assert_access_token_claims(&idp, &at2, "bob", idp.public_client_id(), 60);
    assert!(idp.is_active(&rt2));
    assert!(!idp.is_active(&rt1), "a spent refresh token is not active");

    // Reusing the spent refresh token fails and revokes the whole grant.
    let r = idp.token_request_public(&[("grant_type", "refresh_token"), ("refresh_token", &rt1)]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_grant", "{}", r.body);
    let r = idp.token_request_public(&[("grant_type", "refresh_token"), ("refresh_token", &rt2)]);
    assert_eq!(
        r.status, 400,
        "the grant survived reuse detection: {}",
        r.body
    );
    assert!(!idp.is_active(&rt2));
    assert!(
        !idp.is_active(&at2),
        "access tokens of a revoked grant are inactive"
    );
    assert!(!idp.is_active(&at1));

    let log = idp.request_log();
    assert_eq!(
        idp.count_requests("POST", "/token", &["grant_type=refresh_token"]),
        3,
        "{log}"
    );
    assert_eq!(
        idp.count_requests(
            "POST",
            "/token",
            &["grant_type=refresh_token", "error=invalid_grant"]
        ),
        2,
        "{log}"
    );
    assert!(!log.contains(&rt1) && !log.contains(&code), "{log}");
}

/// Device flow with the hook, then revocation of the refresh token.
#[test]
fn browser_hook_device_flow_and_revocation() {
    let idp = Idp::start(IdpOptions::default());
    let r = idp.curl(&[
        "-d",
        &format!("client_id={}&scope=openid", idp.public_client_id()),
        &idp.endpoint("/device/auth"),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json();
    assert_eq!(d["interval"], 1, "{d}");
    let device_code = str_of(&d, "device_code").to_owned();
    let poll = || {
        idp.token_request_public(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", &device_code),
        ])
    };
    let r = poll();
    assert_eq!(r.json()["error"], "authorization_pending", "{}", r.body);
    let r = poll();
    assert_eq!(
        r.json()["error"],
        "slow_down",
        "polling faster than interval: {}",
        r.body
    );

    // verification_uri + the code typed in.
    let hook = BrowserHook::new(BrowserMode::Device)
        .user("carol")
        .user_code(str_of(&d, "user_code"));
    let out = hook.run(str_of(&d, "verification_uri"));
    assert!(
        out.status.success(),
        "hook failed: {}\n{}",
        support::describe(&out),
        hook.log()
    );
    assert_eq!(hook.result().unwrap()["device"]["success"], true);

    std::thread::sleep(Duration::from_millis(1100));
    let r = poll();
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    let at = str_of(&t, "access_token").to_owned();
    let rt = str_of(&t, "refresh_token").to_owned();
    assert_access_token_claims(&idp, &at, "carol", idp.public_client_id(), 60);
    assert!(idp.is_active(&rt));
    assert!(idp.is_active(&at));

    // Revoking the refresh token (as the public client) ends the grant.
    let r = idp.revoke_public(&rt);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!idp.is_active(&rt));
    assert!(
        !idp.is_active(&at),
        "revoking the refresh token ends its access tokens"
    );
    let r = idp.token_request_public(&[("grant_type", "refresh_token"), ("refresh_token", &rt)]);
    assert_eq!(r.json()["error"], "invalid_grant", "{}", r.body);

    // verification_uri_complete, denied on the confirm page: the poll says access_denied.
    let r = idp.curl(&[
        "-d",
        &format!("client_id={}&scope=openid", idp.public_client_id()),
        &idp.endpoint("/device/auth"),
    ]);
    let d = r.json();
    let hook = BrowserHook::new(BrowserMode::Deny);
    let out = hook.run(str_of(&d, "verification_uri_complete"));
    assert!(
        out.status.success(),
        "hook failed: {}\n{}",
        support::describe(&out),
        hook.log()
    );
    let r = idp.token_request_public(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", str_of(&d, "device_code")),
    ]);
    assert_eq!(r.json()["error"], "access_denied", "{}", r.body);
}

/// Deny (at consent and at login), forge-state and ignore against the real pages.
#[test]
fn browser_hook_deny_forge_and_ignore_modes() {
    let idp = Idp::start(IdpOptions::default());
    let (verifier, challenge) = support::pkce_pair();

    for mode in [BrowserMode::Deny, BrowserMode::DenyAtLogin] {
        let cb = CallbackServer::start();
        let state = support::random_token(16);
        let url = idp.authorization_url(&cb.redirect_uri(), &state, "n", &challenge, "openid");
        let hook = BrowserHook::new(mode.clone());
        let out = hook.run(&url);
        assert!(
            out.status.success(),
            "{mode:?}: {}\n{}",
            support::describe(&out),
            hook.log()
        );
        let target = cb.next_callback(CALLBACK_WAIT).expect("no callback");
        assert_eq!(
            query_param(&target, "error").as_deref(),
            Some("access_denied"),
            "{target}"
        );
        assert_eq!(
            query_param(&target, "state").as_deref(),
            Some(state.as_str())
        );
        assert!(query_param(&target, "code").is_none(), "{target}");
        let log = hook.log();
        if mode == BrowserMode::DenyAtLogin {
            assert!(!log.contains("LOGIN as"), "{log}");
        } else {
            assert!(
                log.contains("LOGIN as alice") && log.contains("DENY at consent"),
                "{log}"
            );
        }
    }

    // forge-state: one forged callback first, then the real one.
    let cb = CallbackServer::start();
    let state = support::random_token(16);
    let url = idp.authorization_url(&cb.redirect_uri(), &state, "n", &challenge, "openid");
    let hook = BrowserHook::new(BrowserMode::ForgeState);
    let out = hook.run(&url);
    assert!(
        out.status.success(),
        "{}\n{}",
        support::describe(&out),
        hook.log()
    );
    let forged = cb.next_callback(CALLBACK_WAIT).expect("no forged callback");
    assert_eq!(
        query_param(&forged, "state").as_deref(),
        Some("forged-state")
    );
    assert_eq!(query_param(&forged, "code").as_deref(), Some("forged-code"));
    let real = cb.next_callback(CALLBACK_WAIT).expect("no real callback");
    assert_eq!(query_param(&real, "state").as_deref(), Some(state.as_str()));
    let result = hook.result().unwrap();
    assert_eq!(result["forged"]["status"], 200, "{result}");

    // The real code works once; a replay fails and revokes the grant (oidc-provider
    // revokes what was issued from a code that is used twice).
    let code = query_param(&real, "code").expect("code");
    let exchange = || {
        idp.token_request_public(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
            ("redirect_uri", &cb.redirect_uri()),
        ])
    };
    let r = exchange();
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert!(idp.is_active(str_of(&t, "access_token")));
    let r = exchange();
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_grant");
    assert!(
        !idp.is_active(str_of(&t, "access_token")),
        "code replay keeps the grant"
    );
    assert!(
        !idp.is_active(str_of(&t, "refresh_token")),
        "code replay keeps the grant"
    );

    // ignore: nothing happens, fast.
    let cb = CallbackServer::start();
    let url = idp.authorization_url(&cb.redirect_uri(), "s", "n", &challenge, "openid");
    let hook = BrowserHook::new(BrowserMode::Ignore);
    let out = hook.run(&url);
    assert!(out.status.success());
    assert!(cb.next_request(Duration::from_secs(1)).is_none());
    assert!(
        hook.log().contains("EXIT 0 ignored the URL"),
        "{}",
        hook.log()
    );
    assert!(!hook.running());
}
