//! The byte layout of a record batch crossing between the sluice host and a transform plugin,
//! written and read here for both sides. `plugins/wit/transform.wit` is the reference for the
//! layout; this crate is its one implementation.
//!
//! A batch travels as one byte list rather than a list of typed records because lowering a
//! typed list costs an allocation in the guest for every string of every record; one buffer
//! costs one. Numbers are little-endian; a `str` is a `u32` byte length and UTF-8; an
//! `opt<T>` is a byte 0 (absent) or 1 followed by the `T`.

use std::fmt;

/// What `apply` receives: `u32` record count, then each record as [`put_input_record`] writes
/// it: topic `str`, partition `opt<i32>`, timestamp `opt<i64>`, a key byte and a value byte
/// (0 null, 1 present — the JSON text itself is fetched with the `host.payload` import when
/// the plugin reads it), headers `u32` count then (`str` key, `opt<str>` JSON value) each.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRecord<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub timestamp_ms: Option<i64>,
    /// The key is not null (its text is fetched on request).
    pub has_key: bool,
    /// The value is not null (its text is fetched on request).
    pub has_value: bool,
    pub headers: Vec<(&'a str, Option<&'a str>)>,
}

/// A key or value coming back from the plugin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Payload<'a> {
    /// Byte 0: exactly the input record's (no text travels back, and the host keeps its
    /// original value and schema).
    Unchanged,
    /// Byte 1: null.
    Null,
    /// Byte 2 then `str`: new JSON text.
    Json(&'a str),
}

/// A record coming back: topic `str`, partition `opt<i32>`, timestamp `opt<i64>`, key and
/// value [`Payload`]s, headers as in [`InputRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRecord<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub timestamp_ms: Option<i64>,
    pub key: Payload<'a>,
    pub value: Payload<'a>,
    pub headers: Vec<(&'a str, Option<&'a str>)>,
}

/// What `apply` returns: for each input record, in order, byte 0 then a `str` error message
/// (that record fails alone), byte 1 then a `u32` count of [`OutputRecord`]s (0 drops the
/// record, several fan it out), or byte 2: the record goes on exactly as it came.
pub const RECORD_FAILED: u8 = 0;
/// See [`RECORD_FAILED`].
pub const RECORD_BECAME: u8 = 1;
/// See [`RECORD_FAILED`]. One byte instead of a whole output record that says "unchanged"
/// field by field: the host then passes its original record on without building a new one,
/// which is most of what a plugin that lets most records through would otherwise cost.
pub const RECORD_KEPT: u8 = 2;

/// What a plugin made of one input record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// It fails alone, with this error message.
    Failed(&'a str),
    /// It became this many output records (appended to the outputs being read).
    Became(usize),
    /// It goes on exactly as it came.
    Kept,
}

/// The fewest bytes a record (input or output) takes: empty topic, nothing optional, no headers.
pub const MIN_RECORD_SIZE: usize = 4 + 1 + 1 + 1 + 1 + 4;

/// The fewest bytes a header takes: empty key, null value.
pub const MIN_HEADER_SIZE: usize = 4 + 1;

/// A batch that does not follow the layout.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError(String);

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FrameError {}

pub type Result<T> = std::result::Result<T, FrameError>;

pub fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A length as `u32`; nothing near 4 GiB fits in a plugin's memory anyway.
pub fn put_len(out: &mut Vec<u8>, len: usize) {
    put_u32(out, u32::try_from(len).expect("a batch part under 4 GiB"));
}

pub fn put_str(out: &mut Vec<u8>, v: &str) {
    put_len(out, v.len());
    out.extend_from_slice(v.as_bytes());
}

/// A `str` whose bytes `write` appends in place (JSON serialised straight into the batch).
pub fn put_str_with<E>(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let at = out.len();
    put_u32(out, 0);
    write(out)?;
    let len = out.len() - at - 4;
    out[at..at + 4].copy_from_slice(&u32::try_from(len).expect("under 4 GiB").to_le_bytes());
    Ok(())
}

