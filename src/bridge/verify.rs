//! Is this access token one the daemon may use? A token is accepted only when it is a JWT
//! signed (asymmetrically) by a key of the configured issuer's JWKS, issued by that issuer,
//! for this client or audience, not expired, and not valid absurdly long.
//!
//! The claims are checked before the signature on purpose: a token of another issuer or an
//! expired one is refused without looking up a key, so no caller can make the bridge fetch
//! the JWKS again by sending foreign tokens. The cryptography is `openidconnect`'s (RSA,
//! RSA-PSS, ECDSA, EdDSA); shared-secret and `none` algorithms are refused before it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, JsonWebKeyId};
use serde::Deserialize;

use crate::jwt::{self, Claims};
use crate::netrc;
use crate::untrusted;

/// The longest token the bridge takes (curl ≥ 8.7 refuses netrc words over 4 KiB; Keycloak
/// tokens with many roles pass that, so allow more and let the client warn).
pub const MAX_TOKEN: usize = 16 * 1024;
/// Clock skew allowed for `nbf` and `iat` only: an expired token is refused at once, as the
/// cache refuses it.
const LEEWAY: i64 = 60;
/// Keys tried for a token without `kid`.
const MAX_CANDIDATE_KEYS: usize = 8;

/// What a token must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Without trailing slash.
    pub issuer: String,
    pub client_id: Option<String>,
    pub audience: Option<String>,
    /// The longest remaining lifetime accepted, in seconds.
    pub max_lifetime: i64,
}

/// An accepted token: what the log and the ownership record say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `sub`, else `client_id`/`azp`; cleaned for display.
    pub subject: String,
    pub expires_at: i64,
}

/// Why a token was refused. The messages name the claim, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the token is not a single netrc word of at most {MAX_TOKEN} bytes")]
    Shape,
    #[error("the token is not a JWT (header.payload.signature, base64url, JSON)")]
    NotAJwt,
    #[error("the token's algorithm {0} is not accepted (an asymmetric signature is required)")]
    Algorithm(String),
    #[error("the token has a critical header extension the bridge does not know")]
    Critical,
    #[error("the token was issued by {found}, not by {expected}")]
    WrongIssuer { found: String, expected: String },
    #[error("the token has no expiry (exp)")]
    NoExpiry,
    #[error("the token expired {0} s ago")]
    Expired(i64),
    #[error("the token is not valid yet (nbf or iat in the future)")]
    NotYetValid,
    #[error("the token is valid for {lifetime} s, longer than the bridge accepts ({max} s)")]
    TooLong { lifetime: i64, max: i64 },
    #[error("the token is not for {0} (aud, azp and client_id do not name it)")]
    WrongAudience(String),
    #[error("no key of the issuer's JWKS has the token's key id {0}")]
    UnknownKey(String),
    #[error("the token's signature does not verify with the issuer's keys")]
    BadSignature,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// A token whose shape and claims passed; its signature is still to be checked.
pub struct Checked<'a> {
    signed: &'a [u8],
    signature: Vec<u8>,
    alg: CoreJwsSigningAlgorithm,
    kid: Option<String>,
    verified: Verified,
}

impl Checked<'_> {
    /// The last step: a key of `keys` signed it.
    pub fn signed_by(&self, keys: &[CoreJsonWebKey]) -> Result<Verified, Rejection> {
        check_signature(self, keys)?;
        Ok(self.verified.clone())
    }
}

/// Everything but the signature, which needs the issuer's keys: done first so that a
/// token that fails here costs no key lookup.
pub fn check<'a>(token: &'a str, policy: &Policy, now: i64) -> Result<Checked<'a>, Rejection> {
    let (mut checked, claims) = parse(token)?;
    checked.verified = check_claims(&claims, policy, now)?;
    Ok(checked)
}

/// Checks `token` against `policy` at `now` with the issuer's `keys`.
pub fn verify(
    token: &str,
    keys: &[CoreJsonWebKey],
    policy: &Policy,
    now: i64,
) -> Result<Verified, Rejection> {
    check(token, policy, now)?.signed_by(keys)
}

