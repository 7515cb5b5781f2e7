//! TLS to Postgres under Debezium's (libpq's) keys, with rustls: `database.sslmode`,
//! `database.sslrootcert`, `database.sslcert`, `database.sslkey`, `database.sslpassword`.
//! Used by every connection the connector opens: the query connections (through tokio-postgres, [`MakeRustlsConnect`]) and
//! the replication connection (sluice's own client, [`negotiate`]), snapshot readers included.
//!
//! # Contract
//! * `disable`: plain TCP. `prefer` (Debezium's default): TLS when the server offers it, plain
//!   otherwise. `require`: TLS or fail, the server's certificate not checked (libpq's meaning
//!   without a root certificate). `verify-ca`: TLS with a certificate chain that leads to
//!   `database.sslrootcert`. `verify-full`: that, and the certificate names
//!   `database.hostname`.
//! * A certificate that does not verify fails the connection with a config error naming the
//!   reason and the key to change; so does a server that refuses TLS when the mode needs it.
//! * Unix-socket hosts never use TLS (as libpq).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use sluice_api::config::Config;
use sluice_api::{Error, Result, Secret};
use sluice_tls::{ServerCheck, ServerVerifier};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// `database.sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// Plain TCP (libpq would try TLS after a refused plain connection; sluice does not).
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// The values `database.sslmode` takes.
    pub const VALUES: [&'static str; 6] = [
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    ];

    fn parse(value: &str) -> SslMode {
        match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => SslMode::Prefer,
        }
    }

    /// Whether a connection without TLS is refused.
    pub fn needs_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }

    /// Whether TLS is asked for at all.
    fn asks_tls(self) -> bool {
        !matches!(self, SslMode::Disable | SslMode::Allow)
    }

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS settings of a connector, read once; [`TlsSettings::client_config`] builds rustls's
/// config from them.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// `database.sslrootcert`: PEM file of the CA certificates the server's chain must lead to.
    pub root_cert: Option<PathBuf>,
    /// `database.sslrootcert=system` (libpq 16's special value): the system's trusted CAs.
    pub system_roots: bool,
    /// `database.sslcert`: the client certificate (PEM) for `clientcert=` in pg_hba.conf.
    pub client_cert: Option<PathBuf>,
    /// `database.sslkey`: its private key (PEM, or PKCS#8 DER as pgjdbc's `.pk8`).
    pub client_key: Option<PathBuf>,
    /// `database.sslpassword`: the password of an encrypted (PKCS#8) `database.sslkey`.
    pub key_password: Secret,
}

impl TlsSettings {
    /// Reads the `database.ssl*` keys.
    pub fn from_config(config: &Config) -> Result<TlsSettings> {
        let path = |key: &str| -> Result<Option<PathBuf>> {
            let value = config.string(key)?;
            Ok((!value.trim().is_empty()).then(|| PathBuf::from(value.trim())))
        };
        let mut settings = TlsSettings {
            mode: SslMode::parse(&config.string("database.sslmode")?),
            root_cert: path("database.sslrootcert")?,
            system_roots: false,
            client_cert: path("database.sslcert")?,
            client_key: path("database.sslkey")?,
            key_password: config.secret("database.sslpassword")?,
        };
        if settings.root_cert.as_deref() == Some(Path::new("system")) {
            // As libpq: the system's CAs prove nothing unless the name is checked too, so
            // this value makes verify-full the default and refuses a weaker mode.
            settings.root_cert = None;
            settings.system_roots = true;
            match settings.mode {
                SslMode::Prefer => settings.mode = SslMode::VerifyFull,
                SslMode::VerifyFull => {}
                weaker => {
                    return Err(Error::config(format!(
                        "database.sslrootcert=system trusts every CA of the system, which only \
                         means something with the server's name checked: it needs \
                         database.sslmode=verify-full (or leave database.sslmode unset), not {}",
                        weaker.name()
                    )));
                }
            }
        }
        if settings.client_cert.is_some() != settings.client_key.is_some() {
            return Err(Error::config(
                "database.sslcert and database.sslkey go together: set both (the client \
                 certificate and its key) or neither",
            ));
        }
        Ok(settings)
    }

    /// Plain connections only.
    pub fn disabled() -> TlsSettings {
        TlsSettings {
            mode: SslMode::Disable,
            root_cert: None,
            system_roots: false,
            client_cert: None,
            client_key: None,
            key_password: Secret::default(),
        }
    }

