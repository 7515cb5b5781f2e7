//! Rows of `COPY … TO STDOUT`, split into fields: text format with COPY's escapes undone
//! ([`TextRow`]), binary format read in place ([`BinaryRow`]).
//!
//! The server sends one CopyData message per row (the protocol guarantees it for copy-out);
//! a row is its columns' text forms (the same output functions a `SELECT` uses) separated by
//! tabs and ended by a newline, `\N` standing for NULL and backslash escapes for the bytes
//! that would otherwise be read as separators. A [`TextRow`] is reused from row to row, so
//! decoding a row allocates nothing once its buffers have grown to the table's row size.

use sluice_api::{Error, Result};

/// One decoded row; its fields borrow from it.
#[derive(Debug, Default)]
pub(crate) struct TextRow {
    /// The fields' bytes, escapes undone, one after another.
    bytes: Vec<u8>,
    /// Each field's range in `bytes`; `None` is NULL.
    fields: Vec<Option<(usize, usize)>>,
}

impl TextRow {
    /// Decodes one CopyData message of a text-format copy-out.
    pub(crate) fn parse(&mut self, message: &[u8]) -> Result<()> {
        self.bytes.clear();
        self.fields.clear();
        let Some(line) = message.strip_suffix(b"\n") else {
            return Err(Error::data(format!(
                "a COPY row that does not end with a newline ({} bytes): the server sent \
                 something other than one text-format row per message",
                message.len()
            )));
        };
        for raw in line.split(|&b| b == b'\t') {
            if raw == b"\\N" {
                self.fields.push(None);
                continue;
            }
            let start = self.bytes.len();
            if raw.contains(&b'\\') {
                unescape(raw, &mut self.bytes)?;
            } else {
                self.bytes.extend_from_slice(raw);
            }
            self.fields.push(Some((start, self.bytes.len())));
        }
        Ok(())
    }

    /// Field `index`: `None` when it is NULL or the row has fewer fields.
    pub(crate) fn field(&self, index: usize) -> Option<&[u8]> {
        let (start, end) = (*self.fields.get(index)?)?;
        Some(&self.bytes[start..end])
    }

    /// Field `index` as text (keys for offsets and chunk bounds).
    pub(crate) fn text(&self, index: usize) -> Option<String> {
        self.field(index)
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }
}

/// The signature a binary copy starts with.
const BINARY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// One row of a binary-format copy-out: its fields are slices of the message (no copy).
#[derive(Debug, Default)]
pub(crate) struct BinaryRow {
    message: bytes::Bytes,
    /// Each field's range in `message`; `None` is NULL.
    fields: Vec<Option<(usize, usize)>>,
    header_read: bool,
}

impl BinaryRow {
    /// Decodes one CopyData message of a binary copy-out (the first one starts with the
    /// file header). `false` for the trailer that ends the copy.
    pub(crate) fn parse(&mut self, message: bytes::Bytes) -> Result<bool> {
        self.fields.clear();
        let mut at = 0;
        if !self.header_read {
            let fixed = BINARY_SIGNATURE.len() + 8;
            if message.len() < fixed || !message.starts_with(BINARY_SIGNATURE) {
                return Err(Error::data(
                    "a binary COPY that does not start with the PGCOPY signature",
                ));
            }
            let extension = read_i32(&message, BINARY_SIGNATURE.len() + 4)?;
            at = fixed + usize::try_from(extension).map_err(|_| cut())?;
            self.header_read = true;
        }
        let count = read_i16(&message, at)?;
        at += 2;
        if count == -1 {
            return Ok(false);
        }
        for _ in 0..count.max(0) {
            let length = read_i32(&message, at)?;
            at += 4;
            if length < 0 {
                self.fields.push(None);
                continue;
            }
            let end = at + length as usize;
            if end > message.len() {
                return Err(cut());
            }
            self.fields.push(Some((at, end)));
            at = end;
        }
        if at != message.len() {
            return Err(Error::data(format!(
                "a binary COPY message with {} bytes after its row: the server sent something \
                 other than one row per message",
                message.len() - at
            )));
        }
        self.message = message;
        Ok(true)
    }

    /// Field `index`: `None` when it is NULL or the row has fewer fields.
    pub(crate) fn field(&self, index: usize) -> Option<&[u8]> {
        let (start, end) = (*self.fields.get(index)?)?;
        Some(&self.message[start..end])
    }
}

fn cut() -> Error {
    Error::data("a binary COPY row cut short")
}

fn read_i16(bytes: &[u8], at: usize) -> Result<i16> {
    let field = bytes.get(at..at + 2).ok_or_else(cut)?;
    Ok(i16::from_be_bytes(field.try_into().map_err(|_| cut())?))
}

