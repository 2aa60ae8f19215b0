//! SQL KPIs: read-only queries from the catalog's `kpis`, run against PostgreSQL every
//! `interval`. Each row's numeric columns become gauges named after the column, labelled
//! with `kpi="<name>"` and the row's text columns, so
//! `SELECT status, count(*) AS tenants FROM tenants GROUP BY status` gives
//! `tenants{kpi="...",status="active"}` and so on.
//!
//! Each run is one `BEGIN READ ONLY` transaction with `statement_timeout` set to the
//! KPI's timeout, rolled back at the end; the extended protocol admits one statement, so
//! a query cannot end the transaction and write. A failing KPI is reported once (a
//! `kpi.failed` event, and the error in `GetAggregates`) and retried with exponential
//! backoff, never in a hot loop; `kpi.recovered` follows its next success.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow, PgValueRef};
use sqlx::{Column, ConnectOptions, Connection, Executor, Row, TypeInfo, ValueRef};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::store::{Labels, MetricStore, now_ms};
use crate::catalog::CatalogView;
use pharos_core::domain::{Event, Kpi, Severity};
use pharos_store::journal::{Change, WriterHandle};

/// Rows read per run; the rest are ignored and the cut reported.
pub const MAX_ROWS: usize = 10_000;
/// The longest wait between attempts of a failing KPI (or its interval, if longer).
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One gauge a KPI produced.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiValue {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// What the runs of a KPI found.
#[derive(Clone, Debug, Default)]
pub struct KpiStatus {
    pub name: String,
    pub project_id: Option<String>,
    pub environment: Option<String>,
    /// The values of the last successful run, and when it ran.
    pub values: Vec<KpiValue>,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    /// Columns that are neither numbers nor text, and other notes on the last run.
    pub notes: Vec<String>,
}

/// Status of every KPI, by name.
pub type KpiStatuses = Arc<Mutex<BTreeMap<String, KpiStatus>>>;

/// Runs every KPI of the catalog, one task each, restarted when its definition changes.
pub async fn run(
    view: watch::Receiver<Arc<CatalogView>>,
    store: Arc<MetricStore>,
    writer: WriterHandle,
    statuses: KpiStatuses,
    shutdown: CancellationToken,
) {
    let removed = statuses.clone();
    super::supervise(
        view,
        |view| view.catalog.metrics.kpis.clone(),
        |kpi: &Kpi| kpi.name.clone(),
        move |kpi, stop| {
            KpiLoop {
                kpi,
                store: store.clone(),
                writer: writer.clone(),
                statuses: statuses.clone(),
            }
            .run(stop)
        },
        move |name| {
            lock(&removed).remove(name);
        },
        shutdown,
    )
    .await;
}

fn lock(statuses: &KpiStatuses) -> std::sync::MutexGuard<'_, BTreeMap<String, KpiStatus>> {
    statuses.lock().unwrap_or_else(|p| p.into_inner())
}

struct KpiLoop {
    kpi: Kpi,
    store: Arc<MetricStore>,
    writer: WriterHandle,
    statuses: KpiStatuses,
}

