//! A plugin that misbehaves on purpose, for the tests of the host's limits: a record whose
//! value is the string `loop` spins forever, `grow` allocates without bound, `trap` panics,
//! `fail` returns an error; anything else passes. With config `reject=true` it refuses to start.

use sluice_plugin::{Config, Json, Record};

fn check(config: &Config) -> Result<(), String> {
    if config.get("reject").is_some_and(|v| v == "true") {
        return Err("this plugin was told to reject its config (reject=true)".into());
    }
    Ok(())
}

fn apply(record: Record, _config: &Config) -> Result<Vec<Record>, String> {
    match record.value.get().and_then(Json::as_str) {
        Some("loop") => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Some("grow") => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        Some("trap") => panic!("told to trap"),
        Some("fail") => Err("told to fail this record".into()),
        _ => Ok(vec![record]),
    }
}

sluice_plugin::transform!(apply, check);
