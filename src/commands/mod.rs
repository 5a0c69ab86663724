//! One module per subcommand, and what they share: loading the config, reaching the
//! provider, and turning a token response into a stored session and a netrc entry.

mod bridge;
mod completions;
mod doctor;
mod login;
mod logout;
mod refresh;
mod service_account;
mod status;
mod token;

use std::time::Duration;

use anyhow::{Context, Result};

use crate::bridge::client as bridge_client;
use crate::cli::{BridgeCommand, Cli, Command};
use crate::clock;
use crate::config::{self, Config, Environment, ProcessEnvironment};
use crate::fsutil;
use crate::jwt;
use crate::netrc;
use crate::oidc::client::{GrantError, Provider, Tokens};
use crate::oidc::discovery::{self, Discovery};
use crate::oidc::http::HttpClient;
use crate::secret::Secret;
use crate::token_store::{Grant, LockedStore, Session, TokenStore};

/// Runs the command the user asked for.
pub fn run(cli: &Cli) -> Result<()> {
    let env = ProcessEnvironment;
    // doctor reports a broken config as one of its checks instead of stopping at it.
    if let Some(Command::Doctor(args)) = &cli.command {
        return doctor::run(cli, args, &env);
    }
    // Packaging runs these at build time, where there is no config.
    match &cli.command {
        Some(Command::Completions(args)) => return completions::completions(args),
        Some(Command::Man) => return completions::man(),
        // The bridge has its own config; its status works without one.
        Some(Command::Bridge(BridgeCommand::Serve(args))) => return bridge::serve(cli, args),
        Some(Command::Bridge(BridgeCommand::Status(args))) => {
            return bridge::status(cli, args, &env);
        }
        _ => {}
    }
    let config = config::load(cli.config.as_deref(), cli.profile.as_deref(), &env)?;
    tracing::debug!(config = %config.source.display(), "loaded config");
    let ctx = Ctx::new(config, &env)?;
    match cli.subcommand() {
        Command::Status(args) => status::run(&ctx, &args),
        Command::Login(args) => block_on(login::run(&ctx, &args)),
        Command::Refresh(args) => block_on(refresh::run(&ctx, &args)),
        Command::ServiceAccount(args) => block_on(service_account::run(&ctx, &args)),
        Command::Logout => block_on(logout::run(&ctx)),
        Command::Token(args) => block_on(token::run(&ctx, &args)),
        Command::Doctor(_) => unreachable!("doctor runs before the config is loaded"),
        Command::Completions(_) | Command::Man | Command::Bridge(_) => {
            unreachable!("completions, man and bridge run before the config is loaded")
        }
    }
}

/// One thread is plenty for one request at a time, and starts faster than a pool.
fn block_on<F: std::future::Future<Output = Result<()>>>(future: F) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}

/// What every command works with.
pub struct Ctx {
    pub config: Config,
    pub store: TokenStore,
    discovery_cache: Option<std::path::PathBuf>,
}

impl Ctx {
    fn new(config: Config, env: &dyn Environment) -> Result<Ctx> {
        let store = TokenStore::for_config(&config, env)?;
        let discovery_cache =
            discovery::cache_path(env.cache_home().as_deref(), config.issuer_str());
        Ok(Ctx {
            config,
            store,
            discovery_cache,
        })
    }

    fn discovery<'a>(&'a self, http: &'a HttpClient) -> Discovery<'a> {
        Discovery {
            http,
            issuer: self.config.issuer_str(),
            cache: self.discovery_cache.clone(),
        }
    }

    /// The provider's client, from cached documents when they are fresh.
    async fn provider(
        &self,
        http: &HttpClient,
        with_jwks: bool,
        secret: Option<&Secret>,
    ) -> Result<Provider> {
        let docs = self.discovery(http).get(with_jwks).await?;
        Provider::new(docs, &self.config.client_id, secret)
    }

