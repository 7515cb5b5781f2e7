//! A plugin that misbehaves on purpose, for the tests of the host's limits: a record whose
//! value is the string `loop` spins forever, `grow` allocates without bound, `trap` panics,
//! `fail` returns an error; anything else passes. With config `reject=true` it refuses to start.
//! (And one that is no misbehaviour but tests the SDK: `hold` is kept back, unread, and comes
//! out after the next `release`, from a later call.)

use std::sync::Mutex;

use sluice_plugin::{Config, Json, Record};

static HELD: Mutex<Vec<Record>> = Mutex::new(Vec::new());

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
        Some("hold") => {
            // Kept whole, so its value must still be readable after this call.
            let mut held = HELD.lock().expect("one thread");
            held.push(record.clone());
            Ok(vec![])
        }
        Some("release") => {
            let mut out = std::mem::take(&mut *HELD.lock().expect("one thread"));
            out.push(record);
            Ok(out)
        }
        _ => Ok(vec![record]),
    }
}

sluice_plugin::transform!(apply, check);
