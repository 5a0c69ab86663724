//! `doctor`: why Nix still gets 401. Every check from the config to the cache, in the order a
//! request travels them, each saying for a broken link what to do. It changes nothing: no
//! token is requested, no file written, no cache filled. `commands::doctor` only runs
//! [`examine`] and prints the [`Report`].
//!
//! [`run`] orders the checks and gathers the facts they share; one file per link:
//! `config` (in [`run`]), [`provider`] (`issuer`, `discovery`), [`session`], [`ci`]
//! (`ci-source`, for CI configs and sessions),
//! [`netrc_file`] (`netrc-file`, `curl-limits`), [`netrc_entry`], [`nix_checks`]
//! (`nix-conf`, `nix-netrc`, `nix-daemon`, `negative-cache`), [`determinate`]
//! (`determinate-nixd`, run from `nix_checks`) and [`cache`]. [`nix_setup`] is no check: it
//! is the lines Nix needs, which `init` prints.

pub mod bridge;
pub mod cache;
pub mod ci;
pub mod determinate;
pub mod netrc_entry;
pub mod netrc_file;
pub mod nix;
pub mod nix_checks;
pub mod nix_setup;
pub mod provider;
pub mod run;
pub mod session;
pub mod system;
pub mod token;

pub use run::{Target, examine};

use serde::Serialize;

/// The outcome of one check. A warning does not make `doctor` fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Could not be checked because something it depends on failed or is absent.
    Skip,
}

impl Status {
    /// The mark at the start of a text line; FAIL in capitals so it stands out.
    fn mark(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One line of the report: what was checked, what was found and, unless it passed, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    /// The cache host this check is about, for checks made once per host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Ok, detail, None)
    }

    pub fn skip(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Skip, detail, None)
    }

    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(name, Status::Warn, detail, Some(fix.into()))
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(name, Status::Fail, detail, Some(fix.into()))
    }

    fn new(
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: Option<String>,
    ) -> Check {
        Check {
            name,
            host: None,
            status,
            detail: detail.into(),
            fix,
        }
    }

    pub fn for_host(mut self, host: &str) -> Check {
        self.host = Some(host.to_string());
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// No check failed (warnings and skips allowed).
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Report {
        Report {
            ok: checks.iter().all(|c| c.status != Status::Fail),
            checks,
        }
    }

    /// One line per check, the fix indented below it, and a count at the end.
    pub fn to_text(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|c| label(c).len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for check in &self.checks {
            let mut lines = check.detail.lines();
            out.push_str(&format!(
                "{:<4}  {:<width$}  {}\n",
                check.status.mark(),
                label(check),
                lines.next().unwrap_or("")
            ));
            for line in lines {
                out.push_str(&format!("{:<4}  {:<width$}  {line}\n", "", ""));
            }
            if let Some(fix) = &check.fix {
                let mut lines = fix.lines();
                out.push_str(&format!("      fix: {}\n", lines.next().unwrap_or("")));
                for line in lines {
                    out.push_str(&format!("           {line}\n"));
                }
            }
        }
        let count = |s: Status| self.checks.iter().filter(|c| c.status == s).count();
        out.push_str(&format!(
            "\n{} ok, {} warn, {} FAIL, {} skip\n",
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip)
        ));
        out
    }
}

fn label(check: &Check) -> String {
    match &check.host {
        Some(host) => format!("{} {host}", check.name),
        None => check.name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_and_skips_do_not_fail() {
        let r = Report::new(vec![
            Check::ok("a", "fine"),
            Check::warn("b", "meh", "do x"),
            Check::skip("c", "n/a"),
        ]);
        assert!(r.ok);
        let r = Report::new(vec![
            Check::ok("a", "fine"),
            Check::fail("b", "bad", "do y"),
        ]);
        assert!(!r.ok);
    }

    #[test]
    fn text_puts_the_fix_under_the_check() {
        let r = Report::new(vec![
            Check::ok("config", "/c.toml"),
            Check::fail("netrc-file", "mode 0644", "chmod 600 /n\nthen run it again").for_host("h"),
        ]);
        let text = r.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ok    config        /c.toml");
        assert_eq!(lines[1], "FAIL  netrc-file h  mode 0644");
        assert_eq!(lines[2], "      fix: chmod 600 /n");
        assert_eq!(lines[3], "           then run it again");
        assert!(text.ends_with("1 ok, 0 warn, 1 FAIL, 0 skip\n"), "{text}");
    }

    #[test]
    fn json_has_every_field() {
        let r = Report::new(vec![Check::skip("cache", "no netrc").for_host("h")]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["ok"], true);
        let c = &v["checks"][0];
        assert_eq!(c["name"], "cache");
        assert_eq!(c["host"], "h");
        assert_eq!(c["status"], "skip");
        assert_eq!(c["detail"], "no netrc");
        assert!(c["fix"].is_null());
        let r = Report::new(vec![Check::fail("a", "b", "c"), Check::warn("d", "e", "f")]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["checks"][0]["status"], "fail");
        assert_eq!(v["checks"][1]["status"], "warn");
        assert_eq!(v["checks"][1]["fix"], "f");
    }
}
