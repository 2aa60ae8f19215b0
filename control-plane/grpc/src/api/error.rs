//! The one place where errors become gRPC statuses: every layer's error says its
//! [`ErrorCode`] ([`CodedError`]), and [`status`] turns it into the status a client
//! receives. Watch ends also carry the trailers that tell a client where to resume.

use pharos_core::error::{CodedError, ErrorCode};
use pharos_proto::{RESUME_REVISION_TRAILER, RESYNC_TRAILER};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use pharos_hub::WatchEnd;
use pharos_store::QueryError;

/// Errors raised by the API adapters themselves (request checks), or passed through.
/// Each message is what the client reads; the variant is its code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// A dependency (the container engine, a database) did not answer.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error("{0}")]
    Internal(String),
    /// A database read the request needs failed.
    #[error("the {what} database did not answer: {source}")]
    Store {
        what: &'static str,
        #[source]
        source: QueryError,
    },
    /// A series the request reads could not be read.
    #[error("reading {series}: {source}")]
    Read {
        series: &'static str,
        #[source]
        source: QueryError,
    },
    #[error(transparent)]
    Watch(#[from] WatchEnd),
}

impl CodedError for ApiError {
    fn code(&self) -> ErrorCode {
        match self {
            ApiError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            ApiError::ResourceExhausted(_) => ErrorCode::ResourceExhausted,
            ApiError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            ApiError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Unimplemented(_) => ErrorCode::Unimplemented,
            ApiError::Internal(_) => ErrorCode::Internal,
            ApiError::Store { source, .. } | ApiError::Read { source, .. } => source.code(),
            ApiError::Watch(end) => end.code(),
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        match &err {
            ApiError::Watch(end) => watch_status(end),
            _ => status(&err),
        }
    }
}

/// The gRPC code for each of Pharos' error codes; the only such table.
pub fn grpc_code(code: ErrorCode) -> Code {
    match code {
        ErrorCode::InvalidArgument => Code::InvalidArgument,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::FailedPrecondition => Code::FailedPrecondition,
        ErrorCode::Aborted => Code::Aborted,
        ErrorCode::OutOfRange => Code::OutOfRange,
        ErrorCode::ResourceExhausted => Code::ResourceExhausted,
        ErrorCode::Unauthenticated => Code::Unauthenticated,
        ErrorCode::PermissionDenied => Code::PermissionDenied,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::DataLoss => Code::DataLoss,
        ErrorCode::Internal => Code::Internal,
        ErrorCode::Unimplemented => Code::Unimplemented,
    }
}

/// The status a client receives for `err`: its code and its message. A failure with an
/// underlying cause (the database, the journal) is logged here too, once, since the
/// client's message is all anyone else sees of it; a refusal the adapter made itself
/// (a bad argument, the container engine being down) is the client's news alone.
pub fn status(err: &(impl CodedError + ?Sized)) -> Status {
    let code = err.code();
    let own_failure = matches!(code, ErrorCode::DataLoss | ErrorCode::Internal)
        || (code == ErrorCode::Unavailable && std::error::Error::source(err).is_some());
    if own_failure {
        tracing::error!(code = %code, error = %err, "request failed");
    }
    Status::new(grpc_code(code), err.to_string())
}

// Shorthands for the adapters' own refusals, so each goes through the one map.

pub fn invalid_argument(message: impl Into<String>) -> Status {
    ApiError::InvalidArgument(message.into()).into()
}

pub fn not_found(message: impl Into<String>) -> Status {
    ApiError::NotFound(message.into()).into()
}

pub fn failed_precondition(message: impl Into<String>) -> Status {
    ApiError::FailedPrecondition(message.into()).into()
}

pub fn resource_exhausted(message: impl Into<String>) -> Status {
    ApiError::ResourceExhausted(message.into()).into()
}

pub fn unauthenticated(message: impl Into<String>) -> Status {
    ApiError::Unauthenticated(message.into()).into()
}

pub fn permission_denied(message: impl Into<String>) -> Status {
    ApiError::PermissionDenied(message.into()).into()
}

pub fn unavailable(message: impl Into<String>) -> Status {
    ApiError::Unavailable(message.into()).into()
}

pub fn unimplemented(message: impl Into<String>) -> Status {
    ApiError::Unimplemented(message.into()).into()
}

pub fn internal(message: impl Into<String>) -> Status {
    ApiError::Internal(message.into()).into()
}

/// A Watch stream's end, with the trailer that says how to go on: resume from a
/// revision, or resync from a snapshot.
pub fn watch_status(end: &WatchEnd) -> Status {
    let mut trailers = MetadataMap::new();
    match end {
        WatchEnd::ShuttingDown { resume_from } | WatchEnd::Lagged { resume_from } => {
            trailers.insert(RESUME_REVISION_TRAILER, (*resume_from).into());
        }
        WatchEnd::Compacted { .. } | WatchEnd::AheadOfHead { .. } => {
            trailers.insert(RESYNC_TRAILER, "snapshot".parse().expect("ascii"));
        }
        WatchEnd::Store(_) => {}
    }
    Status::with_metadata(grpc_code(end.code()), end.to_string(), trailers)
}

/// A gRPC code's name as the protocol spells it: `InvalidArgument` -> `INVALID_ARGUMENT`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_keeps_its_grpc_name() {
        for code in [
            ErrorCode::InvalidArgument,
            ErrorCode::NotFound,
            ErrorCode::FailedPrecondition,
            ErrorCode::Aborted,
            ErrorCode::OutOfRange,
            ErrorCode::ResourceExhausted,
            ErrorCode::Unauthenticated,
            ErrorCode::PermissionDenied,
            ErrorCode::Unavailable,
            ErrorCode::DataLoss,
            ErrorCode::Internal,
            ErrorCode::Unimplemented,
        ] {
            assert_eq!(code_name(grpc_code(code)), code.as_str());
        }
    }

    #[test]
    fn watch_ends_carry_where_to_go_on() {
        let lagged = watch_status(&WatchEnd::Lagged { resume_from: 42 });
        assert_eq!(lagged.code(), Code::ResourceExhausted);
        assert_eq!(
            lagged.metadata().get(RESUME_REVISION_TRAILER).unwrap(),
            "42"
        );
        let compacted = watch_status(&WatchEnd::Compacted {
            requested: 1,
            compacted_through: 9,
        });
        assert_eq!(compacted.code(), Code::OutOfRange);
        assert_eq!(
            compacted.metadata().get(RESYNC_TRAILER).unwrap(),
            "snapshot"
        );
    }
}
