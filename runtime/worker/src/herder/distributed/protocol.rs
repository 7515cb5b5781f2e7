//! Kafka Connect's group protocol bytes: the member metadata sent in JoinGroup and the
//! assignment sent in SyncGroup, exactly as `ConnectProtocol` (v0, `default`) and
//! `IncrementalCooperativeConnectProtocol` (v1 `compatible`, v2 `sessioned`) write them, so
//! sluice workers and Kafka Connect workers read each other's.
//!
//! Old-style Kafka encoding throughout: big-endian integers, strings as int16 length + UTF-8,
//! arrays as int32 count (-1 = null), nullable bytes as int32 length (-1 = null). Every blob
//! starts with an int16 version. As in Kafka, one decoder reads every version: fields missing
//! at the end take their defaults, trailing bytes are ignored, only a negative version is
//! refused.

use std::collections::{BTreeMap, BTreeSet};

use sluice_api::{Error, Result};

use super::assignor::Work;

/// Kafka Connect's JoinGroup protocol type.
pub(crate) const PROTOCOL_TYPE: &str = "connect";

/// Task id -1 on the wire: the connector instance itself.
const CONNECTOR_TASK: i32 = -1;

/// The assignment's error: none.
pub(crate) const NO_ERROR: i16 = 0;
/// The assignment's error: the leader could not read the config as far as a member had; read
/// the config topic to its end and rejoin.
pub(crate) const CONFIG_MISMATCH: i16 = 1;

/// One of the protocols a worker offers, most preferred first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// v2: incremental cooperative, with signed internal requests (KIP-507).
    Sessioned,
    /// v1: incremental cooperative (KIP-415).
    Compatible,
    /// v0: eager, everything revoked at every rebalance.
    Eager,
}

impl Protocol {
    /// The name on the wire.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Protocol::Sessioned => "sessioned",
            Protocol::Compatible => "compatible",
            Protocol::Eager => "default",
        }
    }

    /// The version its blobs carry.
    pub(crate) fn version(self) -> i16 {
        match self {
            Protocol::Sessioned => 2,
            Protocol::Compatible => 1,
            Protocol::Eager => 0,
        }
    }

    /// The protocol a wire name (the coordinator's choice) means; Kafka matches it ignoring
    /// case.
    pub(crate) fn from_name(name: &str) -> Option<Protocol> {
        [Protocol::Sessioned, Protocol::Compatible, Protocol::Eager]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// What a worker offers in JoinGroup for its `connect.protocol` setting (`sessioned`,
    /// `compatible` or `eager`), in Kafka Connect's order.
    pub(crate) fn offered(setting: &str) -> Option<&'static [Protocol]> {
        match setting.to_ascii_lowercase().as_str() {
            "sessioned" => Some(&[Protocol::Sessioned, Protocol::Compatible, Protocol::Eager]),
            "compatible" => Some(&[Protocol::Compatible, Protocol::Eager]),
            "eager" => Some(&[Protocol::Eager]),
            _ => None,
        }
    }
}

/// A member's JoinGroup metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkerMetadata {
    /// The worker's advertised REST URL.
    pub url: String,
    /// The offset of its config snapshot.
    pub config_offset: i64,
    /// What it runs now (v1/v2); `None`: no previous assignment.
    pub allocation: Option<Assignment>,
}

/// A SyncGroup assignment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Assignment {
    /// [`NO_ERROR`] or [`CONFIG_MISMATCH`].
    pub error: i16,
    /// The leader's member id.
    pub leader: String,
    /// The leader's REST URL.
    pub leader_url: String,
    /// The config offset the assignment was computed at.
    pub config_offset: i64,
    /// Work to start (cooperative), or all work (eager).
    pub assigned: BTreeSet<Work>,
    /// Work to stop (cooperative only).
    pub revoked: BTreeSet<Work>,
    /// Milliseconds until the member should rejoin (held lost work); 0 for none.
    pub delay_ms: i32,
}

/// Encodes metadata for `protocol`. Its allocation (v1/v2) carries the same version.
pub(crate) fn encode_metadata(metadata: &WorkerMetadata, protocol: Protocol) -> Vec<u8> {
    let mut out = Vec::new();
    put_i16(&mut out, protocol.version());
    put_str(&mut out, &metadata.url);
    out.extend_from_slice(&metadata.config_offset.to_be_bytes());
    if protocol != Protocol::Eager {
        match &metadata.allocation {
            Some(allocation) => {
                let inner = encode_assignment(allocation, protocol);
                put_i32(&mut out, inner.len() as i32);
                out.extend_from_slice(&inner);
            }
            None => put_i32(&mut out, -1),
        }
    }
    out
}

