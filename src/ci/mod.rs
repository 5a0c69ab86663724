//! CI federation: a CI job logs in with the OIDC ID token its platform hands it, so no
//! secret is stored anywhere.
//!
//! Two choices make a CI login: where the job's token comes from ([`Source`]) and how it
//! becomes the cache's token ([`CiGrant`]). Each is set in the config's `[ci]` table, in the
//! environment (`NIX_CACHE_LOGIN_CI_*`, since CI configs are YAML) or by a flag; the flag
//! wins, then the environment, then the file ([`Settings::resolve`]).
//!
//! The job's token is untrusted input (the CI endpoint, a file, a variable): it is bounded,
//! checked to be a JWT and never printed ([`job_token`]).

pub mod job_token;
pub mod source;

use std::fmt;
use std::path::PathBuf;

use crate::exit::ConfigError;

pub const ENV_SOURCE: &str = "NIX_CACHE_LOGIN_CI_SOURCE";
pub const ENV_GRANT: &str = "NIX_CACHE_LOGIN_CI_GRANT";
pub const ENV_AUDIENCE: &str = "NIX_CACHE_LOGIN_CI_AUDIENCE";

/// The variable GitLab puts the job's `id_tokens:` entry in, unless `id_token_var` says
/// otherwise.
pub const DEFAULT_GITLAB_VAR: &str = "NIX_CACHE_ID_TOKEN";

/// Where the job's own OIDC token comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// GitHub Actions' ID-token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN`).
    GithubActions,
    /// GitLab CI's `id_tokens:` keyword, which puts the token in a variable.
    Gitlab { var: String },
    /// A file the platform keeps fresh (Kubernetes projected token, SPIFFE JWT-SVID);
    /// read again on every run.
    File(PathBuf),
    /// Any environment variable.
    Env(String),
}

impl Source {
    /// Parses `github-actions`, `gitlab`, `file:PATH`, `env:VAR`; `gitlab_var` is the
    /// variable a `gitlab` source reads.
    pub fn parse(text: &str, gitlab_var: &str) -> Result<Source, String> {
        match text {
            "github-actions" => Ok(Source::GithubActions),
            "gitlab" => Ok(Source::Gitlab {
                var: gitlab_var.to_string(),
            }),
            _ => {
                if let Some(path) = text.strip_prefix("file:") {
                    let path = PathBuf::from(path);
                    if !path.is_absolute() {
                        return Err(format!("{text:?}: file: needs an absolute path"));
                    }
                    Ok(Source::File(path))
                } else if let Some(var) = text.strip_prefix("env:") {
                    check_var_name(var).map_err(|m| format!("{text:?}: {m}"))?;
                    Ok(Source::Env(var.to_string()))
                } else {
                    Err(format!(
                        "{text:?} is not a source (github-actions, gitlab, file:PATH, env:VAR)"
                    ))
                }
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::GithubActions => f.write_str("github-actions"),
            Source::Gitlab { var } if var == DEFAULT_GITLAB_VAR => f.write_str("gitlab"),
            Source::Gitlab { var } => write!(f, "gitlab (${var})"),
            Source::File(path) => write!(f, "file:{}", path.display()),
            Source::Env(var) => write!(f, "env:{var}"),
        }
    }
}

/// What the token endpoint is told the job's token is (RFC 8693 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectTokenType {
    IdToken,
    Jwt,
}

impl SubjectTokenType {
    pub fn urn(self) -> &'static str {
        match self {
            SubjectTokenType::IdToken => "urn:ietf:params:oauth:token-type:id_token",
            SubjectTokenType::Jwt => "urn:ietf:params:oauth:token-type:jwt",
        }
    }

    fn parse(text: &str) -> Result<SubjectTokenType, String> {
        match text {
            "id_token" | "urn:ietf:params:oauth:token-type:id_token" => {
                Ok(SubjectTokenType::IdToken)
            }
            "jwt" | "urn:ietf:params:oauth:token-type:jwt" => Ok(SubjectTokenType::Jwt),
            _ => Err(format!("{text:?} is not id_token or jwt")),
        }
    }
}

