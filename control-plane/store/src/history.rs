//! Check history in the database: every result in `check_results`, and per check the
//! counts of each minute, hour and day bucket in `check_rollups`. What goes into a
//! bucket, when to flush and how long to keep things are the health collector's
//! decisions; this module reads and writes the rows.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};

use pharos_core::domain::{CheckResult, HealthStatus, Resolution};

use crate::QueryError;
use crate::entities::{check_result, check_rollup};
use crate::rows;

/// Rows per INSERT: well under SQLite's bound-parameter limit.
const INSERT_CHUNK: usize = 200;

/// A page of results and where the next one starts.
pub struct ResultsPage {
    pub results: Vec<CheckResult>,
    /// (at_micros, id) of the last result, when more follow.
    pub next: Option<(i64, i64)>,
}

/// One check's counts over a bucket, or summed over several.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollupCounts {
    pub runs: u64,
    pub healthy: u64,
    pub degraded: u64,
    pub unhealthy: u64,
    /// Runs per latency bucket; empty when the latency was not read.
    pub latency: Vec<u64>,
}

/// One check's rollup bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollupBucket {
    pub resolution: Resolution,
    pub bucket_start_micros: i64,
    pub check_id: String,
    pub counts: RollupCounts,
}

#[derive(Clone)]
pub struct CheckHistory {
    db: DatabaseConnection,
}

impl CheckHistory {
    pub fn new(db: DatabaseConnection) -> CheckHistory {
        CheckHistory { db }
    }

