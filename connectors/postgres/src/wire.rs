//! A logical replication connection, spoken directly over Postgres's frontend/backend
//! protocol: startup in `replication=database` mode, password/MD5/SCRAM authentication,
//! replication commands as simple queries, then `START_REPLICATION` and the CopyBoth stream
//! of `XLogData` and keepalives.
//!
//! Owned here (rather than taken from a replication crate) so that the pgoutput options are
//! ours: protocol version 2 with `streaming 'on'` on servers that have it (Postgres 14+), so a
//! transaction larger than `logical_decoding_work_mem` arrives in pieces while it runs instead
//! of being spilled by the server and sent whole at commit.
//!
//! Reading is cancel-safe (bytes are kept in a buffer until a whole message is there), so
//! [`ReplicationClient::recv`] may sit under a timeout. Standby status updates are sent by a
//! small task of their own once a second and whenever the server asks, so the server's
//! `wal_sender_timeout` is never hit while the pipeline is busy and nobody reads the stream.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use sluice_api::{Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Mutex, Notify, watch};

use crate::config::{PostgresConfig, SESSION_OPTIONS};
use crate::lsn::Lsn;
use crate::pgoutput::PG_EPOCH_OFFSET_MICROS;
use crate::sql::quote_ident;

/// How often the slot's position is reported to the server while streaming.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// Refuse messages larger than this (Postgres's own limit for one is 1 GB).
const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// A connection's byte stream: TCP, TLS over TCP, or a Unix socket.
pub trait Io: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Io for T {}

type Writer = Arc<Mutex<WriteHalf<Box<dyn Io>>>>;

/// What the stream delivers.
#[derive(Debug)]
pub enum WireEvent {
    /// One pgoutput message, at WAL position `start`.
    XLogData { start: u64, data: Bytes },
    /// The server's current end of WAL (sent when idle, and whenever it wants a reply).
    KeepAlive { wal_end: u64 },
}

/// One row of a replication command's result, as text.
pub type Row = Vec<Option<String>>;

/// A replication connection: idle (commands) until [`ReplicationClient::start`], then
/// streaming.
pub struct ReplicationClient {
    reader: ReadHalf<Box<dyn Io>>,
    writer: Writer,
    buffer: BytesMut,
    /// `server_version_num`, e.g. 150004.
    server_version: u32,
    endpoint: String,
    /// The position confirmed to the server (0: nothing yet, which the server ignores).
    confirmed: Arc<AtomicU64>,
    feedback: Option<Feedback>,
    /// The server closed the connection between two messages.
    closed: bool,
}

/// Shows where the connection goes and how far it got; the socket is left out.
impl fmt::Debug for ReplicationClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicationClient")
            .field("endpoint", &self.endpoint)
            .field("server_version", &self.server_version)
            .field("streaming", &self.feedback.is_some())
            .field("confirmed", &self.confirmed.load(Ordering::Relaxed))
            .field("buffered_bytes", &self.buffer.len())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