/// How the job's token becomes the cache's token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CiGrant {
    /// RFC 7523 §2.1, the JWT Authorization Grant (Keycloak 26.6).
    JwtBearer,
    /// RFC 8693 token exchange, for providers that take external tokens that way.
    TokenExchange {
        subject_token_type: SubjectTokenType,
        /// The `audience` parameter of the exchange (the cache), when the provider wants one.
        audience: Option<String>,
    },
    /// Client credentials, the client authenticated by the job's token (RFC 7523 §2.2).
    ClientAssertion,
    /// No provider: the cache trusts the CI issuer, and the job's token goes into the netrc.
    Direct,
}

impl CiGrant {
    /// The name used in the config, flags and messages.
    pub fn name(&self) -> &'static str {
        match self {
            CiGrant::JwtBearer => "jwt-bearer",
            CiGrant::TokenExchange { .. } => "token-exchange",
            CiGrant::ClientAssertion => "client-assertion",
            CiGrant::Direct => "direct",
        }
    }

    fn parse(text: &str, exchange: &ExchangeKeys) -> Result<CiGrant, String> {
        match text {
            "jwt-bearer" => Ok(CiGrant::JwtBearer),
            "token-exchange" => Ok(CiGrant::TokenExchange {
                subject_token_type: exchange.subject_token_type,
                audience: exchange.audience.clone(),
            }),
            "client-assertion" => Ok(CiGrant::ClientAssertion),
            "direct" => Ok(CiGrant::Direct),
            _ => Err(format!(
                "{text:?} is not a grant (jwt-bearer, token-exchange, client-assertion, direct)"
            )),
        }
    }
}

impl fmt::Display for CiGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `[ci]` table as written, checked by [`CiConfig::from_keys`].
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiKeys {
    source: Option<String>,
    grant: Option<String>,
    audience: Option<String>,
    id_token_var: Option<String>,
    subject_token_type: Option<String>,
    exchange_audience: Option<String>,
}

