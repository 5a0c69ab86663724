//! The job's own OIDC token, checked before anything is done with it.
//!
//! It comes from outside (the CI endpoint, a file, a variable), so it is held to the shape of
//! a JWT a CI platform issues: bounded, three base64url parts, a header naming an algorithm,
//! and claims with `iss`, `sub` and `exp`. Its signature is for the provider (or the cache,
//! for `direct`) to check: this tool checks only what lets it say clearly why a login
//! cannot work (expired, wrong audience) before sending the token anywhere. Nothing of the
//! token is ever printed but cleaned claims.

use serde::Deserialize;

use crate::clock;
use crate::jwt;
use crate::secret::Secret;
pub use crate::untrusted::clean;

/// GitHub's and GitLab's ID tokens are about 1 KiB; one with many custom claims stays far
/// below this. Anything larger is not a CI token.
pub const MAX_LEN: usize = 16 * 1024;

/// What the job's token says, as far as this tool looks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct JobClaims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    #[serde(default, deserialize_with = "crate::jwt::one_or_many")]
    pub aud: Vec<String>,
    pub exp: Option<i64>,
    /// GitHub's `repository`; GitLab calls it `project_path`.
    pub repository: Option<String>,
    pub project_path: Option<String>,
    /// GitHub's `ref` (`refs/heads/main`); GitLab's is the bare name.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
}

/// A job token that has the shape of a CI platform's JWT.
#[derive(Debug, Clone)]
pub struct JobToken {
    pub value: Secret,
    pub claims: JobClaims,
}

