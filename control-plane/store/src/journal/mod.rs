//! The journal in the database: reads by revision, compaction, and the one batching
//! writer that appends to it.

mod store;
mod writer;

pub use store::{JournalStore, StoreError, WatchPosition};
pub use writer::{ApplyFn, CommitSink, JournalWriter, WriteError, WriterHandle};