struct Feedback {
    now: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ReplicationClient {
    /// Connects and authenticates; the session is ready for replication commands.
    pub async fn connect(config: &PostgresConfig) -> Result<ReplicationClient> {
        let endpoint = format!("{}:{}", config.host, config.port);
        let io: Box<dyn Io> = if config.host.starts_with('/') {
            let path = format!("{}/.s.PGSQL.{}", config.host, config.port);
            Box::new(
                tokio::net::UnixStream::connect(&path)
                    .await
                    .map_err(|e| io_error(&endpoint, "connecting", e))?,
            )
        } else {
            let tcp = tokio::net::TcpStream::connect((config.host.as_str(), config.port))
                .await
                .map_err(|e| io_error(&endpoint, "connecting", e))?;
            let _ = tcp.set_nodelay(true);
            crate::tls::negotiate(tcp, &config.tls, &config.host, &endpoint).await?
        };
        let (reader, writer) = tokio::io::split(io);
        let mut client = ReplicationClient {
            reader,
            writer: Arc::new(Mutex::new(writer)),
            buffer: BytesMut::with_capacity(64 * 1024),
            server_version: 0,
            endpoint,
            confirmed: Arc::new(AtomicU64::new(0)),
            feedback: None,
            closed: false,
        };
        client.startup(config).await?;
        Ok(client)
    }

    /// `server_version_num` of the server.
    pub fn server_version(&self) -> u32 {
        self.server_version
    }

    /// Whether the server streams large in-progress transactions (pgoutput protocol 2).
    pub fn supports_streaming(&self) -> bool {
        self.server_version >= 140000
    }

    async fn startup(&mut self, config: &PostgresConfig) -> Result<()> {
        let mut out = BytesMut::new();
        let params = [
            ("user", config.user.as_str()),
            ("database", config.dbname.as_str()),
            ("replication", "database"),
            ("client_encoding", "UTF8"),
            ("application_name", "sluice"),
            ("options", SESSION_OPTIONS),
        ];
        frontend::startup_message(params.iter().copied(), &mut out)
            .map_err(|e| self.protocol(format!("startup message: {e}")))?;
        self.send(&out).await?;
        let mut scram: Option<ScramSha256> = None;
        loop {
            let (tag, mut body) = self.read_message().await?;
            match tag {
                b'R' => {
                    let code = take_i32(&mut body).ok_or_else(|| self.protocol("short auth"))?;
                    let mut out = BytesMut::new();
                    match code {
                        0 => continue,
                        3 => frontend::password_message(
                            config.password.expose().as_bytes(),
                            &mut out,
                        )
                        .map_err(|e| self.protocol(e.to_string()))?,
                        5 => {
                            let salt: [u8; 4] = body
                                .get(..4)
                                .and_then(|s| s.try_into().ok())
                                .ok_or_else(|| self.protocol("short MD5 salt"))?;
                            let hash = postgres_protocol::authentication::md5_hash(
                                config.user.as_bytes(),
                                config.password.expose().as_bytes(),
                                salt,
                            );
                            frontend::password_message(hash.as_bytes(), &mut out)
                                .map_err(|e| self.protocol(e.to_string()))?;
                        }
                        10 => {
                            let offers_scram = body
                                .split(|b| *b == 0)
                                .any(|mechanism| mechanism == b"SCRAM-SHA-256");
                            if !offers_scram {
                                return Err(Error::config(format!(
                                    "Postgres {} offers no SASL mechanism sluice speaks (only SCRAM-SHA-256 without channel binding); \
                                     allow scram-sha-256, md5 or password for replication connections in pg_hba.conf",
                                    self.endpoint
                                )));
                            }
                            let exchange = ScramSha256::new(
                                config.password.expose().as_bytes(),
                                ChannelBinding::unsupported(),
                            );
                            frontend::sasl_initial_response(
                                "SCRAM-SHA-256",
                                exchange.message(),
                                &mut out,
                            )
                            .map_err(|e| self.protocol(e.to_string()))?;
                            scram = Some(exchange);
                        }
                        11 => {
                            let exchange = scram
                                .as_mut()
                                .ok_or_else(|| self.protocol("SASL continue before start"))?;
                            exchange
                                .update(&body)
                                .map_err(|e| self.auth_failed(config, e.to_string()))?;
                            frontend::sasl_response(exchange.message(), &mut out)
                                .map_err(|e| self.protocol(e.to_string()))?;
                        }
                        12 => {
                            scram
                                .as_mut()
                                .ok_or_else(|| self.protocol("SASL final before start"))?
                                .finish(&body)
                                .map_err(|e| self.auth_failed(config, e.to_string()))?;
                            continue;
                        }
                        other => {
                            return Err(Error::config(format!(
                                "Postgres {} asks for authentication method {other}, which sluice does not speak; \
                                 allow scram-sha-256, md5, password or trust for replication connections in pg_hba.conf",
                                self.endpoint
                            )));
                        }
                    }
                    self.send(&out).await?;
                }
                b'S' => {
                    let mut parts = body.split(|b| *b == 0);
                    if parts.next() == Some(b"server_version".as_slice()) {
                        self.server_version = parts
                            .next()
                            .map(|v| version_number(&String::from_utf8_lossy(v)))
                            .unwrap_or(0);
                    }
                }
                b'E' => {
                    let error = ServerError::parse(&body);
                    let message = format!(
                        "replication connection to {} as {} refused: {error}",
                        self.endpoint, config.user
                    );
                    // 28xxx: invalid authorization (bad password, no pg_hba.conf entry for
                    // replication): retrying will not help.
                    if let Some(hint) =
                        crate::tls::hint(&error.to_string(), &config.tls, &config.host)
                    {
                        return Err(Error::config(format!("{message}; {hint}")));
                    }
                    return Err(if error.code.starts_with("28") || error.code == "3D000" {
                        Error::config(format!(
                            "{message}; check database.user/database.password and that pg_hba.conf has a `replication` line for this user"
                        ))
                    } else {
                        Error::retriable(message)
                    });
                }
                b'Z' => return Ok(()),
                _ => {}
            }
        }
    }

    /// Runs a replication command (e.g. `CREATE_REPLICATION_SLOT`) and returns its rows.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<Row>> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).map_err(|e| self.protocol(e.to_string()))?;
        self.send(&out).await?;
        let mut rows = Vec::new();
        let mut failure = None;
        loop {
            let (tag, mut body) = self.read_message().await?;
            match tag {
                b'D' => {
                    let count = take_i16(&mut body).ok_or_else(|| self.protocol("short row"))?;
                    let mut row = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
                    for _ in 0..count {
                        let len = take_i32(&mut body).ok_or_else(|| self.protocol("short row"))?;
                        row.push(match usize::try_from(len) {
                            Err(_) => None,
                            Ok(len) if len <= body.len() => {
                                let value = body.split_to(len);
                                Some(String::from_utf8_lossy(&value).into_owned())
                            }
                            Ok(_) => return Err(self.protocol("short row value")),
                        });
                    }
                    rows.push(row);
                }
                b'E' => failure = Some(ServerError::parse(&body)),
                b'Z' => break,
                _ => {}
            }
        }
        match failure {
            Some(error) => Err(Error::retriable(format!(
                "`{sql}` failed on {}: {error}",
                self.endpoint
            ))),
            None => Ok(rows),
        }
    }