fn read_i32(bytes: &[u8], at: usize) -> Result<i32> {
    let field = bytes.get(at..at + 4).ok_or_else(cut)?;
    Ok(i32::from_be_bytes(field.try_into().map_err(|_| cut())?))
}

/// Undoes COPY's text escapes: `\b \f \n \r \t \v \\`, octal `\NNN`, hex `\xHH`, and a
/// backslash before any other character standing for that character.
fn unescape(raw: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let mut i = 0;
    while i < raw.len() {
        let byte = raw[i];
        i += 1;
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let Some(&escaped) = raw.get(i) else {
            return Err(Error::data(
                "a COPY field ends with a lone backslash: the row is cut short",
            ));
        };
        i += 1;
        let decoded = match escaped {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            b'0'..=b'7' => {
                let mut value = u32::from(escaped - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                value as u8
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut value = 0u8;
                for _ in 0..2 {
                    match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                value
            }
            other => other,
        };
        out.push(decoded);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(message: &[u8]) -> Vec<Option<Vec<u8>>> {
        let mut row = TextRow::default();
        row.parse(message).unwrap();
        (0..row.fields.len())
            .map(|i| row.field(i).map(<[u8]>::to_vec))
            .collect()
    }

    #[test]
    fn fields_nulls_and_escapes_decode_as_the_server_wrote_them() {
        assert_eq!(
            fields(b"1\t\\N\tplain\n"),
            vec![Some(b"1".to_vec()), None, Some(b"plain".to_vec())]
        );
        assert_eq!(
            fields(b"a\\tb\\nc\\\\d\\re\\bf\\fg\\vh\n"),
            vec![Some(b"a\tb\nc\\d\re\x08f\x0cg\x0bh".to_vec())]
        );
        // A literal backslash-N is data, not NULL; octal, hex and a needless escape.
        assert_eq!(
            fields(b"\\\\N\t\\101\\x42\\q\t\n"),
            vec![
                Some(b"\\N".to_vec()),
                Some(b"ABq".to_vec()),
                Some(Vec::new())
            ]
        );
        // An empty line is one empty field (a one-column table's empty string).
        assert_eq!(fields(b"\n"), vec![Some(Vec::new())]);
    }

    #[test]
    fn binary_rows_read_in_place_from_header_to_trailer() {
        let mut first = BINARY_SIGNATURE.to_vec();
        first.extend_from_slice(&0i32.to_be_bytes()); // flags
        first.extend_from_slice(&0i32.to_be_bytes()); // no header extension
        first.extend_from_slice(&2i16.to_be_bytes());
        first.extend_from_slice(&4i32.to_be_bytes());
        first.extend_from_slice(&7i32.to_be_bytes());
        first.extend_from_slice(&(-1i32).to_be_bytes());
        let mut row = BinaryRow::default();
        assert!(row.parse(bytes::Bytes::from(first)).unwrap());
        assert_eq!(row.field(0), Some(&7i32.to_be_bytes()[..]));
        assert_eq!(row.field(1), None);
        let mut second = 1i16.to_be_bytes().to_vec();
        second.extend_from_slice(&2i32.to_be_bytes());
        second.extend_from_slice(b"ab");
        assert!(row.parse(bytes::Bytes::from(second)).unwrap());
        assert_eq!(row.field(0), Some(&b"ab"[..]));
        assert!(!row.parse(bytes::Bytes::from_static(&[0xff, 0xff])).unwrap());
    }

    #[test]
    fn a_binary_row_that_is_cut_short_or_foreign_is_an_error_not_a_panic() {
        let mut row = BinaryRow::default();
        assert!(row.parse(bytes::Bytes::from_static(b"PGCOPY")).is_err());
        let mut row = BinaryRow {
            header_read: true,
            ..BinaryRow::default()
        };
        let mut cut_short = 1i16.to_be_bytes().to_vec();
        cut_short.extend_from_slice(&10i32.to_be_bytes());
        cut_short.extend_from_slice(b"abc");
        assert!(row.parse(bytes::Bytes::from(cut_short)).is_err());
        assert!(row.parse(bytes::Bytes::from_static(&[0])).is_err());
        let mut trailing = 0i16.to_be_bytes().to_vec();
        trailing.push(9);
        assert!(row.parse(bytes::Bytes::from(trailing)).is_err());
    }

    #[test]
    fn a_row_that_is_cut_short_is_an_error_not_a_panic() {
        let mut row = TextRow::default();
        assert!(row.parse(b"1\t2").is_err());
        assert!(row.parse(b"1\t2\\\n").is_err());
        row.parse(b"3\n").unwrap();
        assert_eq!(row.text(0).as_deref(), Some("3"));
        assert_eq!(row.field(1), None);
    }
}
