//! A TLS + SASL front for the test broker. Tansu 0.6 has neither TLS listeners nor SASL, so
//! the Kafka clients' security is tested through this instead: it terminates TLS with the test
//! CA's `localhost` certificate, answers SaslHandshake and SaslAuthenticate itself (PLAIN or
//! SCRAM-SHA-256, one user), and then relays the connection's bytes to Tansu unchanged. Tansu advertises the
//! front's address, so every client (librdkafka's producers, consumers and admin clients, and
//! sluice's own group client) comes back through it after the bootstrap.
//!
//! As a Kafka `SASL_SSL` listener does, it allows only ApiVersions (relayed, with the SASL
//! APIs added to the broker's answer) and the SASL APIs before a connection authenticates, and
//! closes a connection that sends anything else or the wrong password. What it cannot show: a
//! real broker's own TLS and SASL code (the client side is what is under test here).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the front saw, for the test's assertions.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Connections that authenticated with PLAIN and were relayed to the broker.
    pub(crate) authenticated: AtomicU64,
    /// Connections that authenticated with SCRAM-SHA-256 and were relayed to the broker.
    pub(crate) authenticated_scram: AtomicU64,
    /// SaslAuthenticate with a wrong user or password.
    pub(crate) bad_credentials: AtomicU64,
    /// Connections closed for a request other than ApiVersions or SASL before authenticating.
    pub(crate) unauthenticated_requests: AtomicU64,
    /// TLS handshakes that failed (a plain client, or one that refused the certificate).
    pub(crate) failed_handshakes: AtomicU64,
}

impl Seen {
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

/// A running front, stopped with its runtime when dropped.
pub(crate) struct KafkaFront {
    pub(crate) seen: Arc<Seen>,
    _runtime: tokio::runtime::Runtime,
}

impl KafkaFront {
    /// Listens on `listen` and relays authenticated connections to the broker at `broker`.
    pub(crate) fn start(
        listen: &str,
        broker: &str,
        tls: tokio_rustls::TlsAcceptor,
        user: &str,
        password: &str,
    ) -> KafkaFront {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime for the Kafka front");
        let listener = runtime
            .block_on(TcpListener::bind(listen))
            .expect("bind the Kafka front");
        let seen = Arc::new(Seen::default());
        let user = Arc::new(User {
            name: user.to_owned(),
            password: password.to_owned(),
        });
        let (broker, shared) = (broker.to_owned(), Arc::clone(&seen));
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (tls, broker, seen, user) = (
                    tls.clone(),
                    broker.clone(),
                    Arc::clone(&shared),
                    Arc::clone(&user),
                );
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    let Ok(client) = tls.accept(client).await else {
                        seen.failed_handshakes.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    let Ok(upstream) = TcpStream::connect(&broker).await else {
                        return;
                    };
                    let _ = upstream.set_nodelay(true);
                    serve(client, upstream, &seen, &user).await;
                });
            }
        });
        KafkaFront {
            seen,
            _runtime: runtime,
        }
    }
}

async fn read_frame(stream: &mut (impl AsyncRead + Unpin)) -> Option<Bytes> {
    let len = stream.read_i32().await.ok()?;
    let mut body = vec![0u8; usize::try_from(len).ok()?];
    stream.read_exact(&mut body).await.ok()?;
    Some(Bytes::from(body))
}

async fn write_frame(stream: &mut (impl AsyncWrite + Unpin), body: &[u8]) -> Option<()> {
    stream.write_i32(body.len() as i32).await.ok()?;
    stream.write_all(body).await.ok()?;
    stream.flush().await.ok()
}

/// A response frame's body: the header for `correlation` and `response` at `version`.
fn response<R: Encodable + HeaderVersion>(correlation: i32, response: &R, version: i16) -> Bytes {
    let mut body = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation)
        .encode(&mut body, R::header_version(version))
        .unwrap();
    response.encode(&mut body, version).unwrap();
    body.freeze()
}

