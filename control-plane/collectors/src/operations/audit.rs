//! The audit log: every call of an action (and every denied call of a method that
//! needs the operator role or more) becomes one row. Records are queued and written by
//! one task, so recording never waits for the database.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::store::{AuditEntry, OperationStore};

const QUEUE: usize = 4096;

#[derive(Clone, Debug)]
pub struct AuditLog {
    sender: mpsc::Sender<AuditEntry>,
}

impl AuditLog {
    pub fn new() -> (AuditLog, mpsc::Receiver<AuditEntry>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        (AuditLog { sender }, receiver)
    }

    pub fn record(&self, entry: AuditEntry) {
        if self.sender.try_send(entry).is_err() {
            tracing::warn!("audit queue full or closed; an audit record was dropped");
        }
    }
}

/// Writes queued records until `shutdown`, then what is still queued.
pub async fn run(
    store: OperationStore,
    mut receiver: mpsc::Receiver<AuditEntry>,
    shutdown: CancellationToken,
) {
    loop {
        let entry = tokio::select! {
            entry = receiver.recv() => entry,
            _ = shutdown.cancelled() => break,
        };
        let Some(entry) = entry else { return };
        write(&store, entry).await;
    }
    receiver.close();
    while let Some(entry) = receiver.recv().await {
        write(&store, entry).await;
    }
}

async fn write(store: &OperationStore, entry: AuditEntry) {
    if let Err(err) = store.audit(entry).await {
        tracing::error!(error = %err, "writing an audit record failed");
    }
}
