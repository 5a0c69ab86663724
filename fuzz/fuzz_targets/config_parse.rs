//! Any text either loads as a config or gives one line naming the file; never a panic.

#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use nix_cache_login::config::{self, Environment};

struct FixedEnv;

impl Environment for FixedEnv {
    fn var(&self, name: &str) -> Option<String> {
        (name == "CREDENTIALS_DIRECTORY").then(|| "/run/credentials/x".to_string())
    }
    fn home_dir(&self) -> Option<PathBuf> {
        Some(PathBuf::from("/home/fuzz"))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for profile in [None, Some("p")] {
        if let Err(e) = config::parse(text, Path::new("/fuzz.toml"), profile, &FixedEnv) {
            let message = e.to_string();
            assert!(!message.contains('\n'), "multi-line error: {message:?}");
            assert!(message.starts_with("/fuzz.toml"), "file not named: {message:?}");
        }
    }
});