/// Decodes metadata of any version.
pub(crate) fn decode_metadata(bytes: &[u8]) -> Result<WorkerMetadata> {
    let mut reader = Reader::new(bytes, "worker metadata");
    reader.version()?;
    let url = reader.string("url")?;
    let config_offset = reader.i64("config offset")?;
    let allocation = match reader.nullable_bytes("allocation")? {
        Some(inner) => Some(decode_assignment(inner)?),
        None => None,
    };
    Ok(WorkerMetadata {
        url,
        config_offset,
        allocation,
    })
}

/// Encodes an assignment for `protocol` (v0 has no `revoked` and `delay`).
pub(crate) fn encode_assignment(assignment: &Assignment, protocol: Protocol) -> Vec<u8> {
    let mut out = Vec::new();
    put_i16(&mut out, protocol.version());
    put_i16(&mut out, assignment.error);
    put_str(&mut out, &assignment.leader);
    put_str(&mut out, &assignment.leader_url);
    out.extend_from_slice(&assignment.config_offset.to_be_bytes());
    put_work(&mut out, &assignment.assigned);
    if protocol != Protocol::Eager {
        put_work(&mut out, &assignment.revoked);
        put_i32(&mut out, assignment.delay_ms);
    }
    out
}

/// Decodes an assignment of any version (a v0 one has nothing revoked and no delay).
pub(crate) fn decode_assignment(bytes: &[u8]) -> Result<Assignment> {
    let mut reader = Reader::new(bytes, "assignment");
    reader.version()?;
    Ok(Assignment {
        error: reader.i16("error")?,
        leader: reader.string("leader")?,
        leader_url: reader.string("leader url")?,
        config_offset: reader.i64("config offset")?,
        assigned: reader.work("assignment")?,
        revoked: reader.work("revoked")?,
        delay_ms: if reader.done() {
            0
        } else {
            reader.i32("delay")?
        },
    })
}

fn put_i16(out: &mut Vec<u8>, value: i16) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, value: i32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    // Connector names are at most 249 bytes and URLs short; Kafka refuses over 32767.
    let bytes = &value.as_bytes()[..value.len().min(i16::MAX as usize)];
    put_i16(out, bytes.len() as i16);
    out.extend_from_slice(bytes);
}

/// Work as Kafka Connect's `[connector, [task ids]]` list: per connector, -1 first when the
/// connector itself is included, then its task ids.
fn put_work(out: &mut Vec<u8>, work: &BTreeSet<Work>) {
    let mut by_connector: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for item in work {
        match item {
            Work::Connector(c) => by_connector.entry(c).or_default().insert(0, CONNECTOR_TASK),
            Work::Task(c, t) => by_connector
                .entry(c)
                .or_default()
                .push(i32::try_from(*t).unwrap_or(i32::MAX)),
        }
    }
    put_i32(out, by_connector.len() as i32);
    for (connector, tasks) in by_connector {
        put_str(out, connector);
        put_i32(out, tasks.len() as i32);
        for task in tasks {
            put_i32(out, task);
        }
    }
}

