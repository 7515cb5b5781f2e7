//! One connection to a Kafka broker speaking the group APIs, with `kafka-protocol` as the
//! codec: requests framed with their 4-byte length and header, responses matched by
//! correlation id. librdkafka cannot run a `connect`-type group, so this is sluice's own.
//!
//! Calls are sequential per connection (the broker answers in order); a call that gets no
//! answer within its deadline fails and the connection is dropped by the caller.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use rustls::pki_types::ServerName;
use sluice_api::{Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::broker_security::{BrokerSecurity, Sasl, SaslMechanism};
use super::scram::ScramClient;

/// A failed TLS handshake, with the setting to look at.
fn tls_error(address: &str, e: &std::io::Error) -> Error {
    let text = e.to_string();
    let hint = if sluice_tls::names_mismatch(&text) {
        "the broker's certificate does not name the host dialled: give brokers certificates \
         naming their advertised hosts"
    } else if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
        "the broker's certificate does not chain to `ssl.truststore.location`: point it at the \
         CA that signed the brokers' certificates"
    } else {
        // Not about certificates: a broker restarting, or a listener that is not TLS.
        return Error::retriable(format!(
            "TLS with Kafka broker {address}: {text}; if it persists, check \
             `security.protocol` against the broker's listener"
        ));
    };
    Error::config(format!("TLS with Kafka broker {address}: {text}; {hint}"))
}

/// Largest response accepted (a JoinGroup answer carries every member's metadata).
const MAX_RESPONSE: i32 = 64 * 1024 * 1024;

/// A byte stream to a broker: plain TCP or TLS over it.
trait BrokerStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + Sync> BrokerStream for S {}

/// A connection to one broker.
pub(crate) struct Connection {
    stream: Box<dyn BrokerStream>,
    address: String,
    client_id: String,
    correlation: i32,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn codec_error(what: &str, address: &str, e: impl std::fmt::Display) -> Error {
    Error::retriable(format!("{what} with {address}: {e}"))
}

impl Connection {
    /// Connects to `address` (`host:port`) within `timeout`, with TLS and SASL when
    /// `security` asks for them.
    pub(crate) async fn open(
        address: &str,
        client_id: &str,
        timeout: Duration,
        security: &BrokerSecurity,
    ) -> Result<Connection> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| {
                Error::retriable(format!(
                    "cannot reach Kafka broker {address} within {timeout:?}"
                ))
            })?
            .map_err(|e| Error::retriable(format!("cannot reach Kafka broker {address}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let stream: Box<dyn BrokerStream> = match &security.tls {
            None => Box::new(stream),
            Some(config) => {
                let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(host.to_owned()).map_err(|e| {
                    Error::config(format!(
                        "Kafka broker {address}: not a TLS server name: {e}"
                    ))
                })?;
                let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(config));
                let tls = tokio::time::timeout(timeout, connector.connect(name, stream))
                    .await
                    .map_err(|_| {
                        Error::retriable(format!(
                            "TLS handshake with Kafka broker {address} took over {timeout:?}"
                        ))
                    })?
                    .map_err(|e| tls_error(address, &e))?;
                Box::new(tls)
            }
        };
        let mut connection = Connection {
            stream,
            address: address.to_owned(),
            client_id: client_id.to_owned(),
            correlation: 0,
        };
        if let Some(sasl) = &security.sasl {
            connection.authenticate(sasl, timeout).await?;
        }
        Ok(connection)
    }

