//! Returns every record unchanged: the benchmark's measure of plugin overhead.

use sluice_plugin::{Config, Record};

fn apply(record: Record, _config: &Config) -> Result<Vec<Record>, String> {
    Ok(vec![record])
}

sluice_plugin::transform!(apply);
