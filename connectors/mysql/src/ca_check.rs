//! `database.ssl.mode=verify_ca` over mysql_async: the certificate must chain to the
//! truststore, and its names are not checked.
//!
//! mysql_async 0.37 has a switch for that (`with_danger_skip_domain_validation`), but it works
//! by matching rustls's error text "NotValidForName", which the rustls sluice builds with
//! words "not valid for name": with it, verify_ca would check the name as verify_identity does.
//! Its TLS config has no hook for a verifier of sluice's own either. So before each
//! connection, [`name_to_verify`] opens a probe connection, asks for TLS as MySQL's protocol
//! does (the server's greeting, then an SSLRequest packet), and checks the certificate the
//! server presents with rustls's own verifier, the name check told apart by its error kind.
//! If the chain verifies and only the name does not, the probe hands back a name the
//! certificate lists and the address it reached, and the real connection dials that address
//! and checks the certificate against that name: the chain is still verified in full on the
//! real connection, the name check passes by construction. verify_ca needs
//! `database.ssl.truststore` (refused without it): the names prove nothing, so only a CA of
//! the user's own may vouch for the server.
//!
//! # Contract
//! * A chain that does not verify fails here with rustls's reason, as the real connection
//!   would; a server that offers no TLS is left to the real connection (which says so).
//! * A certificate that lists no subjectAltName cannot pass rustls's name check under any name:
//!   refused, naming `database.ssl.mode=required` as the way to connect unchecked.
//! * The probe sends no password: it stops after the TLS handshake (presenting the keystore's
//!   client certificate, for servers that ask for one in the handshake), within 30 s.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use sluice_api::{Error, Result};
use sluice_tls::{ServerCheck, ServerVerifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The capability flag a server sets when it can switch to TLS.
const CLIENT_SSL: u32 = 0x0800;
const CLIENT_PROTOCOL_41: u32 = 0x0200;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_LONG_PASSWORD: u32 = 0x0001;

/// How long the probe may take in all (connecting, the greeting, the TLS handshake).
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the real connection should do for verify_ca.
#[derive(Debug)]
pub(crate) struct Verified {
    /// The address the probe reached: the real connection dials the same server.
    pub(crate) address: IpAddr,
    /// The name to check the certificate against: `None` when `host` itself is one the
    /// certificate lists, else a name it lists.
    pub(crate) name: Option<String>,
}

/// Checks the certificate of the server at `host:port` against `roots` (the truststore),
/// presenting `client` (the keystore's certificate and key) when given. `None` when the
/// server offers no TLS or answers with an error: the real connection reports that in the
/// driver's words.
pub(crate) async fn name_to_verify(
    host: &str,
    port: u16,
    roots: &[CertificateDer<'static>],
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Option<Verified>> {
    tokio::time::timeout(PROBE_TIMEOUT, probe(host, port, roots, client))
        .await
        .map_err(|_| {
            Error::retriable(format!(
                "checking the server's certificate on {host}:{port}: no answer within \
                 {PROBE_TIMEOUT:?}"
            ))
        })?
}

async fn probe(
    host: &str,
    port: u16,
    roots: &[CertificateDer<'static>],
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Option<Verified>> {
    let server_name = ServerName::try_from(host.to_owned()).map_err(|e| {
        Error::config(format!(
            "database.hostname `{host}` is not a host name or IP address TLS can check ({e})"
        ))
    })?;
    let retriable = |what: &str, e: std::io::Error| {
        Error::retriable(format!(
            "checking the server's certificate on {host}:{port}: {what}: {e}"
        ))
    };
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| retriable("connecting", e))?;
    let address = stream
        .peer_addr()
        .map_err(|e| retriable("connecting", e))?
        .ip();
    let greeting = read_packet(&mut stream)
        .await
        .map_err(|e| retriable("reading the greeting", e))?;
    let Some(capabilities) = capabilities(&greeting) else {
        return Ok(None);
    };
    if capabilities & CLIENT_SSL == 0 {
        return Ok(None);
    }
    stream
        .write_all(&ssl_request())
        .await
        .map_err(|e| retriable("asking for TLS", e))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).map_err(|e| {
            Error::config(format!(
                "database.ssl.truststore: a certificate in it is not a usable CA: {e}"
            ))
        })?;
    }
    let webpki =
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(&provider))
            .build()
            .map_err(|e| Error::config(format!("database.ssl.truststore: {e}")))?;
    let verifier = Arc::new(ServerVerifier::new(
        ServerCheck::ChainOnly(webpki),
        Arc::clone(&provider),
    ));
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS to MySQL: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>);
    let config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
            Error::config(format!(
                "database.ssl.keystore: the key does not fit the certificate or is of an \
                 unsupported kind: {e}"
            ))
        })?,
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match connector.connect(server_name, stream).await {
        Ok(mut tls) => {
            // The probe ends here, before authenticating: the server counts it as an aborted
            // connect, which the real connection's login then clears for max_connect_errors.
            let _ = tls.shutdown().await;
        }
        // rustls's own reason ("invalid peer certificate: UnknownIssuer"), which the caller's
        // hint turns into the key to change.
        Err(e) if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
            return Err(Error::config(e.to_string()));
        }
        Err(e) => return Err(retriable("the TLS handshake", e)),
    }
    let name =
        match verifier.listed() {
            None => None,
            Some(names) => Some(names.iter().find_map(|name| checkable(name)).ok_or_else(
                || {
                    Error::config(format!(
                        "the server's certificate chains to database.ssl.truststore but lists no \
                 name (subjectAltName) a TLS check can match, so verify_ca cannot be satisfied \
                 with sluice's TLS stack: give the server a certificate with a \
                 subjectAltName, or use database.ssl.mode=required to encrypt without \
                 checking (listed: {names:?})"
                    ))
                },
            )?),
        };
    Ok(Some(Verified { address, name }))
}