    /// Starts streaming slot `config.slot` from `start` (the slot's confirmed position when
    /// `None`), with pgoutput protocol 2 and streaming of in-progress transactions where the
    /// server has them, else protocol 1.
    pub async fn start(&mut self, config: &PostgresConfig, start: Option<u64>) -> Result<()> {
        let options = if self.supports_streaming() {
            "proto_version '2', streaming 'on', messages 'true'"
        } else {
            "proto_version '1'"
        };
        let publication = config.publication.replace('\'', "''");
        let sql = format!(
            "START_REPLICATION SLOT {} LOGICAL {} ({options}, publication_names '{}')",
            quote_ident(&config.slot),
            Lsn(start.unwrap_or(0)),
            quote_ident(&publication),
        );
        let mut out = BytesMut::new();
        frontend::query(&sql, &mut out).map_err(|e| self.protocol(e.to_string()))?;
        self.send(&out).await?;
        loop {
            let (tag, body) = self.read_message().await?;
            match tag {
                b'W' => break,
                b'E' => {
                    return Err(Error::retriable(format!(
                        "starting replication from slot {} on {} failed: {}",
                        config.slot,
                        self.endpoint,
                        ServerError::parse(&body)
                    )));
                }
                _ => {}
            }
        }
        if let Some(start) = start {
            self.confirmed.fetch_max(start, Ordering::AcqRel);
        }
        let now = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(report_status(
            Arc::clone(&self.writer),
            Arc::clone(&self.confirmed),
            Arc::clone(&now),
            stopped,
        ));
        self.feedback = Some(Feedback { now, stop, task });
        Ok(())
    }

    /// The next event of the stream; `None` when the server ended it. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<WireEvent>> {
        loop {
            let (tag, body) = match self.read_message().await {
                Ok(message) => message,
                Err(_) if self.closed => return Ok(None),
                Err(e) => return Err(e),
            };
            match tag {
                b'd' => {
                    let (event, reply_now) =
                        decode_copy_data(body).map_err(|what| self.protocol(what))?;
                    if reply_now && let Some(feedback) = &self.feedback {
                        feedback.now.notify_one();
                    }
                    return Ok(Some(event));
                }
                b'c' => return Ok(None),
                b'E' => {
                    return Err(Error::retriable(format!(
                        "the replication stream from {} failed: {}",
                        self.endpoint,
                        describe_server_error(&body)
                    )));
                }
                _ => {}
            }
        }
    }

    /// Lets the slot move to `lsn` (never backwards); reported to the server at once.
    pub fn confirm(&self, lsn: u64) {
        if self.confirmed.fetch_max(lsn, Ordering::AcqRel) < lsn
            && let Some(feedback) = &self.feedback
        {
            feedback.now.notify_one();
        }
    }

    /// Reports the confirmed position one last time and closes the session cleanly.
    pub async fn shutdown(mut self) -> Result<()> {
        let streaming = self.feedback.is_some();
        if let Some(feedback) = self.feedback.take() {
            let _ = feedback.stop.send(true);
            let _ = feedback.task.await;
        }
        let mut out = BytesMut::new();
        if streaming {
            put_status(&mut out, self.confirmed.load(Ordering::Acquire));
            frontend::copy_done(&mut out);
        }
        frontend::terminate(&mut out);
        let mut writer = self.writer.lock().await;
        let sent = async {
            writer.write_all(&out).await?;
            writer.flush().await?;
            writer.shutdown().await
        };
        tokio::time::timeout(Duration::from_secs(3), sent)
            .await
            .map_err(|_| Error::retriable("closing the replication connection timed out"))?
            .map_err(|e| io_error(&self.endpoint, "closing", e))
    }

    async fn send(&self, bytes: &[u8]) -> Result<()> {
        let mut writer = self.writer.lock().await;
        writer
            .write_all(bytes)
            .await
            .map_err(|e| io_error(&self.endpoint, "writing", e))
    }

    /// The next backend message: its tag and body. Cancel-safe: a message is taken from the
    /// buffer only when it is whole.
    async fn read_message(&mut self) -> Result<(u8, Bytes)> {
        loop {
            match take_message(&mut self.buffer).map_err(|what| self.protocol(what))? {
                Taken::Message(tag, body) => return Ok((tag, body)),
                Taken::Needs(length) => self.buffer.reserve(length - self.buffer.len()),
            }
            let read = self
                .reader
                .read_buf(&mut self.buffer)
                .await
                .map_err(|e| io_error(&self.endpoint, "reading", e))?;
            if read == 0 {
                self.closed = self.buffer.is_empty();
                return Err(Error::retriable(format!(
                    "the replication connection to {} was closed by the server",
                    self.endpoint
                )));
            }
        }
    }

    fn protocol(&self, what: impl std::fmt::Display) -> Error {
        Error::retriable(format!(
            "replication protocol error from {}: {what}",
            self.endpoint
        ))
    }

    fn auth_failed(&self, config: &PostgresConfig, why: String) -> Error {
        Error::config(format!(
            "SCRAM authentication as {} at {} failed ({why}); check database.password",
            config.user, self.endpoint
        ))
    }
}

