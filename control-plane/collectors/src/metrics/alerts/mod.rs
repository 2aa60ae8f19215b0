//! Alert rules from the catalog, evaluated every 500 ms. A rule's condition holds when
//! any series it selects has a latest value (at most 5 minutes old) beyond the
//! threshold, or when its check is in the named status. Held for the rule's `for`
//! duration, the alert opens: an `alert.firing` event with the rule's severity, sent to
//! every webhook. When the condition stops holding, `alert.resolved` follows, sent too.
//! Webhook deliveries are JSON, signed with HMAC-SHA256 (header
//! `X-Pharos-Signature: sha256=<hex>`), retried with exponential backoff; a delivery
//! that fails every attempt is a `notification.failed` event.
//!
//! Alertmanagers (API v2) receive the same alerts as `POST <url>/api/v2/alerts`: labels
//! `alertname`, `severity`, `project`, `environment`, `source="pharos"`, the message as
//! the `summary` annotation. A firing alert carries no `endsAt` and is sent again every
//! minute, as Alertmanager expects (it resolves an alert not heard of for its
//! `resolve_timeout`); the resolution is sent with `endsAt`.
//!
//! Firing alerts outlive a restart: at start the evaluator reads the journal's newest
//! `alert.*` event of each rule, and a rule whose last word was `alert.firing` is firing
//! again, without a second event. Until its series report again (at most 5 minutes,
//! the age past which a value is stale anyway), a metric alert with no data at all
//! stays firing rather than resolving for want of samples lost with the restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::store::{MetricStore, SeriesSelector, now_ms};
use notify::{Receiver, alertmanager_payload, deliver, signature};

mod notify;

use crate::catalog::CatalogView;
use crate::health::engine::SharedHealth;
pub use notify::SIGNATURE_HEADER;
use pharos_core::domain::{AlertCondition, AlertRule, Alertmanager, Event, Severity, Webhook};
use pharos_store::journal::{Change, WriterHandle};

const EVALUATE_EVERY: Duration = Duration::from_millis(500);
const STALE_AFTER_MS: i64 = 5 * 60_000;
/// How often a firing alert is sent to Alertmanagers again.
const ALERTMANAGER_RESEND: Duration = Duration::from_secs(60);
#[derive(Clone, Debug, PartialEq)]
enum State {
    Inactive,
    Pending {
        since: Instant,
    },
    Firing {
        since_ms: i64,
        event_id: String,
        /// The Alertmanager payload, and when it was last sent.
        alertmanager_body: Arc<String>,
        sent: Instant,
    },
}

/// The receivers of a catalog: webhooks and Alertmanagers.
#[derive(Clone)]
struct Receivers {
    webhooks: Vec<Webhook>,
    alertmanagers: Vec<Alertmanager>,
}

/// What made a condition hold.
struct Finding {
    value: Option<f64>,
    series: Option<String>,
}

pub struct AlertEvaluator {
    view: watch::Receiver<Arc<CatalogView>>,
    store: Arc<MetricStore>,
    health: SharedHealth,
    writer: WriterHandle,
    states: HashMap<String, (AlertRule, State)>,
    deliveries: JoinSet<()>,
    firing: super::aggregates::FiringAlerts,
    history: Option<pharos_store::events::EventHistory>,
    started: Instant,
}

impl AlertEvaluator {
    pub fn new(
        view: watch::Receiver<Arc<CatalogView>>,
        store: Arc<MetricStore>,
        health: SharedHealth,
        writer: WriterHandle,
    ) -> AlertEvaluator {
        AlertEvaluator {
            view,
            store,
            health,
            writer,
            states: HashMap::new(),
            deliveries: JoinSet::new(),
            firing: Default::default(),
            history: None,
            started: Instant::now(),
        }
    }

    /// Restores firing alerts from the event history at start.
    pub fn with_history(mut self, history: pharos_store::events::EventHistory) -> AlertEvaluator {
        self.history = Some(history);
        self
    }

