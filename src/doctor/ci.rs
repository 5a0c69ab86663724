//! `ci-source`: can this job give a CI login its token? For a config with a `[ci]` table or
//! a CI session in the store: whether the source's variables (or file) are in this
//! environment, as `ci` needs them before it asks anyone. Nothing is fetched.

use super::Check;
use super::run::Doctor;
use crate::ci::source::{self, Absent};
use crate::ci::{Overrides, Settings};
use crate::config::Config;
use crate::token_store::Session;

pub const CI_CHECK: &str = "ci-source";

impl Doctor<'_> {
    /// `None` for a config and session that have nothing to do with CI.
    pub(super) fn ci_check(&self, config: &Config, session: Option<&Session>) -> Option<Check> {
        // The stored session's settings are what `token` renews it with; else what `ci`
        // would resolve here and now.
        let stored = session.and_then(|s| s.ci.clone());
        let settings = match stored.clone() {
            Some(settings) => settings,
            None if config.ci.is_set() => {
                let env = self.env;
                match Settings::resolve(
                    &Overrides::default(),
                    &|var| env.var(var),
                    &config.ci,
                    &config.source,
                ) {
                    Ok(settings) => settings,
                    Err(e) => {
                        return Some(Check::warn(
                            CI_CHECK,
                            e.message,
                            "complete the [ci] table, or pass the flags to `nix-cache-login ci`",
                        ));
                    }
                }
            }
            None => return None,
        };
        let label = format!("source {}, grant {}", settings.source, settings.grant);
        let Some(Absent { what, fix }) = source::absent(&settings.source, self.env) else {
            return Some(Check::ok(
                CI_CHECK,
                format!("{label}: what it needs is in this environment"),
            ));
        };
        let detail = format!("{label}: {what}");
        let fix = fix.unwrap_or_else(|| "set it in the job's environment".to_string());
        Some(if stored.is_some() {
            // The stored session is renewed only by asking the source again.
            Check::fail(
                CI_CHECK,
                format!("{detail}; the CI session cannot be renewed here"),
                fix,
            )
        } else {
            Check::warn(CI_CHECK, format!("{detail} (not a CI job?)"), fix)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::Source;
    use crate::ci::source::{GITHUB_REQUEST_TOKEN, GITHUB_REQUEST_URL};
    use crate::config::tests::FakeEnv;

    fn env(vars: &[(&str, &str)]) -> FakeEnv {
        FakeEnv::with(vars)
    }

    #[test]
    fn each_source_names_what_is_missing_and_the_fix() {
        let github = source::absent(&Source::GithubActions, &env(&[])).unwrap();
        assert!(github.what.contains(GITHUB_REQUEST_URL), "{github:?}");
        assert!(github.fix.unwrap().contains("permissions: id-token: write"));
        let half = env(&[(GITHUB_REQUEST_URL, "https://x")]);
        let github = source::absent(&Source::GithubActions, &half).unwrap();
        assert_eq!(github.what, format!("${GITHUB_REQUEST_TOKEN} is not set"));
        let both = env(&[
            (GITHUB_REQUEST_URL, "https://x"),
            (GITHUB_REQUEST_TOKEN, "t"),
        ]);
        assert!(source::absent(&Source::GithubActions, &both).is_none());

        let gitlab = Source::Gitlab {
            var: "MY_ID_TOKEN".into(),
        };
        let absent = source::absent(&gitlab, &env(&[])).unwrap();
        assert_eq!(absent.what, "$MY_ID_TOKEN is not set");
        assert!(absent.fix.unwrap().contains("id_tokens: MY_ID_TOKEN"));
        assert!(source::absent(&gitlab, &env(&[("MY_ID_TOKEN", "jwt")])).is_none());

        let dir = tempfile::tempdir().unwrap();
        let file = Source::File(dir.path().join("token"));
        let absent = source::absent(&file, &env(&[])).unwrap();
        assert!(absent.what.contains("/token"), "{absent:?}");
        assert!(absent.fix.unwrap().contains("projected"));
        std::fs::write(dir.path().join("token"), "x").unwrap();
        assert!(source::absent(&file, &env(&[])).is_none());
        let dir_source = Source::File(dir.path().to_path_buf());
        let absent = source::absent(&dir_source, &env(&[])).unwrap();
        assert!(absent.what.contains("not a regular file"), "{absent:?}");
    }
}
