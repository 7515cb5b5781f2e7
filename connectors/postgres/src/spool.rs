//! Streamed in-progress transactions (pgoutput protocol 2), kept on disk until they end.
//!
//! A transaction larger than the server's `logical_decoding_work_mem` is sent in blocks while
//! it still runs; whether it commits is known only at its `Stream Commit` / `Stream Abort`.
//! Its messages are appended, as received, to an unnamed temporary file (gone when dropped,
//! also after a crash), so memory stays flat however large the transaction. At commit the file
//! is read back message by message and decoded like a normal transaction; changes of aborted
//! subtransactions are skipped then.
//!
//! Entry layout: subtransaction xid (u32), WAL position (u64), length (u32), the message.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use sluice_api::{Error, Result};

/// One streamed transaction's messages so far.
#[derive(Debug)]
pub struct Spool {
    file: BufWriter<File>,
    messages: u64,
    aborted: HashSet<u32>,
}

impl Spool {
    pub fn new() -> Result<Spool> {
        let file = tempfile::tempfile().map_err(|e| {
            Error::retriable(format!(
                "could not create a temporary file for a streamed transaction ({e}); \
                 check that TMPDIR is writable and has room"
            ))
        })?;
        Ok(Spool {
            file: BufWriter::with_capacity(256 * 1024, file),
            messages: 0,
            aborted: HashSet::new(),
        })
    }

    /// Keeps `message` (received at `lsn`, belonging to (sub)transaction `xid`).
    pub fn append(&mut self, xid: u32, lsn: u64, message: &[u8]) -> Result<()> {
        let len = u32::try_from(message.len())
            .map_err(|_| Error::data("pgoutput: a streamed message larger than 4 GiB"))?;
        let mut head = [0u8; 16];
        head[..4].copy_from_slice(&xid.to_be_bytes());
        head[4..12].copy_from_slice(&lsn.to_be_bytes());
        head[12..].copy_from_slice(&len.to_be_bytes());
        self.file
            .write_all(&head)
            .and_then(|()| self.file.write_all(message))
            .map_err(spool_error)?;
        self.messages += 1;
        Ok(())
    }

    /// Subtransaction `xid` rolled back: its changes are not to be replayed.
    pub fn abort_subtransaction(&mut self, xid: u32) {
        self.aborted.insert(xid);
    }

    /// How many messages are kept.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Reads the kept messages back from the start.
    pub fn replay(self) -> Result<SpoolReplay> {
        let mut file = self
            .file
            .into_inner()
            .map_err(|e| spool_error(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(spool_error)?;
        Ok(SpoolReplay {
            file: BufReader::with_capacity(256 * 1024, file),
            aborted: self.aborted,
        })
    }
}

/// A committed streamed transaction being read back.
#[derive(Debug)]
pub struct SpoolReplay {
    file: BufReader<File>,
    aborted: HashSet<u32>,
}

/// One message read back.
#[derive(Debug)]
pub struct Kept {
    /// The (sub)transaction it belongs to.
    pub xid: u32,
    pub lsn: u64,
    pub message: Vec<u8>,
    /// Its subtransaction was rolled back (relation messages still count: the server sent
    /// them once per transaction).
    pub aborted: bool,
}

impl SpoolReplay {
    /// The next message, or `None` at the end.
    pub fn next_message(&mut self) -> Result<Option<Kept>> {
        let mut head = [0u8; 16];
        match self.file.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(spool_error(e)),
        }
        let xid = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let lsn = u64::from_be_bytes(head[4..12].try_into().unwrap_or_default());
        let len = u32::from_be_bytes([head[12], head[13], head[14], head[15]]) as usize;
        let mut message = vec![0u8; len];
        self.file.read_exact(&mut message).map_err(spool_error)?;
        Ok(Some(Kept {
            xid,
            lsn,
            message,
            aborted: self.aborted.contains(&xid),
        }))
    }
}

fn spool_error(e: std::io::Error) -> Error {
    Error::retriable(format!(
        "the temporary file of a streamed transaction failed: {e} (check TMPDIR's free space)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_back_in_order_with_aborted_subtransactions_marked() {
        let mut spool = Spool::new().unwrap();
        spool.append(7, 100, b"first").unwrap();
        spool.append(8, 200, b"").unwrap();
        spool.append(7, 300, &vec![42u8; 300_000]).unwrap();
        spool.abort_subtransaction(8);
        assert_eq!(spool.messages(), 3);
        let mut replay = spool.replay().unwrap();
        let first = replay.next_message().unwrap().unwrap();
        assert_eq!(
            (
                first.xid,
                first.lsn,
                first.message.as_slice(),
                first.aborted
            ),
            (7, 100, b"first".as_slice(), false)
        );
        let second = replay.next_message().unwrap().unwrap();
        assert_eq!((second.xid, second.lsn, second.aborted), (8, 200, true));
        assert!(second.message.is_empty());
        let third = replay.next_message().unwrap().unwrap();
        assert_eq!(third.message.len(), 300_000);
        assert!(replay.next_message().unwrap().is_none());
    }
}