fn parse(token: &str) -> Result<(Checked<'_>, Claims), Rejection> {
    if token.len() > MAX_TOKEN || !netrc::is_plain_word(token) {
        return Err(Rejection::Shape);
    }
    let parts = jwt::Compact::split(token).ok_or(Rejection::NotAJwt)?;
    let header: Header = jwt::decode_part(parts.header).ok_or(Rejection::NotAJwt)?;
    let claims: Claims = jwt::decode_part(parts.payload).ok_or(Rejection::NotAJwt)?;
    let signature = URL_SAFE_NO_PAD
        .decode(parts.signature)
        .map_err(|_| Rejection::NotAJwt)?;
    if header.crit.is_some() {
        return Err(Rejection::Critical);
    }
    let alg = accepted_algorithm(&header.alg)?;
    let checked = Checked {
        signed: parts.signing_input.as_bytes(),
        signature,
        alg,
        kid: header.kid,
        verified: Verified {
            subject: String::new(),
            expires_at: 0,
        },
    };
    Ok((checked, claims))
}

/// The asymmetric JWS algorithms; `HS*` (a secret the bridge does not have, and a key
/// confusion waiting to happen) and `none` are refused.
fn accepted_algorithm(name: &str) -> Result<CoreJwsSigningAlgorithm, Rejection> {
    use CoreJwsSigningAlgorithm as A;
    let refuse = || Rejection::Algorithm(untrusted::clean(name));
    let alg: A = serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| refuse())?;
    match alg {
        A::RsaSsaPkcs1V15Sha256
        | A::RsaSsaPkcs1V15Sha384
        | A::RsaSsaPkcs1V15Sha512
        | A::RsaSsaPssSha256
        | A::RsaSsaPssSha384
        | A::RsaSsaPssSha512
        | A::EcdsaP256Sha256
        | A::EcdsaP384Sha384
        | A::EcdsaP521Sha512
        | A::EdDsa => Ok(alg),
        _ => Err(refuse()),
    }
}

/// The claim checks, pure: issuer, times, audience.
pub fn check_claims(claims: &Claims, policy: &Policy, now: i64) -> Result<Verified, Rejection> {
    let issuer = claims.iss.as_deref().unwrap_or("");
    if issuer.trim_end_matches('/') != policy.issuer {
        return Err(Rejection::WrongIssuer {
            found: if issuer.is_empty() {
                "nobody (no iss)".to_string()
            } else {
                untrusted::clean(issuer)
            },
            expected: policy.issuer.clone(),
        });
    }
    let exp = claims.exp.ok_or(Rejection::NoExpiry)?;
    if exp <= now {
        return Err(Rejection::Expired(now.saturating_sub(exp)));
    }
    let lifetime = exp.saturating_sub(now);
    if lifetime > policy.max_lifetime {
        return Err(Rejection::TooLong {
            lifetime,
            max: policy.max_lifetime,
        });
    }
    let future = |t: Option<i64>| t.is_some_and(|t| t > now.saturating_add(LEEWAY));
    if future(claims.nbf) || future(claims.iat) {
        return Err(Rejection::NotYetValid);
    }
    if !for_us(claims, policy) {
        let wanted = policy
            .audience
            .as_deref()
            .or(policy.client_id.as_deref())
            .unwrap_or_default();
        return Err(Rejection::WrongAudience(wanted.to_string()));
    }
    let subject = claims
        .sub
        .as_deref()
        .or(claims.client_id.as_deref())
        .or(claims.azp.as_deref())
        .unwrap_or("(no subject)");
    Ok(Verified {
        subject: untrusted::clean(subject),
        expires_at: exp,
    })
}

/// `aud` names the audience or the client, or the token was issued to the client (`azp`,
/// or RFC 9068's `client_id`).
fn for_us(claims: &Claims, policy: &Policy) -> bool {
    let names = [policy.audience.as_deref(), policy.client_id.as_deref()];
    let audience_ok = names
        .iter()
        .flatten()
        .any(|name| claims.aud.iter().any(|a| a == name));
    let client_ok = policy.client_id.as_deref().is_some_and(|id| {
        claims.azp.as_deref() == Some(id) || claims.client_id.as_deref() == Some(id)
    });
    audience_ok || client_ok
}

