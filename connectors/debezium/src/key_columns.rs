//! `message.key.columns`: the columns that make an event's key, per table, instead of the
//! primary key. Written `<table>:<column>,<column>;<table>:<column>`, each table a regular
//! expression matching the whole fully-qualified name (`schema.table` for Postgres,
//! `database.table` for MySQL).

use regex::Regex;
use sluice_api::{Error, Result};

/// The parsed key: one rule per table pattern, the first match wins.
#[derive(Debug, Clone, Default)]
pub struct MessageKeyColumns {
    rules: Vec<(Regex, Vec<String>)>,
}

impl MessageKeyColumns {
    /// Reads the key's value; the error names the part that does not parse.
    pub fn parse(value: &str) -> Result<MessageKeyColumns> {
        let mut rules = Vec::new();
        for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = |why: &str| {
                Error::config(format!(
                    "`message.key.columns` part `{part}` {why}; write <table>:<column>,<column> \
                     with parts separated by `;` (e.g. inventory.customers:id,email)"
                ))
            };
            let Some((table, columns)) = part.rsplit_once(':') else {
                return Err(bad("has no `:`"));
            };
            let columns: Vec<String> = columns
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            if columns.is_empty() {
                return Err(bad("names no column"));
            }
            let pattern = Regex::new(&format!("^(?:{})$", table.trim()))
                .map_err(|e| bad(&format!("has an invalid table pattern ({e})")))?;
            rules.push((pattern, columns));
        }
        Ok(MessageKeyColumns { rules })
    }

    /// The key columns configured for `qualified_table`, if any rule matches it.
    pub fn for_table(&self, qualified_table: &str) -> Option<&[String]> {
        self.rules
            .iter()
            .find(|(pattern, _)| pattern.is_match(qualified_table))
            .map(|(_, columns)| columns.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_whole_names_and_the_first_rule_wins() {
        let keys = MessageKeyColumns::parse("inventory.customers:pk1,pk2;(.*).purchaseorders:pk3")
            .unwrap();
        assert_eq!(
            keys.for_table("inventory.customers"),
            Some(&["pk1".to_owned(), "pk2".to_owned()][..])
        );
        assert_eq!(
            keys.for_table("x.purchaseorders"),
            Some(&["pk3".to_owned()][..])
        );
        assert_eq!(keys.for_table("inventory.customers2"), None);
        let err = MessageKeyColumns::parse("inventory.customers").unwrap_err();
        assert!(err.message().contains("has no `:`"), "{err}");
    }
}
