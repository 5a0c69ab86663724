//! A wrapper for tokens and client secrets, so they cannot leak through `{:?}` or `{}`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Holds a token or secret. Debug and Display print `(redacted)`; the value is reached only
/// through [`Secret::expose`], which makes every use of it easy to find.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("eyJhbGciOi.super.secret");
        assert_eq!(format!("{s:?}"), "(redacted)");
        assert_eq!(format!("{s}"), "(redacted)");
        assert_eq!(format!("{:?}", Some(&s)), "Some((redacted))");
        assert_eq!(s.expose(), "eyJhbGciOi.super.secret");
    }

    #[test]
    fn serializes_as_plain_string_for_the_store() {
        let s = Secret::new("abc");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"abc\"");
        let back: Secret = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(back, s);
    }
}