    /// Results of `check_id` in `[start, end)`, newest first, after `after` (a cursor).
    pub async fn results(
        &self,
        check_id: &str,
        start_micros: Option<i64>,
        end_micros: Option<i64>,
        after: Option<(i64, i64)>,
        limit: u64,
    ) -> Result<ResultsPage, QueryError> {
        let mut query =
            check_result::Entity::find().filter(check_result::Column::CheckId.eq(check_id));
        if let Some(start) = start_micros {
            query = query.filter(check_result::Column::AtMicros.gte(start));
        }
        if let Some(end) = end_micros {
            query = query.filter(check_result::Column::AtMicros.lt(end));
        }
        if let Some((at, id)) = after {
            query = query.filter(
                Condition::any()
                    .add(check_result::Column::AtMicros.lt(at))
                    .add(
                        Condition::all()
                            .add(check_result::Column::AtMicros.eq(at))
                            .add(check_result::Column::Id.lt(id)),
                    ),
            );
        }
        let mut found = query
            .order_by_desc(check_result::Column::AtMicros)
            .order_by_desc(check_result::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let more = found.len() as u64 > limit;
        found.truncate(limit as usize);
        let next = more
            .then(|| found.last().map(|row| (row.at_micros, row.id)))
            .flatten();
        Ok(ResultsPage {
            results: found.into_iter().map(rows::check_result).collect(),
            next,
        })
    }

    /// The latest unhealthy results of any check, newest first.
    pub async fn recent_failures(&self, limit: u64) -> Result<Vec<CheckResult>, QueryError> {
        let found = check_result::Entity::find()
            .filter(check_result::Column::Outcome.eq(HealthStatus::Unhealthy.as_str()))
            .order_by_desc(check_result::Column::AtMicros)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(found.into_iter().map(rows::check_result).collect())
    }

    /// Every bucket of `resolution` starting at `since_micros` or later, with latency, of
    /// `check_ids` (of every check when empty).
    pub async fn buckets_since(
        &self,
        check_ids: &[String],
        resolution: Resolution,
        since_micros: i64,
    ) -> Result<Vec<RollupBucket>, QueryError> {
        let found = rollups_since(check_ids, resolution, since_micros)
            .all(&self.db)
            .await?;
        Ok(found
            .into_iter()
            .map(|row| rows::rollup_bucket(resolution, row))
            .collect())
    }

    /// Per check, the sums of the buckets [`buckets_since`](Self::buckets_since) would
    /// return, without latency.
    pub async fn totals_since(
        &self,
        check_ids: &[String],
        resolution: Resolution,
        since_micros: i64,
    ) -> Result<HashMap<String, RollupCounts>, QueryError> {
        // Summed in the database: one row per check instead of one per bucket.
        let sum = |column: &str| Expr::cust(format!("CAST(SUM({column}) AS BIGINT)"));
        let found: Vec<(String, i64, i64, i64, i64)> =
            rollups_since(check_ids, resolution, since_micros)
                .select_only()
                .column(check_rollup::Column::CheckId)
                .column_as(sum("runs"), "runs")
                .column_as(sum("healthy"), "healthy")
                .column_as(sum("degraded"), "degraded")
                .column_as(sum("unhealthy"), "unhealthy")
                .group_by(check_rollup::Column::CheckId)
                .into_tuple()
                .all(&self.db)
                .await?;
        Ok(found
            .into_iter()
            .map(|(check_id, runs, healthy, degraded, unhealthy)| {
                let counts = RollupCounts {
                    runs: runs as u64,
                    healthy: healthy as u64,
                    degraded: degraded as u64,
                    unhealthy: unhealthy as u64,
                    latency: Vec::new(),
                };
                (check_id, counts)
            })
            .collect())
    }

    /// Every check's bucket of `resolution` that starts at `bucket_start_micros`.
    pub async fn buckets_at(
        &self,
        resolution: Resolution,
        bucket_start_micros: i64,
    ) -> Result<Vec<RollupBucket>, QueryError> {
        let found = check_rollup::Entity::find()
            .filter(check_rollup::Column::Resolution.eq(resolution_code(resolution)))
            .filter(check_rollup::Column::BucketStartMicros.eq(bucket_start_micros))
            .all(&self.db)
            .await?;
        Ok(found
            .into_iter()
            .map(|row| rows::rollup_bucket(resolution, row))
            .collect())
    }

    /// Inserts `results` and replaces the counts of `buckets`, in one transaction.
    pub async fn write(
        &self,
        results: &[CheckResult],
        buckets: &[RollupBucket],
    ) -> Result<(), QueryError> {
        let txn = self.db.begin().await?;
        for chunk in results.chunks(INSERT_CHUNK) {
            let new_rows = chunk.iter().map(|result| check_result::ActiveModel {
                check_id: Set(result.check_id.clone()),
                at_micros: Set(result.at_micros),
                outcome: Set(result.outcome.as_str().to_owned()),
                message: Set(result.message.clone()),
                connect_micros: Set(result.connect_micros),
                tls_micros: Set(result.tls_micros),
                first_byte_micros: Set(result.first_byte_micros),
                total_micros: Set(result.total_micros),
                measurements: Set(
                    serde_json::to_string(&result.measurements).unwrap_or_else(|_| "{}".to_owned())
                ),
                ..Default::default()
            });
            check_result::Entity::insert_many(new_rows)
                .exec(&txn)
                .await?;
        }
        for chunk in buckets.chunks(INSERT_CHUNK) {
            let new_rows = chunk.iter().map(|bucket| check_rollup::ActiveModel {
                resolution: Set(resolution_code(bucket.resolution).to_owned()),
                bucket_start_micros: Set(bucket.bucket_start_micros),
                check_id: Set(bucket.check_id.clone()),
                runs: Set(bucket.counts.runs as i64),
                healthy: Set(bucket.counts.healthy as i64),
                degraded: Set(bucket.counts.degraded as i64),
                unhealthy: Set(bucket.counts.unhealthy as i64),
                latency_histogram: Set(encode_latency(&bucket.counts.latency)),
            });
            check_rollup::Entity::insert_many(new_rows)
                .on_conflict(
                    OnConflict::columns([
                        check_rollup::Column::Resolution,
                        check_rollup::Column::BucketStartMicros,
                        check_rollup::Column::CheckId,
                    ])
                    .update_columns([
                        check_rollup::Column::Runs,
                        check_rollup::Column::Healthy,
                        check_rollup::Column::Degraded,
                        check_rollup::Column::Unhealthy,
                        check_rollup::Column::LatencyHistogram,
                    ])
                    .to_owned(),
                )
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Deletes the results from before `at_micros`.
    pub async fn delete_results_before(&self, at_micros: i64) -> Result<(), QueryError> {
        check_result::Entity::delete_many()
            .filter(check_result::Column::AtMicros.lt(at_micros))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Deletes the buckets of `resolution` that start before `at_micros`.
    pub async fn delete_buckets_before(
        &self,
        resolution: Resolution,
        at_micros: i64,
    ) -> Result<(), QueryError> {
        check_rollup::Entity::delete_many()
            .filter(check_rollup::Column::Resolution.eq(resolution_code(resolution)))
            .filter(check_rollup::Column::BucketStartMicros.lt(at_micros))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

fn rollups_since(
    check_ids: &[String],
    resolution: Resolution,
    since_micros: i64,
) -> sea_orm::Select<check_rollup::Entity> {
    let mut query = check_rollup::Entity::find()
        .filter(check_rollup::Column::Resolution.eq(resolution_code(resolution)))
        .filter(check_rollup::Column::BucketStartMicros.gte(since_micros));
    if !check_ids.is_empty() {
        query = query.filter(check_rollup::Column::CheckId.is_in(check_ids.iter().cloned()));
    }
    query
}

/// How `check_rollups.resolution` spells each resolution.
fn resolution_code(resolution: Resolution) -> &'static str {
    match resolution {
        Resolution::Minute => "m",
        Resolution::Hour => "h",
        Resolution::Day => "d",
    }
}

/// `check_rollups.latency_histogram`: the counts, comma-separated (read back by
/// [`rows::latency_counts`]).
fn encode_latency(counts: &[u64]) -> String {
    counts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_counts_read_back_as_written() {
        let counts = vec![0, 4, 0, 1, 17];
        assert_eq!(rows::latency_counts(&encode_latency(&counts)), counts);
        assert_eq!(rows::latency_counts("3,x,5"), [3, 0, 5]);
    }
}
