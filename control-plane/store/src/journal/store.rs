//! The journal's persistence: revisions are assigned inside the writing transaction from
//! the `watch_meta` row, so commit order is revision order on SQLite and PostgreSQL alike.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use pharos_core::journal::{Change, JournalEntry, Object, Op};

use crate::entities::{journal, watch_meta, watch_state};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("journal entry {revision} is unreadable: {reason}")]
    Corrupt { revision: i64, reason: String },
    #[error("the watch_meta row is missing: run `pharosd migrate`")]
    MissingMeta,
}

/// Where the journal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchPosition {
    /// The last revision written.
    pub head: u64,
    /// Entries up to and including this revision have been deleted.
    pub compacted_through: u64,
}

#[derive(Clone)]
pub struct JournalStore {
    db: DatabaseConnection,
}

/// Rows per INSERT: well under SQLite's bound-parameter limit.
const INSERT_CHUNK: usize = 400;

impl JournalStore {
    pub fn new(db: DatabaseConnection) -> JournalStore {
        JournalStore { db }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub async fn position(&self) -> Result<WatchPosition, StoreError> {
        let meta = watch_meta::Entity::find_by_id(1)
            .one(&self.db)
            .await?
            .ok_or(StoreError::MissingMeta)?;
        Ok(WatchPosition {
            head: meta.head as u64,
            compacted_through: meta.compacted_through as u64,
        })
    }

    /// The latest state of every watched key, for snapshots.
    pub async fn load_state(&self) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = watch_state::Entity::find()
            .order_by_asc(watch_state::Column::Revision)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                crate::rows::journal_entry(
                    row.revision,
                    Op::Upsert,
                    &row.payload,
                    row.committed_at_micros,
                )
            })
            .collect()
    }

    /// Up to `limit` entries with a revision above `after`, in order.
    pub async fn read_after(
        &self,
        after: u64,
        limit: u64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = journal::Entity::find()
            .filter(journal::Column::Revision.gt(after as i64))
            .order_by_asc(journal::Column::Revision)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let op = Op::parse(&row.op).ok_or_else(|| StoreError::Corrupt {
                    revision: row.revision,
                    reason: format!("unknown op {:?}", row.op),
                })?;
                crate::rows::journal_entry(row.revision, op, &row.payload, row.committed_at_micros)
            })
            .collect()
    }

    /// Journals `changes` inside the caller's transaction and returns them with their
    /// revisions. The `watch_meta` update takes a row lock that orders concurrent writers.
    pub async fn append<C: ConnectionTrait>(
        txn: &C,
        changes: Vec<Change>,
        committed_at_micros: i64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        watch_meta::Entity::update_many()
            .col_expr(
                watch_meta::Column::Head,
                Expr::col(watch_meta::Column::Head).add(changes.len() as i64),
            )
            .filter(watch_meta::Column::Id.eq(1))
            .exec(txn)
            .await?;
        let head = watch_meta::Entity::find_by_id(1)
            .one(txn)
            .await?
            .ok_or(StoreError::MissingMeta)?
            .head as u64;
        let first = head + 1 - changes.len() as u64;
        let entries: Vec<JournalEntry> = changes
            .into_iter()
            .zip(first..)
            .map(|(change, revision)| JournalEntry::new(revision, committed_at_micros, change))
            .collect();

        for chunk in entries.chunks(INSERT_CHUNK) {
            let rows = chunk.iter().map(|entry| journal::ActiveModel {
                revision: Set(entry.revision as i64),
                topic: Set(entry.topic.as_str().to_owned()),
                op: Set(entry.op.as_str().to_owned()),
                key: Set(entry.key.clone()),
                project_id: Set(entry.scope.project.clone()),
                environment: Set(joined(&entry.scope.environments)),
                payload: Set(encode(&entry.object)),
                committed_at_micros: Set(entry.committed_at_micros),
            });
            journal::Entity::insert_many(rows).exec(txn).await?;
        }
        for entry in &entries {
            match entry.op {
                Op::Upsert => {
                    let row = watch_state::ActiveModel {
                        topic: Set(entry.topic.as_str().to_owned()),
                        key: Set(entry.key.clone()),
                        revision: Set(entry.revision as i64),
                        project_id: Set(entry.scope.project.clone()),
                        environment: Set(joined(&entry.scope.environments)),
                        payload: Set(encode(&entry.object)),
                        committed_at_micros: Set(entry.committed_at_micros),
                    };
                    watch_state::Entity::insert(row)
                        .on_conflict(
                            OnConflict::columns([
                                watch_state::Column::Topic,
                                watch_state::Column::Key,
                            ])
                            .update_columns([
                                watch_state::Column::Revision,
                                watch_state::Column::ProjectId,
                                watch_state::Column::Environment,
                                watch_state::Column::Payload,
                                watch_state::Column::CommittedAtMicros,
                            ])
                            .to_owned(),
                        )
                        .exec(txn)
                        .await?;
                }
                Op::Delete => {
                    watch_state::Entity::delete_many()
                        .filter(watch_state::Column::Topic.eq(entry.topic.as_str()))
                        .filter(watch_state::Column::Key.eq(entry.key.as_str()))
                        .exec(txn)
                        .await?;
                }
                Op::Append => {}
            }
        }
        Ok(entries)
    }

    /// Deletes journal entries so that at most `retain` remain; returns the new
    /// compacted-through revision.
    pub async fn compact(&self, retain: u64) -> Result<u64, StoreError> {
        let position = self.position().await?;
        let through = position.head.saturating_sub(retain);
        if through <= position.compacted_through {
            return Ok(position.compacted_through);
        }
        // Raise the bar first: a reader that checks it afterwards never sees a gap.
        watch_meta::Entity::update_many()
            .col_expr(
                watch_meta::Column::CompactedThrough,
                Expr::value(through as i64),
            )
            .filter(watch_meta::Column::Id.eq(1))
            .filter(watch_meta::Column::CompactedThrough.lt(through as i64))
            .exec(&self.db)
            .await?;
        journal::Entity::delete_many()
            .filter(journal::Column::Revision.lte(through as i64))
            .exec(&self.db)
            .await?;
        Ok(through)
    }
}

fn encode(object: &Object) -> String {
    serde_json::to_string(object).expect("journal objects always serialize")
}

fn joined(values: &[String]) -> Option<String> {
    (!values.is_empty()).then(|| values.join(","))
}
