//! What `doctor` learns from the machine's own tools: who the user is (`id`), which curl is
//! installed (`curl --version`). The crate has no libc binding, and `id` is on every system
//! Nix runs on.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::config::Environment;

/// A helper tool that takes longer than this is treated as broken.
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `program args` with stdin closed; its stdout when it exits 0. Stderr (its first
/// line) goes into the error otherwise.
pub fn run_tool(program: &str, args: &[&str]) -> Result<String> {
    let shown = format!("`{program} {}`", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {shown}"))?;
    // Drain both pipes on threads: a chatty tool must not block on a full pipe while we wait.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{shown} did not finish within {} s", TOOL_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
    if !status.success() {
        let why = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message");
        bail!("{shown} failed ({status}): {why}");
    }
    Ok(stdout)
}

/// Whether `program` is an executable file in one of `$PATH`'s directories.
pub fn in_path(env: &dyn Environment, program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = env.var("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(program))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The user `doctor` runs as, as Nix's `trusted-users` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn current() -> Result<User> {
        let uid = run_tool("id", &["-u"])?;
        let uid = uid
            .trim()
            .parse()
            .with_context(|| format!("`id -u` printed {:?}, not a number", uid.trim()))?;
        let name = run_tool("id", &["-un"])?.trim().to_string();
        let groups = run_tool("id", &["-Gn"])?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        Ok(User { uid, name, groups })
    }
}

/// A curl version, e.g. 7.88.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CurlVersion(pub u32, pub u32, pub u32);

impl CurlVersion {
    /// 8.7 raised the netrc line limit (16 KiB) and added the 4 KiB token limit.
    pub const NEW_NETRC_PARSER: CurlVersion = CurlVersion(8, 7, 0);

    /// The installed curl tool's version; `None` when curl is not in PATH or says something
    /// else. Nix links libcurl, which may be another version: this is a hint, not a fact.
    pub fn installed(env: &dyn Environment) -> Option<CurlVersion> {
        if !in_path(env, "curl") {
            return None;
        }
        run_tool("curl", &["--version"])
            .ok()
            .and_then(|out| CurlVersion::parse(&out))
    }

    /// From `curl --version`'s first line: `curl 7.88.1 (x86_64-pc-linux-gnu) ...`.
    pub fn parse(output: &str) -> Option<CurlVersion> {
        let version = output.lines().next()?.split_whitespace().nth(1)?;
        let mut parts = version
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next().flatten().unwrap_or(0);
        let patch = parts.next().flatten().unwrap_or(0);
        Some(CurlVersion(major, minor, patch))
    }
}

impl std::fmt::Display for CurlVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_versions() {
        let debian = "curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1 OpenSSL/3.0.19\nRelease-Date: 2023-02-20";
        assert_eq!(CurlVersion::parse(debian), Some(CurlVersion(7, 88, 1)));
        assert!(CurlVersion::parse(debian).unwrap() < CurlVersion::NEW_NETRC_PARSER);
        assert_eq!(
            CurlVersion::parse("curl 8.11.1-DEV (aarch64)"),
            Some(CurlVersion(8, 11, 1))
        );
        assert!(CurlVersion(8, 11, 1) >= CurlVersion::NEW_NETRC_PARSER);
        assert_eq!(CurlVersion::parse("curl 8"), Some(CurlVersion(8, 0, 0)));
        assert_eq!(CurlVersion::parse("something else"), None);
        assert_eq!(CurlVersion::parse(""), None);
    }

    #[test]
    fn tool_errors_name_the_command() {
        let e = run_tool("sh", &["-c", "echo boom >&2; exit 3"]).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("`sh -c") && e.contains("boom"), "{e}");
        let e = run_tool("/nonexistent/tool", &[]).unwrap_err();
        assert!(format!("{e:#}").contains("cannot run"), "{e:#}");
        assert_eq!(run_tool("sh", &["-c", "echo hi"]).unwrap(), "hi\n");
        let env = crate::config::ProcessEnvironment;
        assert!(in_path(&env, "sh"));
        assert!(!in_path(&env, "no-such-tool-here"));
    }

    #[test]
    fn current_user_is_known() {
        let user = User::current().unwrap();
        assert!(!user.name.is_empty());
    }
}