    /// The rustls config for this mode; `None` when TLS is never asked for.
    pub fn client_config(&self) -> Result<Option<Arc<ClientConfig>>> {
        if !self.mode.asks_tls() {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = match self.mode {
            SslMode::VerifyCa | SslMode::VerifyFull => {
                Some(self.webpki_verifier(Arc::clone(&provider))?)
            }
            _ => None,
        };
        let check = match (self.mode, webpki) {
            (SslMode::VerifyCa, Some(webpki)) => ServerCheck::ChainOnly(webpki),
            (SslMode::VerifyFull, Some(webpki)) => ServerCheck::ChainAndName(webpki),
            // prefer/require: encrypted, the peer not authenticated (libpq's meaning).
            _ => ServerCheck::Nothing,
        };
        let verifier = Arc::new(ServerVerifier::new(check, Arc::clone(&provider)));
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config(format!("TLS to Postgres: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(
                    sluice_tls::read_certificates(cert, "database.sslcert")?,
                    self.read_key(key)?,
                )
                .map_err(|e| {
                    Error::config(format!(
                        "database.sslcert/database.sslkey: the key does not fit the certificate \
                         or is of an unsupported kind: {e}"
                    ))
                })?,
            _ => builder.with_no_client_auth(),
        };
        Ok(Some(Arc::new(config)))
    }

    fn webpki_verifier(&self, provider: Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>> {
        if self.system_roots {
            let (bundle, roots) = system_roots()?;
            return WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| {
                    Error::config(format!(
                        "database.sslrootcert=system ({}): {e}",
                        bundle.display()
                    ))
                });
        }
        let root = match &self.root_cert {
            Some(path) => path.clone(),
            // libpq's default place for it.
            None => std::env::var_os("HOME")
                .map(|home| Path::new(&home).join(".postgresql/root.crt"))
                .filter(|p| p.exists())
                .ok_or_else(|| {
                    Error::config(format!(
                        "database.sslmode={} checks the server's certificate against a CA: set \
                         database.sslrootcert to the CA certificate file (PEM), or use \
                         database.sslmode=require to encrypt without checking",
                        self.mode.name()
                    ))
                })?,
        };
        let mut roots = RootCertStore::empty();
        for cert in sluice_tls::read_certificates(&root, "database.sslrootcert")? {
            roots.add(cert).map_err(|e| {
                Error::config(format!(
                    "database.sslrootcert {}: a certificate in it is not a usable CA: {e}",
                    root.display()
                ))
            })?;
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| Error::config(format!("database.sslrootcert {}: {e}", root.display())))
    }

    fn read_key(&self, path: &Path) -> Result<PrivateKeyDer<'static>> {
        sluice_tls::read_private_key(
            path,
            &self.key_password,
            "database.sslkey",
            "database.sslpassword",
        )
    }
}

/// The system's trusted CAs, and the bundle they came from. A certificate of the bundle that
/// is not a usable CA is passed over (system bundles hold a few); none usable is an error.
fn system_roots() -> Result<(PathBuf, RootCertStore)> {
    let bundle = sluice_tls::system_bundle().ok_or_else(|| {
        Error::config(format!(
            "database.sslrootcert=system: no CA bundle found (SSL_CERT_FILE is unset and none \
                 of {} exists); install the system's CA certificates (Debian: ca-certificates) \
                 or point database.sslrootcert at a CA file",
            sluice_tls::SYSTEM_BUNDLES.join(", ")
        ))
    })?;
    let key = "database.sslrootcert=system";
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(sluice_tls::read_certificates(&bundle, key)?);
    if added == 0 {
        return Err(Error::config(format!(
            "{key}: {} holds no usable CA certificate",
            bundle.display()
        )));
    }
    Ok((bundle, roots))
}

/// The hint for a failed TLS handshake or a refused plain connection, from its message; `None`
/// when the failure is about something else.
pub fn hint(message: &str, settings: &TlsSettings, host: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    if sluice_tls::names_mismatch(message) {
        return Some(format!(
            "the server's certificate does not name `{host}`: set database.hostname to a name \
             the certificate lists, or use database.sslmode=verify-ca to check only the CA"
        ));
    }
    if lower.contains("invalid peer certificate") || lower.contains("unknownissuer") {
        return Some(
            "the server's certificate does not verify against database.sslrootcert: point it at \
             the CA that signed the server's certificate, or use database.sslmode=require to \
             encrypt without checking"
                .to_owned(),
        );
    }
    if lower.contains("no encryption") {
        return Some(format!(
            "the server accepts only TLS connections from here (hostssl in pg_hba.conf) and \
             database.sslmode={}: set database.sslmode=prefer, require, verify-ca or verify-full",
            settings.mode.name()
        ));
    }
    if lower.contains("requires a valid client certificate") {
        return Some(
            "pg_hba.conf asks this user for a client certificate: set database.sslcert and \
             database.sslkey to a certificate signed by the server's ssl_ca_file and its key"
                .to_owned(),
        );
    }
    if lower.contains("server does not support tls") {
        return Some(format!(
            "the server does not accept TLS (ssl=off) and database.sslmode={} needs it: turn ssl \
             on in postgresql.conf, or set database.sslmode=prefer or disable",
            settings.mode.name()
        ));
    }
    None
}

