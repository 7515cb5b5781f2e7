//! Error tolerance (`errors.tolerance`, `errors.log.*`), shared by both transports.

use sluice_api::config::Props;
use sluice_api::{Error, Result};

/// How a connector treats a record that fails conversion or a transform.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// `errors.tolerance=all`: skip the record (and dead-letter it when configured).
    pub skip: bool,
    pub log: bool,
    pub log_messages: bool,
}

impl Tolerance {
    /// Reads `errors.tolerance`, `errors.log.enable`, `errors.log.include.messages`.
    pub fn of(props: &Props) -> Tolerance {
        let flag = |k: &str| {
            props
                .get(k)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        };
        Tolerance {
            skip: props
                .get("errors.tolerance")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("all")),
            log: flag("errors.log.enable"),
            log_messages: flag("errors.log.include.messages"),
        }
    }

    /// `Ok` when the record may be skipped; the error, marked for the trace, otherwise.
    /// `describe` renders the record, only called when `errors.log.include.messages` is on.
    pub fn handle(
        &self,
        connector: &str,
        stage: &str,
        error: &Error,
        describe: impl FnOnce() -> String,
    ) -> Result<()> {
        if !self.skip {
            return Err(Error::new(
                error.kind(),
                format!(
                    "{stage} failed and errors.tolerance=none: {}",
                    error.message()
                ),
            ));
        }
        if self.log {
            if self.log_messages {
                tracing::warn!(connector, stage, error = %error, record = %describe(), "record skipped (errors.tolerance=all)");
            } else {
                tracing::warn!(connector, stage, error = %error, "record skipped (errors.tolerance=all)");
            }
        }
        Ok(())
    }
}
