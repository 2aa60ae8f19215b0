//! `pharos.v1.EventService`: reported events into the journal, history and counts out.

use pharos_proto::v1 as pb;
use pharos_proto::v1::event_service_server::EventService;
use tonic::{Request, Response, Status, Streaming};

use super::convert;
use pharos_core::domain::{Event, Severity};
use pharos_store::events::{EventFilter, EventHistory};
use pharos_store::journal::{Change, WriterHandle};

const MAX_BATCH: usize = 1_000;
const MAX_PAGE: u32 = 1_000;
const DEFAULT_PAGE: u32 = 100;

pub struct EventsApi {
    writer: WriterHandle,
    history: EventHistory,
}

impl EventsApi {
    pub fn new(writer: WriterHandle, history: EventHistory) -> EventsApi {
        EventsApi { writer, history }
    }
}

pub fn severity_from_proto(value: i32) -> Option<Severity> {
    match pb::EventSeverity::try_from(value).ok()? {
        pb::EventSeverity::Unspecified => None,
        pb::EventSeverity::Info => Some(Severity::Info),
        pb::EventSeverity::Warning => Some(Severity::Warning),
        pb::EventSeverity::Error => Some(Severity::Error),
        pb::EventSeverity::Critical => Some(Severity::Critical),
    }
}

pub fn severity_to_proto(severity: Severity) -> pb::EventSeverity {
    match severity {
        Severity::Info => pb::EventSeverity::Info,
        Severity::Warning => pb::EventSeverity::Warning,
        Severity::Error => pb::EventSeverity::Error,
        Severity::Critical => pb::EventSeverity::Critical,
    }
}

fn optional(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn validate(index: usize, reported: pb::ReportedEvent) -> Result<Event, String> {
    let at = |field: &str, reason: String| format!("events[{index}].{field}: {reason}");
    let kind_ok = !reported.kind.is_empty()
        && reported.kind.len() <= 128
        && reported.kind.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        });
    if !kind_ok {
        return Err(at(
            "kind",
            format!(
                "{:?} is not a dotted lowercase kind such as \"ingest.failed\" (letters, digits, '.', '_', '-'; up to 128)",
                reported.kind
            ),
        ));
    }
    let Some(severity) = severity_from_proto(reported.severity) else {
        return Err(at(
            "severity",
            "set one of INFO, WARNING, ERROR, CRITICAL".to_owned(),
        ));
    };
    if reported.message.len() > 4096 {
        return Err(at(
            "message",
            format!("{} bytes; at most 4096", reported.message.len()),
        ));
    }
    if reported.source.len() > 128 {
        return Err(at("source", "longer than 128 characters".to_owned()));
    }
    if reported.attributes.len() > 32 {
        return Err(at(
            "attributes",
            format!("{} attributes; at most 32", reported.attributes.len()),
        ));
    }
    if let Some((key, _)) = reported
        .attributes
        .iter()
        .find(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 1024)
    {
        return Err(at(
            "attributes",
            format!("attribute {key:?}: keys 1 to 128 bytes, values up to 1024 bytes"),
        ));
    }
    Ok(Event {
        id: pharos_collectors::metrics::event_id(&reported.kind),
        kind: reported.kind,
        severity,
        message: reported.message,
        source: optional(reported.source).unwrap_or_else(|| "reported".to_owned()),
        project_id: optional(reported.project_id),
        environment: optional(reported.environment),
        attributes: reported.attributes.into_iter().collect(),
    })
}

#[tonic::async_trait]
impl EventService for EventsApi {
    async fn report_events(
        &self,
        request: Request<Streaming<pb::ReportEventsRequest>>,
    ) -> Result<Response<pb::ReportEventsResponse>, Status> {
        let mut stream = request.into_inner();
        let mut response = pb::ReportEventsResponse::default();
        while let Some(batch) = stream.message().await? {
            if batch.events.len() > MAX_BATCH {
                return Err(super::error::invalid_argument(format!(
                    "a batch of {} events; send at most {MAX_BATCH} per message ({} accepted before this batch)",
                    batch.events.len(),
                    response.accepted
                )));
            }
            let mut changes = Vec::with_capacity(batch.events.len());
            for (index, reported) in batch.events.into_iter().enumerate() {
                let event = validate(index, reported).map_err(|reason| {
                    super::error::invalid_argument(format!(
                        "{reason} (nothing of this batch was recorded; {} events accepted before it)",
                        response.accepted
                    ))
                })?;
                changes.push(Change::append(event));
            }
            if changes.is_empty() {
                continue;
            }
            let count = changes.len() as u64;
            response.revision = self.writer.append(changes).await.map_err(|err| {
                super::error::unavailable(format!(
                    "the journal did not record the batch: {err} ({} events accepted before it)",
                    response.accepted
                ))
            })?;
            response.accepted += count;
        }
        Ok(Response::new(response))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let request = request.into_inner();
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE,
            n if n > MAX_PAGE => {
                return Err(super::error::invalid_argument(format!(
                    "page_size {n} is above the maximum of {MAX_PAGE}"
                )));
            }
            n => n,
        };
        let before = if request.page_token.is_empty() {
            0
        } else {
            request.page_token.parse::<u64>().map_err(|_| {
                super::error::invalid_argument(format!(
                    "page_token {:?} is not one this server issued; pass next_page_token unchanged",
                    request.page_token
                ))
            })?
        };
        let filter = EventFilter {
            kinds: request.kinds,
            min_severity: severity_from_proto(request.min_severity),
            project_id: optional(request.project_id),
            environment: optional(request.environment),
            since_micros: request
                .since
                .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000),
        };
        let (events, next) = self
            .history
            .list(&filter, before, page_size as usize)
            .await
            .map_err(|err| {
                super::error::unavailable(format!("the journal did not answer: {err}"))
            })?;
        Ok(Response::new(pb::ListEventsResponse {
            events: events
                .into_iter()
                .map(|stored| pb::JournaledEvent {
                    revision: stored.revision,
                    event: Some(convert::event(
                        &stored.event,
                        convert::timestamp(stored.committed_at_micros),
                    )),
                })
                .collect(),
            next_page_token: next.map(|r| r.to_string()).unwrap_or_default(),
        }))
    }

    async fn get_error_counts(
        &self,
        request: Request<pb::GetErrorCountsRequest>,
    ) -> Result<Response<pb::GetErrorCountsResponse>, Status> {
        let request = request.into_inner();
        let filter = EventFilter {
            min_severity: Some(
                severity_from_proto(request.min_severity).unwrap_or(Severity::Warning),
            ),
            project_id: optional(request.project_id),
            environment: optional(request.environment),
            ..Default::default()
        };
        let (counts, truncated) = self.history.counts(&filter).await.map_err(|err| {
            super::error::unavailable(format!("the journal did not answer: {err}"))
        })?;
        Ok(Response::new(pb::GetErrorCountsResponse {
            counts: counts
                .into_iter()
                .map(|(kind, count)| pb::ErrorCount {
                    kind,
                    last_hour: count.last_hour,
                    last_day: count.last_day,
                    worst_severity: count
                        .worst
                        .map(|s| severity_to_proto(s) as i32)
                        .unwrap_or_default(),
                    last_time: Some(convert::timestamp(count.last_micros)),
                })
                .collect(),
            truncated,
        }))
    }
}
