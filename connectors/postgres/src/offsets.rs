//! What `PATCH /connectors/{name}/offsets` may write for a Postgres source: Debezium's
//! partition `{"server": <topic.prefix>}` and an offset the task can resume from. Checked
//! before anything is written, so a bad offset is a 400 naming the field instead of a task
//! that fails on its next start.

use serde_json::Value as Json;
use sluice_api::record::{SourceOffset, SourcePartition};
use sluice_api::{Error, Result};

/// Integer offset fields: `lsn` (where to resume) is required; the others are optional.
const INTEGERS: [(&str, bool, &str); 5] = [
    (
        "lsn",
        true,
        "the WAL position to resume from, e.g. 23456789",
    ),
    (
        "lsn_commit",
        false,
        "the commit LSN of the transaction the offset is inside",
    ),
    (
        "lsn_proc",
        false,
        "the LSN of the last change sent of that transaction",
    ),
    ("txId", false, "the transaction id"),
    ("ts_usec", false, "the commit time in microseconds"),
];

/// Checks each partition and offset against what the task reads at start.
pub(crate) fn validate(
    topic_prefix: &str,
    offsets: &[(SourcePartition, Option<SourceOffset>)],
) -> Result<()> {
    for (partition, offset) in offsets {
        let shown = Json::Object(partition.clone());
        if partition.get("server").and_then(Json::as_str) != Some(topic_prefix)
            || partition.len() != 1
        {
            return Err(Error::config(format!(
                "partition {shown} is not this connector's: a Postgres source has the one \
                 partition {{\"server\": \"{topic_prefix}\"}} (its topic.prefix)"
            )));
        }
        let Some(offset) = offset else { continue };
        for (key, required, meaning) in INTEGERS {
            match offset.get(key) {
                Some(value) if value.is_u64() => {}
                None if !required => {}
                found => {
                    return Err(Error::config(format!(
                        "offset of {shown}: `{key}` must be a non-negative integer ({meaning}), \
                         got {}",
                        found.map_or("nothing".to_owned(), ToString::to_string)
                    )));
                }
            }
        }
        for key in ["snapshot", "last_snapshot_record"] {
            if let Some(found) = offset.get(key).filter(|v| !v.is_boolean()) {
                return Err(Error::config(format!(
                    "offset of {shown}: `{key}` must be true or false, got {found}"
                )));
            }
        }
        let mid_snapshot = offset.get("snapshot") == Some(&Json::Bool(true))
            && offset.get("last_snapshot_record") != Some(&Json::Bool(true));
        if mid_snapshot && !offset.get("snapshot_table").is_some_and(Json::is_string) {
            return Err(Error::config(format!(
                "offset of {shown}: a mid-snapshot offset (`snapshot`: true) needs \
                 `snapshot_table`, the table to resume the snapshot at; or drop `snapshot` to \
                 resume streaming from `lsn`"
            )));
        }
        if let Some(key) = offset.get("snapshot_key")
            && !key
                .as_array()
                .is_some_and(|parts| parts.iter().all(Json::is_string))
        {
            return Err(Error::config(format!(
                "offset of {shown}: `snapshot_key` must be a list of strings (the last key read), \
                 got {key}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(partition: Json, offset: Json) -> Result<()> {
        let partition = partition.as_object().unwrap().clone();
        let offset = offset.as_object().cloned();
        validate("shop", &[(partition, offset)])
    }

    #[test]
    fn debezium_shaped_offsets_pass() {
        check(
            json!({"server": "shop"}),
            json!({"lsn": 123, "txId": 7, "ts_usec": 1}),
        )
        .unwrap();
        check(
            json!({"server": "shop"}),
            json!({"lsn": 5, "lsn_commit": 9, "lsn_proc": 6}),
        )
        .unwrap();
        check(
            json!({"server": "shop"}),
            json!({"lsn": 5, "snapshot": true, "snapshot_table": "public.t", "snapshot_key": ["4"]}),
        )
        .unwrap();
        // A reset (null offset) of our partition.
        validate(
            "shop",
            &[(json!({"server": "shop"}).as_object().unwrap().clone(), None)],
        )
        .unwrap();
    }

    #[test]
    fn bad_offsets_are_refused_naming_the_field() {
        let message = |p: Json, o: Json| check(p, o).unwrap_err().message().to_owned();
        assert!(
            message(json!({"server": "other"}), json!({"lsn": 1}))
                .contains("{\"server\": \"shop\"}")
        );
        assert!(
            message(json!({"server": "shop"}), json!({"lsn": -1}))
                .contains("`lsn` must be a non-negative integer")
        );
        assert!(message(json!({"server": "shop"}), json!({"lsn": "0/16B3748"})).contains("`lsn`"));
        assert!(message(json!({"server": "shop"}), json!({"txId": 3})).contains("got nothing"));
        assert!(
            message(
                json!({"server": "shop"}),
                json!({"lsn": 1, "lsn_proc": 1.5})
            )
            .contains("`lsn_proc`")
        );
        assert!(
            message(
                json!({"server": "shop"}),
                json!({"lsn": 1, "snapshot": "yes"})
            )
            .contains("`snapshot` must be true or false")
        );
        assert!(
            message(
                json!({"server": "shop"}),
                json!({"lsn": 1, "snapshot": true})
            )
            .contains("`snapshot_table`")
        );
        assert!(
            message(
                json!({"server": "shop"}),
                json!({"lsn": 1, "snapshot_key": [1]})
            )
            .contains("`snapshot_key`")
        );
    }
}