fn check_signature(parsed: &Checked<'_>, keys: &[CoreJsonWebKey]) -> Result<(), Rejection> {
    let candidates: Vec<&CoreJsonWebKey> = match &parsed.kid {
        Some(kid) => {
            let kid = JsonWebKeyId::new(kid.clone());
            keys.iter().filter(|k| k.key_id() == Some(&kid)).collect()
        }
        None => keys.iter().take(MAX_CANDIDATE_KEYS).collect(),
    };
    if candidates.is_empty() {
        return Err(Rejection::UnknownKey(match &parsed.kid {
            Some(kid) => untrusted::clean(kid),
            None => "(none)".to_string(),
        }));
    }
    // verify_signature also refuses a key whose type, `use` or `alg` does not fit.
    let verifies = candidates.iter().any(|key| {
        key.verify_signature(&parsed.alg, parsed.signed, &parsed.signature)
            .is_ok()
    });
    if verifies {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use openidconnect::PrivateSigningKey;
    use openidconnect::core::CoreRsaPrivateSigningKey;
    use proptest::prelude::*;

    pub const ISSUER: &str = "https://sso.example.com/realms/r";
    const NOW: i64 = 1_800_000_000;

    pub fn signing_key(kid: &str) -> CoreRsaPrivateSigningKey {
        CoreRsaPrivateSigningKey::from_pem(
            include_str!("testdata/test-only-rsa-key.pem"),
            Some(JsonWebKeyId::new(kid.to_string())),
        )
        .unwrap()
    }

    pub fn sign(
        key: &CoreRsaPrivateSigningKey,
        header: &str,
        claims: &serde_json::Value,
    ) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = key
            .sign(
                &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                signed.as_bytes(),
            )
            .unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn policy() -> Policy {
        Policy {
            issuer: ISSUER.into(),
            client_id: Some("nix".into()),
            audience: Some("https://cache".into()),
            max_lifetime: 86_400,
        }
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "iss": ISSUER, "sub": "alice", "aud": ["account", "https://cache"],
            "azp": "nix", "exp": NOW + 300, "iat": NOW
        })
    }

    fn good_header() -> &'static str {
        r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#
    }

    fn check(token: &str) -> Result<Verified, Rejection> {
        let key = signing_key("k1");
        verify(token, &[key.as_verification_key()], &policy(), NOW)
    }

    #[test]
    fn accepts_a_good_token() {
        let token = sign(&signing_key("k1"), good_header(), &claims());
        assert_eq!(
            check(&token).unwrap(),
            Verified {
                subject: "alice".into(),
                expires_at: NOW + 300
            }
        );
        // Without kid, the keys are tried.
        let token = sign(&signing_key("k1"), r#"{"alg":"RS256"}"#, &claims());
        assert!(check(&token).is_ok());
    }

    #[test]
    fn refuses_bad_signatures_and_algorithms() {
        let key = signing_key("k1");
        let token = sign(&key, good_header(), &claims());
        let (signed, _) = token.rsplit_once('.').unwrap();
        // Another payload under the old signature.
        let mut forged = claims();
        forged["sub"] = "mallory".into();
        let other = sign(&key, good_header(), &forged);
        let forged_token = format!(
            "{}.{}",
            other.rsplit_once('.').unwrap().0,
            token.rsplit_once('.').unwrap().1
        );
        assert_eq!(check(&forged_token), Err(Rejection::BadSignature));
        // No signature at all.
        assert_eq!(check(&format!("{signed}.")), Err(Rejection::BadSignature));
        // alg none and HS256 are refused before any key is looked at.
        for alg in ["none", "HS256", "XX1"] {
            let t = sign(&key, &format!(r#"{{"alg":"{alg}","kid":"k1"}}"#), &claims());
            assert_eq!(check(&t), Err(Rejection::Algorithm(alg.into())), "{alg}");
        }
        let t = sign(&key, r#"{"alg":"RS256","kid":"k9"}"#, &claims());
        assert_eq!(check(&t), Err(Rejection::UnknownKey("k9".into())));
        let t = sign(
            &key,
            r#"{"alg":"RS256","kid":"k1","crit":["exp"]}"#,
            &claims(),
        );
        assert_eq!(check(&t), Err(Rejection::Critical));
        // A key with the right kid but meant for encryption does not verify.
        let mut enc: serde_json::Value = serde_json::to_value(key.as_verification_key()).unwrap();
        enc["use"] = "enc".into();
        let enc: CoreJsonWebKey = serde_json::from_value(enc).unwrap();
        let t = sign(&key, good_header(), &claims());
        assert_eq!(
            verify(&t, &[enc], &policy(), NOW),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn refuses_wrong_claims() {
        let key = signing_key("k1");
        let with = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut c = claims();
            edit(&mut c);
            check(&sign(&key, good_header(), &c)).unwrap_err()
        };
        assert!(matches!(
            with(&|c| c["iss"] = "https://evil".into()),
            Rejection::WrongIssuer { .. }
        ));
        assert!(matches!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
            Rejection::WrongIssuer { .. }
        ));
        assert_eq!(with(&|c| c["exp"] = NOW.into()), Rejection::Expired(0));
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            Rejection::NoExpiry
        );
        assert_eq!(
            with(&|c| c["exp"] = (NOW + 86_401).into()),
            Rejection::TooLong {
                lifetime: 86_401,
                max: 86_400
            }
        );
        assert_eq!(
            with(&|c| c["nbf"] = (NOW + 120).into()),
            Rejection::NotYetValid
        );
        assert_eq!(
            with(&|c| c["iat"] = (NOW + 120).into()),
            Rejection::NotYetValid
        );
        assert_eq!(
            with(&|c| {
                c["aud"] = "other".into();
                c["azp"] = "other".into();
            }),
            Rejection::WrongAudience("https://cache".into())
        );
        // A trailing slash on either side is the same issuer (as discovery treats it).
        let mut c = claims();
        c["iss"] = format!("{ISSUER}/").into();
        assert!(check(&sign(&key, good_header(), &c)).is_ok());
    }

    #[test]
    fn audience_rules() {
        let p = |audience: Option<&str>, client_id: Option<&str>| Policy {
            audience: audience.map(str::to_string),
            client_id: client_id.map(str::to_string),
            ..policy()
        };
        let c = |json: serde_json::Value| -> Claims { serde_json::from_value(json).unwrap() };
        // oidc-provider: aud is the resource, client_id names the client (RFC 9068).
        let rfc9068 = c(serde_json::json!({"aud": "https://cache", "client_id": "nix"}));
        assert!(for_us(&rfc9068, &p(Some("https://cache"), None)));
        assert!(for_us(&rfc9068, &p(None, Some("nix"))));
        assert!(!for_us(&rfc9068, &p(Some("https://other"), Some("other"))));
        // Keycloak: aud "account", azp the client.
        let keycloak = c(serde_json::json!({"aud": "account", "azp": "nix"}));
        assert!(for_us(&keycloak, &p(None, Some("nix"))));
        assert!(!for_us(&keycloak, &p(Some("https://cache"), None)));
        assert!(!for_us(&c(serde_json::json!({})), &p(Some("a"), Some("b"))));
    }

    #[test]
    fn refuses_what_is_not_a_jwt() {
        for t in ["", "a.b", "a b.c.d", "eyJ.eyJ.sig", "e30.e30.c2ln.x"] {
            assert!(
                matches!(check(t), Err(Rejection::NotAJwt | Rejection::Shape)),
                "{t}"
            );
        }
        let padded = format!(
            "{}==.{}.c2ln",
            URL_SAFE_NO_PAD.encode(good_header()),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert_eq!(check(&padded), Err(Rejection::NotAJwt));
        assert_eq!(check(&"a".repeat(MAX_TOKEN + 1)), Err(Rejection::Shape));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn never_panics(token in ".{0,300}") {
            let _ = check(&token);
        }

        #[test]
        fn any_change_to_a_signed_token_is_refused(at in any::<prop::sample::Index>(), byte in 0x21u8..0x7f) {
            let token = sign(&signing_key("k1"), good_header(), &claims());
            let mut bytes = token.clone().into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            let changed = String::from_utf8(bytes).unwrap();
            // Base64url has slack bits in a last character: a change there may decode to
            // the same bytes, which is the same token as far as any verifier can tell.
            prop_assume!(!same_decoded(&token, &changed));
            prop_assert!(check(&changed).is_err());
        }

        #[test]
        fn lifetime_bound_holds(exp_offset in -100_000i64..200_000) {
            let mut c = claims();
            c["exp"] = (NOW + exp_offset).into();
            let result = check(&sign(&signing_key("k1"), good_header(), &c));
            prop_assert_eq!(result.is_ok(), exp_offset > 0 && exp_offset <= 86_400);
        }
    }

    fn same_decoded(a: &str, b: &str) -> bool {
        let parts = |t: &str| -> Option<Vec<Vec<u8>>> {
            let v: Vec<&str> = t.split('.').collect();
            if v.len() != 3 {
                return None;
            }
            v.iter().map(|p| URL_SAFE_NO_PAD.decode(p).ok()).collect()
        };
        matches!((parts(a), parts(b)), (Some(x), Some(y)) if x == y)
    }
}