impl KpiLoop {
    async fn run(self, stop: CancellationToken) {
        let options = match PgConnectOptions::from_str(&self.kpi.dsn) {
            Ok(options) => options
                .application_name("pharos-kpi")
                .disable_statement_logging(),
            Err(err) => {
                let error = format!("invalid DSN: {err}");
                self.update(|status| status.last_error = Some(error.clone()));
                self.report(true, &error).await;
                return;
            }
        };
        let mut connection: Option<PgConnection> = None;
        let mut failing = false;
        let mut failures_in_a_row = 0u32;
        let mut next = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(next) => {}
            }
            let started = Instant::now();
            // The deadline covers connecting too; the statement timeout is the server's.
            let result = tokio::time::timeout(
                self.kpi.timeout + Duration::from_secs(1),
                self.run_once(&options, &mut connection),
            )
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {}",
                    humantime::format_duration(self.kpi.timeout)
                ))
            });
            match result {
                Ok((values, notes)) => {
                    let at = now_ms();
                    self.store.record(
                        values
                            .iter()
                            .map(|v| (v.name.as_str(), &v.labels, at, v.value)),
                    );
                    self.update(|status| {
                        status.values = values.clone();
                        status.notes = notes.clone();
                        status.last_success_ms = Some(at);
                        status.last_error = None;
                    });
                    if failing {
                        self.report(false, "").await;
                    }
                    failing = false;
                    failures_in_a_row = 0;
                    next = tokio::time::Instant::from_std(started) + self.kpi.interval;
                }
                Err(error) => {
                    // A connection that failed a query is not trusted again.
                    connection = None;
                    self.update(|status| status.last_error = Some(error.clone()));
                    if !failing {
                        self.report(true, &error).await;
                    }
                    failing = true;
                    failures_in_a_row += 1;
                    let backoff = self
                        .kpi
                        .interval
                        .saturating_mul(1 << (failures_in_a_row - 1).min(16))
                        .min(MAX_BACKOFF.max(self.kpi.interval));
                    next = tokio::time::Instant::from_std(started) + backoff;
                }
            }
        }
        if let Some(connection) = connection {
            let _ = connection.close().await;
        }
    }

    fn update(&self, change: impl FnOnce(&mut KpiStatus)) {
        let mut statuses = lock(&self.statuses);
        let status = statuses
            .entry(self.kpi.name.clone())
            .or_insert_with(|| KpiStatus {
                name: self.kpi.name.clone(),
                project_id: self.kpi.project_id.clone(),
                environment: self.kpi.environment.clone(),
                ..KpiStatus::default()
            });
        change(status);
    }

    async fn run_once(
        &self,
        options: &PgConnectOptions,
        connection: &mut Option<PgConnection>,
    ) -> Result<(Vec<KpiValue>, Vec<String>), String> {
        if connection.is_none() {
            *connection = Some(
                PgConnection::connect_with(options)
                    .await
                    .map_err(|e| format!("connect: {}", describe(&e)))?,
            );
        }
        let conn = connection.as_mut().expect("connected above");
        conn.execute("BEGIN READ ONLY")
            .await
            .map_err(|e| describe(&e))?;
        let timeout_ms = self.kpi.timeout.as_millis().max(1);
        let set_timeout = format!("SET LOCAL statement_timeout = {timeout_ms}");
        let rows = async {
            sqlx::query(sqlx::AssertSqlSafe(set_timeout))
                .execute(&mut *conn)
                .await?;
            // The statement is the operator's own, from the catalog; it runs read-only.
            sqlx::query(sqlx::AssertSqlSafe(self.kpi.query.clone()))
                .fetch_all(&mut *conn)
                .await
        }
        .await;
        let rolled_back = conn.execute("ROLLBACK").await;
        let rows = rows.map_err(|e| describe(&e))?;
        rolled_back.map_err(|e| describe(&e))?;
        Ok(values_of(&self.kpi.name, &rows))
    }

    async fn report(&self, failed: bool, error: &str) {
        let (kind, severity, message) = if failed {
            (
                "kpi.failed",
                Severity::Error,
                format!("KPI {} failed: {error}", self.kpi.name),
            )
        } else {
            (
                "kpi.recovered",
                Severity::Info,
                format!("KPI {} reads again", self.kpi.name),
            )
        };
        let event = Event {
            id: super::event_id(kind),
            kind: kind.to_owned(),
            severity,
            message,
            source: "kpis".to_owned(),
            project_id: self.kpi.project_id.clone(),
            environment: self.kpi.environment.clone(),
            attributes: BTreeMap::from([("kpi".to_owned(), self.kpi.name.clone())]),
        };
        if let Err(err) = self.writer.append(vec![Change::append(event)]).await {
            tracing::warn!(error = %err, "cannot journal a KPI event");
        }
    }
}

/// The database's own message (SQLSTATE included) rather than sqlx's wrapper.
fn describe(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_owned(),
        },
        other => other.to_string(),
    }
}

/// How a column's values are read.
enum ColumnKind {
    Number,
    Text,
    Other(String),
}

fn kind_of(type_name: &str) -> ColumnKind {
    match type_name {
        "INT2" | "INT4" | "INT8" | "FLOAT4" | "FLOAT8" | "NUMERIC" | "OID" | "BOOL" => {
            ColumnKind::Number
        }
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" => ColumnKind::Text,
        other => ColumnKind::Other(other.to_owned()),
    }
}