pub fn put_opt_i32(out: &mut Vec<u8>, v: Option<i32>) {
    match v {
        None => put_u8(out, 0),
        Some(v) => {
            put_u8(out, 1);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

pub fn put_opt_i64(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => put_u8(out, 0),
        Some(v) => {
            put_u8(out, 1);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

pub fn put_opt_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        None => put_u8(out, 0),
        Some(v) => {
            put_u8(out, 1);
            put_str(out, v);
        }
    }
}

pub fn put_payload(out: &mut Vec<u8>, payload: Payload<'_>) {
    match payload {
        Payload::Unchanged => put_u8(out, 0),
        Payload::Null => put_u8(out, 1),
        Payload::Json(text) => {
            put_u8(out, 2);
            put_str(out, text);
        }
    }
}

pub fn put_headers<'h>(
    out: &mut Vec<u8>,
    headers: impl ExactSizeIterator<Item = (&'h str, Option<&'h str>)>,
) {
    put_len(out, headers.len());
    for (key, value) in headers {
        put_str(out, key);
        put_opt_str(out, value);
    }
}

#[cold]
#[inline(never)]
fn not_utf8(at: usize, error: std::str::Utf8Error) -> FrameError {
    FrameError(format!("the text at byte {at} is not UTF-8: {error}"))
}

/// Reads a batch front to back.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.short(n));
        };
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    // The errors are built out of line: the readers stay small enough to inline into the
    // record loops on both sides, which read every field of every record.
    #[cold]
    #[inline(never)]
    fn short(&self, n: usize) -> FrameError {
        FrameError(format!(
            "the batch ends at byte {} where {n} more bytes were expected",
            self.bytes.len()
        ))
    }

    /// The byte just read is none of the `expected` values.
    #[cold]
    #[inline(never)]
    fn unexpected(&self, expected: &str) -> FrameError {
        FrameError(format!(
            "byte {} is {} where {expected} was expected",
            self.at - 1,
            self.bytes[self.at - 1]
        ))
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    #[inline]
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A count of items of at least `min_size` bytes each, checked against what is left so a
    /// corrupt count cannot make the reader reserve gigabytes.
    #[inline]
    pub fn count(&mut self, min_size: usize) -> Result<usize> {
        let count = self.u32()? as usize;
        let left = self.bytes.len() - self.at;
        if count.saturating_mul(min_size) > left {
            return Err(self.overlong(count, left));
        }
        Ok(count)
    }

    #[cold]
    #[inline(never)]
    fn overlong(&self, count: usize, left: usize) -> FrameError {
        FrameError(format!(
            "a count of {count} at byte {} does not fit the {left} bytes left",
            self.at - 4
        ))
    }

    #[inline]
    pub fn str(&mut self) -> Result<&'a str> {
        let len = self.u32()? as usize;
        let at = self.at;
        std::str::from_utf8(self.take(len)?).map_err(|e| not_utf8(at, e))
    }

    #[inline]
    fn flag(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.unexpected("0 or 1")),
        }
    }

    #[inline]
    pub fn opt_i32(&mut self) -> Result<Option<i32>> {
        Ok(if self.flag()? {
            Some(i32::from_le_bytes(self.array()?))
        } else {
            None
        })
    }

    #[inline]
    pub fn opt_i64(&mut self) -> Result<Option<i64>> {
        Ok(if self.flag()? {
            Some(i64::from_le_bytes(self.array()?))
        } else {
            None
        })
    }

    #[inline]
    pub fn opt_str(&mut self) -> Result<Option<&'a str>> {
        Ok(if self.flag()? {
            Some(self.str()?)
        } else {
            None
        })
    }

    pub fn payload(&mut self) -> Result<Payload<'a>> {
        match self.u8()? {
            0 => Ok(Payload::Unchanged),
            1 => Ok(Payload::Null),
            2 => Ok(Payload::Json(self.str()?)),
            _ => Err(self.unexpected("a payload kind (0 unchanged, 1 null, 2 JSON)")),
        }
    }

    pub fn headers(&mut self) -> Result<Vec<(&'a str, Option<&'a str>)>> {
        let count = self.count(MIN_HEADER_SIZE)?;
        (0..count)
            .map(|_| Ok((self.str()?, self.opt_str()?)))
            .collect()
    }

    #[inline]
    pub fn input_record(&mut self) -> Result<InputRecord<'a>> {
        Ok(InputRecord {
            topic: self.str()?,
            partition: self.opt_i32()?,
            timestamp_ms: self.opt_i64()?,
            has_key: self.flag()?,
            has_value: self.flag()?,
            headers: self.headers()?,
        })
    }

    pub fn output_record(&mut self) -> Result<OutputRecord<'a>> {
        Ok(OutputRecord {
            topic: self.str()?,
            partition: self.opt_i32()?,
            timestamp_ms: self.opt_i64()?,
            key: self.payload()?,
            value: self.payload()?,
            headers: self.headers()?,
        })
    }

    /// What a plugin made of one input record; its outputs, when it became new ones, are
    /// appended to `outputs`. (One vector for the whole batch rather than one per record: the
    /// host reads thousands of these per second.)
    pub fn outcome_into(&mut self, outputs: &mut Vec<OutputRecord<'a>>) -> Result<Outcome<'a>> {
        match self.u8()? {
            RECORD_FAILED => Ok(Outcome::Failed(self.str()?)),
            RECORD_BECAME => {
                let count = self.count(MIN_RECORD_SIZE)?;
                for _ in 0..count {
                    outputs.push(self.output_record()?);
                }
                Ok(Outcome::Became(count))
            }
            RECORD_KEPT => Ok(Outcome::Kept),
            _ => Err(self.unexpected("a record outcome (0 failed, 1 became, 2 kept)")),
        }
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<()> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(FrameError(format!(
                "{} bytes are left after the last record",
                self.bytes.len() - self.at
            )))
        }
    }
}

