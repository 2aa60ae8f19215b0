//! The one task that writes the journal. Requests queue on a channel; the writer takes
//! whatever has queued up (up to a bound) and commits it in one transaction, then
//! publishes the entries to its [`CommitSink`] (the hub) in revision order and answers
//! each request.

use std::sync::Arc;

use futures::future::BoxFuture;
use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use pharos_core::journal::{Change, JournalEntry, now_micros};

use super::{JournalStore, StoreError};

/// Most changes committed in one transaction (fewer with a small hub ring: a batch
/// larger than half the ring would make every live subscriber lag at once).
const MAX_BATCH_CHANGES: usize = 2048;

/// Extra writes that must commit atomically with a request's changes.
pub type ApplyFn =
    Box<dyn for<'a> FnOnce(&'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> + Send>;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("journal write failed: {0}")]
    Failed(Arc<StoreError>),
    #[error("the journal writer has stopped")]
    Stopped,
}

struct WriteRequest {
    changes: Vec<Change>,
    apply: Option<ApplyFn>,
    reply: oneshot::Sender<Result<u64, Arc<StoreError>>>,
}

/// Cheap to clone; every collector holds one.
#[derive(Clone)]
pub struct WriterHandle {
    requests: mpsc::Sender<WriteRequest>,
}

impl WriterHandle {
    /// Journals `changes` and returns the revision of the last one (or the head, when
    /// there are none) once they are committed and visible to watchers.
    pub async fn append(&self, changes: Vec<Change>) -> Result<u64, WriteError> {
        self.submit(changes, None).await
    }

    /// Like [`append`](Self::append), with `apply` run in the same transaction.
    pub async fn append_with(
        &self,
        changes: Vec<Change>,
        apply: ApplyFn,
    ) -> Result<u64, WriteError> {
        self.submit(changes, Some(apply)).await
    }

    /// Queues `changes` (waiting only while the queue is full) and returns without
    /// waiting for the commit; the writer logs a failure. For collectors whose changes
    /// must keep their order but need not wait for the database: requests are committed
    /// in the order they are queued.
    pub async fn append_in_background(&self, changes: Vec<Change>) -> Result<(), WriteError> {
        // The answer is dropped: the writer's reply then goes nowhere.
        self.enqueue(changes, None).await.map(drop)
    }

    /// Queues a request and returns the receiver of its answer.
    async fn enqueue(
        &self,
        changes: Vec<Change>,
        apply: Option<ApplyFn>,
    ) -> Result<oneshot::Receiver<Result<u64, Arc<StoreError>>>, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(WriteRequest {
                changes,
                apply,
                reply,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        Ok(answer)
    }

    async fn submit(
        &self,
        changes: Vec<Change>,
        apply: Option<ApplyFn>,
    ) -> Result<u64, WriteError> {
        let answer = self.enqueue(changes, apply).await?;
        match answer.await {
            Ok(Ok(revision)) => Ok(revision),
            Ok(Err(err)) => Err(WriteError::Failed(err)),
            Err(_) => Err(WriteError::Stopped),
        }
    }
}

/// Where committed entries go, in revision order: the watch hub, which lives above the
/// store and fans them out.
pub trait CommitSink: Send + Sync {
    /// The revision of the newest entry published so far.
    fn head(&self) -> u64;
    /// The most changes worth committing in one batch (a batch larger than half the
    /// hub's ring would make every live subscriber lag at once).
    fn max_batch(&self) -> usize;
    /// Entries just committed, in revision order.
    fn publish(&self, entries: Vec<JournalEntry>);
}

pub struct JournalWriter {
    store: JournalStore,
    hub: Arc<dyn CommitSink>,
    requests: mpsc::Receiver<WriteRequest>,
}

impl JournalWriter {
    pub fn new(
        store: JournalStore,
        hub: Arc<dyn CommitSink>,
        queue: usize,
    ) -> (JournalWriter, WriterHandle) {
        let (sender, requests) = mpsc::channel(queue);
        (
            JournalWriter {
                store,
                hub,
                requests,
            },
            WriterHandle { requests: sender },
        )
    }

    /// Runs until every handle is dropped or `shutdown` fires; queued requests are still
    /// written before it returns.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut held: Option<WriteRequest> = None;
        loop {
            let first = match held.take() {
                Some(request) => request,
                None => tokio::select! {
                    request = self.requests.recv() => match request {
                        Some(request) => request,
                        None => return,
                    },
                    _ = shutdown.cancelled() => {
                        self.requests.close();
                        match self.requests.recv().await {
                            Some(request) => request,
                            None => return,
                        }
                    }
                },
            };
            // A request with its own writes commits alone, so its failure fails only it.
            let mut batch = vec![first];
            if batch[0].apply.is_none() {
                let mut size = batch[0].changes.len();
                let max = MAX_BATCH_CHANGES.min(self.hub.max_batch()).max(1);
                while size < max {
                    match self.requests.try_recv() {
                        Ok(request) if request.apply.is_some() => {
                            held = Some(request);
                            break;
                        }
                        Ok(request) => {
                            size += request.changes.len();
                            batch.push(request);
                        }
                        Err(_) => break,
                    }
                }
            }
            self.commit(batch).await;
        }
    }

    async fn commit(&self, mut batch: Vec<WriteRequest>) {
        let counts: Vec<usize> = batch.iter().map(|request| request.changes.len()).collect();
        let changes: Vec<Change> = batch
            .iter_mut()
            .flat_map(|request| std::mem::take(&mut request.changes))
            .collect();
        let apply = batch.iter_mut().find_map(|request| request.apply.take());
        match self.write(changes, apply).await {
            Ok(entries) => {
                // Each request learns the revision of its last change; a request without
                // changes learns the revision the journal stood at.
                let mut next = entries
                    .first()
                    .map_or(self.hub.head() + 1, |entry| entry.revision);
                self.hub.publish(entries);
                for (request, count) in batch.into_iter().zip(counts) {
                    next += count as u64;
                    let _ = request.reply.send(Ok(next - 1));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "journal write failed");
                let err = Arc::new(err);
                for request in batch {
                    let _ = request.reply.send(Err(err.clone()));
                }
            }
        }
    }

    async fn write(
        &self,
        changes: Vec<Change>,
        apply: Option<ApplyFn>,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let txn = self.store.db().begin().await?;
        if let Some(apply) = apply {
            apply(&txn).await?;
        }
        let entries = JournalStore::append(&txn, changes, now_micros()).await?;
        txn.commit().await?;
        Ok(entries)
    }
}