/// The one user the front accepts.
struct User {
    name: String,
    password: String,
}

/// Where a connection's SASL exchange stands.
enum Exchange {
    /// No SaslHandshake yet.
    Start,
    Plain,
    /// SCRAM-SHA-256 chosen; after the client's first message, what the proof is checked with.
    Scram(Option<ScramServer>),
}

/// The server side of SCRAM-SHA-256 (RFC 5802) after the client's first message.
struct ScramServer {
    first_bare: String,
    server_first: String,
    nonce: String,
    user_ok: bool,
}

const SALT: &[u8] = b"sluice-front-salt";
const ITERATIONS: u32 = 4096;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn salted_password(password: &str) -> Vec<u8> {
    let mut u = hmac(password.as_bytes(), &[SALT, &1u32.to_be_bytes()].concat());
    let mut out = u.clone();
    for _ in 1..ITERATIONS {
        u = hmac(password.as_bytes(), &u);
        out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
    }
    out
}

impl ScramServer {
    /// The client's first message (`n,,n=<user>,r=<nonce>`).
    fn start(client_first: &[u8], user: &User) -> Option<ScramServer> {
        use base64::Engine;
        let text = std::str::from_utf8(client_first).ok()?;
        let first_bare = text.strip_prefix("n,,")?.to_owned();
        let name = first_bare.strip_prefix("n=")?.split(',').next()?;
        let client_nonce = first_bare.split(",r=").nth(1)?;
        let nonce = format!("{client_nonce}front-nonce-4f2a");
        let server_first = format!(
            "r={nonce},s={},i={ITERATIONS}",
            base64::engine::general_purpose::STANDARD.encode(SALT)
        );
        Some(ScramServer {
            user_ok: name == user.name,
            first_bare,
            server_first,
            nonce,
        })
    }