pub fn put_input_record(out: &mut Vec<u8>, record: &InputRecord<'_>) {
    put_str(out, record.topic);
    put_opt_i32(out, record.partition);
    put_opt_i64(out, record.timestamp_ms);
    put_u8(out, u8::from(record.has_key));
    put_u8(out, u8::from(record.has_value));
    put_headers(out, record.headers.iter().copied());
}

pub fn put_output_record(out: &mut Vec<u8>, record: &OutputRecord<'_>) {
    put_str(out, record.topic);
    put_opt_i32(out, record.partition);
    put_opt_i64(out, record.timestamp_ms);
    put_payload(out, record.key);
    put_payload(out, record.value);
    put_headers(out, record.headers.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_outcomes_round_trip() {
        let input = InputRecord {
            topic: "t",
            partition: Some(-3),
            timestamp_ms: None,
            has_key: false,
            has_value: true,
            headers: vec![("h", Some(r#"{"a":"é"}"#)), ("n", None)],
        };
        let mut batch = Vec::new();
        put_len(&mut batch, 1);
        put_input_record(&mut batch, &input);
        let mut reader = Reader::new(&batch);
        assert_eq!(reader.count(MIN_RECORD_SIZE).unwrap(), 1);
        assert_eq!(reader.input_record().unwrap(), input);
        reader.finish().unwrap();

        let mut out = Vec::new();
        put_u8(&mut out, RECORD_FAILED);
        put_str(&mut out, "bad record");
        put_u8(&mut out, RECORD_BECAME);
        put_len(&mut out, 1);
        let output = OutputRecord {
            topic: "u",
            partition: None,
            timestamp_ms: Some(7),
            key: Payload::Unchanged,
            value: Payload::Json("[1]"),
            headers: vec![],
        };
        put_output_record(&mut out, &output);
        put_u8(&mut out, RECORD_KEPT);
        let mut reader = Reader::new(&out);
        let mut outputs = Vec::new();
        assert_eq!(
            reader.outcome_into(&mut outputs).unwrap(),
            Outcome::Failed("bad record")
        );
        assert_eq!(
            reader.outcome_into(&mut outputs).unwrap(),
            Outcome::Became(1)
        );
        assert_eq!(reader.outcome_into(&mut outputs).unwrap(), Outcome::Kept);
        assert_eq!(outputs, [output]);
        reader.finish().unwrap();
    }

    #[test]
    fn a_corrupt_batch_is_an_error_not_a_panic() {
        for bytes in [
            &[1u8][..],
            &[255, 255, 255, 255, 0],
            &[1, 9],
            &[1, 1, 0, 0, 0, 0xff],
            &[3],
        ] {
            let mut reader = Reader::new(bytes);
            assert!(reader.outcome_into(&mut Vec::new()).is_err(), "{bytes:?}");
        }
    }
}
