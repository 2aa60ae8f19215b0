//! Scraping the catalog's targets: one task per target, restarted when its definition
//! changes. Each run fetches the exposition within the target's timeout, parses it with
//! the bounded parser, derives rates and percentiles, and records them. A target that
//! starts failing, or whose exposition has problems, raises one event per transition,
//! not one per scrape.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::derive::Deriver;
use super::exposition::{self, Limits, Problems};
use super::store::{Labels, MetricStore, now_ms};
use crate::catalog::CatalogView;
use pharos_core::domain::{Event, ScrapeTarget, Severity};
use pharos_store::journal::{Change, WriterHandle};

/// Exposition bodies are cut at this size (and the cut reported).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// What the last scrape of a target found.
#[derive(Clone, Debug, Default)]
pub struct TargetStatus {
    pub name: String,
    pub url: String,
    pub project_id: Option<String>,
    pub environment: Option<String>,
    pub last_scrape_ms: Option<i64>,
    pub last_duration: Duration,
    /// Samples parsed in the last scrape.
    pub samples: u64,
    /// Samples parsed over all scrapes.
    pub samples_total: u64,
    /// Series values recorded from the last scrape.
    pub recorded: u64,
    pub last_error: Option<String>,
    pub problems: Problems,
    pub scrapes: u64,
    pub failures: u64,
    /// Samples the store refused (series limit), over all scrapes.
    pub rejected: u64,
    /// CPU-relevant time spent parsing and deriving, over all scrapes.
    pub processing: Duration,
}

/// Status of every target, by name.
pub type TargetStatuses = Arc<Mutex<BTreeMap<String, TargetStatus>>>;

#[derive(Clone)]
pub struct Scraper {
    view: watch::Receiver<Arc<CatalogView>>,
    store: Arc<MetricStore>,
    writer: WriterHandle,
    statuses: TargetStatuses,
    limits: Limits,
}

impl Scraper {
    pub fn new(
        view: watch::Receiver<Arc<CatalogView>>,
        store: Arc<MetricStore>,
        writer: WriterHandle,
    ) -> (Scraper, TargetStatuses) {
        let statuses = TargetStatuses::default();
        (
            Scraper {
                view,
                store,
                writer,
                statuses: statuses.clone(),
                limits: Limits::default(),
            },
            statuses,
        )
    }

    /// Keeps one task per target running until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let Scraper {
            view,
            store,
            writer,
            statuses,
            limits,
        } = self;
        let removed = statuses.clone();
        super::supervise(
            view,
            |view| view.catalog.metrics.scrape_targets.clone(),
            |target: &ScrapeTarget| target.name.clone(),
            move |target, stop| {
                TargetLoop {
                    target,
                    store: store.clone(),
                    writer: writer.clone(),
                    statuses: statuses.clone(),
                    limits,
                }
                .run(stop)
            },
            move |name| {
                removed
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .remove(name);
            },
            shutdown,
        )
        .await;
    }
}

struct TargetLoop {
    target: ScrapeTarget,
    store: Arc<MetricStore>,
    writer: WriterHandle,
    statuses: TargetStatuses,
    limits: Limits,
}

impl TargetLoop {
    async fn run(self, stop: CancellationToken) {
        let mut deriver = Deriver::default();
        let mut extra: Labels = self.target.labels.clone();
        extra.insert("target".to_owned(), self.target.name.clone());
        let mut ticker = tokio::time::interval(self.target.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        let mut had_problems = false;
        // Read once per definition; a CA file that went bad since validation fails scrapes.
        let tls = super::http::tls_for(self.target.ca_file.as_deref());
        let accept = [(
            "accept",
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4"
                .to_owned(),
        )];
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let started = Instant::now();
            let at_ms = now_ms();
            let fetched = match &tls {
                Ok(tls) => {
                    let call = super::http::Call {
                        method: "GET",
                        url: &self.target.url,
                        headers: &accept,
                        body: Vec::new(),
                    };
                    super::http::send(call, tls, self.target.timeout, MAX_BODY).await
                }
                Err(err) => Err(err.clone()),
            }
            .and_then(|response| {
                if response.status == 200 {
                    Ok(response)
                } else {
                    Err(format!("HTTP status {}", response.status))
                }
            });
            let mut status = self.status();
            status.scrapes += 1;
            status.last_scrape_ms = Some(at_ms);
            match fetched {
                Ok(response) => {
                    let processing = Instant::now();
                    let text = String::from_utf8_lossy(&response.body);
                    let parsed = exposition::parse(&text, &self.limits);
                    let values = deriver.derive(&parsed, at_ms, &extra);
                    let outcome = self.store.record(
                        values
                            .iter()
                            .map(|(id, value)| (id.name.as_str(), &id.labels, at_ms, *value)),
                    );
                    status.processing += processing.elapsed();
                    let mut problems = parsed.problems;
                    if response.truncated {
                        problems
                            .first
                            .get_or_insert_with(|| format!("body cut at {MAX_BODY} bytes"));
                        problems.malformed_lines += 1;
                    }
                    status.samples = parsed.samples.len() as u64;
                    status.samples_total += status.samples;
                    status.recorded = outcome.accepted;
                    status.rejected += outcome.over_series_limit;
                    status.last_error = None;
                    let has_problems = problems.total() > 0 || outcome.over_series_limit > 0;
                    if has_problems && !had_problems {
                        self.raise(
                            "metrics.exposition_rejected",
                            Severity::Warning,
                            format!(
                                "target {}: {} line(s) refused ({} malformed, {} too long, {} with too many labels, {} non-finite, {} over the series limit), {} new series over the store's limit; first: {}",
                                self.target.name,
                                problems.total(),
                                problems.malformed_lines,
                                problems.long_lines,
                                problems.too_many_labels,
                                problems.non_finite,
                                problems.over_series_limit,
                                outcome.over_series_limit,
                                problems.first.as_deref().unwrap_or("-")
                            ),
                        )
                        .await;
                    }
                    had_problems = has_problems;
                    status.problems = problems;
                    if failing {
                        failing = false;
                        self.raise(
                            "metrics.scrape_recovered",
                            Severity::Info,
                            format!("target {} is scraped again", self.target.name),
                        )
                        .await;
                    }
                }
                Err(error) => {
                    status.failures += 1;
                    status.last_error = Some(error.clone());
                    if !failing {
                        failing = true;
                        self.raise(
                            "metrics.scrape_failed",
                            Severity::Warning,
                            format!("target {} ({}): {error}", self.target.name, self.target.url),
                        )
                        .await;
                    }
                }
            }
            status.last_duration = started.elapsed();
            self.statuses
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(self.target.name.clone(), status);
        }
    }

    fn status(&self) -> TargetStatus {
        self.statuses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&self.target.name)
            .cloned()
            .unwrap_or_else(|| TargetStatus {
                name: self.target.name.clone(),
                url: self.target.url.clone(),
                project_id: self.target.project_id.clone(),
                environment: self.target.environment.clone(),
                ..Default::default()
            })
    }

    async fn raise(&self, kind: &str, severity: Severity, message: String) {
        let event = Event {
            id: super::event_id(kind),
            kind: kind.to_owned(),
            severity,
            message,
            source: "metrics".to_owned(),
            project_id: self.target.project_id.clone(),
            environment: self.target.environment.clone(),
            attributes: [("target".to_owned(), self.target.name.clone())].into(),
        };
        if let Err(err) = self
            .writer
            .append_in_background(vec![Change::append(event)])
            .await
        {
            tracing::warn!(error = %err, "cannot journal a metrics event");
        }
    }
}
