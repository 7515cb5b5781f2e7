//! [`Secret`]: a password, API key or token held in a connector's parsed config, which never
//! shows its value in logs, traces, panics or `{:?}` output.

use std::fmt;

use crate::config::REDACTED;

/// A secret string. Both `{:?}` and `{}` print `[hidden]` (as Kafka's `Password` does), so a
/// config struct holding one can derive `Debug` and still be logged safely. The value is read
/// only through [`Secret::expose`], which makes every place that uses it easy to find.
///
/// ```
/// use sluice_api::Secret;
///
/// let password = Secret::new("s3cret");
/// assert_eq!(format!("{password:?} {password}"), "[hidden] [hidden]");
/// assert_eq!(password.expose(), "s3cret");
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, to hand to the external system (a login, an `Authorization`
    /// header). Never log or format what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret was given (an empty password: trust authentication, say).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let secret = Secret::new("hunter2-s3cret");
        for shown in [
            format!("{secret:?}"),
            format!("{secret}"),
            format!("{secret:#?}"),
            format!("{:?}", Some(&secret)),
            format!("{:?}", ("user", secret.clone())),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(REDACTED), "{shown}");
        }
        assert_eq!(secret.expose(), "hunter2-s3cret");
    }

    #[test]
    fn compares_clones_and_defaults_by_value() {
        let secret = Secret::from("a");
        assert_eq!(secret.clone(), secret);
        assert_ne!(secret, Secret::from("b".to_owned()));
        assert!(Secret::default().is_empty());
        assert_eq!(Secret::default(), Secret::new(""));
    }
}