/// A listed name as one rustls accepts as a server name and that the name check matches:
/// a wildcard `*.example.com` is matched by any one label in its place. rustls lists names as
/// webpki writes them (`DnsName("db.example.com")`, `IpAddress(10.0.0.7)`); other kinds
/// (`DirectoryName`, URIs) cannot be checked.
fn checkable(listed: &str) -> Option<String> {
    let listed = listed
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            listed
                .strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        })?;
    let name = match listed.strip_prefix("*.") {
        Some(rest) => format!("verify-ca.{rest}"),
        None => listed.to_owned(),
    };
    ServerName::try_from(name.clone()).ok().map(|_| name)
}

/// The client capabilities of MySQL's greeting (protocol 10), `None` for anything else.
fn capabilities(greeting: &[u8]) -> Option<u32> {
    if greeting.first() != Some(&10) {
        return None;
    }
    let version_end = greeting[1..].iter().position(|b| *b == 0)? + 1;
    // version NUL, connection id (4), auth data part 1 (8), filler (1), capabilities low (2),
    // charset (1), status (2), capabilities high (2).
    let low = version_end + 1 + 4 + 8 + 1;
    let lower = u16::from_le_bytes(greeting.get(low..low + 2)?.try_into().ok()?) as u32;
    let upper = greeting
        .get(low + 5..low + 7)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32)
        .unwrap_or(0);
    Some(lower | (upper << 16))
}

/// MySQL's SSLRequest: the first fields of the handshake response, sequence 1.
fn ssl_request() -> Vec<u8> {
    let flags = CLIENT_SSL | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_LONG_PASSWORD;
    let mut payload = Vec::with_capacity(32);
    payload.extend_from_slice(&flags.to_le_bytes());
    payload.extend_from_slice(&(16u32 << 20).to_le_bytes());
    payload.push(45); // utf8mb4_general_ci
    payload.extend_from_slice(&[0; 23]);
    let mut packet = Vec::with_capacity(36);
    packet.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
    packet.push(1);
    packet.extend_from_slice(&payload);
    packet
}

async fn read_packet(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let length = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut payload = vec![0; length];
    stream.read_exact(&mut payload).await?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_greeting_s_capabilities_and_the_ssl_request() {
        // A MariaDB 10.11 greeting's head: protocol 10, version, id, salt, filler, flags.
        let mut greeting = vec![10];
        greeting.extend_from_slice(b"10.11.6-MariaDB\0");
        greeting.extend_from_slice(&[1, 0, 0, 0]);
        greeting.extend_from_slice(b"abcdefgh\0");
        greeting.extend_from_slice(&0xfffeu16.to_le_bytes());
        greeting.push(45);
        greeting.extend_from_slice(&[2, 0]);
        greeting.extend_from_slice(&0x81bfu16.to_le_bytes());
        let flags = capabilities(&greeting).unwrap();
        assert_ne!(flags & CLIENT_SSL, 0);
        assert_eq!(flags >> 16, 0x81bf);
        let mut without_tls = greeting.clone();
        without_tls[30..32].copy_from_slice(&0xf7feu16.to_le_bytes());
        assert_eq!(capabilities(&without_tls).unwrap() & CLIENT_SSL, 0);
        assert_eq!(capabilities(&[0xff, 0x15, 0x04]), None);
        assert_eq!(capabilities(&[10, b'x']), None);

        let request = ssl_request();
        assert_eq!(request.len(), 36);
        assert_eq!(&request[..4], &[32, 0, 0, 1]);
    }

    #[test]
    fn wildcards_become_a_name_they_match() {
        assert_eq!(
            checkable("DnsName(\"db.example.com\")").as_deref(),
            Some("db.example.com")
        );
        assert_eq!(
            checkable("DnsName(\"localhost\")").as_deref(),
            Some("localhost")
        );
        assert_eq!(
            checkable("DnsName(\"*.example.com\")").as_deref(),
            Some("verify-ca.example.com")
        );
        assert_eq!(
            checkable("IpAddress(10.0.0.7)").as_deref(),
            Some("10.0.0.7")
        );
        assert_eq!(checkable("DirectoryName"), None);
    }
}
