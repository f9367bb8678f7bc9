//! The start of a PostgreSQL connection: the database name, then the login.
//!
//! With tokens configured, the password is a token (`read` is enough), checked by SCRAM-SHA-256
//! so it never crosses the wire; any user name will do (it names the analyst in logs and in
//! `session_user`). Without tokens the service listens on loopback only (checked at start, as
//! for HTTP) and every user connects without a password. A refused login is a `FATAL` error
//! with PostgreSQL's SQLSTATE, and the connection ends.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    ServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, ConnectionGuard, ConnectionHandle, METADATA_DATABASE, METADATA_USER,
    PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::error::fatal;
use super::scram::{Exchange, MECHANISM, ScramError};
use super::settings;
use super::{SERVER_VERSION, Shared};
use crate::analyst::CATALOG;

/// Where a connection's login stands.
enum Login {
    /// Nothing asked yet.
    Start,
    /// The server's first SCRAM message was sent.
    Scram(Exchange),
    /// Done (or failed: the connection is closing).
    Over,
}

/// The startup handler of one connection.
pub struct Startup {
    shared: Arc<Shared>,
    login: tokio::sync::Mutex<Login>,
    admitted: bool,
}

impl Startup {
    /// The login of a new connection; one not `admitted` (the listener is full) is refused.
    pub fn new(shared: Arc<Shared>, admitted: bool) -> Self {
        Self {
            shared,
            login: tokio::sync::Mutex::new(Login::Start),
            admitted,
        }
    }
}

/// The parameters reported to a client once it is in: the server's, and the client settings
/// it started with (normalised).
struct Parameters;

impl ServerParameterProvider for Parameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let metadata = client.metadata();
        let mut params = HashMap::new();
        for name in [
            "server_version",
            "server_encoding",
            "client_encoding",
            "datestyle",
            "intervalstyle",
            "timezone",
            "integer_datetimes",
            "standard_conforming_strings",
            "is_superuser",
            "default_transaction_read_only",
            "in_hot_standby",
            "application_name",
            "search_path",
            "session_authorization",
        ] {
            let value = if name == "client_encoding" {
                // Results are UTF-8 whatever the client asked for on connect; drivers adopt
                // the reported encoding.
                Some("UTF8".to_string())
            } else {
                settings::current(metadata, name, None)
            };
            if let Some(value) = value {
                params.insert(settings::display_name(name).to_string(), value);
            }
        }
        params.insert(
            "scram_iterations".into(),
            super::scram::ITERATIONS.to_string(),
        );
        debug_assert_eq!(
            params.get("server_version"),
            Some(&SERVER_VERSION.to_string())
        );
        Some(params)
    }
}

/// Keeps the client settings a driver sent on connect (`DateStyle`, `TimeZone`,
/// `extra_float_digits`, …, and `-c name=value` in `options`, as `PGOPTIONS` sends them) under
/// their lower-case names, where the encoder and `SHOW` read them; values kitle cannot honour
/// are left at the default.
fn adopt_startup_settings<C: ClientInfo>(client: &mut C) {
    let metadata = client.metadata();
    let mut given: Vec<(String, String)> = metadata
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    if let Some(options) = metadata.get("options") {
        given.extend(startup_options(options));
    }
    for (name, value) in given {
        let settable = crate::analyst::policy::CLIENT_SETTINGS.contains(&name.as_str())
            && !matches!(name.as_str(), "client_encoding" | "transaction_read_only");
        if settable && let Ok(value) = settings::normalise(&name, &value) {
            client.metadata_mut().insert(name, value);
        }
    }
}

/// The `-c name=value` and `--name=value` pairs of a startup `options` string.
fn startup_options(options: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let pair = match word {
            "-c" => words.next(),
            w => w.strip_prefix("--").or_else(|| w.strip_prefix("-c")),
        };
        if let Some((name, value)) = pair.and_then(|p| p.split_once('=')) {
            pairs.push((
                name.to_ascii_lowercase().replace('-', "_"),
                value.to_string(),
            ));
        }
    }
    pairs
}

/// Whether the database asked for is kitle's: `kitle`, or none given / the user name (what
/// libpq asks for when no database is named).
fn database_is_known<C: ClientInfo>(client: &C) -> Result<(), PgWireError> {
    let metadata = client.metadata();
    match metadata.get(METADATA_DATABASE) {
        None => Ok(()),
        Some(db) if db == CATALOG || Some(db) == metadata.get(METADATA_USER) => Ok(()),
        Some(db) => Err(fatal(
            "3D000",
            format!("database \"{db}\" does not exist: kitle serves the database \"{CATALOG}\""),
        )),
    }
}

