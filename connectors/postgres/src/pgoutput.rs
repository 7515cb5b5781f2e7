//! Decoding of `pgoutput`, Postgres's built-in logical decoding output, as documented in
//! "Logical Replication Message Formats": protocol version 1, plus version 2's streamed
//! in-progress transactions (`S`/`E`/`c`/`A`, and the transaction id that prefixes data
//! messages inside a stream).
//!
//! The decoder is strict and total: every length is checked against what remains, nothing is
//! allocated on a length the input did not back, trailing bytes are an error, and no input
//! makes it panic (see the tests that throw random and truncated bytes at it).

use sluice_api::{Error, Result};

use crate::lsn::Lsn;

/// Microseconds between the Unix epoch and Postgres's (2000-01-01).
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// A Postgres timestamp (µs since 2000-01-01) as µs since the Unix epoch.
pub fn unix_micros(pg_micros: i64) -> i64 {
    pg_micros.saturating_add(PG_EPOCH_OFFSET_MICROS)
}

/// How a table identifies rows in updates and deletes (`REPLICA IDENTITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaIdentity {
    /// The primary key (`d`).
    Default,
    /// Nothing: no old values at all (`n`).
    Nothing,
    /// The whole old row (`f`).
    Full,
    /// A chosen unique index (`i`).
    Index,
}

/// A column of a relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity (the key).
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// A table's shape, sent before the first change to it and whenever it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub oid: u32,
    pub namespace: String,
    pub name: String,
    pub replica_identity: ReplicaIdentity,
    pub columns: Vec<RelationColumn>,
}

/// One column's value in a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Null,
    /// A TOASTed value that did not change, so it was not sent.
    UnchangedToast,
    /// The value's text form (UTF-8).
    Text(Vec<u8>),
    /// The value's binary form (only with the `binary` option).
    Binary(Vec<u8>),
}

/// The columns of a row, in relation order.
pub type Tuple = Vec<Column>;

/// The old row of an update or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple {
    /// Only the replica-identity columns (others are `Null`).
    Key(Tuple),
    /// The whole old row (`REPLICA IDENTITY FULL`).
    Full(Tuple),
}

