//! The errors a user can act on, each with its own exit code, and how a gRPC status maps
//! onto them. Kept apart from the connection so that modules which only report failures
//! (the config file, the commands) need not depend on it.

use std::fmt;

use tonic::{Code, Status};

/// A failure, described in one line, with a distinct exit code per kind.
#[derive(Debug)]
pub enum CliError {
    /// A bad command line (exit code 2, like clap's own usage errors).
    Usage(String),
    Unreachable(String),
    Auth(String),
    NotFound(String),
    Invalid(String),
    /// The server does not offer this RPC (an older or smaller pharosd).
    Unsupported(String),
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Other(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Unreachable(_) => 3,
            CliError::Auth(_) => 4,
            CliError::NotFound(_) => 5,
            CliError::Invalid(_) => 6,
            CliError::Unsupported(_) => 7,
        }
    }

    pub fn from_status(server: &str, status: &Status) -> CliError {
        let message = status.message().to_owned();
        match status.code() {
            // Without a source the server itself said so (its engine is down, it is
            // shutting down); with one, the connection failed.
            Code::Unavailable if std::error::Error::source(status).is_none() => {
                CliError::Unreachable(format!("pharosd at {server}: {message}"))
            }
            Code::Unavailable => {
                CliError::Unreachable(format!("cannot reach pharosd at {server}: {message}"))
            }
            // A connection that broke under the call (the server went away mid-request).
            Code::Unknown if std::error::Error::source(status).is_some() => {
                let cause = std::error::Error::source(status)
                    .map(|source| format!(" ({source})"))
                    .unwrap_or_default();
                CliError::Unreachable(format!(
                    "lost the connection to pharosd at {server}: {message}{cause}"
                ))
            }
            Code::Unauthenticated | Code::PermissionDenied => CliError::Auth(message),
            Code::Unimplemented => CliError::Unsupported(format!(
                "not available on this server (pharosd at {server} does not offer it): {message}"
            )),
            Code::NotFound => CliError::NotFound(message),
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                CliError::Invalid(message)
            }
            code => CliError::Other(format!("{code:?}: {message}")),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m)
            | CliError::Unreachable(m)
            | CliError::Auth(m)
            | CliError::NotFound(m)
            | CliError::Invalid(m)
            | CliError::Unsupported(m)
            | CliError::Other(m) => f.write_str(m),
        }
    }
}
