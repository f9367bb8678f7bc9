//! The statements about a connection's own session: `SET`, `RESET` and `SHOW` of the client
//! settings, transaction boundaries (`BEGIN`, `COMMIT`, `ROLLBACK`, savepoints: every
//! transaction is read-only, so there is nothing to roll back), `DISCARD` and `DEALLOCATE`.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{Ident, Set, Statement};
use futures::{Sink, SinkExt};
use pgwire::api::results::{Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore};
use pgwire::error::PgWireError;
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::startup::ParameterStatus;

use super::super::error::error;
use super::super::settings;
use super::super::statement;
use super::{Conn, Failure, portal_store};
use crate::analyst::AnalystError;
use crate::analyst::policy::{self, setting_name};

impl Conn {
    /// `SHOW name` (or `SHOW ALL`) as a batch.
    pub(super) fn show(
        &self,
        metadata: &HashMap<String, String>,
        name: &str,
    ) -> Result<RecordBatch, Failure> {
        let configured = self.shared.analyst.limits().time;
        if name == "all" {
            let mut names: Vec<&str> = policy::CLIENT_SETTINGS.to_vec();
            names.extend([
                "server_version",
                "server_encoding",
                "integer_datetimes",
                "is_superuser",
            ]);
            names.sort_unstable();
            let values: Vec<String> = names
                .iter()
                .map(|n| settings::current(metadata, n, configured).unwrap_or_default())
                .collect();
            let schema = Arc::new(Schema::new(vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("setting", DataType::Utf8, false),
            ]));
            return RecordBatch::try_new(
                schema,
                vec![
                    Arc::new(StringArray::from(names)),
                    Arc::new(StringArray::from(values)),
                ],
            )
            .map_err(|e| AnalystError::Engine(e.to_string()).into());
        }
        let value = settings::current(metadata, name, configured).ok_or_else(|| {
            error(
                "42704",
                format!("unrecognized configuration parameter \"{name}\""),
            )
        })?;
        RecordBatch::try_new(
            statement::show_schema(name),
            vec![Arc::new(StringArray::from(vec![value]))],
        )
        .map_err(|e| AnalystError::Engine(e.to_string()).into())
    }

    /// Sets client setting `name` (lower case) to `value` (`None`: its default), reporting
    /// the change when PostgreSQL would.
    async fn assign<C>(
        &self,
        client: &mut C,
        name: &str,
        value: Option<String>,
    ) -> Result<(), Failure>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        policy::check_setting(name).map_err(AnalystError::Refused)?;
        let value = value.filter(|v| !v.eq_ignore_ascii_case("default"));
        match value {
            Some(value) => {
                let value = settings::normalise(name, &value).map_err(|e| error("22023", e.0))?;
                client.metadata_mut().insert(name.to_string(), value);
            }
            None => {
                client.metadata_mut().remove(name);
            }
        }
        if settings::is_reported(name) {
            let value = settings::current(client.metadata(), name, None).unwrap_or_default();
            client
                .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                    settings::display_name(name).to_string(),
                    value,
                )))
                .await
                .map_err(PgWireError::from)?;
        }
        Ok(())
    }

    /// The statements about the session itself.
    pub(super) async fn session_statement<C>(
        &self,
        client: &mut C,
        statement: &Statement,
    ) -> Result<Response, Failure>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(match statement {
            Statement::Set(set) => {
                match set {
                    Set::SingleAssignment {
                        variable, values, ..
                    } => {
                        let value = settings::value_text(values);
                        self.assign(client, &setting_name(variable), Some(value))
                            .await?;
                    }
                    Set::ParenthesizedAssignments { variables, values } => {
                        for (variable, value) in variables.iter().zip(values) {
                            let value = settings::value_text(std::slice::from_ref(value));
                            self.assign(client, &setting_name(variable), Some(value))
                                .await?;
                        }
                    }
                    Set::MultipleAssignments { assignments } => {
                        for a in assignments {
                            let value = settings::value_text(std::slice::from_ref(&a.value));
                            self.assign(client, &setting_name(&a.name), Some(value))
                                .await?;
                        }
                    }
                    Set::SetTimeZone { value, .. } => {
                        let value = settings::value_text(std::slice::from_ref(value));
                        self.assign(client, "timezone", Some(value)).await?;
                    }
                    Set::SetNames { charset_name, .. } => {
                        self.assign(client, "client_encoding", Some(charset_name.value.clone()))
                            .await?;
                    }
                    // Transactions are read-only whatever is asked.
                    Set::SetTransaction { .. } => {}
                    other => {
                        return Err(error("0A000", format!("{other} is not supported")).into());
                    }
                }
                Response::Execution(Tag::new("SET"))
            }
            Statement::Reset(reset) => {
                match &reset.reset {
                    datafusion::sql::sqlparser::ast::Reset::ALL => {
                        for name in policy::CLIENT_SETTINGS {
                            client.metadata_mut().remove(*name);
                        }
                    }
                    datafusion::sql::sqlparser::ast::Reset::ConfigurationParameter(name) => {
                        self.assign(client, &setting_name(name), None).await?;
                    }
                }
                Response::Execution(Tag::new("RESET"))
            }
            Statement::StartTransaction { .. } => Response::TransactionStart(Tag::new("BEGIN")),
            Statement::Commit { .. } => {
                let failed = client.transaction_status() == TransactionStatus::Error;
                self.close_cursors(client, false);
                Response::TransactionEnd(Tag::new(if failed { "ROLLBACK" } else { "COMMIT" }))
            }
            Statement::Rollback {
                savepoint: None, ..
            } => {
                self.close_cursors(client, false);
                Response::TransactionEnd(Tag::new("ROLLBACK"))
            }
            // Nothing is written, so there is nothing to roll back to.
            Statement::Rollback { .. } => Response::Execution(Tag::new("ROLLBACK")),
            Statement::Savepoint { .. } => Response::Execution(Tag::new("SAVEPOINT")),
            Statement::ReleaseSavepoint { .. } => Response::Execution(Tag::new("RELEASE")),
            Statement::Discard { .. } => {
                self.close_cursors(client, true);
                for name in policy::CLIENT_SETTINGS {
                    client.metadata_mut().remove(*name);
                }
                Response::Execution(Tag::new("DISCARD ALL"))
            }
            Statement::Deallocate { name, .. } => {
                if let Some(store) = portal_store(client) {
                    store.rm_statement(&name.value);
                }
                Response::Execution(Tag::new("DEALLOCATE"))
            }
            other => {
                return Err(error(
                    "0A000",
                    format!("{other} is not supported by kitle's analyst SQL"),
                )
                .into());
            }
        })
    }
}

/// The lower-case name a `SHOW` asks for (`SHOW TIME ZONE` is `timezone`).
pub(super) fn show_name(variable: &[Ident]) -> String {
    let name = variable
        .iter()
        .map(|i| i.value.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    match name.as_str() {
        "time zone" => "timezone".into(),
        "transaction isolation level" => "transaction_isolation".into(),
        "session authorization" => "session_authorization".into(),
        _ => name.replace('"', ""),
    }
}