    /// The client's final message checked: the server's final message, or `None`.
    fn finish(&self, client_final: &[u8], user: &User) -> Option<String> {
        use base64::Engine;
        use sha2::Digest;
        let b64 = base64::engine::general_purpose::STANDARD;
        let text = std::str::from_utf8(client_final).ok()?;
        let (without_proof, proof) = text.rsplit_once(",p=")?;
        if !self.user_ok || without_proof != format!("c=biws,r={}", self.nonce) {
            return None;
        }
        let salted = salted_password(&user.password);
        let stored_key = sha2::Sha256::digest(hmac(&salted, b"Client Key")).to_vec();
        let auth = format!("{},{},{without_proof}", self.first_bare, self.server_first);
        let signature = hmac(&stored_key, auth.as_bytes());
        let client_key: Vec<u8> = b64
            .decode(proof)
            .ok()?
            .iter()
            .zip(&signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if sha2::Sha256::digest(&client_key).to_vec() != stored_key {
            return None;
        }
        let server_signature = hmac(&hmac(&salted, b"Server Key"), auth.as_bytes());
        Some(format!("v={}", b64.encode(server_signature)))
    }
}

/// The SASL exchange, then a byte relay.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    mut upstream: TcpStream,
    seen: &Seen,
    user: &User,
) {
    let mut exchange = Exchange::Start;
    loop {
        let Some(frame) = read_frame(&mut client).await else {
            return;
        };
        if frame.len() < 8 {
            return;
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        match ApiKey::try_from(key) {
            Ok(ApiKey::ApiVersions) => {
                if write_frame(&mut upstream, &frame).await.is_none() {
                    return;
                }
                let Some(answer) = read_frame(&mut upstream).await else {
                    return;
                };
                let answer = with_sasl_apis(answer, correlation, version);
                if write_frame(&mut client, &answer).await.is_none() {
                    return;
                }
            }
            Ok(ApiKey::SaslHandshake) => {
                let mut body = frame.clone();
                let request =
                    RequestHeader::decode(&mut body, SaslHandshakeRequest::header_version(version))
                        .and_then(|_| SaslHandshakeRequest::decode(&mut body, version));
                let Ok(request) = request else { return };
                let error = match request.mechanism.as_str() {
                    "PLAIN" => {
                        exchange = Exchange::Plain;
                        0
                    }
                    "SCRAM-SHA-256" => {
                        exchange = Exchange::Scram(None);
                        0
                    }
                    _ => 33, // UNSUPPORTED_SASL_MECHANISM
                };
                let answer = SaslHandshakeResponse::default()
                    .with_error_code(error)
                    .with_mechanisms(vec![
                        StrBytes::from_static_str("PLAIN"),
                        StrBytes::from_static_str("SCRAM-SHA-256"),
                    ]);
                if write_frame(&mut client, &response(correlation, &answer, version))
                    .await
                    .is_none()
                {
                    return;
                }
            }
            Ok(ApiKey::SaslAuthenticate) => {
                let mut body = frame.clone();
                let request = RequestHeader::decode(
                    &mut body,
                    SaslAuthenticateRequest::header_version(version),
                )
                .and_then(|_| SaslAuthenticateRequest::decode(&mut body, version));
                let Ok(request) = request else { return };
                let offered = request.auth_bytes;
                // Ok(Some(bytes)): authenticated; Ok(None): continue with `bytes`; Err: refused.
                let (outcome, bytes) = match &mut exchange {
                    Exchange::Start => return,
                    Exchange::Plain => {
                        // [authzid] NUL user NUL password.
                        let token = format!("\0{}\0{}", user.name, user.password);
                        let good = offered.ends_with(token.as_bytes())
                            && !offered[..offered.len() - token.len()].contains(&0);
                        (good.then_some(true), Bytes::new())
                    }
                    Exchange::Scram(state @ None) => match ScramServer::start(&offered, user) {
                        Some(server) => {
                            let first = Bytes::from(server.server_first.clone());
                            *state = Some(server);
                            (Some(false), first)
                        }
                        None => (None, Bytes::new()),
                    },
                    Exchange::Scram(Some(server)) => match server.finish(&offered, user) {
                        Some(last) => (Some(true), Bytes::from(last)),
                        None => (None, Bytes::new()),
                    },
                };
                let answer = match outcome {
                    Some(_) => SaslAuthenticateResponse::default().with_auth_bytes(bytes),
                    None => {
                        seen.bad_credentials.fetch_add(1, Ordering::SeqCst);
                        SaslAuthenticateResponse::default()
                            .with_error_code(58) // SASL_AUTHENTICATION_FAILED
                            .with_error_message(Some(StrBytes::from_static_str(
                                "Authentication failed: Invalid username or password",
                            )))
                    }
                };
                let sent = write_frame(&mut client, &response(correlation, &answer, version)).await;
                match (outcome, sent) {
                    (Some(false), Some(())) => continue,
                    (Some(true), Some(())) => {}
                    _ => return,
                }
                let counter = match exchange {
                    Exchange::Plain => &seen.authenticated,
                    _ => &seen.authenticated_scram,
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                return;
            }
            _ => {
                seen.unauthenticated_requests.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

/// The broker's ApiVersions answer with SaslHandshake v0–1 and SaslAuthenticate v0–2 added
/// (Tansu lists neither); an answer that does not decode at `version` (an error answered at
/// v0) goes back as it came.
fn with_sasl_apis(answer: Bytes, correlation: i32, version: i16) -> Bytes {
    let mut body = answer.clone();
    let decoded = ResponseHeader::decode(&mut body, ApiVersionsResponse::header_version(version))
        .and_then(|_| ApiVersionsResponse::decode(&mut body, version));
    let Ok(mut decoded) = decoded else {
        return answer;
    };
    if decoded.error_code != 0 {
        return answer;
    }
    for (key, max) in [(ApiKey::SaslHandshake, 1), (ApiKey::SaslAuthenticate, 2)] {
        decoded.api_keys.retain(|k| k.api_key != key as i16);
        decoded.api_keys.push(
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(0)
                .with_max_version(max),
        );
    }
    response(correlation, &decoded, version)
}
