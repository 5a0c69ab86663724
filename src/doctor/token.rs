//! What can be said about a token without showing it: its length, and for a JWT its expiry
//! and audience. The value itself never leaves this module.

use crate::clock;
use crate::jwt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFacts {
    pub len: usize,
    pub jwt: bool,
    pub exp: Option<i64>,
    pub aud: Vec<String>,
}

impl TokenFacts {
    pub fn of(token: &[u8]) -> TokenFacts {
        let claims = std::str::from_utf8(token).ok().and_then(jwt::decode_claims);
        TokenFacts {
            len: token.len(),
            jwt: claims.is_some(),
            exp: claims.as_ref().and_then(|c| c.exp),
            aud: claims.map(|c| c.aud).unwrap_or_default(),
        }
    }

    pub fn expired(&self, now: i64) -> bool {
        self.exp.is_some_and(|exp| exp <= now)
    }

    /// `expired 2026-02-25 19:16:40 UTC (3 min ago)`, `expires ... (in 4 min)`.
    pub fn expiry(&self, now: i64) -> String {
        match self.exp {
            Some(exp) if exp <= now => format!(
                "expired {} ({})",
                clock::format_utc(exp),
                clock::relative(exp, now).trim_start_matches("expired ")
            ),
            Some(exp) => format!(
                "expires {} ({})",
                clock::format_utc(exp),
                clock::relative(exp, now)
            ),
            None => "expiry unknown".to_string(),
        }
    }

    pub fn audience(&self) -> String {
        match self.aud.as_slice() {
            [] => "no audience".to_string(),
            [one] => format!("audience {one}"),
            many => format!("audiences {}", many.join(", ")),
        }
    }

    /// `812-byte JWT, expires ... (in 4 min), audience https://cache.example.com`.
    pub fn describe(&self, now: i64) -> String {
        if self.jwt {
            format!(
                "{}-byte JWT, {}, {}",
                self.len,
                self.expiry(now),
                self.audience()
            )
        } else {
            format!("{}-byte opaque token", self.len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn describes_without_the_value() {
        let token = jwt(r#"{"exp":1000,"aud":["https://cache","account"]}"#);
        let facts = TokenFacts::of(token.as_bytes());
        let text = facts.describe(400);
        assert!(text.starts_with(&format!("{}-byte JWT, expires ", token.len())));
        assert!(text.contains("(in 10 min)"), "{text}");
        assert!(text.contains("audiences https://cache, account"), "{text}");
        assert!(!text.contains(&token), "{text}");
        assert!(!facts.expired(999) && facts.expired(1000));
        assert!(
            facts.expiry(1180).contains("(3 min ago)"),
            "{}",
            facts.expiry(1180)
        );

        let opaque = TokenFacts::of(b"abcdef");
        assert_eq!(opaque.describe(0), "6-byte opaque token");
        assert!(!opaque.expired(i64::MAX));
    }
}
