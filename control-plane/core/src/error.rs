//! The one error vocabulary of every layer: each error type says which [`ErrorCode`] it
//! is, and the gRPC layer turns the code into a status in one function. Codes are the
//! gRPC ones a client acts on, so that a store error, a refused action and a bad request
//! reach the client with the code the API documents, whichever layer raised them.

use std::fmt;

/// What kind of failure an error is, as a client should act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request itself is wrong; retrying it unchanged fails again.
    InvalidArgument,
    NotFound,
    /// The system is not in a state that allows this (e.g. no container engine).
    FailedPrecondition,
    /// A conflict with a concurrent change, such as an operation already running.
    Aborted,
    /// A revision outside what is retained; resync from a snapshot.
    OutOfRange,
    /// A limit was reached; retry later or ask for less.
    ResourceExhausted,
    Unauthenticated,
    PermissionDenied,
    /// A dependency (the database, the container engine) did not answer; retry.
    Unavailable,
    /// Stored data that cannot be read back.
    DataLoss,
    /// A bug: an invariant did not hold.
    Internal,
    /// This server does not offer it (a feature switched off, or not built).
    Unimplemented,
}

impl ErrorCode {
    /// The code's gRPC name, such as `INVALID_ARGUMENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::FailedPrecondition => "FAILED_PRECONDITION",
            ErrorCode::Aborted => "ABORTED",
            ErrorCode::OutOfRange => "OUT_OF_RANGE",
            ErrorCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::DataLoss => "DATA_LOSS",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::Unimplemented => "UNIMPLEMENTED",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error that knows its [`ErrorCode`]; its `Display` is the message a person reads.
pub trait CodedError: std::error::Error {
    fn code(&self) -> ErrorCode;
}