impl Drop for ReplicationClient {
    fn drop(&mut self) {
        if let Some(feedback) = &self.feedback {
            feedback.task.abort();
        }
    }
}

/// The status-update task: the confirmed position once a second and whenever asked.
async fn report_status(
    writer: Writer,
    confirmed: Arc<AtomicU64>,
    now: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(STATUS_INTERVAL);
    let mut out = BytesMut::new();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticks.tick() => {}
            _ = now.notified() => {}
        }
        let lsn = confirmed.load(Ordering::Acquire);
        out.clear();
        put_status(&mut out, lsn);
        let mut writer = writer.lock().await;
        if writer.write_all(&out).await.is_err() || writer.flush().await.is_err() {
            // The reader sees the broken connection and reports it.
            return;
        }
        tracing::trace!(lsn = %Lsn(lsn), "slot position reported to Postgres");
    }
}

/// A Standby Status Update: written, flushed and applied all at `lsn` (0 is "invalid", which
/// the server ignores, so nothing moves before a first confirmation).
fn put_status(out: &mut BytesMut, lsn: u64) {
    let mut body = BytesMut::with_capacity(34);
    body.put_u8(b'r');
    body.put_u64(lsn);
    body.put_u64(lsn);
    body.put_u64(lsn);
    body.put_i64(pg_now_micros());
    body.put_u8(0);
    if let Ok(copy) = frontend::CopyData::new(body.freeze()) {
        copy.write(out);
    }
}

fn pg_now_micros() -> i64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    unix - PG_EPOCH_OFFSET_MICROS
}

/// `15.4 (Debian 15.4-1)` → 150004; `9.6.2` → 90602.
fn version_number(text: &str) -> u32 {
    let numeric: Vec<u32> = text
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|part| !part.is_empty())
        .filter_map(|part| part.parse().ok())
        .collect();
    match numeric.as_slice() {
        [major, ..] if *major >= 10 => major * 10000 + numeric.get(1).copied().unwrap_or(0),
        [major, minor, patch, ..] => major * 10000 + minor * 100 + patch,
        [major, minor] => major * 10000 + minor * 100,
        _ => 0,
    }
}

fn take_i32(body: &mut Bytes) -> Option<i32> {
    (body.len() >= 4).then(|| body.get_i32())
}

fn take_i16(body: &mut Bytes) -> Option<i16> {
    (body.len() >= 2).then(|| body.get_i16())
}

fn io_error(endpoint: &str, doing: &str, error: std::io::Error) -> Error {
    Error::retriable(format!(
        "replication connection to {endpoint}: {doing} failed: {error} (check database.hostname and database.port, and that Postgres runs)"
    ))
}

/// What [`take_message`] found at the front of the buffer.
#[derive(Debug, PartialEq)]
pub enum Taken {
    /// A whole backend message: its tag and body.
    Message(u8, Bytes),
    /// Not a whole message yet: the buffer must grow to this many bytes first.
    Needs(usize),
}

