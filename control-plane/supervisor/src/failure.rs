//! Why a task stopped, and the failure that stops pharosd.

use std::any::Any;

use tokio::task::JoinError;

use crate::BoxError;

/// Why a task that should still be running is not.
#[derive(Debug, thiserror::Error)]
pub enum TaskFailure {
    #[error("panicked: {0}")]
    Panicked(String),
    #[error("returned an error")]
    Error(#[source] BoxError),
    #[error("returned while pharosd was still running")]
    Returned,
    #[error("was aborted")]
    Aborted,
}

impl TaskFailure {
    pub(crate) fn from_join(err: JoinError) -> TaskFailure {
        match err.try_into_panic() {
            Ok(payload) => TaskFailure::Panicked(panic_message(payload.as_ref())),
            Err(_) => TaskFailure::Aborted,
        }
    }

    /// The failure and its causes on one line, for logs and health reports.
    pub fn describe(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with no message".to_owned()
    }
}

/// A task that cannot be restarted safely has failed, so pharosd stops.
#[derive(Debug, thiserror::Error)]
#[error("task {task} failed and cannot be restarted safely")]
pub struct FatalTaskError {
    pub task: &'static str,
    #[source]
    pub cause: TaskFailure,
}
