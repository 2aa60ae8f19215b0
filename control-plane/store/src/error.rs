//! The error of the store's typed reads and writes (catalog rows, check history, metric
//! rollups, the database's size). Its `Display` is the database's own message: callers
//! say what they were doing (`the history database did not answer: …`).

use pharos_core::error::{CodedError, ErrorCode};
use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The database did not answer or refused the statement; a retry may succeed.
    #[error("{source}")]
    Unavailable {
        #[from]
        source: DbErr,
    },
    /// What the database holds, or answered, cannot be read back.
    #[error("{0}")]
    Corrupt(String),
}

impl CodedError for QueryError {
    fn code(&self) -> ErrorCode {
        match self {
            QueryError::Unavailable { .. } => ErrorCode::Unavailable,
            QueryError::Corrupt(_) => ErrorCode::DataLoss,
        }
    }
}
