//! The pgoutput decoder on bytes from a real PostgreSQL 15: the test starts a throwaway
//! cluster with `scripts/pg-start.sh` (own directory, free port, `wal_level=logical`), makes
//! changes, and decodes what `pg_logical_slot_get_binary_changes` returns for `pgoutput`.

// Shared with the end-to-end tests, which use more of it; its `pub` items are reached
// through their own `support` module there, not from this test.
#[allow(dead_code, unreachable_pub)]
#[path = "../../../tests/support/postgres.rs"]
mod cluster;

use cluster::Cluster;
use sluice_connector_postgres::pgoutput::{Column, Decoder, Message, OldTuple, ReplicaIdentity};

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn text(value: &str) -> Column {
    Column::Text(value.as_bytes().to_vec())
}

#[test]
fn decodes_what_postgres_15_sends() {
    let pg = Cluster::start();
    pg.sql("create table customers (id int primary key, email text, notes text)");
    // Out-of-line, uncompressed storage, so an update that leaves `notes` alone sends it as unchanged TOAST.
    pg.sql("alter table customers alter column notes set storage external");
    pg.sql("create publication dbz_publication for table customers");
    pg.sql("select pg_create_logical_replication_slot('sluice', 'pgoutput')");
    pg.sql("insert into customers values (1, 'a@example.com', repeat('x', 10000))");
    pg.sql("update customers set email = 'b@example.com' where id = 1");
    pg.sql("delete from customers where id = 1");
    pg.sql("insert into customers values (2, 'c@example.com', null)");
    pg.sql("truncate customers");
    // pg-start.sh runs with synchronous_commit=off for speed, and decoding reads only flushed
    // WAL: the last transaction commits synchronously so that everything is there to read.
    pg.sql("set synchronous_commit = on; select pg_logical_emit_message(true, 'audit', 'hello')");
    let rows = pg.sql(
        "select encode(data, 'hex') from pg_logical_slot_get_binary_changes('sluice', null, null, \
         'proto_version', '1', 'publication_names', 'dbz_publication', 'messages', 'true')",
    );
    let mut decoder = Decoder::new();
    let messages: Vec<Message> = rows
        .iter()
        .map(|row| decoder.decode(&hex(row)).unwrap())
        .collect();
    let data: Vec<&Message> = messages
        .iter()
        .filter(|m| !matches!(m, Message::Begin { .. } | Message::Commit { .. }))
        .collect();

    let Message::Relation { relation, .. } = data[0] else {
        panic!("{:?}", data[0])
    };
    assert_eq!(
        (relation.namespace.as_str(), relation.name.as_str()),
        ("public", "customers")
    );
    assert_eq!(relation.replica_identity, ReplicaIdentity::Default);
    let columns: Vec<(&str, bool, u32)> = relation
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.key, c.type_oid))
        .collect();
    assert_eq!(
        columns,
        [("id", true, 23), ("email", false, 25), ("notes", false, 25)]
    );

    assert_eq!(
        *data[1],
        Message::Insert {
            xid: None,
            relation: relation.oid,
            new: vec![text("1"), text("a@example.com"), text(&"x".repeat(10000))]
        }
    );
    assert_eq!(
        *data[2],
        Message::Update {
            xid: None,
            relation: relation.oid,
            old: None,
            new: vec![text("1"), text("b@example.com"), Column::UnchangedToast]
        },
        "REPLICA IDENTITY DEFAULT with an unchanged key sends no old tuple, and the untouched TOAST value as unchanged"
    );
    assert_eq!(
        *data[3],
        Message::Delete {
            xid: None,
            relation: relation.oid,
            old: OldTuple::Key(vec![text("1"), Column::Null, Column::Null])
        }
    );
    assert_eq!(
        *data[4],
        Message::Insert {
            xid: None,
            relation: relation.oid,
            new: vec![text("2"), text("c@example.com"), Column::Null]
        }
    );
    // TRUNCATE replaces the table's storage, so pgoutput sends the relation again before it:
    // consumers must take a Relation message at any point.
    assert_eq!(
        *data[5], *data[0],
        "the relation is sent again after the truncate's relcache invalidation"
    );
    assert_eq!(
        *data[6],
        Message::Truncate {
            xid: None,
            relations: vec![relation.oid],
            cascade: false,
            restart_identity: false
        }
    );
    let Message::LogicalMessage {
        transactional,
        prefix,
        content,
        ..
    } = data[7]
    else {
        panic!("{:?}", data[7])
    };
    assert_eq!(
        (*transactional, prefix.as_str(), content.as_slice()),
        (true, "audit", &b"hello"[..])
    );
    let begins = messages
        .iter()
        .filter(|m| matches!(m, Message::Begin { .. }))
        .count();
    let commits = messages
        .iter()
        .filter(|m| matches!(m, Message::Commit { .. }))
        .count();
    assert_eq!((begins, commits), (6, 6), "one transaction per statement");
}
