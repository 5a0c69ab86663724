//! Reads the claims of a JWT without checking its signature.
//!
//! Used only to describe tokens (`status`, expiry for `--min-valid`): whether a token is
//! trusted is for the provider and the cache to decide. ID tokens are validated properly by
//! the OIDC flow, not here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::clock;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Claims {
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    pub iss: Option<String>,
    pub sub: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub azp: Option<String>,
    pub client_id: Option<String>,
    pub preferred_username: Option<String>,
    pub email: Option<String>,
    /// Keycloak marks offline tokens with `typ: "Offline"`.
    pub typ: Option<String>,
}

impl Claims {
    /// The most readable name for who the token speaks for.
    pub fn who(&self) -> Option<&str> {
        self.preferred_username
            .as_deref()
            .or(self.email.as_deref())
            .or(self.sub.as_deref())
            .or(self.client_id.as_deref())
    }
}

/// A JWT in its compact form split at its dots: exactly three parts, none decoded yet. Every
/// reader of JWTs (claims for display, the CI job's token, the bridge's verifier) splits here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compact<'a> {
    pub header: &'a str,
    pub payload: &'a str,
    pub signature: &'a str,
    /// `header.payload`: what the signature covers.
    pub signing_input: &'a str,
}

impl<'a> Compact<'a> {
    /// `None` unless `token` has exactly three dot-separated parts.
    pub fn split(token: &'a str) -> Option<Compact<'a>> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Some(Compact {
            header,
            payload,
            signature,
            signing_input: &token[..header.len() + 1 + payload.len()],
        })
    }
}

/// The JSON in one base64url (unpadded) part of a JWT.
pub fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// The claims of `token` if it is a JWT (three base64url parts, a JSON object in the middle);
/// `None` for an opaque token.
pub fn decode_claims(token: &str) -> Option<Claims> {
    let compact = Compact::split(token)?;
    let mut claims: Claims = decode_part(compact.payload.trim_end_matches('='))?;
    claims.exp = claims.exp.map(clock::timestamp);
    claims.iat = claims.iat.map(clock::timestamp);
    Some(claims)
}

/// A claim that is one string or a list of them (`aud`), as a list.
pub fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An unsigned JWT with these claims, for tests that read tokens.
    pub(crate) fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn reads_keycloak_like_claims() {
        let t = jwt(
            r#"{"exp":1700000000,"iat":1699999700,"iss":"https://sso/realms/r","sub":"u-1","aud":["cache","account"],"azp":"nix","preferred_username":"alice","typ":"Bearer","groups":["a"]}"#,
        );
        let c = decode_claims(&t).unwrap();
        assert_eq!(c.exp, Some(1700000000));
        assert_eq!(c.aud, vec!["cache", "account"]);
        assert_eq!(c.who(), Some("alice"));
    }

    #[test]
    fn single_audience_and_missing_fields() {
        let c = decode_claims(&jwt(r#"{"aud":"cache","client_id":"svc"}"#)).unwrap();
        assert_eq!(c.aud, vec!["cache"]);
        assert_eq!(c.exp, None);
        assert_eq!(c.who(), Some("svc"));
    }

    #[test]
    fn opaque_tokens_are_not_jwts() {
        for t in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "x.!!!.y",
            &format!("h.{}.s", URL_SAFE_NO_PAD.encode("[1]")),
        ] {
            assert_eq!(decode_claims(t), None, "{t}");
        }
    }

    #[test]
    fn exp_at_the_edges_is_clamped() {
        let c = decode_claims(&jwt(&format!(
            r#"{{"exp":{},"iat":{}}}"#,
            i64::MIN,
            i64::MAX
        )));
        let c = c.unwrap();
        assert_eq!(c.exp, Some(0));
        assert_eq!(c.iat, Some(crate::clock::MAX_TIMESTAMP));
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = decode_claims(&s);
        }

        #[test]
        fn exp_round_trips(exp in 0..=crate::clock::MAX_TIMESTAMP, sub in "[a-z0-9-]{0,20}") {
            let t = jwt(&serde_json::json!({"exp": exp, "sub": sub}).to_string());
            let c = decode_claims(&t).unwrap();
            prop_assert_eq!(c.exp, Some(exp));
            prop_assert_eq!(c.sub.as_deref(), Some(sub.as_str()));
        }
    }
}
