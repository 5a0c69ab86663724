//! Properties of the netrc editor over arbitrary bytes and generated netrc-like files.

use nix_cache_login::netrc::{Entry, Netrc};
use proptest::prelude::*;

/// Pieces of netrc syntax, good and broken, that generated files are made of.
const FRAGMENTS: &[&str] = &[
    "machine",
    "MACHINE",
    "default",
    "login",
    "Password",
    "password",
    "account",
    "macdef",
    "a",
    "b",
    "A",
    "cache.example.com",
    "u",
    "p",
    "\"q u\"",
    "\"e\\\"\\\\\\n\"",
    "\"unterminated",
    "\"\"",
    "\"machine\"",
    "# comment",
    "#",
    "#machine x",
    "x#y",
    "\u{e9}t\u{e9}",
    // Lets separators follow each other, so that lines can start with `\r` or blanks.
    "",
];

const SEPARATORS: &[&str] = &[" ", "  ", "\t", "\n", "\r\n", "\n\n", "\r\n\r\n", "\r", ""];

fn netrc_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = (
        prop::sample::select(FRAGMENTS),
        prop::sample::select(SEPARATORS),
    );
    (prop::collection::vec(piece, 0..60), any::<bool>()).prop_map(|(pieces, odd_byte)| {
        let mut bytes = Vec::new();
        for (fragment, separator) in pieces {
            bytes.extend_from_slice(fragment.as_bytes());
            bytes.extend_from_slice(separator.as_bytes());
        }
        if odd_byte {
            bytes.insert(bytes.len() / 2, 0xff);
        }
        bytes
    })
}

fn any_file() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2000),
        netrc_like(),
        netrc_like(),
    ]
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("A".to_string()),
        Just("cache.example.com".to_string()),
        "[a-z0-9.-]{1,12}",
        any::<String>(),
    ]
}

/// A login or password. Spelled like `machine`, `default` or `macdef`, a value cannot be stored
/// in a netrc at all (curl reads it as the keyword), so those are left out.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._-]{1,64}",
        any::<String>(),
        Just(String::new()),
        Just("has space \"and\" quotes\\".to_string()),
        Just("#hash".to_string()),
    ]
    .prop_filter("a netrc keyword", |v| {
        !["machine", "default", "macdef"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(v))
    })
}

fn entry(login: &str, password: &str) -> Option<Entry> {
    Some(Entry {
        login: Some(login.as_bytes().to_vec()),
        password: Some(password.as_bytes().to_vec()),
    })
}

/// What `get` says about every machine in `netrc` except `host`.
fn others(netrc: &Netrc, host: &str) -> Vec<(String, Option<Entry>)> {
    netrc
        .machines()
        .into_iter()
        .filter(|name| !name.eq_ignore_ascii_case(host))
        .map(|name| {
            let found = netrc.get(&name);
            (name, found)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn round_trip_of_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        prop_assert_eq!(Netrc::parse(&bytes).to_bytes(), bytes);
    }

    #[test]
    fn round_trip_of_netrc_like_text(bytes in netrc_like()) {
        prop_assert_eq!(Netrc::parse(&bytes).to_bytes(), bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn upsert_then_get_returns_the_values(
        file in any_file(),
        host in host(),
        login in value(),
        password in value(),
    ) {
        let mut netrc = Netrc::parse(&file);
        let before = others(&netrc, &host);
        netrc.upsert(&host, &login, &password);
        prop_assert_eq!(netrc.get(&host), entry(&login, &password));
        prop_assert_eq!(others(&netrc, &host), before);
        // What was written reads back the same way.
        let reparsed = Netrc::parse(&netrc.to_bytes());
        prop_assert_eq!(reparsed.get(&host), entry(&login, &password));
    }

    #[test]
    fn upsert_then_remove_leaves_the_rest(
        file in any_file(),
        host in host(),
        login in value(),
        password in value(),
    ) {
        let original = Netrc::parse(&file);
        let was_present = original.get(&host).is_some();
        let mut netrc = original.clone();
        netrc.upsert(&host, &login, &password);
        prop_assert!(netrc.remove(&host));
        prop_assert_eq!(netrc.get(&host), None);
        prop_assert_eq!(others(&netrc, &host), others(&original, &host));
        if !was_present {
            // Byte for byte the original, apart from the line breaks upsert had to add so that
            // its entry started on a line of its own, outside any macdef body.
            let after = netrc.to_bytes();
            prop_assert!(after.starts_with(&file), "{:?}", String::from_utf8_lossy(&after));
            let added = &after[file.len()..];
            let line_breaks = added.iter().filter(|&&b| b == b'\n').count();
            prop_assert!(
                line_breaks <= 2 && added.iter().all(|&b| b == b'\r' || b == b'\n'),
                "added {:?}",
                String::from_utf8_lossy(added)
            );
            let may_end_in_macdef = file.to_ascii_lowercase().windows(6).any(|w| w == b"macdef");
            if file.is_empty() || (file.ends_with(b"\n") && !may_end_in_macdef) {
                prop_assert!(added.is_empty(), "added {:?}", String::from_utf8_lossy(added));
            }
        }
    }

    #[test]
    fn upsert_is_idempotent(
        file in any_file(),
        host in host(),
        login in value(),
        password in value(),
    ) {
        let mut once = Netrc::parse(&file);
        once.upsert(&host, &login, &password);
        let mut twice = once.clone();
        twice.upsert(&host, &login, &password);
        prop_assert_eq!(once.to_bytes(), twice.to_bytes());
    }
}