    /// SaslHandshake v1, then the mechanism's exchange over SaslAuthenticate v1.
    async fn authenticate(&mut self, sasl: &Sasl, timeout: Duration) -> Result<()> {
        let mechanism = sasl.mechanism.name();
        let handshake: SaslHandshakeResponse = self
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(mechanism)),
                timeout,
            )
            .await?;
        if handshake.error_code != 0 {
            let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(Error::config(format!(
                "Kafka broker {} does not enable SASL {mechanism} (it offers {offered:?}): set \
                 `sasl.mechanism` to one of them",
                self.address
            )));
        }
        match &sasl.mechanism {
            SaslMechanism::Plain => {
                let mut token = Vec::new();
                token.push(0);
                token.extend_from_slice(sasl.username.as_bytes());
                token.push(0);
                token.extend_from_slice(sasl.password.expose().as_bytes());
                self.sasl_step(Bytes::from(token), timeout).await?;
            }
            SaslMechanism::Scram(hash) => {
                let mut random = [0u8; 24];
                crate::random::os_random(&mut random)
                    .map_err(|e| Error::retriable(format!("SASL SCRAM nonce: {e}")))?;
                let nonce = {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.encode(random)
                };
                let mut client =
                    ScramClient::new(*hash, &sasl.username, sasl.password.expose(), &nonce);
                let server_first = self.sasl_step(Bytes::from(client.first()), timeout).await?;
                let last = client.last(&String::from_utf8_lossy(&server_first))?;
                let server_final = self.sasl_step(Bytes::from(last), timeout).await?;
                client.verify(&String::from_utf8_lossy(&server_final))?;
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate round trip: the server's bytes, or an error naming the credentials.
    async fn sasl_step(&mut self, bytes: Bytes, timeout: Duration) -> Result<Bytes> {
        let response: SaslAuthenticateResponse = self
            .call(
                ApiKey::SaslAuthenticate,
                1,
                &SaslAuthenticateRequest::default().with_auth_bytes(bytes),
                timeout,
            )
            .await?;
        if response.error_code != 0 {
            return Err(Error::config(format!(
                "Kafka broker {} refused SASL authentication (error {}: {}): check the \
                 username and password in `sasl.jaas.config`",
                self.address,
                response.error_code,
                response
                    .error_message
                    .as_ref()
                    .map_or("no message", |m| m.as_str())
            )));
        }
        Ok(response.auth_bytes)
    }

    /// Sends `request` as `key` at `version` and waits up to `timeout` for its response.
    pub(crate) async fn call<Req, Resp>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, Req::header_version(version))
            .and_then(|()| request.encode(&mut body, version))
            .map_err(|e| codec_error(&format!("encoding {key:?} v{version}"), &self.address, e))?;
        let mut frame = BytesMut::with_capacity(4 + body.len());
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        let exchange = async {
            self.stream.write_all(&frame).await?;
            // Over TLS, written bytes may wait in the session's buffer until flushed.
            self.stream.flush().await?;
            let len = self.stream.read_i32().await?;
            if !(0..=MAX_RESPONSE).contains(&len) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("response length {len}"),
                ));
            }
            let mut raw = vec![0u8; len as usize];
            self.stream.read_exact(&mut raw).await?;
            Ok(Bytes::from(raw))
        };
        let mut raw = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                Error::retriable(format!(
                    "Kafka broker {} did not answer {key:?} within {timeout:?}",
                    self.address
                ))
            })?
            .map_err(|e| codec_error(&format!("{key:?}"), &self.address, e))?;
        let header = ResponseHeader::decode(&mut raw, Resp::header_version(version))
            .map_err(|e| codec_error(&format!("decoding the {key:?} header"), &self.address, e))?;
        if header.correlation_id != correlation {
            return Err(Error::retriable(format!(
                "Kafka broker {} answered correlation id {} to request {correlation}",
                self.address, header.correlation_id
            )));
        }
        Resp::decode(&mut raw, version)
            .map_err(|e| codec_error(&format!("decoding {key:?} v{version}"), &self.address, e))
    }

    /// The highest version of each of `keys` both sides speak, from ApiVersions; an API the
    /// broker lacks, or only in versions below `ours.0`, is an error naming it.
    pub(crate) async fn negotiate(
        &mut self,
        ours: &[(ApiKey, i16, i16)],
        timeout: Duration,
    ) -> Result<Vec<i16>> {
        let response: ApiVersionsResponse = self
            .call(
                ApiKey::ApiVersions,
                0,
                &ApiVersionsRequest::default(),
                timeout,
            )
            .await?;
        ours.iter()
            .map(|&(key, min, max)| {
                let theirs = response.api_keys.iter().find(|k| k.api_key == key as i16);
                match theirs {
                    Some(k) if k.max_version >= min && k.min_version <= max => {
                        Ok(k.max_version.min(max))
                    }
                    _ => Err(Error::config(format!(
                        "Kafka broker {} does not support {key:?} versions {min}..={max}, which a \
                         sluice worker group needs (brokers since Kafka 2.3 do)",
                        self.address
                    ))),
                }
            })
            .collect()
    }
}
