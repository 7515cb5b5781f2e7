//! Debezium's include/exclude filter lists (`schema.*`, `database.*`, `table.*`,
//! `column.*`), shared by the connectors.

use regex::Regex;
use sluice_api::config::Config;
use sluice_api::{Error, Result};

/// One include/exclude pair of Debezium's filter lists: comma-separated regular expressions,
/// each matching a whole identifier.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Option<Regex>,
    exclude: Option<Regex>,
}

impl Filter {
    /// Reads `<kind>.include.list` and `<kind>.exclude.list` (only one may be set).
    pub fn new(config: &Config, kind: &str) -> Result<Filter> {
        let include = config.list(&format!("{kind}.include.list"));
        let exclude = config.list(&format!("{kind}.exclude.list"));
        if !include.is_empty() && !exclude.is_empty() {
            return Err(Error::config(format!(
                "{kind}.include.list and {kind}.exclude.list are both set; Debezium allows one of them: keep one"
            )));
        }
        let compile = |key: &str, patterns: Vec<String>| -> Result<Option<Regex>> {
            if patterns.is_empty() {
                return Ok(None);
            }
            let alternatives: Vec<String> = patterns.iter().map(|p| format!("(?:{p})")).collect();
            Regex::new(&format!("^(?:{})$", alternatives.join("|")))
                .map(Some)
                .map_err(|e| {
                    Error::config(format!("`{key}` holds an invalid regular expression: {e}"))
                })
        };
        Ok(Filter {
            include: compile(&format!("{kind}.include.list"), include)?,
            exclude: compile(&format!("{kind}.exclude.list"), exclude)?,
        })
    }

    /// Whether `name` passes the lists.
    pub fn allows(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|r| r.is_match(name))
            && !self.exclude.as_ref().is_some_and(|r| r.is_match(name))
    }

    /// Whether neither list is set.
    pub fn is_empty(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }
}
