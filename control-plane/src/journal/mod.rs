//! The journal: its entry types (`pharos_core::journal`) and its store and writer
//! (`pharos_store::journal`), under one path.

pub use pharos_core::journal::*;
pub use pharos_store::journal::{
    ApplyFn, CommitSink, JournalStore, JournalWriter, StoreError, WatchPosition, WriteError,
    WriterHandle,
};