fn refused(shared: &Shared, error: PgWireError) -> PgWireError {
    shared.count_login("refused");
    error
}

impl Startup {
    /// Logged in: the pid and key for cancel requests, then the parameters and "ready".
    async fn finish<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (pid, secret) = RandomPidSecretKeyGenerator::default().generate(client);
        client.set_pid_and_secret_key(pid, secret.clone());
        let (handle, guard) = self.shared.cancels.register(pid, secret);
        client
            .session_extensions()
            .insert::<Arc<ConnectionHandle>>(handle);
        client.session_extensions().insert::<ConnectionGuard>(guard);
        self.shared.count_login("accepted");
        finish_authentication(client, &Parameters).await
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut login = self.login.lock().await;
        match (message, &*login) {
            (PgWireFrontendMessage::Startup(startup), Login::Start) => {
                protocol_negotiation(client, &startup).await?;
                if !self.admitted {
                    return Err(refused(
                        &self.shared,
                        fatal(
                            "53300",
                            "sorry, too many clients already (pg_max_connections)",
                        ),
                    ));
                }
                save_startup_parameters_to_metadata(client, &startup);
                adopt_startup_settings(client);
                database_is_known(client).map_err(|e| refused(&self.shared, e))?;
                if self.shared.keys.is_none() {
                    *login = Login::Over;
                    return self.finish(client).await;
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        vec![MECHANISM.to_string()],
                    )))
                    .await?;
                Ok(())
            }
            (PgWireFrontendMessage::PasswordMessageFamily(message), Login::Start) => {
                let Some(keys) = &self.shared.keys else {
                    return Err(fatal("08P01", "no password was asked for"));
                };
                let initial = message.into_sasl_initial_response().map_err(|_| {
                    refused(
                        &self.shared,
                        fatal("28000", "kitle authenticates with SCRAM-SHA-256: use a client that supports it (libpq 10 or later)"),
                    )
                })?;
                if initial.auth_method != MECHANISM {
                    return Err(refused(
                        &self.shared,
                        fatal(
                            "28000",
                            format!(
                                "authentication method {} is not offered; use {MECHANISM}",
                                initial.auth_method
                            ),
                        ),
                    ));
                }
                let data = initial.data.unwrap_or_default();
                match Exchange::start(keys, &data) {
                    Ok((exchange, server_first)) => {
                        *login = Login::Scram(exchange);
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLContinue(server_first.into_bytes().into()),
                            ))
                            .await?;
                        Ok(())
                    }
                    Err(e) => Err(refused(&self.shared, scram_failure(client, e))),
                }
            }
            (PgWireFrontendMessage::PasswordMessageFamily(message), Login::Scram(_)) => {
                let Login::Scram(exchange) = std::mem::replace(&mut *login, Login::Over) else {
                    unreachable!("matched above");
                };
                let keys = self
                    .shared
                    .keys
                    .as_ref()
                    .expect("SCRAM runs only with tokens");
                let response = message.into_sasl_response().map_err(|_| {
                    refused(&self.shared, fatal("08P01", "expected a SCRAM response"))
                })?;
                match exchange.finish(keys, &response.data) {
                    Ok((scope, server_final)) => {
                        tracing::debug!(?scope, user = ?client.metadata().get(METADATA_USER), "PostgreSQL login");
                        client
                            .feed(PgWireBackendMessage::Authentication(
                                Authentication::SASLFinal(server_final.into_bytes().into()),
                            ))
                            .await?;
                        self.finish(client).await
                    }
                    Err(e) => Err(refused(&self.shared, scram_failure(client, e))),
                }
            }
            _ => Err(fatal("08P01", "unexpected message during login")),
        }
    }
}

fn scram_failure<C: ClientInfo>(client: &C, error: ScramError) -> PgWireError {
    let user = client
        .metadata()
        .get(METADATA_USER)
        .cloned()
        .unwrap_or_default();
    match error {
        ScramError::WrongPassword => fatal(
            "28P01",
            format!(
                "password authentication failed for user \"{user}\": the password must be one of the service's tokens"
            ),
        ),
        ScramError::Protocol(reason) => fatal("08P01", reason),
    }
}

#[cfg(test)]
mod tests {
    use super::startup_options;

    #[test]
    fn options_carry_settings() {
        assert_eq!(
            startup_options("-c statement_timeout=300 --search-path=public -cDateStyle=ISO"),
            vec![
                ("statement_timeout".to_string(), "300".to_string()),
                ("search_path".to_string(), "public".to_string()),
                ("datestyle".to_string(), "ISO".to_string()),
            ]
        );
    }
}
