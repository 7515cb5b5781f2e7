//! Drops records whose row field `field` equals `equals` (compared as text), e.g. test
//! accounts or soft-deleted rows; everything else passes.
//!
//! Config: `field` and `equals`, both required.

use sluice_plugin::{Config, Json, Record};

fn check(config: &Config) -> Result<(), String> {
    for key in ["field", "equals"] {
        if config.get(key).is_none_or(|v| v.is_empty()) {
            return Err(format!(
                "`{key}` is required (transforms.<alias>.config.{key})"
            ));
        }
    }
    Ok(())
}

fn apply(record: Record, config: &Config) -> Result<Vec<Record>, String> {
    let (field, equals) = (&config["field"], &config["equals"]);
    let matches = record
        .row()
        .and_then(|row| row.get(field))
        .is_some_and(|v| match v {
            Json::String(s) => s == equals,
            other => equals.parse::<Json>().is_ok_and(|e| e == *other),
        });
    Ok(if matches { Vec::new() } else { vec![record] })
}

sluice_plugin::transform!(apply, check);
