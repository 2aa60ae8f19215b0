//! The one place where errors become gRPC statuses.

use pharos_proto::{RESUME_REVISION_TRAILER, RESYNC_TRAILER};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use crate::watch::WatchEnd;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Watch(#[from] WatchEnd),
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        let message = err.to_string();
        match err {
            ApiError::InvalidArgument(_) => Status::invalid_argument(message),
            ApiError::NotFound(_) => Status::not_found(message),
            ApiError::Watch(end) => {
                let mut trailers = MetadataMap::new();
                let code = match end {
                    WatchEnd::ShuttingDown { resume_from } => {
                        trailers.insert(RESUME_REVISION_TRAILER, resume_from.into());
                        Code::Unavailable
                    }
                    WatchEnd::Lagged { resume_from } => {
                        trailers.insert(RESUME_REVISION_TRAILER, resume_from.into());
                        Code::ResourceExhausted
                    }
                    WatchEnd::Compacted { .. } | WatchEnd::AheadOfHead { .. } => {
                        trailers.insert(RESYNC_TRAILER, "snapshot".parse().expect("ascii"));
                        Code::OutOfRange
                    }
                    WatchEnd::Store(_) => Code::Unavailable,
                };
                Status::with_metadata(code, message, trailers)
            }
        }
    }
}