/// Why a token the CI platform handed over cannot be used; no variant holds any of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("it is empty")]
    Empty,
    #[error("it is {0} bytes long (a CI token is at most {MAX_LEN})")]
    TooLong(usize),
    #[error("it is not a JWT (three base64url parts separated by dots)")]
    NotAJwt,
    #[error("its {0} is not a base64url JSON object")]
    BadPart(&'static str),
    #[error("its header names no signing algorithm, or `none`")]
    Unsigned,
    #[error("its claims have no {0}")]
    MissingClaim(&'static str),
}

impl JobToken {
    /// Checks `text` (surrounding white space, such as a file's last newline, is dropped).
    pub fn parse(text: &str) -> Result<JobToken, Malformed> {
        let token = text.trim();
        if token.is_empty() {
            return Err(Malformed::Empty);
        }
        if token.len() > MAX_LEN {
            return Err(Malformed::TooLong(token.len()));
        }
        let is_b64url = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let parts = jwt::Compact::split(token)
            .filter(|c| {
                [c.header, c.payload, c.signature]
                    .into_iter()
                    .all(is_b64url)
            })
            .ok_or(Malformed::NotAJwt)?;
        let header: serde_json::Value =
            decode_object(parts.header).ok_or(Malformed::BadPart("header"))?;
        let alg = header.get("alg").and_then(|a| a.as_str());
        if alg.is_none_or(|a| a.eq_ignore_ascii_case("none") || a.is_empty()) {
            return Err(Malformed::Unsigned);
        }
        let claims: JobClaims =
            decode_object(parts.payload).ok_or(Malformed::BadPart("payload"))?;
        if claims.iss.as_deref().is_none_or(str::is_empty) {
            return Err(Malformed::MissingClaim("iss"));
        }
        if claims.exp.is_none() {
            return Err(Malformed::MissingClaim("exp"));
        }
        Ok(JobToken {
            value: Secret::new(token),
            claims,
        })
    }

    /// Seconds until it expires (negative: expired).
    pub fn remaining(&self, now: i64) -> i64 {
        self.claims.exp.unwrap_or(i64::MIN / 2) - now
    }

    /// A one-line description for messages and `status`: the subject (or repository) and
    /// the issuer, cleaned of anything a terminal would act on.
    pub fn describe(&self) -> String {
        let who = self
            .claims
            .sub
            .as_deref()
            .or(self.claims.repository.as_deref())
            .unwrap_or("(no sub)");
        format!(
            "{} from {}",
            clean(who),
            clean(self.claims.iss.as_deref().unwrap_or(""))
        )
    }

    /// Fails with a message naming the cause when the token cannot be used now: expired,
    /// or (when an audience was asked for) not for that audience.
    pub fn check_usable(&self, audience: Option<&str>) -> Result<(), String> {
        let now = clock::now();
        let remaining = self.remaining(now);
        if remaining <= 0 {
            return Err(format!(
                "the CI token ({}) has {}",
                self.describe(),
                clock::relative(self.claims.exp.unwrap_or(0), now)
            ));
        }
        if let Some(wanted) = audience
            && !self.claims.aud.iter().any(|a| a == wanted)
        {
            let had: Vec<String> = self.claims.aud.iter().map(|a| clean(a)).collect();
            return Err(format!(
                "the CI token ({}) is for audience {}, not {}",
                self.describe(),
                if had.is_empty() {
                    "(none)".to_string()
                } else {
                    had.join(", ")
                },
                clean(wanted)
            ));
        }
        Ok(())
    }
}

/// A part's JSON, which must be an object (serde would also read a struct from an array).
fn decode_object<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let value: serde_json::Value = jwt::decode_part(part)?;
    if !value.is_object() {
        return None;
    }
    serde_json::from_value(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    fn jwt(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn github(exp: i64, aud: &str) -> String {
        jwt(
            r#"{"alg":"RS256","kid":"k"}"#,
            &serde_json::json!({
                "iss": "https://token.actions.githubusercontent.com",
                "sub": "repo:acme/app:ref:refs/heads/main",
                "aud": aud, "exp": exp,
                "repository": "acme/app", "ref": "refs/heads/main"
            })
            .to_string(),
        )
    }

    #[test]
    fn a_github_token_is_read() {
        let t = JobToken::parse(&format!("{}\n", github(2_000_000_000, "cache"))).unwrap();
        assert_eq!(t.claims.repository.as_deref(), Some("acme/app"));
        assert_eq!(t.claims.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(t.claims.aud, vec!["cache"]);
        assert!(!t.value.expose().ends_with('\n'));
        assert_eq!(
            t.describe(),
            "repo:acme/app:ref:refs/heads/main from https://token.actions.githubusercontent.com"
        );
        assert!(t.check_usable(Some("cache")).is_ok());
        let e = t.check_usable(Some("other")).unwrap_err();
        assert!(e.contains("audience cache, not other"), "{e}");
    }

    #[test]
    fn an_expired_token_says_so() {
        let t = JobToken::parse(&github(1_000, "cache")).unwrap();
        let e = t.check_usable(None).unwrap_err();
        assert!(e.contains("expired"), "{e}");
    }

    #[test]
    fn malformed_tokens_are_named_without_quoting_them() {
        let alg = r#"{"alg":"RS256"}"#;
        let cases = [
            ("", Malformed::Empty),
            ("not-a-token", Malformed::NotAJwt),
            ("a.b", Malformed::NotAJwt),
            ("a.b.c.d", Malformed::NotAJwt),
            ("a b.c.d", Malformed::NotAJwt),
            ("!!!.e30.c2ln", Malformed::NotAJwt),
            (&jwt(alg, "[1]"), Malformed::BadPart("payload")),
            (&jwt("nope", "{}"), Malformed::BadPart("header")),
            (&jwt(r#"{"alg":"none"}"#, "{}"), Malformed::Unsigned),
            (&jwt(alg, r#"{"exp":1}"#), Malformed::MissingClaim("iss")),
            (&jwt(alg, r#"{"iss":"i"}"#), Malformed::MissingClaim("exp")),
        ];
        for (text, want) in cases {
            assert_eq!(JobToken::parse(text).unwrap_err(), want, "{text}");
        }
        let long = "a".repeat(MAX_LEN + 1);
        assert_eq!(
            JobToken::parse(&long).unwrap_err(),
            Malformed::TooLong(MAX_LEN + 1)
        );
    }

    #[test]
    fn claims_are_cleaned_for_display() {
        let t = JobToken::parse(&jwt(
            r#"{"alg":"RS256"}"#,
            r#"{"iss":"i\u001b]0;owned\u0007","sub":"s\nx","exp":2000000000}"#,
        ))
        .unwrap();
        let d = t.describe();
        assert!(!d.chars().any(char::is_control), "{d:?}");
    }

    proptest! {
        #[test]
        fn never_panics_and_errors_hold_no_input(s in "\\PC{0,300}") {
            if let Err(e) = JobToken::parse(&s) {
                let msg = e.to_string();
                prop_assert!(s.trim().len() < 8 || !msg.contains(s.trim()));
            }
        }
    }
}