impl CiKeys {
    /// `over`'s keys win over `self`'s (a profile's `[profiles.x.ci]` over `[ci]`).
    pub fn overlay(self, over: CiKeys) -> CiKeys {
        CiKeys {
            source: over.source.or(self.source),
            grant: over.grant.or(self.grant),
            audience: over.audience.or(self.audience),
            id_token_var: over.id_token_var.or(self.id_token_var),
            subject_token_type: over.subject_token_type.or(self.subject_token_type),
            exchange_audience: over.exchange_audience.or(self.exchange_audience),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ExchangeKeys {
    subject_token_type: SubjectTokenType,
    audience: Option<String>,
}

/// The checked `[ci]` table: each key may still be left to the environment or a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiConfig {
    source: Option<String>,
    grant: Option<String>,
    audience: Option<String>,
    gitlab_var: String,
    exchange: ExchangeKeys,
}

impl Default for CiConfig {
    fn default() -> Self {
        CiConfig {
            source: None,
            grant: None,
            audience: None,
            gitlab_var: DEFAULT_GITLAB_VAR.to_string(),
            exchange: ExchangeKeys {
                subject_token_type: SubjectTokenType::IdToken,
                audience: None,
            },
        }
    }
}

impl CiConfig {
    /// The config names a CI source, grant or audience: it is meant for CI logins.
    pub fn is_set(&self) -> bool {
        self.source.is_some() || self.grant.is_some() || self.audience.is_some()
    }

    /// Checks every key that is set; `at(key, message)` makes the error that names the file
    /// and key.
    pub fn from_keys(
        keys: CiKeys,
        at: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<CiConfig, ConfigError> {
        let gitlab_var = match keys.id_token_var {
            Some(v) => {
                check_var_name(&v).map_err(|m| at("ci.id_token_var", m))?;
                v
            }
            None => DEFAULT_GITLAB_VAR.to_string(),
        };
        let exchange = ExchangeKeys {
            subject_token_type: keys
                .subject_token_type
                .as_deref()
                .map(SubjectTokenType::parse)
                .transpose()
                .map_err(|m| at("ci.subject_token_type", m))?
                .unwrap_or(SubjectTokenType::IdToken),
            audience: keys
                .exchange_audience
                .map(|a| check_audience(&a).map(|()| a))
                .transpose()
                .map_err(|m| at("ci.exchange_audience", m))?,
        };
        if let Some(s) = &keys.source {
            Source::parse(s, &gitlab_var).map_err(|m| at("ci.source", m))?;
        }
        if let Some(g) = &keys.grant {
            CiGrant::parse(g, &exchange).map_err(|m| at("ci.grant", m))?;
        }
        if let Some(a) = &keys.audience {
            check_audience(a).map_err(|m| at("ci.audience", m))?;
        }
        Ok(CiConfig {
            source: keys.source,
            grant: keys.grant,
            audience: keys.audience,
            gitlab_var,
            exchange,
        })
    }
}

/// What a `ci` run is asked to do, from flags, environment and config (stored with the
/// session, as JSON, for `token` and `status`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub source: Source,
    pub grant: CiGrant,
    /// The audience asked of the CI platform (GitHub), or expected in the job's token.
    pub audience: Option<String>,
}

/// The `ci` flags, as given.
#[derive(Debug, Clone, Default)]
pub struct Overrides<'a> {
    pub source: Option<&'a str>,
    pub grant: Option<&'a str>,
    pub audience: Option<&'a str>,
}

impl Settings {
    /// Flag, then `$NIX_CACHE_LOGIN_CI_*`, then the `[ci]` table of `config_file`. Errors
    /// name where the bad value came from.
    pub fn resolve(
        flags: &Overrides<'_>,
        env: &dyn Fn(&str) -> Option<String>,
        config: &CiConfig,
        config_file: &std::path::Path,
    ) -> Result<Settings, ConfigError> {
        let pick = |flag: Option<&str>, flag_name: &str, var: &str, key: Option<&String>| {
            if let Some(v) = flag {
                Some((v.to_string(), format!("--{flag_name}")))
            } else if let Some(v) = env(var) {
                Some((v, format!("${var}")))
            } else {
                key.map(|v| {
                    (
                        v.clone(),
                        format!("{}: ci.{flag_name}", config_file.display()),
                    )
                })
            }
        };
        let missing = |what: &str, var: &str| {
            ConfigError::invalid(format!(
                "no CI {what}: pass --{what}, set ${var}, or set {what} in the [ci] table of {}",
                config_file.display()
            ))
        };
        let (source_text, source_from) =
            pick(flags.source, "source", ENV_SOURCE, config.source.as_ref())
                .ok_or_else(|| missing("source", ENV_SOURCE))?;
        let source = Source::parse(&source_text, &config.gitlab_var)
            .map_err(|m| ConfigError::invalid(format!("{source_from}: {m}")))?;
        let (grant_text, grant_from) = pick(flags.grant, "grant", ENV_GRANT, config.grant.as_ref())
            .ok_or_else(|| missing("grant", ENV_GRANT))?;
        let grant = CiGrant::parse(&grant_text, &config.exchange)
            .map_err(|m| ConfigError::invalid(format!("{grant_from}: {m}")))?;
        let audience = match pick(
            flags.audience,
            "audience",
            ENV_AUDIENCE,
            config.audience.as_ref(),
        ) {
            Some((a, from)) => {
                check_audience(&a).map_err(|m| ConfigError::invalid(format!("{from}: {m}")))?;
                Some(a)
            }
            None => None,
        };
        Ok(Settings {
            source,
            grant,
            audience,
        })
    }
}

fn check_var_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is not an environment variable name"))
    }
}