/// The gauges of `rows`, and notes on what was skipped.
fn values_of(kpi: &str, rows: &[PgRow]) -> (Vec<KpiValue>, Vec<String>) {
    let mut notes = Vec::new();
    let Some(first) = rows.first() else {
        return (Vec::new(), notes);
    };
    let columns: Vec<(String, ColumnKind)> = first
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), kind_of(c.type_info().name())))
        .collect();
    for (name, kind) in &columns {
        if let ColumnKind::Other(type_name) = kind {
            notes.push(format!(
                "column {name:?} of type {type_name} is neither a number nor text; skipped (cast it)"
            ));
        }
    }
    if !columns.iter().any(|(_, k)| matches!(k, ColumnKind::Number)) {
        notes.push("no numeric column: the query gives no gauges".to_owned());
    }
    if rows.len() > MAX_ROWS {
        notes.push(format!(
            "{} rows; only the first {MAX_ROWS} are read",
            rows.len()
        ));
    }
    let mut out = Vec::new();
    let mut seen: HashSet<(String, Labels)> = HashSet::new();
    for row in rows.iter().take(MAX_ROWS) {
        let mut labels = Labels::from([("kpi".to_owned(), kpi.to_owned())]);
        for (i, (name, kind)) in columns.iter().enumerate() {
            if matches!(kind, ColumnKind::Text) {
                let text: Option<String> = row.try_get(i).unwrap_or(None);
                labels.insert(name.clone(), text.unwrap_or_default());
            }
        }
        for (i, (name, kind)) in columns.iter().enumerate() {
            if !matches!(kind, ColumnKind::Number) {
                continue;
            }
            let Ok(raw) = row.try_get_raw(i) else {
                continue;
            };
            let Some(value) = number(&raw) else { continue };
            if !seen.insert((name.clone(), labels.clone())) {
                notes.push(format!(
                    "rows repeat the labels of {name:?}; the last one counts (add a text column)"
                ));
                out.retain(|v: &KpiValue| !(v.name == *name && v.labels == labels));
            }
            out.push(KpiValue {
                name: name.clone(),
                labels: labels.clone(),
                value,
            });
        }
    }
    notes.dedup();
    (out, notes)
}

/// A numeric value in PostgreSQL's binary format; `None` for NULL.
fn number(raw: &PgValueRef<'_>) -> Option<f64> {
    if raw.is_null() {
        return None;
    }
    let type_name = raw.type_info().name().to_owned();
    let bytes = raw.as_bytes().ok()?;
    let value = match (type_name.as_str(), bytes.len()) {
        ("BOOL", 1) => f64::from(bytes[0]),
        ("INT2", 2) => f64::from(i16::from_be_bytes(bytes.try_into().ok()?)),
        ("INT4", 4) => f64::from(i32::from_be_bytes(bytes.try_into().ok()?)),
        ("OID", 4) => f64::from(u32::from_be_bytes(bytes.try_into().ok()?)),
        ("INT8", 8) => i64::from_be_bytes(bytes.try_into().ok()?) as f64,
        ("FLOAT4", 4) => f64::from(f32::from_be_bytes(bytes.try_into().ok()?)),
        ("FLOAT8", 8) => f64::from_be_bytes(bytes.try_into().ok()?),
        ("NUMERIC", _) => numeric(bytes)?,
        _ => return None,
    };
    value.is_finite().then_some(value)
}

/// NUMERIC's binary form: digit count, weight, sign, display scale (each 16 bits), then
/// base-10,000 digits, the first worth 10,000^weight.
fn numeric(bytes: &[u8]) -> Option<f64> {
    let word = |i: usize| -> Option<i16> {
        Some(i16::from_be_bytes([
            *bytes.get(2 * i)?,
            *bytes.get(2 * i + 1)?,
        ]))
    };
    let digits = usize::try_from(word(0)?).ok()?;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    let mut value = 0.0f64;
    for i in 0..digits {
        value += f64::from(word(4 + i)?) * 10_000f64.powi(weight - i as i32);
    }
    match sign {
        0x0000 => Some(value),
        0x4000 => Some(-value),
        _ => None, // NaN and the infinities
    }
}

#[cfg(test)]
mod tests {
    use super::numeric;

    fn encode(digits: &[i16], weight: i16, sign: u16) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [digits.len() as i16, weight, sign as i16, 0] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        for digit in digits {
            out.extend_from_slice(&digit.to_be_bytes());
        }
        out
    }

    #[test]
    fn numeric_binary_values_decode() {
        // 12345.678 = 1|2345|6780 with weight 1.
        assert_eq!(numeric(&encode(&[1, 2345, 6780], 1, 0)), Some(12345.678));
        assert_eq!(numeric(&encode(&[5], -1, 0x4000)), Some(-0.0005));
        assert_eq!(numeric(&encode(&[], 0, 0)), Some(0.0));
        assert_eq!(numeric(&encode(&[], 0, 0xC000)), None);
        assert_eq!(numeric(&[0, 1]), None);
    }
}
