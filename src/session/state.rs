//! Whether the token Nix sends is good: the one word `status` and `doctor` both use.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    /// There, and not known to have expired.
    Valid,
    Expired,
    /// Nothing for Nix to send.
    Missing,
}

impl TokenState {
    /// The state of a token that Nix would send (`present`) and that expires at `exp` (Unix
    /// seconds; unknown counts as valid), at `now`.
    pub fn of(present: bool, exp: Option<i64>, now: i64) -> TokenState {
        match (present, exp) {
            (false, _) => TokenState::Missing,
            (true, Some(exp)) if exp <= now => TokenState::Expired,
            (true, _) => TokenState::Valid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_inclusive_and_unknown_is_valid() {
        assert_eq!(TokenState::of(true, Some(10), 9), TokenState::Valid);
        assert_eq!(TokenState::of(true, Some(10), 10), TokenState::Expired);
        assert_eq!(TokenState::of(true, None, 10), TokenState::Valid);
        assert_eq!(TokenState::of(false, Some(99), 10), TokenState::Missing);
        assert_eq!(serde_json::to_value(TokenState::Valid).unwrap(), "valid");
    }
}
