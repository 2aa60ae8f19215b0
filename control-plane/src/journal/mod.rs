//! The journal as pharosd keeps it: stored in the database (`store`) and appended by one
//! batching writer (`writer`). Its entry types live in `pharos_core::journal`.

mod store;
mod writer;

pub use pharos_core::journal::*;
pub use store::{JournalStore, StoreError, WatchPosition};
pub use writer::{JournalWriter, WriteError, WriterHandle};