/// A decoded pgoutput message. `xid` is set for data messages inside a streamed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Begin {
        final_lsn: Lsn,
        commit_time: i64,
        xid: u32,
    },
    Commit {
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time: i64,
    },
    Origin {
        lsn: Lsn,
        name: String,
    },
    Relation {
        xid: Option<u32>,
        relation: Relation,
    },
    Type {
        xid: Option<u32>,
        oid: u32,
        namespace: String,
        name: String,
    },
    Insert {
        xid: Option<u32>,
        relation: u32,
        new: Tuple,
    },
    Update {
        xid: Option<u32>,
        relation: u32,
        old: Option<OldTuple>,
        new: Tuple,
    },
    Delete {
        xid: Option<u32>,
        relation: u32,
        old: OldTuple,
    },
    Truncate {
        xid: Option<u32>,
        relations: Vec<u32>,
        cascade: bool,
        restart_identity: bool,
    },
    /// `pg_logical_emit_message`.
    LogicalMessage {
        xid: Option<u32>,
        transactional: bool,
        lsn: Lsn,
        prefix: String,
        content: Vec<u8>,
    },
    StreamStart {
        xid: u32,
        first_segment: bool,
    },
    StreamStop,
    StreamCommit {
        xid: u32,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time: i64,
    },
    StreamAbort {
        xid: u32,
        subxid: u32,
    },
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn fail(&self, what: &str) -> Error {
        Error::data(format!(
            "pgoutput: message ends early reading {what} at byte {} of {}",
            self.at,
            self.bytes.len()
        ))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.fail(what))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn i16(&mut self, what: &str) -> Result<i16> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(self.u32(what)? as i32)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(b);
        Ok(u64::from_be_bytes(array))
    }

    fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(self.u64(what)? as i64)
    }

    fn lsn(&mut self, what: &str) -> Result<Lsn> {
        Ok(Lsn(self.u64(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let rest = &self.bytes[self.at..];
        let len = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| self.fail(what))?;
        let text = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.at += len + 1;
        Ok(text)
    }

    /// A count that says how many items follow; checked against the bytes left (each item
    /// takes at least `min_item_bytes`) so no allocation outruns the input.
    fn count(&mut self, value: i64, min_item_bytes: usize, what: &str) -> Result<usize> {
        let count = usize::try_from(value)
            .map_err(|_| Error::data(format!("pgoutput: negative {what} ({value})")))?;
        let left = self.bytes.len() - self.at;
        if count.saturating_mul(min_item_bytes) > left {
            return Err(self.fail(what));
        }
        Ok(count)
    }

    fn tuple(&mut self) -> Result<Tuple> {
        let declared = self.i16("column count")?;
        let count = self.count(i64::from(declared), 1, "tuple columns")?;
        let mut columns = Vec::with_capacity(count);
        for _ in 0..count {
            columns.push(match self.u8("column kind")? {
                b'n' => Column::Null,
                b'u' => Column::UnchangedToast,
                kind @ (b't' | b'b') => {
                    let len = self.i32("value length")?;
                    let len = self.count(i64::from(len), 1, "value length")?;
                    let value = self.take(len, "value")?.to_vec();
                    if kind == b't' {
                        Column::Text(value)
                    } else {
                        Column::Binary(value)
                    }
                }
                other => {
                    return Err(Error::data(format!(
                        "pgoutput: unknown column kind {:?}",
                        other as char
                    )));
                }
            });
        }
        Ok(columns)
    }

    fn finish(&self) -> Result<()> {
        let left = self.bytes.len() - self.at;
        if left == 0 {
            Ok(())
        } else {
            Err(Error::data(format!(
                "pgoutput: {left} unexpected byte(s) after the message"
            )))
        }
    }
}

/// Decodes a stream of pgoutput messages, remembering whether it is inside a streamed
/// transaction (where data messages carry their transaction id).
#[derive(Debug, Default)]
pub struct Decoder {
    streaming: bool,
}

impl Decoder {
    /// A decoder outside any stream.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// A decoder for the data messages of one streamed transaction, read back after its
    /// `Stream Commit` (each carries its transaction id).
    pub fn inside_stream() -> Decoder {
        Decoder { streaming: true }
    }

    /// Decodes one message (the payload of one `XLogData`).
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Message> {
        let mut r = Reader { bytes, at: 0 };
        let tag = r.u8("message type")?;
        let xid = |r: &mut Reader<'_>, streaming: bool| -> Result<Option<u32>> {
            if streaming {
                r.u32("transaction id").map(Some)
            } else {
                Ok(None)
            }
        };
        let message = match tag {
            b'B' => Message::Begin {
                final_lsn: r.lsn("final lsn")?,
                commit_time: r.i64("commit time")?,
                xid: r.u32("xid")?,
            },
            b'C' => {
                r.u8("flags")?;
                Message::Commit {
                    commit_lsn: r.lsn("commit lsn")?,
                    end_lsn: r.lsn("end lsn")?,
                    commit_time: r.i64("commit time")?,
                }
            }
            b'O' => Message::Origin {
                lsn: r.lsn("origin lsn")?,
                name: r.string("origin name")?,
            },
            b'R' => {
                let xid = xid(&mut r, self.streaming)?;
                let oid = r.u32("relation oid")?;
                let namespace = r.string("namespace")?;
                let name = r.string("relation name")?;
                let replica_identity = match r.u8("replica identity")? {
                    b'd' => ReplicaIdentity::Default,
                    b'n' => ReplicaIdentity::Nothing,
                    b'f' => ReplicaIdentity::Full,
                    b'i' => ReplicaIdentity::Index,
                    other => {
                        return Err(Error::data(format!(
                            "pgoutput: unknown replica identity {:?}",
                            other as char
                        )));
                    }
                };
                let declared = r.i16("column count")?;
                let count = r.count(i64::from(declared), 10, "relation columns")?;
                let mut columns = Vec::with_capacity(count);
                for _ in 0..count {
                    let flags = r.u8("column flags")?;
                    columns.push(RelationColumn {
                        key: flags & 1 == 1,
                        name: r.string("column name")?,
                        type_oid: r.u32("column type")?,
                        type_modifier: r.i32("column type modifier")?,
                    });
                }
                Message::Relation {
                    xid,
                    relation: Relation {
                        oid,
                        namespace,
                        name,
                        replica_identity,
                        columns,
                    },
                }
            }
            b'Y' => Message::Type {
                xid: xid(&mut r, self.streaming)?,
                oid: r.u32("type oid")?,
                namespace: r.string("type namespace")?,
                name: r.string("type name")?,
            },
            b'I' => {
                let xid = xid(&mut r, self.streaming)?;
                let relation = r.u32("relation oid")?;
                match r.u8("new tuple marker")? {
                    b'N' => Message::Insert {
                        xid,
                        relation,
                        new: r.tuple()?,
                    },
                    other => {
                        return Err(Error::data(format!(
                            "pgoutput: insert without new tuple (got {:?})",
                            other as char
                        )));
                    }
                }
            }
            b'U' => {
                let xid = xid(&mut r, self.streaming)?;
                let relation = r.u32("relation oid")?;
                let (old, marker) = match r.u8("tuple marker")? {
                    b'K' => (Some(OldTuple::Key(r.tuple()?)), r.u8("new tuple marker")?),
                    b'O' => (Some(OldTuple::Full(r.tuple()?)), r.u8("new tuple marker")?),
                    other => (None, other),
                };
                if marker != b'N' {
                    return Err(Error::data(format!(
                        "pgoutput: update without new tuple (got {:?})",
                        marker as char
                    )));
                }
                Message::Update {
                    xid,
                    relation,
                    old,
                    new: r.tuple()?,
                }
            }
            b'D' => {
                let xid = xid(&mut r, self.streaming)?;
                let relation = r.u32("relation oid")?;
                let old = match r.u8("old tuple marker")? {
                    b'K' => OldTuple::Key(r.tuple()?),
                    b'O' => OldTuple::Full(r.tuple()?),
                    other => {
                        return Err(Error::data(format!(
                            "pgoutput: delete without old tuple (got {:?})",
                            other as char
                        )));
                    }
                };
                Message::Delete { xid, relation, old }
            }
            b'T' => {
                let xid = xid(&mut r, self.streaming)?;
                let declared = r.u32("relation count")?;
                let options = r.u8("truncate options")?;
                let count = r.count(i64::from(declared), 4, "truncated relations")?;
                let relations = (0..count)
                    .map(|_| r.u32("relation oid"))
                    .collect::<Result<_>>()?;
                Message::Truncate {
                    xid,
                    relations,
                    cascade: options & 1 == 1,
                    restart_identity: options & 2 == 2,
                }
            }
            b'M' => {
                let xid = xid(&mut r, self.streaming)?;
                let transactional = r.u8("message flags")? & 1 == 1;
                let lsn = r.lsn("message lsn")?;
                let prefix = r.string("message prefix")?;
                let len = r.i32("message length")?;
                let len = r.count(i64::from(len), 1, "message content")?;
                Message::LogicalMessage {
                    xid,
                    transactional,
                    lsn,
                    prefix,
                    content: r.take(len, "message content")?.to_vec(),
                }
            }
            b'S' => {
                let message = Message::StreamStart {
                    xid: r.u32("xid")?,
                    first_segment: r.u8("first segment")? == 1,
                };
                self.streaming = true;
                message
            }
            b'E' => {
                self.streaming = false;
                Message::StreamStop
            }
            b'c' => {
                let xid = r.u32("xid")?;
                r.u8("flags")?;
                Message::StreamCommit {
                    xid,
                    commit_lsn: r.lsn("commit lsn")?,
                    end_lsn: r.lsn("end lsn")?,
                    commit_time: r.i64("commit time")?,
                }
            }
            b'A' => Message::StreamAbort {
                xid: r.u32("xid")?,
                subxid: r.u32("subtransaction xid")?,
            },
            b'b' | b'P' | b'K' | b'r' | b'p' => {
                return Err(Error::data(
                    "pgoutput: two-phase commit messages arrived, but sluice does not request `two_phase`",
                ));
            }
            other => {
                return Err(Error::data(format!(
                    "pgoutput: unknown message type {:?} (0x{other:02x})",
                    other as char
                )));
            }
        };
        r.finish()?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds messages the way the server writes them.
    #[derive(Default)]
    struct Wire(Vec<u8>);

    impl Wire {
        fn tag(mut self, t: u8) -> Self {
            self.0.push(t);
            self
        }
        fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        fn i16(mut self, v: i16) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u32(mut self, v: u32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u64(mut self, v: u64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn string(mut self, s: &str) -> Self {
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(0);
            self
        }
        fn text(self, s: &str) -> Self {
            let mut w = self.u8(b't').u32(s.len() as u32);
            w.0.extend_from_slice(s.as_bytes());
            w
        }
    }

    fn relation() -> Vec<u8> {
        Wire::default()
            .tag(b'R')
            .u32(16384)
            .string("public")
            .string("customers")
            .u8(b'd')
            .i16(2)
            .u8(1)
            .string("id")
            .u32(23)
            .u32(u32::MAX)
            .u8(0)
            .string("email")
            .u32(25)
            .u32(u32::MAX)
            .0
    }

    fn samples() -> Vec<Vec<u8>> {
        vec![
            Wire::default()
                .tag(b'B')
                .u64(0x16_B374_D848)
                .u64(700_000_000_000_000)
                .u32(743)
                .0,
            relation(),
            Wire::default()
                .tag(b'I')
                .u32(16384)
                .u8(b'N')
                .i16(2)
                .text("1")
                .text("a@b.c")
                .0,
            Wire::default()
                .tag(b'U')
                .u32(16384)
                .u8(b'K')
                .i16(2)
                .text("1")
                .u8(b'n')
                .u8(b'N')
                .i16(2)
                .text("2")
                .u8(b'u')
                .0,
            Wire::default()
                .tag(b'D')
                .u32(16384)
                .u8(b'O')
                .i16(2)
                .text("2")
                .u8(b'n')
                .0,
            Wire::default()
                .tag(b'T')
                .u32(2)
                .u8(3)
                .u32(16384)
                .u32(16390)
                .0,
            Wire::default()
                .tag(b'M')
                .u8(1)
                .u64(99)
                .string("audit")
                .u32(2)
                .u8(b'h')
                .u8(b'i')
                .0,
            Wire::default()
                .tag(b'Y')
                .u32(90000)
                .string("public")
                .string("mood")
                .0,
            Wire::default().tag(b'O').u64(5).string("origin-a").0,
            Wire::default()
                .tag(b'C')
                .u8(0)
                .u64(0x16_B374_D848)
                .u64(0x16_B374_D900)
                .u64(700_000_000_000_000)
                .0,
        ]
    }

    #[test]
    fn decodes_every_v1_message() {
        let mut decoder = Decoder::new();
        let decoded: Vec<Message> = samples()
            .iter()
            .map(|b| decoder.decode(b).unwrap())
            .collect();
        assert_eq!(
            decoded[0],
            Message::Begin {
                final_lsn: Lsn(0x16_B374_D848),
                commit_time: 700_000_000_000_000,
                xid: 743
            }
        );
        let Message::Relation {
            xid: None,
            relation,
        } = &decoded[1]
        else {
            panic!("{:?}", decoded[1])
        };
        assert_eq!(
            (relation.namespace.as_str(), relation.name.as_str()),
            ("public", "customers")
        );
        assert_eq!(relation.replica_identity, ReplicaIdentity::Default);
        assert_eq!(
            relation.columns[0],
            RelationColumn {
                key: true,
                name: "id".into(),
                type_oid: 23,
                type_modifier: -1
            }
        );
        assert!(!relation.columns[1].key);
        assert_eq!(
            decoded[2],
            Message::Insert {
                xid: None,
                relation: 16384,
                new: vec![Column::Text(b"1".to_vec()), Column::Text(b"a@b.c".to_vec())]
            }
        );
        assert_eq!(
            decoded[3],
            Message::Update {
                xid: None,
                relation: 16384,
                old: Some(OldTuple::Key(vec![
                    Column::Text(b"1".to_vec()),
                    Column::Null
                ])),
                new: vec![Column::Text(b"2".to_vec()), Column::UnchangedToast],
            }
        );
        assert_eq!(
            decoded[4],
            Message::Delete {
                xid: None,
                relation: 16384,
                old: OldTuple::Full(vec![Column::Text(b"2".to_vec()), Column::Null])
            }
        );
        assert_eq!(
            decoded[5],
            Message::Truncate {
                xid: None,
                relations: vec![16384, 16390],
                cascade: true,
                restart_identity: true
            }
        );
        assert_eq!(
            decoded[6],
            Message::LogicalMessage {
                xid: None,
                transactional: true,
                lsn: Lsn(99),
                prefix: "audit".into(),
                content: b"hi".to_vec()
            }
        );
        assert!(matches!(&decoded[7], Message::Type { oid: 90000, name, .. } if name == "mood"));
        assert_eq!(
            decoded[8],
            Message::Origin {
                lsn: Lsn(5),
                name: "origin-a".into()
            }
        );
        assert_eq!(
            decoded[9],
            Message::Commit {
                commit_lsn: Lsn(0x16_B374_D848),
                end_lsn: Lsn(0x16_B374_D900),
                commit_time: 700_000_000_000_000
            }
        );
        assert_eq!(unix_micros(0), PG_EPOCH_OFFSET_MICROS);
    }

    #[test]
    fn data_messages_inside_a_stream_carry_their_transaction_id() {
        let mut decoder = Decoder::new();
        assert_eq!(
            decoder
                .decode(&Wire::default().tag(b'S').u32(900).u8(1).0)
                .unwrap(),
            Message::StreamStart {
                xid: 900,
                first_segment: true
            }
        );
        let insert = Wire::default()
            .tag(b'I')
            .u32(900)
            .u32(16384)
            .u8(b'N')
            .i16(1)
            .text("x")
            .0;
        assert_eq!(
            decoder.decode(&insert).unwrap(),
            Message::Insert {
                xid: Some(900),
                relation: 16384,
                new: vec![Column::Text(b"x".to_vec())]
            }
        );
        assert_eq!(decoder.decode(b"E").unwrap(), Message::StreamStop);
        assert!(
            decoder.decode(&insert).is_err(),
            "outside the stream the same bytes do not parse"
        );
        let commit = Wire::default()
            .tag(b'c')
            .u32(900)
            .u8(0)
            .u64(10)
            .u64(11)
            .u64(12)
            .0;
        assert_eq!(
            decoder.decode(&commit).unwrap(),
            Message::StreamCommit {
                xid: 900,
                commit_lsn: Lsn(10),
                end_lsn: Lsn(11),
                commit_time: 12
            }
        );
        assert_eq!(
            decoder
                .decode(&Wire::default().tag(b'A').u32(900).u32(901).0)
                .unwrap(),
            Message::StreamAbort {
                xid: 900,
                subxid: 901
            }
        );
    }

    #[test]
    fn bad_input_is_an_error_naming_the_problem() {
        let mut decoder = Decoder::new();
        let err = decoder.decode(&relation()[..12]).unwrap_err();
        assert!(
            err.message().contains("message ends early reading"),
            "{err}"
        );
        let mut trailing = samples()[2].clone();
        trailing.push(0);
        assert!(
            decoder
                .decode(&trailing)
                .unwrap_err()
                .message()
                .contains("unexpected byte")
        );
        assert!(
            decoder
                .decode(b"Z")
                .unwrap_err()
                .message()
                .contains("unknown message type")
        );
        assert!(
            decoder
                .decode(b"P")
                .unwrap_err()
                .message()
                .contains("two_phase")
        );
        let huge = Wire::default()
            .tag(b'I')
            .u32(1)
            .u8(b'N')
            .i16(1)
            .u8(b't')
            .u32(0x7FFF_FFFF)
            .0;
        assert!(
            decoder.decode(&huge).is_err(),
            "a length the input does not back is refused, not allocated"
        );
        assert!(decoder.decode(&[]).is_err());
    }

    /// Every prefix of every valid message, and random bytes behind every message type,
    /// decode to a value or an error: never a panic or a runaway allocation.
    #[test]
    fn never_panics_on_truncated_or_random_input() {
        for sample in samples() {
            for len in 0..sample.len() {
                let _ = Decoder::new().decode(&sample[..len]);
            }
        }
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let tags = b"BCORYIUDTMSEcAbZ";
        for _ in 0..50_000 {
            let len = (next() % 48) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = bytes.first_mut() {
                *first = tags[(next() % tags.len() as u64) as usize];
            }
            let mut decoder = Decoder::new();
            if next() % 2 == 0 {
                let _ = decoder.decode(&[b'S', 0, 0, 0, 1, 1]);
            }
            let _ = decoder.decode(&bytes);
        }
    }
}