/// Postgres's SSLRequest code.
const SSL_REQUEST: i32 = 80877103;

/// Negotiates TLS on a fresh connection to `host` (the replication client): SSLRequest, then
/// the handshake when the server agrees. Returns the stream to speak the protocol on.
pub async fn negotiate<S>(
    mut stream: S,
    settings: &TlsSettings,
    host: &str,
    endpoint: &str,
) -> Result<Box<dyn super::wire::Io>>
where
    S: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static,
{
    let Some(config) = settings.client_config()? else {
        return Ok(Box::new(stream));
    };
    let io = |e: std::io::Error| Error::retriable(format!("TLS negotiation with {endpoint}: {e}"));
    let mut request = [0u8; 8];
    request[..4].copy_from_slice(&8i32.to_be_bytes());
    request[4..].copy_from_slice(&SSL_REQUEST.to_be_bytes());
    stream.write_all(&request).await.map_err(io)?;
    let answer = stream.read_u8().await.map_err(io)?;
    if answer != b'S' {
        if settings.mode.needs_tls() {
            return Err(Error::config(format!(
                "Postgres {endpoint}: {}",
                hint("server does not support TLS", settings, host).unwrap_or_default()
            )));
        }
        return Ok(Box::new(stream));
    }
    let name = server_name(host)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match connector.connect(name, stream).await {
        Ok(tls) => Ok(Box::new(tls)),
        Err(e) => Err(handshake_error(&e.to_string(), settings, host, endpoint)),
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned()).map_err(|e| {
        Error::config(format!(
            "database.hostname `{host}` is not a TLS server name: {e}"
        ))
    })
}

/// A failed handshake: a config error when the certificate is at fault (retrying will not
/// help), retriable otherwise.
fn handshake_error(message: &str, settings: &TlsSettings, host: &str, endpoint: &str) -> Error {
    let text = format!("TLS handshake with Postgres {endpoint} failed: {message}");
    match hint(message, settings, host) {
        Some(hint) => Error::config(format!("{text}; {hint}")),
        None => Error::retriable(text),
    }
}

/// tokio-postgres's TLS hook, backed by rustls with [`TlsSettings`]'s checks.
#[derive(Debug, Clone)]
pub struct MakeRustlsConnect {
    config: Option<Arc<ClientConfig>>,
}

impl MakeRustlsConnect {
    pub fn new(settings: &TlsSettings) -> Result<MakeRustlsConnect> {
        Ok(MakeRustlsConnect {
            config: settings.client_config()?,
        })
    }

    /// tokio-postgres's own `sslmode` (it knows disable/prefer/require; the checks of
    /// verify-ca/verify-full are this connector's).
    pub fn tokio_postgres_mode(mode: SslMode) -> &'static str {
        match mode {
            SslMode::Disable | SslMode::Allow => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }
}

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for MakeRustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect> {
        // Asked for every connection, also with sslmode=disable (when it is never used).
        Ok(RustlsConnect {
            config: self.config.clone(),
            name: domain.to_owned(),
        })
    }
}

/// One connection's TLS hook.
#[derive(Debug)]
pub struct RustlsConnect {
    config: Option<Arc<ClientConfig>>,
    name: String,
}

impl<S> tokio_postgres::tls::TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<RustlsStream<S>>> + Send>,
    >;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let unusable = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
            let config = self
                .config
                .ok_or_else(|| unusable("TLS asked for with database.sslmode=disable".into()))?;
            let name = server_name(&self.name).map_err(|e| unusable(e.to_string()))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

/// A TLS stream for tokio-postgres.
pub struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S> std::fmt::Debug for RustlsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RustlsStream")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        // SCRAM without channel binding, as the replication client.
        tokio_postgres::tls::ChannelBinding::none()
    }
}

/// The message of a tokio-postgres connect error with its causes (the TLS reason is a cause).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_libpq_names_them() {
        for value in SslMode::VALUES {
            assert_eq!(SslMode::parse(value).name(), value);
        }
        assert!(SslMode::parse("verify-full").needs_tls());
        assert!(!SslMode::parse("prefer").needs_tls());
        assert!(!SslMode::parse("disable").asks_tls());
    }

    #[test]
    fn hints_name_the_key_to_change() {
        let settings = TlsSettings::disabled();
        let hint = |m: &str| hint(m, &settings, "db.internal").unwrap_or_default();
        assert!(hint("invalid peer certificate: UnknownIssuer").contains("database.sslrootcert"));
        assert!(
            hint("invalid peer certificate: NotValidForNameContext { expected: .. }")
                .contains("database.hostname")
        );
        assert!(
            hint("no pg_hba.conf entry for host \"127.0.0.1\", user \"u\", database \"d\", no encryption")
                .contains("database.sslmode")
        );
        assert!(super::hint("connection refused", &settings, "h").is_none());
    }
}
