//! The journal in the database: reads by revision, compaction, and the one batching
//! writer that appends to it. Its entry types (`pharos_core::journal`) are re-exported
//! here, so users of the journal name one module.

mod store;
mod writer;

pub use pharos_core::journal::*;
pub use store::{JournalStore, StoreError, WatchPosition};
pub use writer::{ApplyFn, CommitSink, JournalWriter, WriteError, WriterHandle};
