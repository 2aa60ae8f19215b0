//! Operations and audit records in the database. An operation's row is written in the
//! same transaction as its journal entry (see [`OperationStore::save`]).

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use pharos_core::domain::{Operation, OperationState};
use pharos_core::journal::{Change, Object};

use crate::entities::{audit_log, operation};
use crate::journal::{WriteError, WriterHandle};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error(transparent)]
    Journal(#[from] WriteError),
    #[error("stored operation {id} is not readable: {source}")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
}

/// One audited call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at_micros: i64,
    pub actor: String,
    pub method: String,
    pub deployment_id: String,
    pub reason: String,
    pub request_id: String,
    pub code: String,
    pub message: String,
    pub operation_id: String,
}

#[derive(Clone)]
pub struct OperationStore {
    db: DatabaseConnection,
    writer: WriterHandle,
}

impl OperationStore {
    pub fn new(db: DatabaseConnection, writer: WriterHandle) -> OperationStore {
        OperationStore { db, writer }
    }

    /// Stores the operation's current state and journals it on the operations topic,
    /// in one transaction.
    pub async fn save(&self, op: &Operation) -> Result<u64, StoreError> {
        let row = operation::ActiveModel {
            id: Set(op.id.clone()),
            request_id: Set(op.request_id.clone()),
            deployment_id: Set(op.deployment_id()),
            state: Set(op.state.as_str().to_owned()),
            created_micros: Set(op.created_micros),
            body: Set(serde_json::to_string(op).expect("operations serialize")),
        };
        let revision = self
            .writer
            .append_with(
                vec![Change::upsert(Object::Operation(op.clone()))],
                Box::new(move |txn| {
                    Box::pin(async move {
                        operation::Entity::insert(row)
                            .on_conflict(
                                OnConflict::column(operation::Column::Id)
                                    .update_columns([
                                        operation::Column::State,
                                        operation::Column::Body,
                                    ])
                                    .to_owned(),
                            )
                            .exec(txn)
                            .await
                            .map(drop)
                    })
                }),
            )
            .await?;
        Ok(revision)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        operation::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(decode)
            .transpose()
    }

    pub async fn by_request_id(&self, request_id: &str) -> Result<Option<Operation>, StoreError> {
        operation::Entity::find()
            .filter(operation::Column::RequestId.eq(request_id))
            .one(&self.db)
            .await?
            .map(decode)
            .transpose()
    }

    /// Newest first; `before` is the (created, id) of the last item of the previous page.
    pub async fn list(
        &self,
        deployment_id: Option<&str>,
        states: &[OperationState],
        before: Option<(i64, String)>,
        limit: u64,
    ) -> Result<Vec<Operation>, StoreError> {
        let mut query = operation::Entity::find();
        if let Some(deployment_id) = deployment_id {
            query = query.filter(operation::Column::DeploymentId.eq(deployment_id));
        }
        if !states.is_empty() {
            query = query.filter(
                operation::Column::State.is_in(states.iter().map(|s| s.as_str().to_owned())),
            );
        }
        if let Some((created, id)) = before {
            query = query.filter(
                Condition::any()
                    .add(operation::Column::CreatedMicros.lt(created))
                    .add(
                        Condition::all()
                            .add(operation::Column::CreatedMicros.eq(created))
                            .add(operation::Column::Id.lt(id)),
                    ),
            );
        }
        query
            .order_by_desc(operation::Column::CreatedMicros)
            .order_by_desc(operation::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(decode)
            .collect()
    }

    pub async fn audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        audit_log::Entity::insert(audit_log::ActiveModel {
            id: Default::default(),
            at_micros: Set(entry.at_micros),
            actor: Set(entry.actor),
            method: Set(entry.method),
            deployment_id: Set(entry.deployment_id),
            reason: Set(entry.reason),
            request_id: Set(entry.request_id),
            code: Set(entry.code),
            message: Set(entry.message),
            operation_id: Set(entry.operation_id),
        })
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// Newest first; `before` is the id of the last record of the previous page.
    pub async fn audit_records(
        &self,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        let mut query = audit_log::Entity::find();
        if let Some(before) = before {
            query = query.filter(audit_log::Column::Id.lt(before));
        }
        Ok(query
            .order_by_desc(audit_log::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                (
                    row.id,
                    AuditEntry {
                        at_micros: row.at_micros,
                        actor: row.actor,
                        method: row.method,
                        deployment_id: row.deployment_id,
                        reason: row.reason,
                        request_id: row.request_id,
                        code: row.code,
                        message: row.message,
                        operation_id: row.operation_id,
                    },
                )
            })
            .collect())
    }
}

pub(crate) fn decode(row: operation::Model) -> Result<Operation, StoreError> {
    let id = row.id.clone();
    crate::rows::operation(row).map_err(|source| StoreError::Corrupt { id, source })
}