    /// Runs a token request; when it fails in a way that a stale cached discovery document
    /// explains (endpoint moved or gone, so no token can have been spent), rediscovers once
    /// and tries again.
    async fn token_request(
        &self,
        http: &HttpClient,
        secret: Option<&Secret>,
        request: impl AsyncFn(&Provider) -> Result<Tokens, GrantError>,
    ) -> Result<(Provider, Tokens)> {
        let provider = self.provider(http, false, secret).await?;
        match request(&provider).await {
            Ok(tokens) => Ok((provider, tokens)),
            Err(e) if provider.docs.from_cache && e.may_be_stale_endpoint() => {
                tracing::info!(
                    "token request failed with a cached discovery document; rediscovering"
                );
                let docs = self.discovery(http).fetch(false).await?;
                let provider = Provider::new(docs, &self.config.client_id, secret)?;
                let tokens = request(&provider).await?;
                Ok((provider, tokens))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Before a token is requested: both files must be writable, so that a read-only or
    /// full file system fails before a refresh token is spent.
    fn check_writable(&self) -> Result<()> {
        fsutil::check_writable(&self.config.netrc_path)
            .with_context(|| format!("netrc {}", self.config.netrc_path.display()))?;
        self.store
            .check_writable()
            .with_context(|| format!("token store {}", self.store.path().display()))
    }

    /// Writes the access token into the netrc entry of every cache host.
    fn write_netrc(&self, access_token: &Secret) -> Result<()> {
        let token = access_token.expose();
        // curl reads a netrc word by word; a token it would split, or read as a keyword, would
        // send Nix something else than the token.
        if !netrc::is_plain_word(token) {
            anyhow::bail!(
                "the provider's access token ({} bytes) is not a single netrc word; not writing it to {}",
                token.len(),
                self.config.netrc_path.display()
            );
        }
        if let Some(warning) = netrc::long_token_warning(access_token.expose()) {
            tracing::warn!("{warning}");
            eprintln!("warning: {warning}");
        }
        netrc::update(&self.config.netrc_path, |file| {
            for host in &self.config.cache_hosts {
                file.upsert(
                    netrc::machine_name(host),
                    &self.config.netrc_login,
                    access_token.expose(),
                );
            }
            Ok(())
        })
        .with_context(|| {
            format!(
                "cannot update the netrc {}",
                self.config.netrc_path.display()
            )
        })?;
        Ok(())
    }

    /// Saves `session` and then writes its access token to the netrc. When the netrc write
    /// fails, the store goes back to what it was, unless `keep_store_on_netrc_failure` (a
    /// refresh whose old refresh token the provider has already spent).
    fn commit(
        &self,
        locked: &LockedStore<'_>,
        session: &Session,
        keep_store_on_netrc_failure: bool,
    ) -> Result<()> {
        let before = locked.snapshot()?;
        locked.save(session)?;
        if let Err(e) = self.write_netrc(&session.access_token) {
            if keep_store_on_netrc_failure {
                return Err(e.context(format!(
                    "the new refresh token was kept in {}; run `nix-cache-login refresh` once the netrc can be written",
                    self.store.path().display()
                )));
            }
            if let Err(restore) = locked.restore(before) {
                tracing::warn!("cannot restore the token store: {restore:#}");
            }
            return Err(e);
        }
        // The user's own netrc and store keep the new token whatever the bridge says.
        self.hand_over_to_daemon(&session.access_token)
    }

    /// Hands the new access token to the daemon bridge, when there is one.
    fn hand_over_to_daemon(&self, token: &Secret) -> Result<()> {
        match self.config.daemon_bridge.socket() {
            Some(socket) => bridge_client::hand_over(&socket, &self.config.cache_hosts, token),
            None => Ok(()),
        }
    }

    /// Asks the daemon bridge to remove this user's entries (logout).
    fn take_back_from_daemon(&self) -> Result<()> {
        let Some(socket) = self.config.daemon_bridge.socket() else {
            return Ok(());
        };
        for note in bridge_client::take_back(&socket, &self.config.cache_hosts)? {
            eprintln!("{note}");
        }
        Ok(())
    }

    /// True when every cache host's netrc entry holds `token`.
    fn netrc_holds(&self, token: &Secret) -> bool {
        let Ok(Some(file)) = netrc::read(&self.config.netrc_path) else {
            return false;
        };
        self.config.cache_hosts.iter().all(|host| {
            file.get(netrc::machine_name(host))
                .and_then(|e| e.password)
                .is_some_and(|p| p == token.expose().as_bytes())
        })
    }

    /// `--min-valid`: when the stored access token stays valid that long (and the netrc
    /// has it), there is nothing to do.
    fn still_valid(&self, session: &Session, min_valid: Option<Duration>) -> bool {
        let Some(min_valid) = min_valid else {
            return false;
        };
        let remaining = session
            .access_token_remaining(clock::now())
            .unwrap_or(i64::MIN);
        remaining >= min_valid.as_secs() as i64 && self.netrc_holds(&session.access_token)
    }
}

/// Updates `session` (or starts one) from a token response.
fn session_from_tokens(
    config: &Config,
    grant: Grant,
    tokens: Tokens,
    previous: Option<&Session>,
) -> Session {
    let now = clock::now();
    let access_claims = jwt::decode_claims(tokens.access_token.expose());
    let mut session = match previous {
        Some(p) if p.grant == grant => Session {
            grant,
            access_token: tokens.access_token.clone(),
            obtained_at: now,
            ..p.clone()
        },
        _ => Session::new(config, grant, tokens.access_token.clone(), now),
    };
    session.access_token_expires_at = tokens
        .expires_in
        .map(|d| now + d.as_secs() as i64)
        .or_else(|| access_claims.as_ref().and_then(|c| c.exp));
    if let Some(rt) = tokens.refresh_token {
        // Keycloak: refresh_expires_in 0 means an offline token with no fixed end.
        session.refresh_token_expires_at = match tokens.refresh_expires_in {
            Some(0) => None,
            Some(secs) => Some(now + secs as i64),
            None => jwt::decode_claims(rt.expose()).and_then(|c| c.exp),
        };
        session.refresh_token = Some(rt);
    }
    if let Some(id) = tokens.id_token {
        session.id_token = Some(id);
    }
    if let Some(claims) = access_claims {
        session.subject = claims.sub.clone().or(session.subject);
        session.username = claims.who().map(str::to_string).or(session.username);
    }
    session
}

fn describe_expiry(session: &Session) -> String {
    match session.access_token_expires_at {
        Some(exp) => format!(
            "valid until {} ({})",
            clock::format_utc(exp),
            clock::relative(exp, clock::now())
        ),
        None => "expiry unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::FakeEnv;
    use crate::oidc::client::TokenResponse;
    use base64::Engine;

    fn config() -> Config {
        let text = "issuer='https://sso'\nclient_id='nix'\ncache_host='c'\nnetrc_path='/n'\n";
        config::parse(text, std::path::Path::new("/c"), None, &FakeEnv::default()).unwrap()
    }

    fn tokens(json: serde_json::Value) -> Tokens {
        let response: TokenResponse = serde_json::from_value(json).unwrap();
        Tokens::from(response)
    }

    fn jwt_with_exp(exp: i64) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64("{}"), b64(&format!("{{\"exp\":{exp}}}")))
    }

    #[test]
    fn keycloak_refresh_expires_in_sets_refresh_expiry() {
        let t = tokens(serde_json::json!({
            "access_token": "a", "token_type": "Bearer", "expires_in": 300,
            "refresh_token": "r", "refresh_expires_in": 1800
        }));
        let s = session_from_tokens(&config(), Grant::AuthorizationCode, t, None);
        let now = clock::now();
        assert!((s.access_token_expires_at.unwrap() - (now + 300)).abs() <= 2);
        assert!((s.refresh_token_expires_at.unwrap() - (now + 1800)).abs() <= 2);
    }

    #[test]
    fn offline_token_has_no_fixed_end() {
        let t = tokens(serde_json::json!({
            "access_token": "a", "token_type": "Bearer",
            "refresh_token": jwt_with_exp(1), "refresh_expires_in": 0
        }));
        let s = session_from_tokens(&config(), Grant::AuthorizationCode, t, None);
        assert_eq!(s.refresh_token_expires_at, None);
    }

    #[test]
    fn expiry_falls_back_to_jwt_exp() {
        let t = tokens(serde_json::json!({
            "access_token": jwt_with_exp(2_000_000_000), "token_type": "Bearer",
            "refresh_token": jwt_with_exp(2_000_000_100)
        }));
        let s = session_from_tokens(&config(), Grant::AuthorizationCode, t, None);
        assert_eq!(s.access_token_expires_at, Some(2_000_000_000));
        assert_eq!(s.refresh_token_expires_at, Some(2_000_000_100));
    }

    #[test]
    fn a_refresh_without_new_refresh_token_keeps_the_old_one() {
        let first = tokens(serde_json::json!({
            "access_token": "a1", "token_type": "Bearer", "refresh_token": "r1"
        }));
        let s1 = session_from_tokens(&config(), Grant::AuthorizationCode, first, None);
        let second = tokens(serde_json::json!({"access_token": "a2", "token_type": "Bearer"}));
        let s2 = session_from_tokens(&config(), Grant::AuthorizationCode, second, Some(&s1));
        assert_eq!(s2.access_token.expose(), "a2");
        assert_eq!(s2.refresh_token.as_ref().unwrap().expose(), "r1");
    }
}