    /// Publishes the firing alerts to `firing` rather than to a set of its own, so that an
    /// evaluator started after a failed one feeds the same readers.
    pub fn with_firing(mut self, firing: super::aggregates::FiringAlerts) -> AlertEvaluator {
        self.firing = firing;
        self
    }

    /// Rules whose newest event is `alert.firing` are firing again.
    async fn restore(&mut self) {
        let Some(history) = &self.history else {
            return;
        };
        let filter = pharos_store::events::EventFilter {
            kinds: vec!["alert.firing".to_owned(), "alert.resolved".to_owned()],
            ..Default::default()
        };
        let newest = match history.list(&filter, 0, 10_000).await {
            Ok((events, _)) => events,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read alert events; firing alerts start over");
                return;
            }
        };
        let rules = self.view.borrow().catalog.metrics.alert_rules.clone();
        let mut decided = std::collections::HashSet::new();
        for stored in newest {
            let Some(name) = stored.event.attributes.get("alert") else {
                continue;
            };
            if !decided.insert(name.clone()) || stored.event.kind != "alert.firing" {
                continue;
            }
            let since_ms = stored.committed_at_micros / 1000;
            let Some(rule) = rules.iter().find(|r| r.name == *name) else {
                tracing::info!(alert = %name, "a firing alert's rule is gone; it stays as it was journaled");
                continue;
            };
            tracing::info!(alert = %name, "alert still firing from before the restart");
            let body = Arc::new(alertmanager_payload(rule, &stored.event, since_ms, None));
            self.states.insert(
                name.clone(),
                (
                    rule.clone(),
                    State::Firing {
                        since_ms,
                        event_id: stored.event.id.clone(),
                        alertmanager_body: body,
                        // Sent again on the first round: the Alertmanager may have
                        // resolved it meanwhile.
                        sent: Instant::now() - ALERTMANAGER_RESEND,
                    },
                ),
            );
        }
    }

    /// A metric rule none of whose series has a value (fresh or not).
    fn without_data(&self, rule: &AlertRule) -> bool {
        match &rule.condition {
            AlertCondition::Metric { metric, labels, .. } => self
                .store
                .latest(&SeriesSelector {
                    name: metric.clone(),
                    labels: labels.clone(),
                })
                .is_empty(),
            AlertCondition::Health { .. } => false,
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        self.restore().await;
        let mut ticker = tokio::time::interval(EVALUATE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => self.evaluate().await,
                Some(_) = self.deliveries.join_next(), if !self.deliveries.is_empty() => {}
            }
        }
        // Deliveries in flight get a moment to finish; the rest are dropped.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while self.deliveries.join_next().await.is_some() {}
        })
        .await;
    }

    fn condition(&self, rule: &AlertRule) -> Option<Finding> {
        match &rule.condition {
            AlertCondition::Metric {
                metric,
                labels,
                op,
                threshold,
            } => {
                let now = now_ms();
                let selector = SeriesSelector {
                    name: metric.clone(),
                    labels: labels.clone(),
                };
                self.store
                    .latest(&selector)
                    .into_iter()
                    .filter(|(_, point)| now - point.ms <= STALE_AFTER_MS)
                    .filter(|(_, point)| op.holds(point.value, *threshold))
                    .max_by(|a, b| a.1.value.total_cmp(&b.1.value))
                    .map(|(id, point)| Finding {
                        value: Some(point.value),
                        series: Some(id.key()),
                    })
            }
            AlertCondition::Health { check_id, status } => {
                let health = self.health.read().unwrap_or_else(|p| p.into_inner());
                health
                    .checks
                    .get(check_id)
                    .filter(|check| check.status.as_str() == status)
                    .map(|_| Finding {
                        value: None,
                        series: None,
                    })
            }
        }
    }

    async fn evaluate(&mut self) {
        let (rules, receivers) = {
            let view = self.view.borrow();
            let metrics = &view.catalog.metrics;
            (
                metrics.alert_rules.clone(),
                Receivers {
                    webhooks: metrics.webhooks.clone(),
                    alertmanagers: metrics.alertmanagers.clone(),
                },
            )
        };
        // Rules removed or changed start over (a firing one is resolved first).
        let names: Vec<String> = self.states.keys().cloned().collect();
        for name in names {
            let keep = rules
                .iter()
                .any(|r| r.name == name && self.states[&name].0 == *r);
            if !keep
                && let Some((
                    rule,
                    State::Firing {
                        since_ms, event_id, ..
                    },
                )) = self.states.remove(&name)
            {
                self.resolve(
                    &rule,
                    since_ms,
                    &event_id,
                    "rule changed or removed",
                    &receivers,
                )
                .await;
            } else if !keep {
                self.states.remove(&name);
            }
        }
        for rule in rules {
            let finding = self.condition(&rule);
            let state = self
                .states
                .get(&rule.name)
                .map(|(_, state)| state.clone())
                .unwrap_or(State::Inactive);
            let next = match (state, finding) {
                (State::Inactive, None) => State::Inactive,
                (State::Inactive, Some(finding)) if rule.for_duration.is_zero() => {
                    self.fire(&rule, &finding, &receivers).await
                }
                (State::Inactive, Some(_)) => State::Pending {
                    since: Instant::now(),
                },
                (State::Pending { since }, Some(finding)) => {
                    if since.elapsed() >= rule.for_duration {
                        self.fire(&rule, &finding, &receivers).await
                    } else {
                        State::Pending { since }
                    }
                }
                (State::Pending { .. }, None) => State::Inactive,
                (
                    State::Firing {
                        since_ms,
                        event_id,
                        alertmanager_body,
                        sent,
                    },
                    Some(_),
                ) => {
                    let sent = if sent.elapsed() >= ALERTMANAGER_RESEND {
                        self.send_to_alertmanagers(&rule, &alertmanager_body, &receivers);
                        Instant::now()
                    } else {
                        sent
                    };
                    State::Firing {
                        since_ms,
                        event_id,
                        alertmanager_body,
                        sent,
                    }
                }
                (firing @ State::Firing { .. }, None)
                    if self.without_data(&rule)
                        && self.started.elapsed().as_millis() < STALE_AFTER_MS as u128 =>
                {
                    firing
                }
                (
                    State::Firing {
                        since_ms, event_id, ..
                    },
                    None,
                ) => {
                    self.resolve(&rule, since_ms, &event_id, "condition cleared", &receivers)
                        .await;
                    State::Inactive
                }
            };
            self.states.insert(rule.name.clone(), (rule, next));
        }
        let firing = self
            .states
            .iter()
            .filter_map(|(name, (rule, state))| match state {
                State::Firing { since_ms, .. } => Some((name.clone(), (rule.severity, *since_ms))),
                _ => None,
            })
            .collect();
        *self.firing.lock().unwrap_or_else(|p| p.into_inner()) = firing;
    }

    fn describe(rule: &AlertRule, finding: Option<&Finding>) -> String {
        match &rule.condition {
            AlertCondition::Metric {
                metric,
                op,
                threshold,
                ..
            } => match finding.and_then(|f| f.value.zip(f.series.as_ref())) {
                Some((value, series)) => {
                    format!("{series} = {value} {} {threshold}", op.symbol())
                }
                None => format!("{metric} {} {threshold}", op.symbol()),
            },
            AlertCondition::Health { check_id, status } => {
                format!("check {check_id} is {status}")
            }
        }
    }

    async fn fire(&mut self, rule: &AlertRule, finding: &Finding, receivers: &Receivers) -> State {
        let since_ms = now_ms();
        let description = Self::describe(rule, Some(finding));
        let mut attributes = BTreeMap::from([
            ("alert".to_owned(), rule.name.clone()),
            ("status".to_owned(), "firing".to_owned()),
        ]);
        if let Some(value) = finding.value {
            attributes.insert("value".to_owned(), value.to_string());
        }
        if let Some(series) = &finding.series {
            attributes.insert("series".to_owned(), series.clone());
        }
        let event = Event {
            id: super::event_id("alert.firing"),
            kind: "alert.firing".to_owned(),
            severity: rule.severity,
            message: format!("alert {} firing: {description}", rule.name),
            source: "alerts".to_owned(),
            project_id: rule.project_id.clone(),
            environment: rule.environment.clone(),
            attributes,
        };
        let event_id = event.id.clone();
        let alertmanager_body = self.notify(
            rule,
            "firing",
            &event,
            finding.value,
            since_ms,
            None,
            receivers,
        );
        self.journal(event).await;
        State::Firing {
            since_ms,
            event_id,
            alertmanager_body,
            sent: Instant::now(),
        }
    }

    async fn resolve(
        &mut self,
        rule: &AlertRule,
        since_ms: i64,
        fired_event: &str,
        why: &str,
        receivers: &Receivers,
    ) {
        let event = Event {
            id: super::event_id("alert.resolved"),
            kind: "alert.resolved".to_owned(),
            severity: Severity::Info,
            message: format!(
                "alert {} resolved ({why}): {}",
                rule.name,
                Self::describe(rule, None)
            ),
            source: "alerts".to_owned(),
            project_id: rule.project_id.clone(),
            environment: rule.environment.clone(),
            attributes: BTreeMap::from([
                ("alert".to_owned(), rule.name.clone()),
                ("status".to_owned(), "resolved".to_owned()),
                ("fired_event".to_owned(), fired_event.to_owned()),
            ]),
        };
        self.notify(
            rule,
            "resolved",
            &event,
            None,
            since_ms,
            Some(now_ms()),
            receivers,
        );
        self.journal(event).await;
    }

    async fn journal(&self, event: Event) {
        if let Err(err) = self.writer.append(vec![Change::append(event)]).await {
            tracing::warn!(error = %err, "cannot journal an alert event");
        }
    }

    /// Sends the alert to every receiver; returns the Alertmanager payload.
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &mut self,
        rule: &AlertRule,
        status: &str,
        event: &Event,
        value: Option<f64>,
        started_ms: i64,
        ended_ms: Option<i64>,
        receivers: &Receivers,
    ) -> Arc<String> {
        let threshold = match &rule.condition {
            AlertCondition::Metric { threshold, .. } => Some(*threshold),
            AlertCondition::Health { .. } => None,
        };
        let body = json!({
            "status": status,
            "alert": rule.name,
            "severity": rule.severity.as_str(),
            "message": event.message,
            "value": value,
            "threshold": threshold,
            "series": event.attributes.get("series"),
            "project": rule.project_id,
            "environment": rule.environment,
            "started_at_ms": started_ms,
            "ended_at_ms": ended_ms,
            "event_id": event.id,
        })
        .to_string();
        for hook in &receivers.webhooks {
            let signature = signature(&hook.secret, &body);
            self.deliveries
                .spawn(tracing::Instrument::in_current_span(deliver(
                    Receiver {
                        kind: "webhook",
                        name: hook.name.clone(),
                        url: hook.url.clone(),
                        signature: Some(signature),
                        ca_file: hook.ca_file.clone(),
                        timeout: hook.timeout,
                        max_attempts: hook.max_attempts,
                    },
                    body.clone(),
                    rule.clone(),
                    self.writer.clone(),
                )));
        }
        let alertmanager_body = Arc::new(alertmanager_payload(rule, event, started_ms, ended_ms));
        self.send_to_alertmanagers(rule, &alertmanager_body, receivers);
        alertmanager_body
    }

    fn send_to_alertmanagers(&mut self, rule: &AlertRule, body: &Arc<String>, to: &Receivers) {
        for manager in &to.alertmanagers {
            self.deliveries
                .spawn(tracing::Instrument::in_current_span(deliver(
                    Receiver {
                        kind: "alertmanager",
                        name: manager.name.clone(),
                        url: format!("{}/api/v2/alerts", manager.url),
                        signature: None,
                        ca_file: manager.ca_file.clone(),
                        timeout: manager.timeout,
                        max_attempts: manager.max_attempts,
                    },
                    body.to_string(),
                    rule.clone(),
                    self.writer.clone(),
                )));
        }
    }
}