/// Reads a blob, naming it and the field in every error.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { bytes, at: 0, what }
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(Error::data(format!(
                "Kafka Connect {}: `{field}` needs {n} bytes at byte {} but the blob has {}",
                self.what,
                self.at,
                self.bytes.len()
            )));
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn i16(&mut self, field: &str) -> Result<i16> {
        let b = self.take(2, field)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, field: &str) -> Result<i32> {
        let b = self.take(4, field)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, field: &str) -> Result<i64> {
        let b = self.take(8, field)?;
        Ok(i64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    fn version(&mut self) -> Result<i16> {
        let version = self.i16("version")?;
        if version < 0 {
            return Err(Error::data(format!(
                "Kafka Connect {}: version {version} is negative",
                self.what
            )));
        }
        Ok(version)
    }

    fn string(&mut self, field: &str) -> Result<String> {
        let len = self.i16(field)?;
        let len = usize::try_from(len).map_err(|_| {
            Error::data(format!(
                "Kafka Connect {}: `{field}` has negative length {len}",
                self.what
            ))
        })?;
        let bytes = self.take(len, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            Error::data(format!(
                "Kafka Connect {}: `{field}` is not UTF-8",
                self.what
            ))
        })
    }

    /// Missing at the end of the blob: null, as Kafka's tolerant schema reads it.
    fn nullable_bytes(&mut self, field: &str) -> Result<Option<&'a [u8]>> {
        if self.done() {
            return Ok(None);
        }
        let len = self.i32(field)?;
        match usize::try_from(len) {
            Ok(len) => self.take(len, field).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// A `[connector, [task ids]]` list; missing at the end or null: empty.
    fn work(&mut self, field: &str) -> Result<BTreeSet<Work>> {
        let mut work = BTreeSet::new();
        if self.done() {
            return Ok(work);
        }
        let count = self.i32(field)?;
        for _ in 0..count.max(0) {
            let connector = self.string(field)?;
            let tasks = self.i32(field)?;
            for _ in 0..tasks.max(0) {
                let task = self.i32(field)?;
                work.insert(match u32::try_from(task) {
                    Ok(task) => Work::Task(connector.clone(), task),
                    Err(_) if task == CONNECTOR_TASK => Work::Connector(connector.clone()),
                    Err(_) => {
                        return Err(Error::data(format!(
                            "Kafka Connect {}: `{field}` has task id {task} for {connector}; \
                             ids are -1 (the connector) or from 0",
                            self.what
                        )));
                    }
                });
            }
        }
        Ok(work)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hex with spaces and `|` separators, as written beside the Java schemas.
    fn hex(text: &str) -> Vec<u8> {
        let digits: String = text.chars().filter(char::is_ascii_hexdigit).collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    }

    const URL: &str = "http://a:8083";

    fn c(tasks: &[u32], with_connector: bool) -> BTreeSet<Work> {
        let mut work: BTreeSet<Work> = tasks.iter().map(|&t| Work::Task("c".into(), t)).collect();
        if with_connector {
            work.insert(Work::Connector("c".into()));
        }
        work
    }

    fn assignment(offset: i64, assigned: BTreeSet<Work>) -> Assignment {
        Assignment {
            error: NO_ERROR,
            leader: "m-1".into(),
            leader_url: URL.into(),
            config_offset: offset,
            assigned,
            revoked: BTreeSet::new(),
            delay_ms: 0,
        }
    }

    // The vectors below were computed by hand from ConnectProtocol.java and
    // IncrementalCooperativeConnectProtocol.java (apache/kafka 1eb7644), field by field.

    #[test]
    fn v0_metadata_is_version_url_and_offset() {
        let metadata = WorkerMetadata {
            url: URL.into(),
            config_offset: 5,
            allocation: None,
        };
        let bytes = encode_metadata(&metadata, Protocol::Eager);
        assert_eq!(
            bytes,
            hex("00 00 | 00 0d 68 74 74 70 3a 2f 2f 61 3a 38 30 38 33 | 00 00 00 00 00 00 00 05")
        );
        assert_eq!(decode_metadata(&bytes).unwrap(), metadata);
    }

    #[test]
    fn v1_and_v2_metadata_carry_the_current_allocation_as_nullable_bytes() {
        let mut metadata = WorkerMetadata {
            url: URL.into(),
            config_offset: 5,
            allocation: None,
        };
        let null = "00 01 | 00 0d 68 74 74 70 3a 2f 2f 61 3a 38 30 38 33 | 00 00 00 00 00 00 00 05 | ff ff ff ff";
        assert_eq!(encode_metadata(&metadata, Protocol::Compatible), hex(null));
        metadata.allocation = Some(assignment(5, c(&[0, 1], true)));
        let with = "00 01 | 00 0d 68 74 74 70 3a 2f 2f 61 3a 38 30 38 33 | 00 00 00 00 00 00 00 05 | 00 00 00 3f |
            00 01 00 00 00 03 6d 2d 31 00 0d 68 74 74 70 3a 2f 2f 61 3a 38 30 38 33 00 00 00 00 00 00 00 05
            00 00 00 01 00 01 63 00 00 00 03 ff ff ff ff 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 00";
        let bytes = encode_metadata(&metadata, Protocol::Compatible);
        assert_eq!(bytes, hex(with));
        assert_eq!(bytes.len(), 92);
        assert_eq!(decode_metadata(&bytes).unwrap(), metadata);
        // Sessioned: the version twice (outer and inner), all else the same.
        let mut sessioned = hex(with);
        sessioned[1] = 2;
        sessioned[2 + 15 + 8 + 4 + 1] = 2;
        assert_eq!(encode_metadata(&metadata, Protocol::Sessioned), sessioned);
    }

    #[test]
    fn v1_assignment_lists_the_connector_as_task_minus_one() {
        let value = assignment(7, c(&[0], true));
        let bytes = encode_assignment(&value, Protocol::Compatible);
        assert_eq!(
            bytes,
            hex("00 01 | 00 00 | 00 03 6d 2d 31 | 00 0d 68 74 74 70 3a 2f 2f 61 3a 38 30 38 33 | 00 00 00 00 00 00 00 07 |
                 00 00 00 01 | 00 01 63 | 00 00 00 02 | ff ff ff ff | 00 00 00 00 |
                 00 00 00 00 | 00 00 00 00")
        );
        assert_eq!(decode_assignment(&bytes).unwrap(), value);
    }

    #[test]
    fn v0_assignment_has_no_revoked_or_delay_and_reads_with_their_defaults() {
        let value = assignment(7, c(&[0], true));
        let bytes = encode_assignment(&value, Protocol::Eager);
        assert_eq!(
            bytes,
            hex("00 00 | 00 00 | 00 03 6d 2d 31 | 00 0d 68 74 74 70 3a 2f 2f 61 3a 38 30 38 33 | 00 00 00 00 00 00 00 07 |
                 00 00 00 01 | 00 01 63 | 00 00 00 02 | ff ff ff ff | 00 00 00 00")
        );
        assert_eq!(bytes.len(), 51);
        assert_eq!(decode_assignment(&bytes).unwrap(), value);
    }

    #[test]
    fn config_mismatch_and_a_revocation_with_a_delay() {
        let mismatch = Assignment {
            error: CONFIG_MISMATCH,
            ..assignment(9, BTreeSet::new())
        };
        assert_eq!(
            encode_assignment(&mismatch, Protocol::Compatible),
            hex("00 01 00 01 00 03 6d 2d 31 00 0d 68 74 74 70 3a 2f 2f 61 3a 38 30 38 33 00 00 00 00 00 00 00 09
                 00 00 00 00 00 00 00 00 00 00 00 00")
        );
        let revoke = Assignment {
            revoked: c(&[1], false),
            delay_ms: 300_000,
            ..assignment(7, BTreeSet::new())
        };
        let bytes = encode_assignment(&revoke, Protocol::Compatible);
        assert_eq!(
            bytes,
            hex("00 01 00 00 00 03 6d 2d 31 00 0d 68 74 74 70 3a 2f 2f 61 3a 38 30 38 33 00 00 00 00 00 00 00 07
                 00 00 00 00 | 00 00 00 01 00 01 63 00 00 00 01 00 00 00 01 | 00 04 93 e0")
        );
        assert_eq!(decode_assignment(&bytes).unwrap(), revoke);
    }

    #[test]
    fn decoding_is_tolerant_as_kafkas_and_names_what_is_wrong() {
        // Version-1 metadata cut before its allocation: no previous assignment.
        let cut =
            hex("00 01 | 00 0d 68 74 74 70 3a 2f 2f 61 3a 38 30 38 33 | 00 00 00 00 00 00 00 05");
        assert_eq!(decode_metadata(&cut).unwrap().allocation, None);
        // A future version with trailing fields reads by our layout.
        let mut future = encode_metadata(
            &WorkerMetadata {
                url: URL.into(),
                config_offset: 1,
                allocation: None,
            },
            Protocol::Sessioned,
        );
        future[1] = 9;
        future.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decode_metadata(&future).unwrap().url, URL);
        // Truncated and negative-version blobs are errors naming the field.
        let short = &cut[..10];
        assert!(
            decode_metadata(short)
                .unwrap_err()
                .message()
                .contains("`url`")
        );
        assert!(
            decode_assignment(&hex("ff ff"))
                .unwrap_err()
                .message()
                .contains("negative")
        );
        assert_eq!(
            Protocol::offered("sessioned")
                .unwrap()
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>(),
            ["sessioned", "compatible", "default"]
        );
        assert_eq!(Protocol::from_name("Default"), Some(Protocol::Eager));
        assert_eq!(PROTOCOL_TYPE, "connect");
        assert!(Protocol::offered("cooperative").is_none());
    }
}
