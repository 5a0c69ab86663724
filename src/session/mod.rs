//! The session layer: the one core every command works through.
//!
//! [`Sessions`] owns the config, the token store, the discovery cache and the sinks the access
//! token is handed to. Its operations are what every flow needs:
//!
//! - the current session: [`Sessions::current`] (under the store lock), [`Sessions::peek`];
//! - "valid for at least D, or renew it": [`Sessions::ensure_valid`], [`Sessions::refresh`],
//!   [`Sessions::service_account`];
//! - obtain by a grant: [`Sessions::obtain`] ([`grant::GrantRequest`]), or
//!   [`Sessions::start`] for the tokens of an interactive login;
//! - commit: [`Sessions::commit`] saves the store, then publishes to the netrc and every
//!   further [`TokenSink`]; the store and the netrc are rolled back together;
//! - end: [`Sessions::revoke`] at the provider, [`Sessions::end`] here.
//!
//! # Invariants
//!
//! - Lock order: the token store's lock, then the netrc's lock, never the other way round.
//!   The store lock is held from reading a refresh token until the session it yields is
//!   committed ([`LockedStore`]); the netrc lock only inside one netrc update. Sinks are called
//!   with the store lock held.
//! - A commit never leaves a new store beside an old netrc, except where the provider has
//!   already spent the old refresh token ([`IfNetrcFails::KeepStore`]): then losing the new one
//!   would end the session.
//! - Both files are checked writable before a token is requested, so that a read-only or full
//!   file system fails before a refresh token is spent.

mod ci;
mod client_secret;
mod commit;
mod end;
pub mod grant;
pub mod next;
mod renew;
pub mod sink;
pub mod state;
pub mod status;
mod tokens;

use std::path::PathBuf;

use anyhow::{Context, Result};

pub use client_secret::{SecretUse, read as read_client_secret};
pub use commit::IfNetrcFails;
pub use end::Ended;
pub use grant::{Grant, GrantRequest};
pub use renew::Renewal;
pub use sink::{NetrcSink, TokenSink};
pub use tokens::ObtainError;

use crate::config::{Config, Environment};
use crate::exit::LoginNeeded;
use crate::fs;
use crate::http::HttpClient;
use crate::oidc::client::Provider;
use crate::oidc::discovery::{self, Discovery, Jwks, MinTtl};
use crate::secret::Secret;
use crate::token_store::{LockedStore, Session, TokenStore};

/// Whether `config`'s issuer answers as an OpenID provider: its discovery document fetched
/// and checked, and cached nowhere (`init` asks this before it writes anything).
pub async fn check_issuer_answers(http: &HttpClient, config: &Config) -> Result<()> {
    let discovery = Discovery {
        http,
        issuer: config.issuer_str(),
        cache: None,
        min_ttl: MinTtl::DEFAULT,
    };
    discovery.fetch(Jwks::NotNeeded).await?;
    Ok(())
}

/// The config's session: its store, its provider, and where its access token goes.
pub struct Sessions<'e> {
    config: Config,
    store: TokenStore,
    discovery_cache: Option<PathBuf>,
    discovery_min_ttl: MinTtl,
    env: &'e dyn Environment,
    netrc: NetrcSink,
    /// Told after the netrc, in order; see [`sink`].
    sinks: Vec<Box<dyn TokenSink + 'e>>,
}

impl<'e> Sessions<'e> {
    pub fn new(config: Config, env: &'e dyn Environment) -> Result<Sessions<'e>> {
        let store = TokenStore::for_config(&config, env)?;
        let discovery_cache =
            discovery::cache_path(env.cache_home().as_deref(), config.issuer_str());
        let discovery_min_ttl =
            MinTtl::from_var(env.var(discovery::ENV_DISCOVERY_MIN_TTL).as_deref())?;
        Ok(Sessions {
            netrc: NetrcSink::for_config(&config),
            config,
            store,
            discovery_cache,
            discovery_min_ttl,
            env,
            sinks: Vec::new(),
        })
    }

    /// Adds a sink that is told of every committed access token after the netrc.
    pub fn add_sink(&mut self, sink: Box<dyn TokenSink + 'e>) {
        self.sinks.push(sink);
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    pub fn env(&self) -> &'e dyn Environment {
        self.env
    }

    /// The netrc sink, to ask what it holds.
    pub fn netrc(&self) -> &NetrcSink {
        &self.netrc
    }

    /// The HTTP client for this run.
    pub fn http(&self) -> Result<HttpClient> {
        HttpClient::new(self.env)
    }

    pub fn discovery<'a>(&'a self, http: &'a HttpClient) -> Discovery<'a> {
        Discovery {
            http,
            issuer: self.config.issuer_str(),
            cache: self.discovery_cache.clone(),
            min_ttl: self.discovery_min_ttl,
        }
    }

    /// The provider's client, from cached documents when they are fresh.
    pub async fn provider(
        &self,
        http: &HttpClient,
        jwks: Jwks,
        secret: Option<&Secret>,
    ) -> Result<Provider> {
        let docs = self.discovery(http).get(jwks).await?;
        Provider::new(docs, &self.config.client_id, secret)
    }

    /// Takes the token store's lock (the first of the two locks; see the invariants above).
    pub fn lock(&self) -> Result<LockedStore<'_>> {
        self.store.lock()
    }

    /// The stored session, read under `locked`; none is a reason to log in.
    pub fn current(&self, locked: &LockedStore<'_>) -> Result<Session> {
        Ok(locked.load()?.ok_or_else(|| {
            LoginNeeded::with_step(
                format!("no stored session for {}", self.config.cache_hosts[0]),
                next::start_step(&self.config),
            )
        })?)
    }

    /// The stored session without the lock: for looking only (`status`, `doctor`).
    pub fn peek(&self) -> Result<Option<Session>> {
        self.store.peek()
    }

    /// Before a token is requested: both files must be writable, so that a read-only or
    /// full file system fails before a refresh token is spent.
    pub fn check_writable(&self) -> Result<()> {
        fs::check_writable(&self.config.netrc_path)
            .with_context(|| format!("netrc {}", self.config.netrc_path.display()))?;
        self.store
            .check_writable()
            .with_context(|| format!("token store {}", self.store.path().display()))
    }
}
