//! The watch side of the journal: the in-memory hub that fans committed entries out to
//! subscribers, and the per-subscriber stream that implements the watch contract.

mod hub;
mod stream;

pub use hub::{HubStats, WatchHub};
pub use pharos_core::selector::Selector;
pub use stream::{WatchEnd, WatchItem, WatchOptions, open_watch};