/// Takes the first backend message (tag, 4-byte length, body) off `buffer` if it is whole.
/// A length outside 4..=1 GiB is an error naming it (the stream is not Postgres's protocol).
pub fn take_message(buffer: &mut BytesMut) -> std::result::Result<Taken, String> {
    if buffer.len() < 5 {
        return Ok(Taken::Needs(5));
    }
    let declared = i32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]);
    let length = usize::try_from(declared)
        .ok()
        .filter(|l| (4..=MAX_MESSAGE_BYTES).contains(l))
        .ok_or_else(|| format!("message length {declared}"))?;
    if buffer.len() <= length {
        return Ok(Taken::Needs(length + 1));
    }
    let mut message = buffer.split_to(length + 1).freeze();
    let tag = message.get_u8();
    message.advance(4);
    Ok(Taken::Message(tag, message))
}

/// Reads a CopyData message of the replication stream: the event, and whether the server
/// asks for a status reply at once (a keepalive's reply flag).
pub fn decode_copy_data(mut body: Bytes) -> std::result::Result<(WireEvent, bool), &'static str> {
    match body.first() {
        Some(b'w') => {
            body.advance(1);
            if body.len() < 24 {
                return Err("short XLogData header");
            }
            let start = body.get_u64();
            body.advance(16); // end of WAL and send time: not needed.
            Ok((WireEvent::XLogData { start, data: body }, false))
        }
        Some(b'k') => {
            body.advance(1);
            if body.len() < 17 {
                return Err("short keepalive");
            }
            let wal_end = body.get_u64();
            body.advance(8);
            let reply_now = body.get_u8() == 1;
            Ok((WireEvent::KeepAlive { wal_end }, reply_now))
        }
        _ => Err("unknown CopyData message"),
    }
}

/// An ErrorResponse's body as one line: message, SQLSTATE, detail and hint.
pub fn describe_server_error(body: &[u8]) -> String {
    ServerError::parse(body).to_string()
}

/// Whether `error` is Postgres refusing a slot another backend streams from (SQLSTATE 55006,
/// object_in_use: "replication slot … is active for PID …").
pub fn slot_in_use(error: &Error) -> bool {
    error.message().contains("(SQLSTATE 55006)")
}

/// The fields of an ErrorResponse that matter to a reader.
struct ServerError {
    code: String,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

impl ServerError {
    fn parse(body: &[u8]) -> ServerError {
        let mut error = ServerError {
            code: String::new(),
            message: String::new(),
            detail: None,
            hint: None,
        };
        let mut rest = body;
        while let Some((&kind, tail)) = rest.split_first() {
            if kind == 0 {
                break;
            }
            let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
            let value = String::from_utf8_lossy(&tail[..end]).into_owned();
            rest = tail.get(end + 1..).unwrap_or_default();
            match kind {
                b'C' => error.code = value,
                b'M' => error.message = value,
                b'D' => error.detail = Some(value),
                b'H' => error.hint = Some(value),
                _ => {}
            }
        }
        error
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.code)?;
        if let Some(detail) = &self.detail {
            write!(f, "; {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_read_as_numbers() {
        assert_eq!(version_number("15.4 (Debian 15.4-1.pgdg120+1)"), 150004);
        assert_eq!(version_number("14beta1"), 140000);
        assert_eq!(version_number("16.0"), 160000);
        assert_eq!(version_number("9.6.2"), 90602);
        assert_eq!(version_number("devel"), 0);
    }

    #[test]
    fn error_fields_are_read_up_to_their_end() {
        let body = b"SERROR\0C42704\0Mreplication slot \"x\" does not exist\0Hcreate it\0\0";
        let error = ServerError::parse(body);
        assert_eq!(
            error.to_string(),
            "replication slot \"x\" does not exist (SQLSTATE 42704); hint: create it"
        );
        // Truncated input is read as far as it goes, never panics.
        assert_eq!(ServerError::parse(b"C42").code, "42");
        assert_eq!(ServerError::parse(b"").code, "");
    }

    #[test]
    fn status_updates_are_copy_data_of_34_bytes() {
        let mut out = BytesMut::new();
        put_status(&mut out, 0x16_B374_D848);
        assert_eq!(out[0], b'd');
        assert_eq!(i32::from_be_bytes([out[1], out[2], out[3], out[4]]), 38);
        assert_eq!(out[5], b'r');
        assert_eq!(&out[6..14], &0x16_B374_D848u64.to_be_bytes());
        assert_eq!(out.len(), 39);
    }
}
