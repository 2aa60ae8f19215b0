//! `pharos.v1.ExportService`: bulk history as a server stream, one database page per
//! response. The stream is pulled: the next page is read only when the previous response
//! has been handed to the HTTP/2 layer, which in turn waits for the client's flow-control
//! window, so a slow reader holds the export back instead of growing a buffer.

use std::pin::Pin;

use futures::Stream;
use pharos_proto::v1 as pb;
use pharos_proto::v1::export_service_server::ExportService;
use tonic::{Request, Response, Status};

use super::convert;
use super::error::ApiError;
use pharos_store::export::{ExportError, ExportStore, TimeRange};

const DEFAULT_PAGE: u32 = 1000;
const MAX_PAGE: u32 = 10_000;

pub struct ExportApi {
    store: ExportStore,
}

impl ExportApi {
    pub fn new(store: ExportStore) -> ExportApi {
        ExportApi { store }
    }
}

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportResponse, Status>> + Send>>;

fn micros(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(t.nanos) / 1000)
}

fn status(err: ExportError) -> Status {
    super::error::status(&err)
}

#[tonic::async_trait]
impl ExportService for ExportApi {
    type ExportStream = ExportStream;

    async fn export(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let request = request.into_inner();
        let range = TimeRange {
            start: request.start_time.as_ref().map(micros),
            end: request.end_time.as_ref().map(micros),
        };
        if let (Some(start), Some(end)) = (range.start, range.end)
            && start >= end
        {
            return Err(
                ApiError::InvalidArgument("start_time must be before end_time".to_owned()).into(),
            );
        }
        let page = match request.page_size {
            0 => DEFAULT_PAGE,
            n if n <= MAX_PAGE => n,
            n => {
                return Err(ApiError::InvalidArgument(format!(
                    "page_size {n} is above the maximum of {MAX_PAGE}"
                ))
                .into());
            }
        } as u64;
        let store = self.store.clone();
        let stream: ExportStream = match pb::ExportKind::try_from(request.kind) {
            Ok(pb::ExportKind::CheckResults) => {
                let plan = store
                    .plan_check_results(range)
                    .await
                    .map_err(|err| status(err.into()))?;
                Box::pin(async_stream::try_stream! {
                    let mut after = 0;
                    loop {
                        let rows = store
                            .check_results_page(range, plan, after, page)
                            .await
                            .map_err(|err| status(err.into()))?;
                        let Some((last, _)) = rows.last() else { break };
                        after = *last;
                        let full = rows.len() as u64 == page;
                        yield pb::ExportResponse {
                            total_records: plan.total,
                            check_results: rows.iter().map(|(_, r)| convert::check_result(r)).collect(),
                            ..Default::default()
                        };
                        if !full {
                            break;
                        }
                    }
                })
            }
            Ok(pb::ExportKind::Events) => {
                let plan = store
                    .plan_events(range)
                    .await
                    .map_err(|err| status(err.into()))?;
                Box::pin(async_stream::try_stream! {
                    let mut after = 0;
                    loop {
                        let rows = store.events_page(range, plan, after, page).await.map_err(status)?;
                        let Some(last) = rows.last() else { break };
                        after = last.revision;
                        let full = rows.len() as u64 == page;
                        yield pb::ExportResponse {
                            total_records: plan.total,
                            events: rows
                                .iter()
                                .map(|e| convert::event(&e.event, convert::timestamp(e.committed_at_micros)))
                                .collect(),
                            ..Default::default()
                        };
                        if !full {
                            break;
                        }
                    }
                })
            }
            Ok(pb::ExportKind::Operations) => {
                let plan = store
                    .plan_operations(range)
                    .await
                    .map_err(|err| status(err.into()))?;
                Box::pin(async_stream::try_stream! {
                    let mut after: Option<(i64, String)> = None;
                    loop {
                        let rows = store.operations_page(range, plan, after.as_ref(), page).await.map_err(status)?;
                        let Some(last) = rows.last() else { break };
                        after = Some((last.created_micros, last.id.clone()));
                        let full = rows.len() as u64 == page;
                        yield pb::ExportResponse {
                            total_records: plan.total,
                            operations: rows.iter().map(super::convert::operations::operation).collect(),
                            ..Default::default()
                        };
                        if !full {
                            break;
                        }
                    }
                })
            }
            _ => {
                return Err(ApiError::InvalidArgument(format!(
                    "unknown export kind {}; known kinds: EXPORT_KIND_CHECK_RESULTS (1), EXPORT_KIND_EVENTS (2), EXPORT_KIND_OPERATIONS (3)",
                    request.kind
                ))
                .into());
            }
        };
        Ok(Response::new(stream))
    }
}
