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
            [one] if self.aud_is_scope_list() => {
                format!("audience {one:?} (a space-separated list of scopes)")
            }
            [one] => format!("audience {one}"),
            many => format!("audiences {}", many.join(", ")),
        }
    }

    /// Some providers put the granted scopes, space-separated, into `aud` instead of the
    /// client or an API: no audience a cache is set up for will match it.
    pub fn aud_is_scope_list(&self) -> bool {
        matches!(self.aud.as_slice(), [one] if one.split_whitespace().count() > 1)
    }

    /// For a cache that refuses the token: what an odd `aud` means for the cache's check.
    pub fn audience_advice(&self) -> String {
        if !self.aud_is_scope_list() {
            return String::new();
        }
        "; this provider writes the granted scopes into aud, so a cache that checks aud \
         against its own name refuses every token: have the provider put the cache's \
         audience into aud (an audience mapper or resource indicator), or have the cache \
         accept this issuer's tokens by a claim the provider does set (azp or client_id, \
         or one scope of that list)"
            .to_string()
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
    use crate::jwt::tests::jwt;

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

        let scopes = TokenFacts::of(jwt(r#"{"exp":1000,"aud":"openid profile email"}"#).as_bytes());
        assert!(scopes.aud_is_scope_list());
        assert!(
            scopes.audience().contains("space-separated list of scopes"),
            "{}",
            scopes.audience()
        );
        assert!(scopes.audience_advice().contains("audience mapper"));
        assert!(!facts.aud_is_scope_list() && facts.audience_advice().is_empty());

        let opaque = TokenFacts::of(b"abcdef");
        assert_eq!(opaque.describe(0), "6-byte opaque token");
        assert!(!opaque.expired(i64::MAX));
    }
}
