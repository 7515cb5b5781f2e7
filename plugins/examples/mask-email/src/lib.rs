//! Replaces PII fields (default: `email`) with a stable hash, so equal addresses still join
//! but none can be read. Works on plain values and on Debezium change events (the row in
//! `after`, or `before` for deletes).
//!
//! Config: `fields` (comma-separated, default `email`).

use std::hash::{DefaultHasher, Hash, Hasher};

use sluice_plugin::{Config, Json, Record};

fn fields(config: &Config) -> Vec<String> {
    config
        .get("fields")
        .map(String::as_str)
        .unwrap_or("email")
        .split(',')
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect()
}

fn check(config: &Config) -> Result<(), String> {
    if fields(config).is_empty() {
        return Err("`fields` names no field to mask".into());
    }
    Ok(())
}

fn apply(mut record: Record, config: &Config) -> Result<Vec<Record>, String> {
    let fields = fields(config);
    // Only a row with something to mask is re-serialised; the rest go back untouched.
    let has_pii = record.row().is_some_and(|row| {
        fields
            .iter()
            .any(|f| row.get(f).is_some_and(Json::is_string))
    });
    if has_pii && let Some(row) = record.row_mut() {
        for field in fields {
            if let Some(Json::String(text)) = row.get(&field) {
                let mut hasher = DefaultHasher::new();
                text.hash(&mut hasher);
                row.insert(field, Json::String(format!("sha:{:016x}", hasher.finish())));
            }
        }
    }
    Ok(vec![record])
}

sluice_plugin::transform!(apply, check);
