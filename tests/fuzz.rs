//! Hostile input, generated: property tests (proptest) that feed the readers of outside bytes
//! — the replication stream's framing and CopyData reader, the pgoutput decoder, the MySQL
//! connector's DDL readers, the
//! `.properties`/JSON/TOML/YAML config readers, the config, offsets and status topics' record
//! readers, the standalone offsets file, the WASM batch frame reader, and the REST API's JSON
//! bodies on a running worker — arbitrary and near-valid input, and check each answers with a value or an error,
//! never a panic (and the worker with a 2xx or 4xx, never a 5xx, and stays up).
//!
//! Each property runs `SLUICE_FUZZ_CASES` cases (default below, a few seconds in all); set it
//! higher for a longer run, e.g. `SLUICE_FUZZ_CASES=200000 cargo test -p sluice --test fuzz
//! -- --nocapture`. Each prints how many cases it ran. A panic found is fixed and its input
//! kept below as a regression case.

mod support;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value as Json, json};
use sluice_runtime::config::file::{Format, parse_props};

/// Runs `check` on `cases` values of `strategy` (`SLUICE_FUZZ_CASES`, else `default`); a
/// panic fails the test with the smallest input proptest finds.
fn fuzz<S: Strategy>(name: &str, default: u32, strategy: S, check: impl Fn(S::Value)) {
    let cases = std::env::var("SLUICE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    runner
        .run(&strategy, |value| {
            check(value);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    eprintln!(
        "fuzz {name}: {cases} cases in {:.1?}, no panic",
        started.elapsed()
    );
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Text made mostly of the characters a format gives meaning to.
fn syntax(chars: &'static [char], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(chars), 0..max)
        .prop_map(|chars| chars.into_iter().collect())
}

#[test]
fn the_pgoutput_decoder_never_panics() {
    use sluice_connector_postgres::pgoutput::Decoder;
    // Arbitrary bytes, and bytes behind each message tag pgoutput (protocol 1 and 2) sends.
    let tags = b"BCORIUDTYMSEcAbp".to_vec();
    let message = (prop::sample::select(tags), bytes(256)).prop_map(|(tag, mut rest)| {
        rest.insert(0, tag);
        rest
    });
    let input = prop_oneof![bytes(256), message];
    fuzz(
        "pgoutput",
        20_000,
        (input, any::<bool>()),
        |(bytes, streaming)| {
            let mut decoder = if streaming {
                Decoder::inside_stream()
            } else {
                Decoder::new()
            };
            let _ = decoder.decode(&bytes);
        },
    );
    // Regression cases: none found yet.
}

/// The DDL statements the MySQL connector reads from the binlog: which tables they name, and
/// what they do to a table's columns (applied to a table with a few columns), from token soup
/// made of the words, punctuation and literals DDL has.
#[test]
fn the_ddl_readers_never_panic() {
    use sluice_connector_mysql::ddl::effects;
    use sluice_connector_mysql::ddl_columns::{Defaults, apply};
    use sluice_connector_mysql::table::ColumnInfo;
    const WORDS: &[&str] = &[
        "CREATE",
        "ALTER",
        "DROP",
        "RENAME",
        "TRUNCATE",
        "TABLE",
        "IF",
        "NOT",
        "EXISTS",
        "ADD",
        "COLUMN",
        "MODIFY",
        "CHANGE",
        "TO",
        "AFTER",
        "FIRST",
        "PRIMARY",
        "KEY",
        "UNIQUE",
        "INDEX",
        "CONSTRAINT",
        "CHECK",
        "DEFAULT",
        "NULL",
        "CHARACTER",
        "SET",
        "CHARSET",
        "COLLATE",
        "int",
        "varchar",
        "text",
        "enum",
        "decimal",
        "double",
        "national",
        "long",
        "serial",
        "bit",
        "json",
        "datetime",
        "UNSIGNED",
        "ZEROFILL",
        "ON",
        "UPDATE",
        "WAIT",
        "NOWAIT",
        "a",
        "b",
        "`c`",
        "t",
        "db.t",
        "(",
        ")",
        ",",
        ".",
        "=",
        "-",
        "'x'",
        "''",
        "'",
        "\"",
        "3",
        "70000",
        "99999999999",
        "/*",
        "*/",
        "--",
        "#",
        "\n",
    ];
    let before = vec![
        ColumnInfo {
            name: "a".into(),
            data_type: "int".into(),
            column_type: "int(11)".into(),
            nullable: false,
            primary: true,
            precision: Some(10),
            scale: Some(0),
            fsp: 0,
            charset: None,
        },
        ColumnInfo {
            name: "b".into(),
            data_type: "varchar".into(),
            column_type: "varchar(10)".into(),
            nullable: true,
            primary: false,
            precision: None,
            scale: None,
            fsp: 0,
            charset: Some("latin1".into()),
        },
    ];
    let statement =
        prop::collection::vec(prop::sample::select(WORDS), 0..40).prop_map(|words| words.join(" "));
    fuzz("ddl readers", 20_000, statement, |sql| {
        let _ = effects(&sql, "app");
        for mariadb in [true, false] {
            let _ = apply(
                &before,
                &sql,
                &Defaults {
                    charset: "utf8mb4",
                    mariadb,
                },
            );
        }
    });
}

#[test]
fn the_replication_stream_reader_never_panics() {
    use bytes::BytesMut;
    use sluice_connector_postgres::wire::{
        Taken, decode_copy_data, describe_server_error, take_message,
    };
    // A backend message: tag, a length that is right, off by a little or wild, and a body
    // that for CopyData starts with the XLogData or keepalive tag.
    let message = (
        prop::sample::select(b"dEckZ".to_vec()),
        (0u8..3, any::<i32>(), -4i32..4),
        prop::sample::select(b"wkx".to_vec()),
        bytes(64),
    )
        .prop_map(|(tag, (how, wild, off), copy_tag, mut body)| {
            if tag == b'd' {
                body.insert(0, copy_tag);
            }
            let right = body.len() as i32 + 4;
            let length = match how {
                0 => right,
                1 => wild,
                _ => right + off,
            };
            let mut out = vec![tag];
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(&body);
            out
        });
    let stream = prop::collection::vec(prop_oneof![bytes(40), message], 0..8);
    // The stream arrives in reads of arbitrary sizes.
    let cuts = prop::collection::vec(1usize..64, 1..16);
    fuzz(
        "replication stream",
        20_000,
        (stream, cuts),
        |(stream, cuts)| {
            let stream: Vec<u8> = stream.concat();
            let mut buffer = BytesMut::new();
            let mut at = 0;
            for cut in cuts.iter().cycle() {
                if at >= stream.len() {
                    break;
                }
                let end = (at + cut).min(stream.len());
                buffer.extend_from_slice(&stream[at..end]);
                at = end;
                loop {
                    match take_message(&mut buffer) {
                        Ok(Taken::Message(b'd', body)) => {
                            let _ = decode_copy_data(body);
                        }
                        Ok(Taken::Message(b'E', body)) => {
                            let _ = describe_server_error(&body);
                        }
                        Ok(Taken::Message(..)) => {}
                        Ok(Taken::Needs(length)) => {
                            assert!(length > buffer.len(), "asked to grow to what it holds");
                            break;
                        }
                        Err(_) => return, // a stream that is not the protocol: the connection ends
                    }
                }
            }
        },
    );
}

#[test]
fn the_offsets_and_status_readers_never_panic() {
    use sluice_runtime::storage::log::LogRead;
    use sluice_runtime::storage::offsets::{FileOffsetStore, OffsetTable};
    use sluice_runtime::storage::offsets_topic::apply_offset_records;
    use sluice_runtime::storage::status_topic::apply_status_records;
    let value = prop_oneof![
        bytes(48).prop_map(Some),
        Just(None),
        json_value().prop_map(|v| Some(v.to_string().into_bytes())),
    ];
    let key = prop_oneof![
        bytes(32),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        ("[a-z]{0,6}", json_value()).prop_map(|(c, p)| json!([c, p]).to_string().into_bytes()),
        "status-(connector|task|topic)-[a-z0-9-]{0,8}".prop_map(String::into_bytes),
    ];
    let records = prop::collection::vec((key, value), 0..24);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("connect.offsets");
    fuzz(
        "offsets and status records",
        3_000,
        (records, bytes(200), json_value()),
        |(records, garbage, document)| {
            let read = || LogRead {
                origins: (0..records.len() as i64).map(|i| (0, i)).collect(),
                entries: records.clone(),
                positions: Default::default(),
            };
            let mut table = OffsetTable::default();
            apply_offset_records(&mut table, read(), "connect-offsets");
            let mut statuses = Default::default();
            apply_status_records(&mut statuses, read(), "connect-status");
            // The standalone offsets file: garbage, or JSON of any shape.
            for contents in [garbage.clone(), document.to_string().into_bytes()] {
                std::fs::write(&file, contents).unwrap();
                let _ = FileOffsetStore::open(&file);
            }
        },
    );
}

#[test]
fn the_config_readers_never_panic() {
    const PROPERTIES: &[char] = &[
        '=', ':', '\\', '\n', '\r', '#', '!', ' ', '\t', 'a', 'k', '.', 'u', '0', 'f', '\u{e9}',
    ];
    const STRUCTURED: &[char] = &[
        '{', '}', '[', ']', '"', '\'', ':', ',', '=', '\n', ' ', '-', '#', 'a', '1', '.', '\\',
        'u', 't', 'n', '&', '*', '|', '>', '!',
    ];
    let text = prop_oneof![".{0,200}", syntax(PROPERTIES, 200), syntax(STRUCTURED, 200),];
    let format = prop::sample::select(vec![
        Format::Properties,
        Format::Json,
        Format::Toml,
        Format::Yaml,
    ]);
    fuzz("config readers", 5_000, (text, format), |(text, format)| {
        if let Ok(props) = parse_props(&text, format) {
            let _ = sluice_runtime::config::file::connector_from_props(props);
        }
    });
}

#[test]
fn the_config_topic_reader_never_panics() {
    use sluice_runtime::storage::config_topic::read_config_records;
    let prefixes = vec![
        "connector-",
        "task-",
        "commit-",
        "target-state-",
        "restart-connector-",
        "session-key",
        "",
    ];
    let key = (prop::sample::select(prefixes), "[a-z0-9-]{0,12}")
        .prop_map(|(prefix, rest)| format!("{prefix}{rest}").into_bytes());
    let value = prop_oneof![
        bytes(64).prop_map(Some),
        Just(None),
        json_value().prop_map(|v| Some(v.to_string().into_bytes())),
    ];
    let records = prop::collection::vec((key, value), 0..24);
    fuzz("config topic records", 3_000, records, |records| {
        let _ = read_config_records(&records);
    });
}

#[test]
fn the_wasm_batch_frame_reader_never_panics() {
    use sluice_plugin_frame::Reader;
    fuzz("WASM batch frames", 20_000, bytes(512), |bytes| {
        let mut reader = Reader::new(&bytes);
        let mut outputs = Vec::new();
        for _ in 0..8 {
            if reader.outcome_into(&mut outputs).is_err() {
                break;
            }
        }
        let _ = reader.finish();
        let mut reader = Reader::new(&bytes);
        let _ = reader.payload().and_then(|_| reader.headers());
        let _ = reader.opt_str().and_then(|_| reader.opt_i64());
    });
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,20}".prop_map(Json::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::btree_map("[a-z.]{0,12}", inner, 0..6)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// A connector config that is sometimes nearly valid: a known class, known keys, any values.
fn connector_body() -> impl Strategy<Value = Json> {
    let class = prop::sample::select(vec![
        "FileStreamSource",
        "FileStreamSink",
        "io.debezium.connector.postgresql.PostgresConnector",
        "NoSuchConnector",
    ]);
    let keys = prop::sample::select(vec![
        "tasks.max",
        "topic",
        "topics",
        "topics.regex",
        "transforms",
        "transforms.t.type",
        "errors.tolerance",
        "batch.size",
        "name",
        "config.action.reload",
    ]);
    let value = prop_oneof![json_value(), ".{0,16}".prop_map(Json::String)];
    (
        class,
        prop::collection::btree_map(keys, value, 0..6),
        prop::option::of(json_value()),
    )
        .prop_map(|(class, extra, garbage)| {
            let mut config = serde_json::Map::new();
            config.insert("connector.class".into(), json!(class));
            config.insert("file".into(), json!("fuzz.txt"));
            config.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
            match garbage {
                Some(garbage) if garbage.is_object() => garbage,
                _ => json!({"name": "fuzzed", "config": config}),
            }
        })
}

/// The REST API's JSON bodies: creates, config puts and patches, offsets and validation with
/// arbitrary and near-valid JSON, on a running worker. Every answer is 2xx or 4xx, and the
/// worker answers `/health` afterwards.
#[test]
fn the_rest_api_answers_hostile_bodies_with_4xx_and_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("worker.properties"),
        "offset.storage.file.filename=connect.offsets\n",
    )
    .unwrap();
    let worker = support::Worker::start(dir.path(), &["worker.properties"]);
    let paths = prop::sample::select(vec![
        ("POST", "/connectors"),
        ("PUT", "/connectors/fuzzed/config"),
        ("PATCH", "/connectors/fuzzed/config"),
        ("PATCH", "/connectors/fuzzed/offsets"),
        ("PUT", "/connector-plugins/FileStreamSink/config/validate"),
        ("POST", "/connectors/fuzzed/tasks"),
        ("PUT", "/admin/loggers/root"),
    ]);
    let body = prop_oneof![
        connector_body().prop_map(|b| b.to_string().into_bytes()),
        json_value().prop_map(|b| b.to_string().into_bytes()),
        bytes(128),
    ];
    fuzz(
        "REST bodies",
        400,
        (paths, body),
        |((method, path), body)| {
            let (status, answer) = worker.send_raw(method, path, body);
            assert!(status < 500, "{method} {path} answered {status}: {answer}");
        },
    );
    let (status, _) = worker.get("/health");
    assert_eq!(status, 200);
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}
