//! One error type for the whole of sluice, classified by [`ErrorKind`].

use std::fmt;

/// The result type used across sluice's API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in the terms the worker acts on.
///
/// New kinds may be added, so a `match` on it outside this crate needs a `_` arm (say, one
/// treating an unknown kind like [`ErrorKind::Fatal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A configuration is invalid; the message names the key and the fix. Never retried.
    Config,
    /// A transient failure (network, a busy server). The worker retries only a sink task's
    /// `put` and `flush`, with backoff per `errors.retry.*` (see
    /// [`SinkTask`](crate::connector::SinkTask)); from any other call it fails the task like
    /// any other error, so a connector that can recover there retries by itself.
    Retriable,
    /// One record cannot be processed (bad data, conversion, transform); the error tolerance
    /// settings decide whether the task fails or the record is skipped.
    Data,
    /// Local I/O failed (files, sockets).
    Io,
    /// The thing asked for does not exist (connector, task, plugin).
    NotFound,
    /// The request conflicts with the current state (a name already taken, a running connector).
    Conflict,
    /// Any other failure of a connector or the worker; fails the task.
    Fatal,
}

impl ErrorKind {
    /// A stable lower-case name, used in logs and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Retriable => "retriable",
            ErrorKind::Data => "data",
            ErrorKind::Io => "io",
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Fatal => "fatal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sluice error: a kind, a message written for the operator, and an optional cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` with an operator-facing message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause, kept for the trace.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// A configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    /// A transient error that may be retried.
    pub fn retriable(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Retriable, message)
    }

    /// An error about one record's data.
    pub fn data(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Data, message)
    }

    /// A local I/O error, with context saying what was being done. The OS error is part of
    /// the message (it is short and always wanted), so it is not repeated as a cause.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        let context = context.into();
        Error::new(ErrorKind::Io, format!("{context}: {source}"))
    }

    /// Something asked for does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// The request conflicts with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Conflict, message)
    }

    /// A non-retriable failure.
    pub fn fatal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Fatal, message)
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operator-facing message, without the cause chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with context, keeping kind and cause.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The message and every cause, one per line: what a FAILED task shows as its trace.
    pub fn trace(&self) -> String {
        let mut trace = format!("{} error: {}", self.kind, self.message);
        let mut cause = std::error::Error::source(self);
        while let Some(err) = cause {
            let text = err.to_string();
            if !self.message.contains(&text) {
                trace.push_str("\ncaused by: ");
                trace.push_str(&text);
            }
            cause = err.source();
        }
        trace
    }
}
