//! Event history: events are journal entries on the `events` topic, so history is read
//! from the `journal` table (kept as long as the journal retention keeps it) and live
//! events come from the Watch hub like every other change.

use std::collections::BTreeMap;

use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use pharos_core::domain::{Event, Severity};
use pharos_core::journal::{Topic, now_micros};

use crate::entities::journal;

/// Rows read per page while filtering, and at most per call.
const SCAN_PAGE: u64 = 1_000;
pub const MAX_SCAN: u64 = 200_000;

/// What `ListEvents` and `GetErrorCounts` filter on.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// Exact kinds, or prefixes ending in '.' (`ingest.` matches `ingest.failed`).
    pub kinds: Vec<String>,
    pub min_severity: Option<Severity>,
    pub project_id: Option<String>,
    pub environment: Option<String>,
    pub since_micros: Option<i64>,
}

impl EventFilter {
    pub fn matches(&self, event: &Event) -> bool {
        (self.kinds.is_empty()
            || self.kinds.iter().any(|kind| {
                if kind.ends_with('.') {
                    event.kind.starts_with(kind.as_str())
                } else {
                    event.kind == *kind
                }
            }))
            && self.min_severity.is_none_or(|min| event.severity >= min)
            && self
                .project_id
                .as_ref()
                .is_none_or(|p| event.project_id.as_ref() == Some(p))
            && self
                .environment
                .as_ref()
                .is_none_or(|e| event.environment.as_ref() == Some(e))
    }
}

/// An event with its revision and commit time.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub revision: u64,
    pub committed_at_micros: i64,
    pub event: Event,
}

/// Counts of one kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KindCount {
    pub last_hour: u64,
    pub last_day: u64,
    pub worst: Option<Severity>,
    pub last_micros: i64,
}

#[derive(Clone)]
pub struct EventHistory {
    db: DatabaseConnection,
}

impl EventHistory {
    pub fn new(db: DatabaseConnection) -> EventHistory {
        EventHistory { db }
    }

    /// Up to `limit` matching events with a revision below `before` (0: from the
    /// newest), newest first; and the revision to continue below, when more may match.
    pub async fn list(
        &self,
        filter: &EventFilter,
        before: u64,
        limit: usize,
    ) -> Result<(Vec<StoredEvent>, Option<u64>), DbErr> {
        let mut out = Vec::new();
        let mut cursor = if before == 0 { i64::MAX } else { before as i64 };
        let mut scanned = 0;
        loop {
            let rows = self.page(cursor, filter.since_micros).await?;
            let exhausted = (rows.len() as u64) < SCAN_PAGE;
            for row in rows {
                cursor = row.revision;
                scanned += 1;
                if let Some(stored) = decode(&row)
                    && filter.matches(&stored.event)
                {
                    out.push(stored);
                    if out.len() == limit {
                        return Ok((out, Some(cursor as u64)));
                    }
                }
            }
            if exhausted {
                return Ok((out, None));
            }
            if scanned >= MAX_SCAN {
                // Bounded work per call: the caller continues from here.
                return Ok((out, Some(cursor as u64)));
            }
        }
    }

    /// Counts by kind over the last hour and day; the flag says the scan hit its bound.
    pub async fn counts(
        &self,
        filter: &EventFilter,
    ) -> Result<(BTreeMap<String, KindCount>, bool), DbErr> {
        let now = now_micros();
        let hour_ago = now - 3_600_000_000;
        let filter = EventFilter {
            since_micros: Some(now - 86_400_000_000),
            ..filter.clone()
        };
        let mut counts: BTreeMap<String, KindCount> = BTreeMap::new();
        let mut cursor = i64::MAX;
        let mut scanned = 0;
        loop {
            let rows = self.page(cursor, filter.since_micros).await?;
            let exhausted = (rows.len() as u64) < SCAN_PAGE;
            for row in rows {
                cursor = row.revision;
                scanned += 1;
                let Some(stored) = decode(&row) else { continue };
                if !filter.matches(&stored.event) {
                    continue;
                }
                let count = counts.entry(stored.event.kind.clone()).or_default();
                count.last_day += 1;
                if stored.committed_at_micros >= hour_ago {
                    count.last_hour += 1;
                }
                count.worst = count.worst.max(Some(stored.event.severity));
                count.last_micros = count.last_micros.max(stored.committed_at_micros);
            }
            if exhausted {
                return Ok((counts, false));
            }
            if scanned >= MAX_SCAN {
                return Ok((counts, true));
            }
        }
    }

    async fn page(&self, below: i64, since: Option<i64>) -> Result<Vec<journal::Model>, DbErr> {
        let mut query = journal::Entity::find()
            .filter(journal::Column::Topic.eq(Topic::Events.as_str()))
            .filter(journal::Column::Revision.lt(below));
        if let Some(since) = since {
            query = query.filter(journal::Column::CommittedAtMicros.gte(since));
        }
        query
            .order_by_desc(journal::Column::Revision)
            .limit(SCAN_PAGE)
            .all(&self.db)
            .await
    }
}

fn decode(row: &journal::Model) -> Option<StoredEvent> {
    let event = crate::rows::journaled_event(row).ok()?;
    Some(StoredEvent {
        revision: row.revision as u64,
        committed_at_micros: row.committed_at_micros,
        event,
    })
}
