//! Bulk reads for `ExportService`: check results and journaled events, a page at a time
//! by primary key (keyset pagination), each page a fresh query, so an export of any size
//! holds one page in memory. An export is bounded when it starts (the highest id or
//! revision then), so rows written during it are left out and the count stays exact.

use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use pharos_core::domain::{CheckResult, Event, Operation};
use pharos_core::journal::Topic;

use crate::entities::{check_result, journal, operation};
use crate::rows;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the database did not answer: {0}")]
    Db(#[from] DbErr),
    #[error("journal entry {revision} is unreadable: {reason}")]
    Corrupt { revision: i64, reason: String },
    #[error("{0}")]
    CorruptOperation(String),
}

impl pharos_core::error::CodedError for ExportError {
    fn code(&self) -> pharos_core::error::ErrorCode {
        use pharos_core::error::ErrorCode;
        match self {
            ExportError::Db(_) => ErrorCode::Unavailable,
            ExportError::Corrupt { .. } | ExportError::CorruptOperation(_) => ErrorCode::DataLoss,
        }
    }
}

/// Time range in microseconds since the epoch: `[start, end)`, either side open.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// Where an export stops and how many records it will send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportPlan {
    /// The last id (check results) or revision (events) included.
    pub last_key: i64,
    pub total: u64,
}

/// A journaled event with the time it was journaled.
#[derive(Clone, Debug)]
pub struct JournaledEvent {
    pub revision: i64,
    pub committed_at_micros: i64,
    pub event: Event,
}

#[derive(Clone)]
pub struct ExportStore {
    db: DatabaseConnection,
}

impl ExportStore {
    pub fn new(db: DatabaseConnection) -> ExportStore {
        ExportStore { db }
    }

    fn results_in(range: TimeRange) -> sea_orm::Select<check_result::Entity> {
        let mut query = check_result::Entity::find();
        if let Some(start) = range.start {
            query = query.filter(check_result::Column::AtMicros.gte(start));
        }
        if let Some(end) = range.end {
            query = query.filter(check_result::Column::AtMicros.lt(end));
        }
        query
    }

    pub async fn plan_check_results(&self, range: TimeRange) -> Result<ExportPlan, DbErr> {
        let last: Option<i64> = check_result::Entity::find()
            .select_only()
            .column_as(check_result::Column::Id.max(), "last")
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
            .flatten();
        let last_key = last.unwrap_or(0);
        let total = Self::results_in(range)
            .filter(check_result::Column::Id.lte(last_key))
            .count(&self.db)
            .await?;
        Ok(ExportPlan { last_key, total })
    }

    /// Up to `limit` results with an id in `(after, plan.last_key]`, by id.
    pub async fn check_results_page(
        &self,
        range: TimeRange,
        plan: ExportPlan,
        after: i64,
        limit: u64,
    ) -> Result<Vec<(i64, CheckResult)>, DbErr> {
        let rows = Self::results_in(range)
            .filter(check_result::Column::Id.gt(after))
            .filter(check_result::Column::Id.lte(plan.last_key))
            .order_by_asc(check_result::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.id, rows::check_result(row)))
            .collect())
    }

    fn events_in(range: TimeRange) -> sea_orm::Select<journal::Entity> {
        let mut query =
            journal::Entity::find().filter(journal::Column::Topic.eq(Topic::Events.as_str()));
        if let Some(start) = range.start {
            query = query.filter(journal::Column::CommittedAtMicros.gte(start));
        }
        if let Some(end) = range.end {
            query = query.filter(journal::Column::CommittedAtMicros.lt(end));
        }
        query
    }

    pub async fn plan_events(&self, range: TimeRange) -> Result<ExportPlan, DbErr> {
        let last: Option<i64> = journal::Entity::find()
            .select_only()
            .column_as(journal::Column::Revision.max(), "last")
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
            .flatten();
        let last_key = last.unwrap_or(0);
        let total = Self::events_in(range)
            .filter(journal::Column::Revision.lte(last_key))
            .count(&self.db)
            .await?;
        Ok(ExportPlan { last_key, total })
    }

    /// Up to `limit` events with a revision in `(after, plan.last_key]`, in journal order.
    pub async fn events_page(
        &self,
        range: TimeRange,
        plan: ExportPlan,
        after: i64,
        limit: u64,
    ) -> Result<Vec<JournaledEvent>, ExportError> {
        let rows = Self::events_in(range)
            .filter(journal::Column::Revision.gt(after))
            .filter(journal::Column::Revision.lte(plan.last_key))
            .order_by_asc(journal::Column::Revision)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let event = rows::journaled_event(&row).map_err(|reason| ExportError::Corrupt {
                    revision: row.revision,
                    reason,
                })?;
                Ok(JournaledEvent {
                    revision: row.revision,
                    committed_at_micros: row.committed_at_micros,
                    event,
                })
            })
            .collect()
    }

    fn operations_in(range: TimeRange) -> sea_orm::Select<operation::Entity> {
        let mut query = operation::Entity::find();
        if let Some(start) = range.start {
            query = query.filter(operation::Column::CreatedMicros.gte(start));
        }
        if let Some(end) = range.end {
            query = query.filter(operation::Column::CreatedMicros.lt(end));
        }
        query
    }

    /// Operations are keyed by creation time (then id): the export ends at the newest
    /// creation time when it starts.
    pub async fn plan_operations(&self, range: TimeRange) -> Result<ExportPlan, DbErr> {
        let last: Option<i64> = operation::Entity::find()
            .select_only()
            .column_as(operation::Column::CreatedMicros.max(), "last")
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
            .flatten();
        let last_key = last.unwrap_or(0);
        let total = Self::operations_in(range)
            .filter(operation::Column::CreatedMicros.lte(last_key))
            .count(&self.db)
            .await?;
        Ok(ExportPlan { last_key, total })
    }

    /// Up to `limit` operations created after `after` (creation time, id) and at or
    /// before `plan.last_key`, oldest first.
    pub async fn operations_page(
        &self,
        range: TimeRange,
        plan: ExportPlan,
        after: Option<&(i64, String)>,
        limit: u64,
    ) -> Result<Vec<Operation>, ExportError> {
        let mut query =
            Self::operations_in(range).filter(operation::Column::CreatedMicros.lte(plan.last_key));
        if let Some((created, id)) = after {
            query = query.filter(
                Condition::any()
                    .add(operation::Column::CreatedMicros.gt(*created))
                    .add(
                        Condition::all()
                            .add(operation::Column::CreatedMicros.eq(*created))
                            .add(operation::Column::Id.gt(id.clone())),
                    ),
            );
        }
        query
            .order_by_asc(operation::Column::CreatedMicros)
            .order_by_asc(operation::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                crate::operations::decode(row)
                    .map_err(|err| ExportError::CorruptOperation(err.to_string()))
            })
            .collect()
    }
}