/// An audience goes into a URL query and a JWT claim: printable, no spaces, bounded.
fn check_audience(audience: &str) -> Result<(), String> {
    if audience.is_empty() || audience.len() > 512 {
        return Err("must be 1 to 512 characters".into());
    }
    if audience
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{audience:?} must not hold spaces or control characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn at(key: &str, msg: String) -> ConfigError {
        ConfigError::invalid(format!("/c.toml: {key}: {msg}"))
    }

    fn config(keys: CiKeys) -> CiConfig {
        CiConfig::from_keys(keys, &at).unwrap()
    }

    #[test]
    fn sources_parse_and_print() {
        assert_eq!(
            Source::parse("github-actions", "V"),
            Ok(Source::GithubActions)
        );
        assert_eq!(
            Source::parse("gitlab", "MY_TOKEN"),
            Ok(Source::Gitlab {
                var: "MY_TOKEN".into()
            })
        );
        assert_eq!(
            Source::parse("file:/var/run/secrets/token", "V"),
            Ok(Source::File("/var/run/secrets/token".into()))
        );
        assert_eq!(
            Source::parse("env:CI_JWT", "V"),
            Ok(Source::Env("CI_JWT".into()))
        );
        assert!(Source::parse("file:relative", "V").is_err());
        assert!(Source::parse("env:1BAD", "V").is_err());
        assert!(Source::parse("env:", "V").is_err());
        assert!(
            Source::parse("circleci", "V")
                .unwrap_err()
                .contains("not a source")
        );
        assert_eq!(Source::File("/t".into()).to_string(), "file:/t");
        assert_eq!(
            Source::parse("gitlab", DEFAULT_GITLAB_VAR)
                .unwrap()
                .to_string(),
            "gitlab"
        );
    }

    #[test]
    fn flag_beats_environment_beats_file() {
        let file = config(CiKeys {
            source: Some("gitlab".into()),
            grant: Some("jwt-bearer".into()),
            audience: Some("from-file".into()),
            ..CiKeys::default()
        });
        let path = Path::new("/c.toml");
        let no_env = |_: &str| None;
        let s = Settings::resolve(&Overrides::default(), &no_env, &file, path).unwrap();
        assert_eq!(s.grant, CiGrant::JwtBearer);
        assert_eq!(s.audience.as_deref(), Some("from-file"));
        let env = |v: &str| (v == ENV_GRANT).then(|| "direct".to_string());
        let s = Settings::resolve(&Overrides::default(), &env, &file, path).unwrap();
        assert_eq!(s.grant, CiGrant::Direct);
        let flags = Overrides {
            grant: Some("client-assertion"),
            ..Overrides::default()
        };
        let s = Settings::resolve(&flags, &env, &file, path).unwrap();
        assert_eq!(s.grant, CiGrant::ClientAssertion);
    }

    #[test]
    fn errors_name_where_the_value_came_from() {
        let path = Path::new("/c.toml");
        let env = |v: &str| (v == ENV_SOURCE).then(|| "travis".to_string());
        let e = Settings::resolve(&Overrides::default(), &env, &CiConfig::default(), path)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("$NIX_CACHE_LOGIN_CI_SOURCE: \"travis\""),
            "{e}"
        );
        let e = Settings::resolve(
            &Overrides {
                source: Some("gitlab"),
                ..Overrides::default()
            },
            &|_| None,
            &CiConfig::default(),
            path,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no CI grant") && e.contains("--grant"), "{e}");
        let e = CiConfig::from_keys(
            CiKeys {
                grant: Some("jwt".into()),
                ..CiKeys::default()
            },
            &at,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("/c.toml: ci.grant: \"jwt\""), "{e}");
    }

    #[test]
    fn token_exchange_takes_its_keys() {
        let file = config(CiKeys {
            source: Some("env:T".into()),
            grant: Some("token-exchange".into()),
            subject_token_type: Some("jwt".into()),
            exchange_audience: Some("https://cache".into()),
            ..CiKeys::default()
        });
        let s =
            Settings::resolve(&Overrides::default(), &|_| None, &file, Path::new("/c")).unwrap();
        assert_eq!(
            s.grant,
            CiGrant::TokenExchange {
                subject_token_type: SubjectTokenType::Jwt,
                audience: Some("https://cache".into())
            }
        );
        assert!(
            CiConfig::from_keys(
                CiKeys {
                    subject_token_type: Some("saml".into()),
                    ..CiKeys::default()
                },
                &at
            )
            .is_err()
        );
    }

    #[test]
    fn audiences_are_one_printable_word() {
        assert!(check_audience("https://cache.example.com").is_ok());
        assert!(check_audience("two words").is_err());
        assert!(check_audience("a\u{1b}[2J").is_err());
        assert!(check_audience("").is_err());
    }
}
