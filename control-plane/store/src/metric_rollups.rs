//! One-minute rollups of metric series in `metric_rollups`. The metrics collector keeps
//! recent samples and the open minutes in memory and decides when a minute is closed;
//! this module stores closed minutes, reads them back for older ranges and deletes them
//! past the retention.

use std::collections::BTreeMap;

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use crate::QueryError;
use crate::entities::metric_rollup;
use crate::rows;

/// Rows per INSERT: well under SQLite's bound-parameter limit.
const INSERT_CHUNK: usize = 500;

/// A closed minute of one series, to be written.
#[derive(Clone, Debug, PartialEq)]
pub struct MinuteRollup<'a> {
    /// The series' canonical key (`name{k="v",...}`, labels sorted): one row per series
    /// and minute.
    pub series_key: String,
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    /// Start of the minute, milliseconds since the Unix epoch.
    pub minute_ms: i64,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
}

/// A stored minute of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredMinute {
    pub labels: BTreeMap<String, String>,
    pub minute_ms: i64,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
}

#[derive(Clone)]
pub struct MetricRollups {
    db: DatabaseConnection,
}

impl MetricRollups {
    pub fn new(db: DatabaseConnection) -> MetricRollups {
        MetricRollups { db }
    }

    /// The minutes of every series named `name` that start in `[from_ms, through_ms]`,
    /// oldest first. Rows whose labels do not decode are left out.
    pub async fn read(
        &self,
        name: &str,
        from_ms: i64,
        through_ms: i64,
    ) -> Result<Vec<StoredMinute>, QueryError> {
        let found = metric_rollup::Entity::find()
            .filter(metric_rollup::Column::Name.eq(name))
            .filter(metric_rollup::Column::MinuteMs.gte(from_ms))
            .filter(metric_rollup::Column::MinuteMs.lte(through_ms))
            .order_by_asc(metric_rollup::Column::MinuteMs)
            .all(&self.db)
            .await?;
        Ok(found.into_iter().filter_map(rows::metric_minute).collect())
    }

    /// Writes `minutes` in one transaction; a minute already stored is replaced.
    pub async fn write(&self, minutes: &[MinuteRollup<'_>]) -> Result<(), QueryError> {
        let txn = self.db.begin().await?;
        for chunk in minutes.chunks(INSERT_CHUNK) {
            let new_rows = chunk.iter().map(|minute| metric_rollup::ActiveModel {
                series_key: Set(minute.series_key.clone()),
                minute_ms: Set(minute.minute_ms),
                name: Set(minute.name.to_owned()),
                labels: Set(serde_json::to_string(minute.labels).unwrap_or_else(|_| "{}".into())),
                count: Set(minute.count as i64),
                sum: Set(minute.sum),
                min: Set(minute.min),
                max: Set(minute.max),
                last: Set(minute.last),
            });
            metric_rollup::Entity::insert_many(new_rows)
                .on_conflict(
                    OnConflict::columns([
                        metric_rollup::Column::SeriesKey,
                        metric_rollup::Column::MinuteMs,
                    ])
                    .update_columns([
                        metric_rollup::Column::Count,
                        metric_rollup::Column::Sum,
                        metric_rollup::Column::Min,
                        metric_rollup::Column::Max,
                        metric_rollup::Column::Last,
                    ])
                    .to_owned(),
                )
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Deletes the minutes that start before `minute_ms`; returns how many.
    pub async fn delete_before(&self, minute_ms: i64) -> Result<u64, QueryError> {
        let result = metric_rollup::Entity::delete_many()
            .filter(metric_rollup::Column::MinuteMs.lt(minute_ms))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute<'a>(
        name: &'a str,
        labels: &'a BTreeMap<String, String>,
        minute_ms: i64,
        count: u64,
    ) -> MinuteRollup<'a> {
        MinuteRollup {
            series_key: format!("{name}{labels:?}"),
            name,
            labels,
            minute_ms,
            count,
            sum: count as f64,
            min: 1.0,
            max: 1.0,
            last: 1.0,
        }
    }

    #[tokio::test]
    async fn minutes_are_replaced_read_by_name_and_deleted_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::connect(&crate::default_url(dir.path()))
            .await
            .unwrap();
        crate::migrate(&db).await.unwrap();
        let rollups = MetricRollups::new(db);
        let a: BTreeMap<String, String> = [("x".to_owned(), "1".to_owned())].into();
        let b: BTreeMap<String, String> = [("x".to_owned(), "2".to_owned())].into();
        rollups
            .write(&[
                minute("up", &a, 120_000, 1),
                minute("up", &b, 60_000, 2),
                minute("down", &a, 60_000, 3),
            ])
            .await
            .unwrap();
        rollups
            .write(&[minute("up", &a, 120_000, 4)])
            .await
            .unwrap();

        let read = rollups.read("up", 0, 120_000).await.unwrap();
        let seen: Vec<_> = read
            .iter()
            .map(|m| (m.labels["x"].as_str(), m.minute_ms, m.count))
            .collect();
        assert_eq!(seen, [("2", 60_000, 2), ("1", 120_000, 4)]);
        assert_eq!(rollups.read("up", 0, 119_999).await.unwrap().len(), 1);

        assert_eq!(rollups.delete_before(120_000).await.unwrap(), 2);
        assert_eq!(rollups.read("down", 0, i64::MAX).await.unwrap(), []);
    }
}
