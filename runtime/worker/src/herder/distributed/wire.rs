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
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use sluice_api::{Error, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response accepted (a JoinGroup answer carries every member's metadata).
const MAX_RESPONSE: i32 = 64 * 1024 * 1024;

/// A connection to one broker.
pub(crate) struct Connection {
    stream: TcpStream,
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
    /// Connects to `address` (`host:port`) within `timeout`.
    pub(crate) async fn open(
        address: &str,
        client_id: &str,
        timeout: Duration,
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
        Ok(Connection {
            stream,
            address: address.to_owned(),
            client_id: client_id.to_owned(),
            correlation: 0,
        })
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
