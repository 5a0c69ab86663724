//! Getting the job's token from where its platform puts it.

use std::path::Path;

use anyhow::{Result, anyhow};
use serde::Deserialize;

use super::Source;
use super::job_token::{self, JobToken};
use crate::config::Environment;
use crate::exit::ConfigError;
use crate::fs::read_guard;
use crate::http::{HttpClient, is_loopback, read_body, strip_query};

/// GitHub Actions sets these in a job whose workflow has `permissions: id-token: write`.
pub const GITHUB_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
pub const GITHUB_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// What a source needs that this environment lacks, and what the job's setup must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absent {
    pub what: String,
    pub fix: Option<String>,
}

/// What `source` needs from this job's environment and does not find: the variables the
/// platform sets, or the file it keeps; `None` when it is there. The one rule `ci` (before
/// it asks) and `doctor` (without asking) both follow.
pub fn absent(source: &Source, env: &dyn Environment) -> Option<Absent> {
    match source {
        Source::GithubActions => {
            let missing: Vec<String> = [GITHUB_REQUEST_URL, GITHUB_REQUEST_TOKEN]
                .into_iter()
                .filter(|var| env.var(var).is_none())
                .map(|var| format!("${var}"))
                .collect();
            (!missing.is_empty()).then(|| Absent {
                what: match missing.as_slice() {
                    [one] => format!("{one} is not set"),
                    _ => format!("${GITHUB_REQUEST_URL} and ${GITHUB_REQUEST_TOKEN} are not set"),
                },
                fix: Some("the workflow (or job) needs `permissions: id-token: write`".into()),
            })
        }
        Source::Gitlab { var } => env.var(var).is_none().then(|| Absent {
            what: format!("${var} is not set"),
            fix: Some(format!(
                "the GitLab job needs `id_tokens: {var}: aud: ...` (or set ci.id_token_var to the name it uses)"
            )),
        }),
        Source::Env(var) => env.var(var).is_none().then(|| Absent {
            what: format!("${var} is not set"),
            fix: None,
        }),
        Source::File(path) => match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => None,
            Ok(_) => Some(Absent {
                what: format!("the CI token file {} is not a regular file", path.display()),
                fix: Some("point file: at the token file the platform keeps".into()),
            }),
            Err(e) => Some(Absent {
                what: format!("the CI token file {}: {e}", path.display()),
                fix: Some(
                    "mount the token there (Kubernetes: a projected serviceAccountToken volume), or point file: at where the platform keeps it"
                        .into(),
                ),
            }),
        },
    }
}

/// [`absent`]'s answer as the error `ci` stops with.
fn absent_error(source: &Source, env: &dyn Environment) -> ConfigError {
    let absent = absent(source, env).unwrap_or_else(|| Absent {
        what: format!("{source} is not usable"),
        fix: None,
    });
    match absent.fix {
        Some(fix) => ConfigError::invalid(format!("{}: {fix}", absent.what)),
        None => ConfigError::invalid(absent.what),
    }
}

/// The job's token from `source`, checked to be a CI JWT. `audience` is asked of GitHub;
/// the other platforms put it in the token when the job is set up.
pub async fn fetch(
    source: &Source,
    audience: Option<&str>,
    http: &HttpClient,
    env: &dyn Environment,
) -> Result<JobToken> {
    let (text, origin) = match source {
        Source::GithubActions => (github_actions(audience, http, env).await?, None),
        Source::Gitlab { var } | Source::Env(var) => (
            env.var(var).ok_or_else(|| absent_error(source, env))?,
            Some(format!("${var}")),
        ),
        Source::File(path) => (read_token_file(path)?, Some(path.display().to_string())),
    };
    let origin = origin.unwrap_or_else(|| "the ID-token endpoint's answer".to_string());
    JobToken::parse(&text).map_err(|e| anyhow!("{origin} is not a usable CI token: {e}"))
}

