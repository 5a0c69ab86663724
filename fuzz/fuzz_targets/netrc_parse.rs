//! Any bytes parse, write back unchanged, and survive edits.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nix_cache_login::netrc::{Entry, Netrc};

const HOST: &str = "cache.example.com";

fuzz_target!(|data: &[u8]| {
    let netrc = Netrc::parse(data);
    assert_eq!(netrc.to_bytes(), data);

    // Edit a host the file may not have, and the first one it has (the in-place rewrite path).
    let mut hosts = vec![HOST.to_string()];
    hosts.extend(netrc.machines().into_iter().take(1));
    for host in hosts {
        let mut edited = netrc.clone();
        edited.upsert(&host, "nix", "token");
        let expected = Some(Entry {
            login: Some(b"nix".to_vec()),
            password: Some(b"token".to_vec()),
        });
        assert_eq!(edited.get(&host), expected);
        assert!(edited.remove(&host));
        assert_eq!(edited.get(&host), None);
    }
});
