//! The netrc as a file: who may read it, and whether curl will read all of it.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Check;
use super::system::{CurlVersion, User};
use crate::netrc::policy::{CURL_OLD_LINE_LIMIT, CURL_TOKEN_LIMIT, Limits};

pub const FILE_CHECK: &str = "netrc-file";
pub const LIMITS_CHECK: &str = "curl-limits";

/// Exists, is a file, mode 0600, owned by `user`. `create_with` is the command that
/// (re)creates the file.
pub fn check_file(path: &Path, user: Option<&User>, create_with: &str) -> Check {
    let shown = path.display();
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Check::fail(
                FILE_CHECK,
                format!("{shown} does not exist (Nix ignores a missing netrc without a word)"),
                format!("run `{create_with}`: it creates the file"),
            );
        }
        Err(e) => {
            return Check::fail(
                FILE_CHECK,
                format!("cannot inspect {shown}: {e}"),
                format!("make {shown} readable by the user who runs nix-cache-login"),
            );
        }
    };
    if !meta.is_file() {
        return Check::fail(
            FILE_CHECK,
            format!("{shown} is not a regular file"),
            format!("remove it and run `{create_with}`"),
        );
    }
    let mode = meta.mode() & 0o7777;
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    if mode & 0o077 != 0 {
        problems.push(format!(
            "{shown} has mode {mode:04o}: other users can read the token"
        ));
        fixes.push(format!("chmod 600 {shown}"));
    }
    match user {
        Some(user) if meta.uid() != user.uid => {
            problems.push(format!(
                "{shown} is owned by uid {}, not by {} (uid {}), who runs nix-cache-login",
                meta.uid(),
                user.name,
                user.uid
            ));
            fixes.push(format!("chown {} {shown}", user.name));
        }
        _ => {}
    }
    if !problems.is_empty() {
        return Check::fail(FILE_CHECK, problems.join("\n"), fixes.join("\n"));
    }
    let owner = match user {
        Some(user) => format!("owned by {}", user.name),
        None => format!("owned by uid {} (current user unknown)", meta.uid()),
    };
    Check::ok(FILE_CHECK, format!("{shown}: mode {mode:04o}, {owner}"))
}

/// A limit the installed curl has is a failure; one only the other curl generation has is a
/// warning, because Nix's libcurl need not be the curl in PATH.
pub fn check_limits(bytes: &[u8], curl: Option<CurlVersion>) -> Check {
    let limits = Limits::measure(bytes);
    let old = limits.old_curl_problems();
    let new = limits.new_curl_problems();
    let (installed, applies_old, applies_new) = match curl {
        Some(v) if v >= CurlVersion::NEW_NETRC_PARSER => (format!("curl {v} in PATH"), false, true),
        Some(v) => (format!("curl {v} in PATH"), true, false),
        None => (
            "no curl in PATH to tell the version".to_string(),
            true,
            true,
        ),
    };
    let installed = format!("{installed}; Nix's libcurl may differ");
    if old.is_empty() && new.is_empty() {
        return Check::ok(
            LIMITS_CHECK,
            format!(
                "lines under {CURL_OLD_LINE_LIMIT} bytes, tokens under {CURL_TOKEN_LIMIT} bytes ({installed})"
            ),
        );
    }
    let fix = "make the provider issue shorter access tokens: in Keycloak, turn on \
               \"Always use lightweight access token\" for the client (Keycloak 24 and later; \
               the cache must then read claims it needs from introspection) or remove group, \
               role and audience mappers the cache does not need; elsewhere, fewer groups, \
               roles or claims in the token. Keep the netrc's other lines short too";
    let mut detail = old.clone();
    detail.extend(new.iter().cloned());
    detail.push(format!("({installed})"));
    let fails = (applies_old && !old.is_empty()) || (applies_new && !new.is_empty());
    if fails {
        Check::fail(LIMITS_CHECK, detail.join("\n"), fix)
    } else {
        Check::warn(LIMITS_CHECK, detail.join("\n"), fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use std::os::unix::fs::PermissionsExt;

    fn user() -> User {
        User::current().unwrap()
    }

    #[test]
    fn file_mode_and_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netrc");
        let missing = check_file(&path, Some(&user()), "nix-cache-login login");
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.fix.unwrap().contains("nix-cache-login login"));

        fs::write(&path, "machine a login b password c\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let open = check_file(&path, Some(&user()), "x");
        assert_eq!(open.status, Status::Fail);
        assert!(open.detail.contains("0644"), "{}", open.detail);
        assert_eq!(open.fix.unwrap(), format!("chmod 600 {}", path.display()));

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(check_file(&path, Some(&user()), "x").status, Status::Ok);

        let stranger = User {
            uid: user().uid + 1,
            name: "mallory".into(),
            groups: vec![],
        };
        let foreign = check_file(&path, Some(&stranger), "x");
        assert_eq!(foreign.status, Status::Fail);
        assert!(foreign.fix.unwrap().starts_with("chown mallory "));

        assert_eq!(
            check_file(dir.path(), Some(&user()), "x").status,
            Status::Fail
        );
    }

    #[test]
    fn the_installed_curl_decides_between_fail_and_warn() {
        let long_line = format!("machine a\nlogin b\npassword {}\n", "t".repeat(4090));
        let old = Some(CurlVersion(7, 88, 1));
        let new = Some(CurlVersion(8, 11, 1));
        assert_eq!(check_limits(long_line.as_bytes(), old).status, Status::Fail);
        assert_eq!(check_limits(long_line.as_bytes(), new).status, Status::Warn);
        assert_eq!(
            check_limits(long_line.as_bytes(), None).status,
            Status::Fail
        );
        let long_token = format!("machine a\nlogin b\npassword {}\n", "t".repeat(4100));
        assert_eq!(
            check_limits(long_token.as_bytes(), new).status,
            Status::Fail
        );
        let fix = check_limits(long_token.as_bytes(), new).fix.unwrap();
        assert!(
            fix.contains("lightweight access token") && fix.contains("mappers"),
            "{fix}"
        );
        let fine = check_limits(b"machine a login b password c\n", old);
        assert_eq!(fine.status, Status::Ok);
        assert!(fine.detail.contains("7.88.1"), "{}", fine.detail);
    }
}