/// GET `$ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with the request token as bearer; the
/// answer is `{"value": "<JWT>"}`.
async fn github_actions(
    audience: Option<&str>,
    http: &HttpClient,
    env: &dyn Environment,
) -> Result<String> {
    let (Some(url), Some(request_token)) =
        (env.var(GITHUB_REQUEST_URL), env.var(GITHUB_REQUEST_TOKEN))
    else {
        return Err(absent_error(&Source::GithubActions, env).into());
    };
    let mut url = reqwest::Url::parse(&url)
        .map_err(|e| ConfigError::invalid(format!("${GITHUB_REQUEST_URL} is not a URL: {e}")))?;
    let loopback = url.host_str().is_some_and(is_loopback);
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(ConfigError::invalid(format!(
            "${GITHUB_REQUEST_URL} must be an https URL, not {}",
            strip_query(url.as_str())
        ))
        .into());
    }
    if let Some(audience) = audience {
        url.query_pairs_mut().append_pair("audience", audience);
    }
    let shown = strip_query(url.as_str());
    tracing::debug!("GET {shown}");
    let response = http
        .reqwest()
        .get(url)
        .header(
            reqwest::header::AUTHORIZATION,
            format!("bearer {request_token}"),
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| anyhow!("{shown}: {}", http.describe_error(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let hint = match status.as_u16() {
            401 | 403 => " (the ID-token endpoint refused the job's request token)",
            _ => "",
        };
        return Err(anyhow!("{shown}: HTTP {status}{hint}"));
    }
    let body = read_body(&shown, response).await?;
    #[derive(Deserialize)]
    struct Answer {
        value: String,
    }
    let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
        anyhow!(
            "{shown}: malformed answer ({} bytes, not a JSON object with a string \"value\")",
            body.len()
        )
    })?;
    Ok(answer.value)
}

/// Reads a token file, refusing one that is far too large to be a token. Another program
/// put it there, so it is read as such a file is (`fs::read_guard`): a FIFO is not waited on.
fn read_token_file(path: &Path) -> Result<String> {
    let shown = path.display();
    let bytes = read_guard::read_regular(path, read_guard::MAX_FILE_BYTES)
        .map_err(|e| ConfigError::invalid(format!("the CI token file: {e:#}")))?
        .ok_or_else(|| {
            ConfigError::invalid(format!(
                "cannot read the CI token file {shown}: it does not exist"
            ))
        })?;
    // One byte more than a token may be: its file may end in a newline.
    if bytes.len() > job_token::MAX_LEN + 1 {
        return Err(anyhow!(
            "the CI token file {shown} is larger than {} bytes: not a token",
            job_token::MAX_LEN
        ));
    }
    String::from_utf8(bytes).map_err(|_| anyhow!("the CI token file {shown} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::FakeEnv;

    #[tokio::test]
    async fn missing_github_variables_name_the_permission() {
        let http = HttpClient::new(&FakeEnv::default()).unwrap();
        let e = fetch(
            &Source::GithubActions,
            Some("a"),
            &http,
            &FakeEnv::default(),
        )
        .await
        .unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("permissions: id-token: write"), "{msg}");
        assert_eq!(crate::exit::code_for(&e), crate::exit::USAGE);
    }

    #[tokio::test]
    async fn a_plain_http_request_url_is_refused() {
        let mut env = FakeEnv::default();
        env.vars
            .insert(GITHUB_REQUEST_URL.into(), "http://example.com/t?v=1".into());
        env.vars.insert(GITHUB_REQUEST_TOKEN.into(), "x".into());
        let http = HttpClient::new(&FakeEnv::default()).unwrap();
        let e = fetch(&Source::GithubActions, None, &http, &env)
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("https"), "{e:#}");
    }

    #[tokio::test]
    async fn a_gitlab_variable_that_is_missing_names_id_tokens() {
        let http = HttpClient::new(&FakeEnv::default()).unwrap();
        let source = Source::Gitlab {
            var: "NIX_CACHE_ID_TOKEN".into(),
        };
        let e = fetch(&source, None, &http, &FakeEnv::default())
            .await
            .unwrap_err();
        assert!(
            format!("{e}").contains("id_tokens: NIX_CACHE_ID_TOKEN"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_file_is_bounded_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let http = HttpClient::new(&FakeEnv::default()).unwrap();
        let refusal = async |content: String| {
            std::fs::write(&path, content).unwrap();
            let source = Source::File(path.clone());
            let e = fetch(&source, None, &http, &FakeEnv::default()).await;
            format!("{:#}", e.unwrap_err())
        };
        let msg = refusal("x".repeat(job_token::MAX_LEN * 3)).await;
        assert!(msg.contains("larger than"), "{msg}");
        // Read as a file another program put there: a FIFO is refused, not waited on.
        std::fs::remove_file(&path).unwrap();
        if std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success())
        {
            let e = fetch(
                &Source::File(path.clone()),
                None,
                &http,
                &FakeEnv::default(),
            )
            .await;
            let msg = format!("{:#}", e.unwrap_err());
            assert!(msg.contains("not a regular file"), "{msg}");
            std::fs::remove_file(&path).unwrap();
        }
        let msg = refusal("secret-looking-garbage".into()).await;
        assert!(
            msg.contains("not a JWT") && !msg.contains("garbage"),
            "{msg}"
        );
    }
}
