//! Wall-clock time as Unix seconds, and how it is shown to people.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The longest lifetime taken from a provider: ten years. A provider's `expires_in` (or
/// `refresh_expires_in`, or a device code's) is a number it chose; u64::MAX would overflow the
/// clock (a panic in debug builds, a wrap into the past in release ones).
pub const MAX_LIFETIME_SECS: u64 = 10 * 366 * 86_400;

/// The latest point in time taken from a token (a JWT's `exp`): 9999-12-31, so that no
/// arithmetic on it can overflow and every date prints with four digits.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// `now` plus a lifetime in seconds that a provider sent, clamped to [`MAX_LIFETIME_SECS`].
/// Every provider number that moves the clock goes through here (or [`lifetime`]).
pub fn after(now: i64, secs: u64) -> i64 {
    now.saturating_add(lifetime(secs).as_secs() as i64)
}

/// A lifetime in seconds that a provider sent, clamped to [`MAX_LIFETIME_SECS`].
pub fn lifetime(secs: u64) -> std::time::Duration {
    std::time::Duration::from_secs(secs.min(MAX_LIFETIME_SECS))
}

/// A point in time a token claims, clamped to 1970..=9999.
pub fn timestamp(unix: i64) -> i64 {
    unix.clamp(0, MAX_TIMESTAMP)
}

/// `2026-11-25 20:01:08 UTC`. UTC, so that no time zone database is needed and the
/// output means the same on every machine of a fleet.
pub fn format_utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `2026-11-25T20:01:08Z`, for JSON.
pub fn format_rfc3339(unix: i64) -> String {
    format_utc(unix).replacen(' ', "T", 1).replace(" UTC", "Z")
}

/// "in 42 min", "expired 3 h ago": the coarsest unit that still says something.
pub fn relative(unix: i64, now: i64) -> String {
    let delta = unix.saturating_sub(now);
    let span = describe_span(delta.unsigned_abs());
    if delta >= 0 {
        format!("in {span}")
    } else {
        format!("expired {span} ago")
    }
}

fn describe_span(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

// Days since 1970-01-01 to a proleptic Gregorian date (the well-known "civil from days"
// algorithm on 400-year eras).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_772_047_000), "2026-02-25 19:16:40 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_rfc3339(1_772_047_000), "2026-02-25T19:16:40Z");
        assert_eq!(format_utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn provider_numbers_at_the_edges_do_not_overflow() {
        let now = 1_772_047_000;
        assert_eq!(after(now, 300), now + 300);
        assert_eq!(after(now, u64::MAX), now + MAX_LIFETIME_SECS as i64);
        assert_eq!(after(i64::MAX, u64::MAX), i64::MAX);
        assert_eq!(lifetime(u64::MAX).as_secs(), MAX_LIFETIME_SECS);
        assert_eq!(timestamp(i64::MIN), 0);
        assert_eq!(timestamp(i64::MAX), MAX_TIMESTAMP);
        assert_eq!(format_utc(MAX_TIMESTAMP), "9999-12-31 23:59:59 UTC");
        assert!(relative(i64::MIN, i64::MAX).starts_with("expired"));
    }

    #[test]
    fn relative_spans() {
        assert_eq!(relative(100, 58), "in 42 s");
        assert_eq!(relative(42 * 60 + 5, 0), "in 42 min");
        assert_eq!(relative(0, 3 * 3600 + 10), "expired 3 h ago");
        assert_eq!(relative(0, 3 * 86_400), "expired 3 days ago");
    }
}
